"""llama.cpp's process-wide pieces: its log hook, and grammar checks that need no model.

llama.cpp logs through one process-wide callback. The recent lines are kept (to quote in
errors) and echoed only once a verbose model was loaded. Importing this module imports
llama-cpp-python and installs the hook; only the backend modules import it.
"""

from __future__ import annotations

import ctypes
import sys
from collections import deque
from typing import Any

import llama_cpp

__all__ = ["clear_log", "echo_log", "grammar_compiles", "recent_log"]

_log_tail: deque[str] = deque(maxlen=30)
_echo: list[bool] = []


def _on_log(level: int, text: bytes, user_data: Any) -> None:
    line = text.decode("utf-8", errors="replace")
    _log_tail.append(line)
    if _echo:
        sys.stderr.write(line)


# The CFUNCTYPE object must outlive every call llama.cpp makes through it.
_log_callback = llama_cpp.llama_log_callback(_on_log)
llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))


def echo_log() -> None:
    """Show llama.cpp's logging on stderr from now on (a verbose model was loaded)."""
    if not _echo:
        _echo.append(True)


def clear_log() -> None:
    _log_tail.clear()


def recent_log(limit: int = 4) -> str:
    """What llama.cpp last said, preferring its error lines over its progress chatter."""
    lines = [ln.strip() for ln in "".join(_log_tail).splitlines() if ln.strip()]
    errors = [ln for ln in lines if any(w in ln.lower() for w in ("error", "fail", "invalid"))]
    return " | ".join((errors or lines)[-limit:])


def grammar_compiles(grammar: str) -> bool:
    """Parse a grammar with llama.cpp itself (no model needed) without using it."""
    sampler = llama_cpp.llama_sampler_init_grammar(None, grammar.encode("utf-8"), b"root")
    if not sampler:
        return False
    llama_cpp.llama_sampler_free(sampler)
    return True
