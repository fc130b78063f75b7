"""TokenHistory: a prompt that repeats a remembered turn gets that turn's exact tokens."""

from __future__ import annotations

from agentkit.models._messages import Message, ModelResponse, ToolCall, ToolSpec
from agentkit.models._template import ChatRenderer, verbatim
from agentkit.models._token_history import TokenHistory


def _chars(text: str) -> list[int]:
    return [ord(c) for c in text]


def _words(text: str) -> list[int]:
    return [-len(w) for w in text.split(" ")]  # a different spelling of the same text


def test_a_remembered_start_keeps_its_tokens_and_the_rest_is_tokenized() -> None:
    h = TokenHistory()
    h.remember("prompt|reply", [1, 2, 3])
    assert h.tokenize("prompt|reply|next", _words, _chars) == [1, 2, 3, *_chars("|next")]
    assert h.tokenize("prompt|reply", _words, _chars) == [1, 2, 3]


def test_the_longest_remembered_start_wins_and_others_fall_back() -> None:
    h = TokenHistory()
    h.remember("ab", [1])
    h.remember("abcd", [2])
    assert h.tokenize("abcdef", _words, _chars) == [2, *_chars("ef")]
    assert h.tokenize("abx", _words, _chars) == [1, *_chars("x")]
    assert h.tokenize("zzz", _words, _chars) == _words("zzz")


def test_least_recently_used_entries_go_first() -> None:
    h = TokenHistory(limit=2)
    h.remember("a", [1])
    h.remember("b", [2])
    h.tokenize("a!", _words, _chars)  # uses "a": "b" is now the oldest
    h.remember("c", [3])
    assert len(h) == 2
    assert h.tokenize("b!", _words, _chars) == _words("b!")
    assert h.tokenize("a!", _words, _chars)[0] == 1


def test_nothing_is_remembered_when_disabled_or_empty() -> None:
    h = TokenHistory(limit=0)
    h.remember("a", [1])
    TokenHistory().remember("", [1])
    assert len(h) == 0 and h.tokenize("a", _words, _chars) == _words("a")


_CALL = ToolCall(name="add", arguments={"a": 1, "b": 2})


def _turn(raw: str, calls: tuple[ToolCall, ...] = (_CALL,), content: str = "") -> Message:
    response = ModelResponse(content=content, tool_calls=calls, raw_text=raw)
    return response.as_message()


def test_a_call_turn_renders_as_written_while_it_still_holds_its_calls() -> None:
    bare = '{"name": "add", "arguments": {"a": 1, "b": 2}}'
    fenced = f"```json\n{bare}\n```"
    for raw in (bare, fenced):
        assert verbatim(_turn(raw)) == raw
    # changed after generation: repaired arguments, another call, prose taken out
    assert verbatim(_turn(bare, (ToolCall(name="add", arguments={"a": 1, "b": 3}),))) is None
    assert verbatim(_turn(bare, (_CALL, _CALL))) is None
    assert verbatim(_turn(f"Sure.\n{fenced}", content="")) is None
    assert _turn("plain answer", calls=()).raw is None  # answers render as their content


def test_the_chatml_fallback_and_native_templates_both_use_the_written_text() -> None:
    raw = '```json\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n```'
    messages = [Message.user("1+2?"), _turn(raw), Message.tool(_CALL, "3")]
    spec = ToolSpec(name="add", description="add", parameters={"type": "object"})
    assert raw in ChatRenderer(None).render(messages, [spec])
    qwen_like = (
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}"
        "{% for c in m.tool_calls or [] %}<tool_call>{{ c.function.name }}</tool_call>"
        "{% endfor %}<|im_end|>\n{% endfor %}{% if tools %}{% endif %}<|im_start|>assistant\n"
    )
    rendered = ChatRenderer(qwen_like).render(messages, [spec])
    assert raw in rendered and "<tool_call>add</tool_call>" not in rendered
