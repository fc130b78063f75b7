"""What the step detectors compare: observations of steps, and canonical forms of calls
and errors, equal for things that mean the same."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from ..models._messages import ToolCall

__all__ = ["StepObservation", "ToolCallLike", "canonical_arguments", "normalise_error"]

ToolCallLike = ToolCall | tuple[str, Mapping[str, Any]]
"""A call as the executor has it: a ToolCall, or a ``(name, arguments)`` pair."""

_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_ERROR_IDS = (
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<id>"),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<addr>"),
    (re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{8,}\b", re.I), "<id>"),
    # Timings, ports, pids and line numbers change between identical failures; small
    # numbers are kept because they often name different things (file_1, file_2).
    (re.compile(r"\b\d+\.\d+\b|\b\d{3,}\b"), "#"),
)


@dataclass(frozen=True)
class StepObservation:
    """What one model step did, as the loop detector sees it."""

    index: int
    """The step's number in the run; strikes name steps by it."""
    tool_calls: tuple[ToolCallLike, ...] = ()
    results: tuple[tuple[str, bool], ...] = ()
    """``(text, is_error)`` per call, aligned with ``tool_calls``; missing ones count as
    calls that produced nothing."""
    content: str = ""
    """The assistant's text."""
    is_empty: bool = False
    """Set where the executor judged the reply empty; a step with no calls and blank text
    is empty anyway."""


def canonical_arguments(arguments: Mapping[str, Any], volatile: Collection[str] = ()) -> str:
    """A stable text form of call arguments, equal for calls that mean the same thing.

    Keys are sorted, top-level ``volatile`` names dropped, numbers normalised (1, 1.0 and
    "1" agree), single-line strings trimmed and whitespace-collapsed. Multi-line strings
    keep their inner whitespace (file contents, where indentation matters) and lose only
    trailing spaces per line and blank edges.
    """
    kept = {str(k): v for k, v in arguments.items() if str(k) not in volatile}
    return json.dumps(
        _canonical_value(kept), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def _canonical_value(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value):
            return int(value)  # also folds -0.0 into 0
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        if "\n" in value:
            return "\n".join(line.rstrip() for line in value.strip("\n").split("\n")).strip()
        text = " ".join(value.split())
        if _NUMBER.fullmatch(text):
            number = float(text) if any(ch in text for ch in ".eE") else int(text)
            return _canonical_value(number)
        return text
    if isinstance(value, Mapping):
        return {str(k): _canonical_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical_value(v) for v in value]
    return str(value)


def normalise_error(text: str) -> str:
    """Error text with ids, addresses, timings and long numbers blanked, whitespace collapsed."""
    for pattern, replacement in _ERROR_IDS:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())
