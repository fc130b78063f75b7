"""Getting the answer out of a model that already has it.

A small model that has its result often keeps calling: the same finished call again, or
the tool on that tool's own result (``calculator("100.55")`` after it returned 100.55).
Running such a call again buys nothing, and escalating to a larger model only to repeat
the answer that is already in the conversation costs a cold prompt on a big model. So
the turn is redone with tools switched off for it (``tool_choice="none"``: the tools stay
in the prompt, so the cached prefix is the same, but the grammar allows only text), after
a short note of what the model already has.

The runtime's own notes to the model are user messages named ``agentkit``; they never
leak into an answer (``clean_answer``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Sequence

from ..detection._canonical import canonical_arguments
from ..models._messages import Message, ModelResponse, ToolCall

__all__ = ["RUNTIME_NAME", "clean_answer", "pointless_calls", "runtime_note", "what_is_known"]

RUNTIME_NAME = "agentkit"
"""The ``name`` of the runtime's own messages to the model."""
_OLD_PREFIX = "[agentkit]"


def runtime_note(text: str) -> Message:
    """A note from the runtime to the model."""
    return Message(role="user", content=text, name=RUNTIME_NAME)


def _results(messages: Sequence[Message]) -> dict[str, list[tuple[ToolCall, str]]]:
    """Finished, successful calls of the conversation by canonical key, with their results."""
    calls: dict[str, ToolCall] = {}
    for m in messages:
        if m.role == "assistant":
            for c in m.tool_calls:
                calls[c.id] = c
    done: dict[str, list[tuple[ToolCall, str]]] = {}
    for m in messages:
        if m.role == "tool" and m.tool_call_id in calls and not m.content.startswith("Error"):
            call = calls[m.tool_call_id]
            done.setdefault(_key(call), []).append((call, m.content))
    return done


def _key(call: ToolCall) -> str:
    return f"{call.name}:{canonical_arguments(call.arguments)}"


def _same_value(value: object, result: str) -> bool:
    """Whether an argument value is a tool result passed back in (numbers compared as such)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return False
    text, res = str(value).strip(), result.strip()
    if not text or not res:
        return False
    if text == res:
        return True
    try:
        a, b = float(text.replace(",", "")), float(res.replace(",", ""))
    except ValueError:
        return False
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def pointless_calls(
    response: ModelResponse, messages: Sequence[Message], deterministic: Collection[str] = ()
) -> str | None:
    """Why every call of this turn adds nothing (None when at least one may be new).

    A call adds nothing when its result is already known: the same call (same tool, same
    canonical arguments) succeeded before and the tool is ``deterministic``, or it returned
    the same result twice already (a tool whose results change, such as a poll, is left
    alone until then); or its only argument is a result the same tool returned before
    (the model feeding a tool its own answer).
    """
    if not response.tool_calls:
        return None
    done = _results(messages)
    reasons = []
    for call in response.tool_calls:
        previous = [result for _, result in done.get(_key(call), [])]
        same_twice = len(previous) >= 2 and previous[-1] == previous[-2]
        if previous and (call.name in deterministic or same_twice):
            reasons.append(f"{call.name} was already called with these arguments")
            continue
        echoed = _echoed(call, done)
        if echoed is None:
            return None
        reasons.append(f"{call.name} was called on its own result {echoed[:40]}")
    return "; ".join(dict.fromkeys(reasons))


def _echoed(call: ToolCall, done: dict[str, list[tuple[ToolCall, str]]]) -> str | None:
    """The earlier result of the same tool that is this call's only argument, if any."""
    if len(call.arguments) != 1:
        return None
    (value,) = call.arguments.values()
    for calls in done.values():
        for prior, result in calls:
            if prior.name == call.name and _same_value(value, result):
                return result.strip()
    return None


def what_is_known(messages: Sequence[Message], limit: int = 3) -> str:
    """The latest successful results, as the note before an answer-now turn names them."""
    done = [calls[-1] for calls in _results(messages).values()][-limit:]
    parts = [f"{call.name} returned {' '.join(result.split())[:200]}" for call, result in done]
    return "; ".join(parts)


def clean_answer(text: str, messages: Sequence[Message]) -> str:
    """The answer without anything the runtime said to the model."""
    notes = [m.content for m in messages if m.name == RUNTIME_NAME and m.content.strip()]
    cleaned = text
    for note in sorted(set(notes), key=len, reverse=True):
        cleaned = cleaned.replace(note, "")
    cleaned = re.sub(re.escape(_OLD_PREFIX) + r"\s*", "", cleaned)
    return cleaned.strip()
