"""Call markup in text meant as an answer, and calls written in free text."""

from __future__ import annotations

import pytest

from agentkit.models import ToolCall, ToolSpec
from agentkit.models._markup import embedded_calls, looks_like_markup
from agentkit.models._template import schema_problems

ADD = ToolSpec(
    name="add",
    parameters={
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
        "additionalProperties": False,
    },
)


@pytest.mark.parametrize(
    ("text", "markup"),
    [
        ('{"name": "add", "arguments": {"a": 1}}', True),
        ('> {"name": "add", "arguments": {"a": 1}}', True),
        ('```json\n{"name": "add", "parameters": {}}\n```', True),
        ("<tool_call>\nanything", True),
        ("<tool_response>\n4\n</tool_response>", True),
        ('```json\n{"total": 5}\n```', False),  # an answer asked for as JSON
        ("The total is 5.", False),
        ('She said {"name": "Ann"} twice', False),
        # what the 0.5B wrote when the text grammar kept it from opening with '{"name"'
        ('{"name}: get_weather", "arguments": {"city": "London"}}', True),
        ('{"name": "Ann", "age": 3}', False),
    ],
)
def test_what_counts_as_markup(text: str, markup: bool) -> None:
    assert looks_like_markup(text) is markup


def test_calls_behind_stray_characters_are_read() -> None:
    rest, calls = embedded_calls('> {"name": "add", "arguments": {"a": 1, "b": 2}} ok', ["add"])
    assert [(c.name, c.arguments) for c in calls] == [("add", {"a": 1, "b": 2})]
    assert rest.startswith(">") and rest.endswith("ok") and "add" not in rest
    assert embedded_calls('{"name": "sub", "arguments": {}}', ["add"])[1] == []


def test_schema_problems_name_what_breaks() -> None:
    good = ToolCall(name="add", arguments={"a": 1, "b": 2})
    extra = ToolCall(name="add", arguments={"a": 1, "b": 2, "c": 3})
    wrong = ToolCall(name="add", arguments={"a": "one", "b": 2})
    assert schema_problems([good], [ADD]) == []
    assert "c" in schema_problems([extra], [ADD])[0]
    assert "one" in schema_problems([wrong], [ADD])[0]
    assert schema_problems([ToolCall(name="nope")], [ADD]) == ["nope: no such tool"]
