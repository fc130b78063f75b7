"""The process-wide registry of loaded GGUF models: each file is loaded once and shared.

Importing this module does not import llama.cpp; ``get_model`` does, on its first load.
"""

from __future__ import annotations

import atexit
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ._catalog import resolve_model
from ._config import LlamaConfig

if TYPE_CHECKING:
    from ._llama import LlamaCppModel
    from ._openai import RemoteModel
    from ._protocol import ChatModel

__all__ = ["display_name", "forget", "get_model", "load_tier"]


def display_name(name_or_path: str | os.PathLike[str], path: Path) -> str:
    text = os.fspath(name_or_path)
    if isinstance(name_or_path, str) and os.sep not in text and not text.endswith(".gguf"):
        return text.strip().lower()  # a catalog name
    return path.stem


# -- the shared registry ------------------------------------------------------------------

_registry: dict[tuple[Path, LlamaConfig], LlamaCppModel] = {}
_registry_lock = threading.Lock()
_loading: dict[tuple[Path, LlamaConfig], threading.Lock] = {}
_hooked: list[bool] = []


def get_model(
    name_or_path: str | os.PathLike[str], config: LlamaConfig | None = None
) -> LlamaCppModel:
    """The process-wide shared model for a name or path, loading it on first use.

    Each file (with one config) is loaded once; concurrent first calls wait for the
    same load instead of loading twice.
    """
    config = config or LlamaConfig()
    path = resolve_model(name_or_path)
    key = (path, config)
    with _registry_lock:
        model = _registry.get(key)
        if model is not None:
            return model
        gate = _loading.setdefault(key, threading.Lock())
    with gate:
        with _registry_lock:
            model = _registry.get(key)
        if model is None:
            from ._llama import load_llama  # llama.cpp loads here, on first use

            model = load_llama(path, config, display_name(name_or_path, path))
            with _registry_lock:
                if not _registry and not _hooked:
                    atexit.register(close_all)
                    _hooked.append(True)
                _registry[key] = model
                _loading.pop(key, None)
    return model


_remote: dict[str, RemoteModel] = {}


def load_tier(spec: str | os.PathLike[str]) -> ChatModel:
    """A ladder tier from its spec: the default loader of ``ModelLadder``.

    ``"http://host:port/v1#model"`` is a model on an OpenAI-compatible server (one
    ``RemoteModel`` per spec, shared like a loaded file); anything else is a catalog name
    or a .gguf path, loaded in process by ``get_model``.
    """
    text = os.fspath(spec)
    if isinstance(spec, str) and text.strip().lower().startswith(("http://", "https://")):
        from ._openai import RemoteModel  # httpx loads here, on first use

        with _registry_lock:
            model = _remote.get(text.strip())
            if model is None:
                model = _remote[text.strip()] = RemoteModel.from_spec(text)
        return model
    return get_model(spec)


def forget(model: LlamaCppModel) -> None:
    """Drop a closed model from the registry, so the next ``get_model`` loads it again."""
    with _registry_lock:
        for key in [k for k, v in _registry.items() if v is model]:
            del _registry[key]


def close_all() -> None:
    """Free every loaded model now (also at interpreter exit, before llama.cpp's own
    module is torn down under the models that still use it)."""
    with _registry_lock:
        models = list(_registry.values())
    for model in models:
        model.close()
