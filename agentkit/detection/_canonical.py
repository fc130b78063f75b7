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

__all__ = [
    "StepObservation",
    "ToolCallLike",
    "canonical_arguments",
    "normalise_error",
    "normalise_result",
    "normalise_same_call_error",
]

ToolCallLike = ToolCall | tuple[str, Mapping[str, Any]]
"""A call as the executor has it: a ToolCall, or a ``(name, arguments)`` pair."""

_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_UNITS = r"(?:ns|us|µs|ms|s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?)"
# Parts of a text that change between two runs of the very same call and say nothing
# about its outcome: the clock, process and request ids, addresses, timings.
_VOLATILE = (
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<id>"),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<addr>"),
    (re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{8,}\b", re.I), "<id>"),
    # ISO dates with a time, times of day, Unix timestamps in seconds or milliseconds.
    (
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
            r"(?:Z|[+-]\d{2}:?\d{2}|\b)"
        ),
        "<time>",
    ),
    (re.compile(r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b"), "<time>"),
    (re.compile(r"\b1\d{9}(?:\d{3})?(?:\.\d+)?\b"), "<time>"),
    # Measured durations (0.53 s, 120 ms); whole seconds and minutes stay, since a
    # countdown ("ETA 3 min") or a sleep ("slept 5 s") is content.
    (re.compile(rf"\b\d+\.\d+\s?{_UNITS}\b|\b\d+\s?(?:ns|us|µs|ms)\b"), "<took>"),
    (re.compile(r"\b(pid|tid|thread|process)([ =:#]+)\d+\b", re.I), r"\1\2#"),
)
# Labelled ids in results: "created ticket #42", "order id 1183", "request_id=77".
_RESULT_IDS = re.compile(r"(#|\b(?:[a-z0-9]+[_-])?id\b[ =:#]*)\d+\b", re.I)
# Numbers that say where in a text an error is: different places, different errors.
_POSITION = re.compile(
    r"(?:\b(?:line|lines|ln|col|column|row|pos|position|offset|char|character|byte)s?"
    r"[ =:#]*|\.\w{1,8}:|\d:)$",
    re.I,
)
_ANY_NUMBER = re.compile(r"\d+(?:\.\d+)?")


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


def _volatile(text: str) -> str:
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def normalise_error(text: str) -> str:
    """Error text with ids, addresses, clock times, timings and pids blanked, whitespace
    collapsed. Other numbers stay: "line 12" and "line 913" are different errors."""
    return " ".join(_volatile(text).split())


def normalise_result(text: str) -> str:
    """A tool result as the step detectors compare it: whitespace collapsed and what the
    same call would change anyway (clock times, uuids, labelled ids like "#42") blanked."""
    return " ".join(_RESULT_IDS.sub(r"\1<n>", _volatile(text)).split())


def normalise_same_call_error(text: str) -> str:
    """An error as compared between runs of one identical call: every number blanked (a
    retry counter, "attempt 3 of 5") except those that say where it is (line, column)."""

    def blank(match: re.Match[str]) -> str:
        before = match.string[max(0, match.start() - 12) : match.start()]
        return match.group(0) if _POSITION.search(before) else "#"

    return _ANY_NUMBER.sub(blank, normalise_error(text))
