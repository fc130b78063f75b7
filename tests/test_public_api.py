"""The public surface is exactly ``agentkit.__all__``; this pins it."""

from __future__ import annotations

import agentkit
import agentkit.testing
import agentkit.tools
import agentkit.tui

EXPECTED = {
    "END",
    "Agent",
    "AgentState",
    "AgentkitError",
    "ChatModel",
    "ChecksumError",
    "CompiledGraph",
    "ConfigError",
    "ConsoleProgress",
    "ContextOverflowError",
    "DefaultPolicy",
    "DetectorConfig",
    "DownloadError",
    "Event",
    "FunctionNode",
    "Graph",
    "LadderPolicy",
    "LlamaConfig",
    "LlamaCppModel",
    "Message",
    "ModelError",
    "ModelFileError",
    "ModelLadder",
    "ModelNode",
    "ModelNotFoundError",
    "ModelResponse",
    "ResponsePlan",
    "ResumeError",
    "RetryPolicy",
    "RunError",
    "RunResult",
    "RunStopped",
    "RunStore",
    "Runner",
    "Sampling",
    "SchemaVersionError",
    "ScriptError",
    "StepReview",
    "StepSignals",
    "StoreError",
    "TierDecision",
    "TokenLogprob",
    "Tool",
    "ToolCall",
    "ToolDetectorOverride",
    "ToolError",
    "ToolNode",
    "ToolSpec",
    "Usage",
    "__version__",
    "events",
    "get_model",
    "list_models",
    "print_summary",
    "pull_model",
    "resolve_model",
    "tool",
}


def test_all_is_pinned() -> None:
    assert set(agentkit.__all__) == EXPECTED
    assert len(agentkit.__all__) == len(EXPECTED)  # no duplicates


def test_every_public_name_exists_and_is_documented() -> None:
    for name in agentkit.__all__:
        obj = getattr(agentkit, name)
        if callable(obj) and not name.isupper():
            assert (obj.__doc__ or "").strip(), f"{name} has no docstring"


def test_error_tree() -> None:
    for name in agentkit.__all__:
        obj = getattr(agentkit, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, agentkit.AgentkitError), name


def test_subpackages_import_from_their_mapped_folders() -> None:
    assert agentkit.tools.__file__ is not None and agentkit.tui.__file__ is not None
    assert agentkit.tools.__name__ == "agentkit.tools"
    assert callable(agentkit.tui.run_monitor)
    assert {"ScriptedModel", "call", "reply"} <= set(agentkit.testing.__all__)
