"""agentkit: an agent runtime for cheap small-model loops on local GGUF models.

The public API is exactly ``__all__`` (plus the public subpackages: ``agentkit.models``,
``runtime``, ``detection``, ``ladder``, ``store``, ``events``, ``cli``, ``testing``,
``tools`` and ``tui``); everything in ``_``-modules is internal. docs/ARCHITECTURE.md
shows how the parts fit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import events
from ._errors import (
    AgentkitError,
    ChecksumError,
    ConfigError,
    ContextOverflowError,
    DownloadError,
    ModelError,
    ModelFileError,
    ModelNotFoundError,
    ResumeError,
    RunError,
    RunStopped,
    SchemaVersionError,
    ScriptError,
    StoreError,
    ToolError,
)
from .cli import ConsoleProgress, print_summary
from .detection import DetectorConfig, ResponsePlan, ToolDetectorOverride
from .events import Event
from .ladder import DefaultPolicy, LadderPolicy, ModelLadder, StepReview, StepSignals, TierDecision
from .models import (
    ChatModel,
    LlamaConfig,
    Message,
    ModelResponse,
    Sampling,
    TokenLogprob,
    ToolCall,
    ToolSpec,
    Usage,
    get_model,
    list_models,
    pull_model,
    resolve_model,
)
from .runtime import (
    END,
    Agent,
    AgentState,
    CompiledGraph,
    FunctionNode,
    Graph,
    ModelNode,
    RetryPolicy,
    Runner,
    RunResult,
    Tool,
    ToolNode,
    tool,
)
from .store import RunStore

if TYPE_CHECKING:
    from .models import LlamaCppModel

__version__ = "0.1.0"

__all__ = [
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
]


def __getattr__(name: str) -> Any:
    # The llama.cpp backend loads on first use, not with ``import agentkit``.
    if name == "LlamaCppModel":
        from .models import LlamaCppModel

        return LlamaCppModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
