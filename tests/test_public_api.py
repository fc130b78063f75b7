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
    "BatchConfig",
    "BatchStats",
    "ChatModel",
    "ChecksumError",
    "CompiledGraph",
    "ConfigError",
    "ConsoleProgress",
    "ContextOverflowError",
    "LeaseLostError",
    "DefaultPolicy",
    "DetectorConfig",
    "DownloadError",
    "Event",
    "Filter",
    "FunctionFilter",
    "FunctionNode",
    "Graph",
    "InjectionScreen",
    "JSONSchemaGuard",
    "LadderPolicy",
    "LlamaConfig",
    "LlamaCppModel",
    "MalformedResponseError",
    "Message",
    "ModelError",
    "ModelFileError",
    "ModelJudge",
    "ModelLadder",
    "ModelNode",
    "ModelNotFoundError",
    "ModelResponse",
    "PIIFilter",
    "RegexPolicy",
    "RemoteConfig",
    "RemoteModel",
    "RemoteModelError",
    "ResponsePlan",
    "ResumeError",
    "RunLeasedError",
    "RetryPolicy",
    "RunError",
    "RunResult",
    "RunStopped",
    "PostgresRunStore",
    "RayExecutor",
    "RunStore",
    "Runner",
    "Sampling",
    "SchemaVersionError",
    "ScriptError",
    "SecretsFilter",
    "ServerUnreachableError",
    "StepReview",
    "StepSignals",
    "Store",
    "StoreError",
    "StreamCutError",
    "Subject",
    "TextFilter",
    "TierDecision",
    "TokenLogprob",
    "Tool",
    "ToolCall",
    "ToolChoice",
    "ToolDetectorOverride",
    "ToolError",
    "ToolNode",
    "ToolSpec",
    "Usage",
    "Verdict",
    "__version__",
    "events",
    "get_model",
    "list_models",
    "load_tier",
    "print_summary",
    "open_store",
    "pull_model",
    "resolve_model",
    "schema_tool",
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
