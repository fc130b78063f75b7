"""agentkit: an agent runtime for cheap small-model loops on local GGUF models.

The public API is exactly ``__all__``; everything in ``_``-modules is internal.
"""

from __future__ import annotations

from ._agent import Agent
from ._catalog import list_models, pull_model, resolve_model
from ._console import ConsoleProgress, print_summary
from ._detect import DetectorConfig, ResponsePlan, ToolDetectorOverride
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
from ._events import Event
from ._executor import Runner
from ._graph import (
    END,
    AgentState,
    CompiledGraph,
    FunctionNode,
    Graph,
    ModelNode,
    RetryPolicy,
    ToolNode,
)
from ._ladder import DefaultPolicy, LadderPolicy, ModelLadder, StepSignals, TierDecision
from ._llama import LlamaConfig, LlamaCppModel, get_model
from ._messages import Message, ModelResponse, TokenLogprob, ToolCall, ToolSpec, Usage
from ._model import ChatModel, Sampling
from ._run import RunResult
from ._store import RunStore
from ._tools import Tool, tool

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
    "get_model",
    "list_models",
    "print_summary",
    "pull_model",
    "resolve_model",
    "tool",
]
