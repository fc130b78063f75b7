"""Keep a conversation inside the model's context window, deterministically.

When the prompt nears the window, the oldest exchanges after the task are folded into
one summary message. The head (system and task) is kept as it is and the summary is
rebuilt only when needed again, so the prompt prefix stays byte-stable for many steps
afterwards and llama.cpp keeps reusing its KV cache. Condensing goes down to a fraction
of the budget, not just under it, so it happens rarely.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..models._messages import Message
from ._tools import trim

SUMMARY_PREFIX = "[Earlier steps, condensed to fit the context window]"
TokenCounter = Callable[[Sequence[Message]], int]


@dataclass(frozen=True)
class Condensed:
    messages: list[Message]
    tokens_before: int
    tokens_after: int
    folded: int


def _head_length(messages: Sequence[Message]) -> int:
    """System messages and the first user message (the task) are never folded."""
    i = 0
    while i < len(messages) and messages[i].role == "system":
        i += 1
    if i < len(messages) and messages[i].role == "user":
        i += 1
    if i < len(messages) and messages[i].content.startswith(SUMMARY_PREFIX):
        i += 1
    return i


def _line(message: Message, width: int) -> str:
    if message.role == "assistant":
        parts = []
        if message.content.strip():
            parts.append(f"said: {_flat(message.content, width)}")
        for call in message.tool_calls:
            parts.append(f"called {call.name}({_flat(str(call.arguments), width // 2)})")
        return "- " + "; ".join(parts) if parts else "- (empty reply)"
    if message.role == "tool":
        return f"  -> {message.name or 'tool'}: {_flat(message.content, width)}"
    return f"- {message.role}: {_flat(message.content, width)}"


def _flat(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _split_tail(messages: Sequence[Message], keep: int) -> int:
    """Index where the kept tail starts, never between a call and its results."""
    start = max(0, len(messages) - keep)
    while 0 < start < len(messages) and messages[start].role == "tool":
        start -= 1
    return start


def condense(
    messages: Sequence[Message],
    count: TokenCounter,
    budget: int,
    *,
    target: float = 0.6,
) -> Condensed | None:
    """Fold old exchanges so ``count(messages) <= budget * target`` where possible.

    Returns None when the messages already fit ``budget``. Tries to keep as many recent
    messages verbatim as it can, and summary lines as wide as it can.
    """
    before = count(messages)
    if before <= budget:
        return None
    goal = int(budget * target)
    head_len = _head_length(messages)
    head = list(messages[:head_len])
    old_lines: list[str] = []
    if head and head[-1].content.startswith(SUMMARY_PREFIX):
        old_lines = head.pop().content[len(SUMMARY_PREFIX) :].strip().splitlines()
    body = list(messages[head_len:])
    best: list[Message] = list(messages)
    best_tokens = before
    folded = 0
    done = False
    for keep in range(len(body) - 1, -1, -1):
        start = _split_tail(body, keep)
        old, tail = body[:start], body[start:]
        for width in _WIDTHS:
            lines = _cap_lines([*old_lines, *(_line(m, width) for m in old)])
            summary = Message.user(SUMMARY_PREFIX + "\n" + "\n".join(lines))
            candidate = [*head, summary, *tail]
            tokens = count(candidate)
            if tokens < best_tokens:
                best, best_tokens, folded = candidate, tokens, len(old)
            if tokens <= goal:
                done = True
                break
        if done:
            break
    if best_tokens > budget:
        best, best_tokens = _trim_contents(best, count, budget)
    return Condensed(best, before, best_tokens, folded)


_WIDTHS = (160, 80, 40)
_MAX_SUMMARY_LINES = 60


def _cap_lines(lines: list[str]) -> list[str]:
    """Keep the first and the most recent summary lines when there are too many."""
    if len(lines) <= _MAX_SUMMARY_LINES:
        return lines
    first, last = lines[:10], lines[-(_MAX_SUMMARY_LINES - 11) :]
    return [*first, f"- ... {len(lines) - len(first) - len(last)} more lines omitted ...", *last]


def _trim_contents(
    messages: list[Message], count: TokenCounter, budget: int
) -> tuple[list[Message], int]:
    """Last resort: cut long message bodies, largest first, until the prompt fits."""
    current = list(messages)
    tokens = count(current)
    limit = 2000
    while tokens > budget and limit >= 100:
        current = [
            m.model_copy(update={"content": trim(m.content, limit)})
            if len(m.content) > limit
            else m
            for m in current
        ]
        tokens = count(current)
        limit //= 2
    return current, tokens
