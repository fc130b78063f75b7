"""Models: the chat-model protocol, the llama.cpp backend and the catalog of GGUF files.

This is the only part of agentkit that talks to llama.cpp, and it does so lazily:
importing it (or ``agentkit``) loads no native library. ``get_model`` and
``LlamaCppModel`` load llama-cpp-python on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._batching import BatchConfig, BatchStats
from ._catalog import list_models, pull_model, resolve_model
from ._config import LlamaConfig
from ._messages import Decision, Message, ModelResponse, TokenLogprob, ToolCall, ToolSpec, Usage
from ._protocol import ChatModel, Sampling, TokenCallback, ToolChoice
from ._registry import get_model, load_tier
from ._template import parse_tool_calls

if TYPE_CHECKING:
    from ._http import RemoteConfig
    from ._llama import LlamaCppModel
    from ._llama_tools import LlamaServer, llama_tool
    from ._openai import RemoteModel
    from ._server import ServerInfo

__all__ = [
    "BatchConfig",
    "BatchStats",
    "ChatModel",
    "Decision",
    "LlamaConfig",
    "LlamaCppModel",
    "LlamaServer",
    "Message",
    "ModelResponse",
    "RemoteConfig",
    "RemoteModel",
    "Sampling",
    "ServerInfo",
    "TokenCallback",
    "TokenLogprob",
    "ToolCall",
    "ToolChoice",
    "ToolSpec",
    "Usage",
    "get_model",
    "list_models",
    "llama_tool",
    "load_tier",
    "parse_tool_calls",
    "pull_model",
    "resolve_model",
]


_LAZY = {
    "RemoteConfig": "._http",
    "RemoteModel": "._openai",
    "ServerInfo": "._server",
    "LlamaServer": "._llama_tools",
    "llama_tool": "._llama_tools",
}
"""Names whose modules import httpx, loaded when first asked for (a fifth of a second)."""


def __getattr__(name: str) -> Any:
    # LlamaCppModel's module imports llama-cpp-python, which takes a while and installs
    # a process-wide log hook: load it only when someone asks for the class.
    if name == "LlamaCppModel":
        from ._llama import LlamaCppModel

        return LlamaCppModel
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
