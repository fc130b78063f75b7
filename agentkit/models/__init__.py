"""Models: the chat-model protocol, the llama.cpp backend and the catalog of GGUF files.

This is the only part of agentkit that talks to llama.cpp, and it does so lazily:
importing it (or ``agentkit``) loads no native library. ``get_model`` and
``LlamaCppModel`` load llama-cpp-python on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._catalog import list_models, pull_model, resolve_model
from ._config import LlamaConfig
from ._messages import Message, ModelResponse, TokenLogprob, ToolCall, ToolSpec, Usage
from ._protocol import ChatModel, Sampling, TokenCallback
from ._registry import get_model

if TYPE_CHECKING:
    from ._llama import LlamaCppModel

__all__ = [
    "ChatModel",
    "LlamaConfig",
    "LlamaCppModel",
    "Message",
    "ModelResponse",
    "Sampling",
    "TokenCallback",
    "TokenLogprob",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "get_model",
    "list_models",
    "pull_model",
    "resolve_model",
]


def __getattr__(name: str) -> Any:
    # LlamaCppModel's module imports llama-cpp-python, which takes a while and installs
    # a process-wide log hook: load it only when someone asks for the class.
    if name == "LlamaCppModel":
        from ._llama import LlamaCppModel

        return LlamaCppModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
