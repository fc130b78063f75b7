"""agentkit: an agent runtime for cheap small-model loops on local GGUF models.

The public API is exactly ``__all__`` (plus the public subpackages: ``agentkit.models``,
``runtime``, ``detection``, ``ladder``, ``store``, ``events``, ``filters``, ``cli``,
``testing``, ``tools`` and ``tui``); everything in ``_``-modules is internal. docs/ARCHITECTURE.md
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
    LeaseLostError,
    MalformedResponseError,
    ModelError,
    ModelFileError,
    ModelNotFoundError,
    RemoteModelError,
    ResumeError,
    RunError,
    RunLeasedError,
    RunStopped,
    SchemaVersionError,
    ScriptError,
    ServerUnreachableError,
    StoreError,
    StreamCutError,
    ToolError,
)
from .cli import ConsoleProgress, print_summary
from .detection import DetectorConfig, ResponsePlan, ToolDetectorOverride
from .events import Event
from .filters import (
    Filter,
    FunctionFilter,
    InjectionScreen,
    JSONSchemaGuard,
    ModelJudge,
    PIIFilter,
    RegexPolicy,
    SecretsFilter,
    Subject,
    TextFilter,
    Verdict,
)
from .ladder import DefaultPolicy, LadderPolicy, ModelLadder, StepReview, StepSignals, TierDecision
from .models import (
    BatchConfig,
    BatchStats,
    ChatModel,
    LlamaConfig,
    Message,
    ModelResponse,
    Sampling,
    TokenLogprob,
    ToolCall,
    ToolChoice,
    ToolSpec,
    Usage,
    get_model,
    list_models,
    load_tier,
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
    schema_tool,
    tool,
)
from .runtime._ray import RayExecutor
from .store import RunStore, Store, open_store

if TYPE_CHECKING:
    from .models import LlamaCppModel, RemoteConfig, RemoteModel
    from .store import PostgresRunStore

__version__ = "0.1.0"

__all__ = [
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
    "LeaseLostError",
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
    "PostgresRunStore",
    "RayExecutor",
    "RegexPolicy",
    "RemoteConfig",
    "RemoteModel",
    "RemoteModelError",
    "ResponsePlan",
    "ResumeError",
    "RetryPolicy",
    "RunError",
    "RunLeasedError",
    "RunResult",
    "RunStopped",
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
    "open_store",
    "print_summary",
    "pull_model",
    "resolve_model",
    "schema_tool",
    "tool",
]


def __getattr__(name: str) -> Any:
    # The llama.cpp backend loads on first use, not with ``import agentkit``.
    if name == "LlamaCppModel":
        from .models import LlamaCppModel

        return LlamaCppModel
    if name in ("RemoteConfig", "RemoteModel"):  # httpx loads with them, on first use
        from . import models

        return getattr(models, name)
    if name == "PostgresRunStore":  # psycopg loads with it, on first use
        from . import store

        return store.PostgresRunStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
