"""Condensing keeps prompts inside the window and the prefix stable."""

from __future__ import annotations

from collections.abc import Sequence

from agentkit.models._messages import Message, ToolCall
from agentkit.runtime._condense import SUMMARY_PREFIX, condense


def count(messages: Sequence[Message]) -> int:
    return sum(len(m.content) // 4 + 4 + 10 * len(m.tool_calls) for m in messages)


def conversation(turns: int) -> list[Message]:
    out = [Message.system("You are careful."), Message.user("Sum the files.")]
    for i in range(turns):
        call = ToolCall(name="read_file", arguments={"path": f"f{i}.txt"}, id=f"c{i}")
        out.append(Message.assistant("", (call,)))
        out.append(Message.tool(call, f"contents of file {i}: " + "x" * 400))
    return out


def test_fits_already_returns_none() -> None:
    assert condense(conversation(2), count, 10_000) is None


def test_condenses_old_steps_keeps_head_and_recent_tail() -> None:
    msgs = conversation(20)
    result = condense(msgs, count, budget=1200)
    assert result is not None
    assert result.tokens_after <= 1200 * 0.6
    assert result.messages[:2] == msgs[:2]
    summary = result.messages[2]
    assert summary.content.startswith(SUMMARY_PREFIX)
    assert "read_file" in summary.content
    assert result.messages[-1] == msgs[-1]
    # a tool result is never separated from the call it answers
    first_kept = result.messages[3]
    assert first_kept.role == "assistant"


def test_prefix_is_stable_after_condensing() -> None:
    msgs = conversation(20)
    first = condense(msgs, count, budget=1200)
    assert first is not None
    grown = [*first.messages, *conversation(21)[-2:]]
    assert condense(grown, count, budget=1200) is None  # appended steps do not re-condense


def test_deterministic() -> None:
    a = condense(conversation(15), count, budget=900)
    b = condense(conversation(15), count, budget=900)
    assert a is not None and b is not None and a.messages == b.messages


def test_second_condensation_extends_the_summary() -> None:
    first = condense(conversation(20), count, budget=1200)
    assert first is not None
    msgs = list(first.messages)
    for i in range(30, 40):
        call = ToolCall(name="read_file", arguments={"path": f"g{i}"}, id=f"g{i}")
        msgs += [Message.assistant("", (call,)), Message.tool(call, "y" * 400)]
    second = condense(msgs, count, budget=1200)
    assert second is not None
    summaries = [m for m in second.messages if m.content.startswith(SUMMARY_PREFIX)]
    assert len(summaries) == 1
    assert "f0.txt" in summaries[0].content and "g30" in summaries[0].content


def test_oversized_single_message_is_trimmed() -> None:
    msgs = [Message.user("task"), Message.assistant("z" * 40_000)]
    result = condense(msgs, count, budget=800)
    assert result is not None and result.tokens_after <= 800
