"""The GBNF builder: every schema shape compiles in llama.cpp, and (with a real
tokenizer, integration) the grammar accepts exactly the calls and texts it should."""

from __future__ import annotations

import ctypes
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from enum import Enum
from typing import Annotated, Any, Literal

import llama_cpp
import pytest
from pydantic import BaseModel, Field

from agentkit._errors import ModelNotFoundError
from agentkit.models._catalog import resolve_model
from agentkit.models._grammar import (
    GrammarLimits,
    gbnf_literal,
    json_schema_grammar,
    tool_call_grammar,
)
from agentkit.models._messages import ToolSpec
from agentkit.models._native import grammar_compiles as _grammar_compiles
from agentkit.runtime._tools import tool


class Color(str, Enum):
    red = "red"
    green = "green"


class Point(BaseModel):
    x: float
    y: float
    label: str | None = None


class Node(BaseModel):
    value: int
    children: list[Node] = []


class Shapes(BaseModel):
    """Most of what pydantic emits for tool signatures, in one model."""

    name: str
    count: int = 3
    ratio: float | None = None
    flag: bool = False
    mode: Literal["fast", "slow"] = "fast"
    color: Color = Color.red
    tags: list[str] = []
    short: Annotated[str, Field(min_length=2, max_length=5)] = "ab"
    few: Annotated[list[int], Field(min_length=1, max_length=3)] = [1]
    pair: tuple[int, str] = (1, "a")
    scores: dict[str, int] = {}
    anything: Any = None
    when: dt.date | None = None
    stamp: dt.datetime | None = None
    ident: uuid.UUID | None = None
    point: Point | None = None
    tree: Node | None = None
    nothing: None = None


SCHEMAS: dict[str, dict[str, Any]] = {
    "shapes": Shapes.model_json_schema(),
    "empty-object": {"type": "object", "properties": {}},
    "free-object": {"type": "object"},
    "true": {},
    "type-list": {"type": ["string", "null"]},
    "const": {"const": {"a": [1, "x"]}},
    "enum-mixed": {"enum": ["a", 1, None, True]},
    "allof-ref": {
        "$defs": {"P": {"type": "object", "properties": {"x": {"type": "integer"}}}},
        "type": "object",
        "properties": {"p": {"allOf": [{"$ref": "#/$defs/P"}], "description": "d"}},
    },
    "unresolvable-ref": {"$ref": "#/$defs/Missing"},
    "odd-names": {
        "type": "object",
        "properties": {'a b"c\\d': {"type": "string"}, "über_ß": {"type": "integer"}},
        "required": ['a b"c\\d'],
    },
    "array-no-items": {"type": "array", "maxItems": 0},
    "oneof": {"oneOf": [{"type": "integer"}, {"type": "array", "items": {"type": "string"}}]},
}


@pytest.mark.parametrize("key", sorted(SCHEMAS))
def test_json_schema_grammar_compiles(key: str) -> None:
    grammar = json_schema_grammar(SCHEMAS[key])
    assert grammar.startswith("root ::= ")
    assert _grammar_compiles(grammar), grammar


def test_tool_call_grammar_compiles_for_many_tools() -> None:
    specs = [
        ToolSpec(name=f"tool_{key.replace('-', '_')}", parameters=schema)
        for key, schema in SCHEMAS.items()
        if schema.get("type") == "object" or "properties" in schema
    ]
    specs.append(ToolSpec(name="no_args"))
    for allow_text in (True, False):
        grammar = tool_call_grammar(specs, allow_text=allow_text)
        assert _grammar_compiles(grammar), grammar
        assert ("text ::=" in grammar) is allow_text


def test_broken_grammar_is_detected_without_a_model() -> None:
    assert not _grammar_compiles("root ::= undefined-rule")


def test_rule_names_are_valid_gbnf_identifiers() -> None:
    grammar = tool_call_grammar(
        [ToolSpec(name="snake_case_tool", parameters=Shapes.model_json_schema())]
    )
    for line in grammar.splitlines():
        name = line.split(" ::= ")[0]
        assert name.replace("-", "").isalnum(), name


def test_lengths_are_capped() -> None:
    grammar = json_schema_grammar(
        {"type": "array", "items": {"type": "string"}}, GrammarLimits(max_string=50, max_items=4)
    )
    assert "char{0,50}" in grammar
    assert "{0,3}" in grammar  # the first item plus at most three more
    assert "*" not in grammar.replace(".*", "")  # no unbounded repetition anywhere
    capped = json_schema_grammar({"type": "string", "maxLength": 10**6})
    assert "char{0,1000}" in capped


def test_schema_bounds_are_kept_inside_the_caps() -> None:
    grammar = json_schema_grammar(Shapes.model_json_schema())
    assert "char{2,5}" in grammar
    assert "{0,2}" in grammar  # few: 1 to 3 items


def test_gbnf_literal_escapes() -> None:
    assert gbnf_literal('a"b\\c\nd\x01') == '"a\\"b\\\\c\\nd\\x01"'


def test_requires_tools() -> None:
    with pytest.raises(ValueError):
        tool_call_grammar([])


# -- acceptance, checked by llama.cpp's own grammar engine with a real tokenizer ------


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def convert(value: float, unit: Literal["celsius", "kelvin"] = "celsius") -> str:
    """Convert a temperature."""
    return ""


@tool
def ship(recipient: str, to: Point, express: bool = False, note: str | None = None) -> str:
    """Ship a package."""
    return ""


@tool
def average(numbers: Annotated[list[float], Field(max_length=4)]) -> float:
    """Average numbers."""
    return 0.0


SPECS = [add.spec, convert.spec, ship.spec, average.spec]


class Checker:
    """Feeds text token by token through a llama.cpp grammar sampler."""

    def __init__(self, llm: llama_cpp.Llama) -> None:
        self.llm = llm
        self.vocab = llm._model.vocab

    def _allowed(self, sampler: Any, token: int) -> bool:
        one = (llama_cpp.llama_token_data * 1)()
        one[0].id = llama_cpp.llama_token(token)
        one[0].logit = 1.0
        array = llama_cpp.llama_token_data_array(data=one, size=1, selected=-1, sorted=False)
        llama_cpp.llama_sampler_apply(sampler, ctypes.byref(array))
        return bool(one[0].logit > float("-inf"))

    def accepts(self, grammar: str, text: str) -> bool:
        sampler = llama_cpp.llama_sampler_init_grammar(self.vocab, grammar.encode(), b"root")
        assert sampler, grammar
        try:
            for token in self.llm.tokenize(text.encode(), add_bos=False, special=False):
                if not self._allowed(sampler, token):
                    return False
                llama_cpp.llama_sampler_accept(sampler, token)
            return self._allowed(sampler, self.llm.token_eos())  # complete here?
        finally:
            llama_cpp.llama_sampler_free(sampler)


@pytest.fixture(scope="module")
def checker() -> Iterator[Checker]:
    try:
        path = resolve_model("smollm2-135m-instruct", pull=False)
    except ModelNotFoundError as exc:
        pytest.skip(f"{exc} (needed for its tokenizer)")
    llm = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
    yield Checker(llm)
    llm.close()


def _call(name: str, arguments: dict[str, Any]) -> str:
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


ACCEPTED = [
    _call("add", {"a": 1, "b": -20}),
    _call("add", {"a": 1, "b": 2}) + "\n" + _call("convert", {"value": 1.5e3}),
    _call("convert", {"value": -0.5, "unit": "kelvin"}),
    _call("ship", {"recipient": 'Ann \\"Q\\"', "to": {"x": 1, "y": 2.5, "label": None}}),
    _call("ship", {"recipient": "B", "to": {"x": 0, "y": 0}, "note": "fragile"}),
    _call("average", {"numbers": [1, 2.5, 3, 4]}),
    _call("average", {"numbers": []}),
    '{"name": "add", "arguments": {"a": 1, "b": 2}}',
    '```json\n{\n  "name": "add",\n  "arguments": {"a": 1, "b": 2}\n}\n```',
    "The answer is 5.",
    "<b>bold</b> is fine",
    '{"result": 5}',
    "```python\nprint(1)\n```",
    "Ünïcode answer ✓",
]
REJECTED = [
    _call("subtract", {"a": 1, "b": 2}),  # unknown tool
    _call("add", {"a": 1}),  # missing required argument
    _call("add", {"a": "1", "b": 2}),  # wrong type
    _call("add", {"a": 1, "b": 2, "c": 3}),  # extra argument
    _call("add", {"a": 1.5, "b": 2}),  # not an integer
    _call("convert", {"value": 1, "unit": "fahrenheit"}),  # not in the enum
    _call("ship", {"recipient": "B", "to": {"x": 0}}),  # nested required field missing
    _call("average", {"numbers": [1, 2, 3, 4, 5]}),  # over maxItems
    _call("add", {"b": 2, "a": 1}),  # out of schema order (a documented limitation)
    _call("add", {"a": 1, "b": 2}) + " and more text",
    '{"name": "joke", "arguments": {}}',  # bare JSON call of an unknown tool
    " leading space",
    "\n<tool_call>",
    "",
]


@pytest.mark.integration
@pytest.mark.parametrize("text", ACCEPTED)
def test_grammar_accepts(checker: Checker, text: str) -> None:
    assert checker.accepts(tool_call_grammar(SPECS), text)


@pytest.mark.integration
@pytest.mark.parametrize("text", REJECTED)
def test_grammar_rejects(checker: Checker, text: str) -> None:
    assert not checker.accepts(tool_call_grammar(SPECS), text)


@pytest.mark.integration
def test_required_choice_rejects_text(checker: Checker) -> None:
    grammar = tool_call_grammar(SPECS, allow_text=False)
    assert not checker.accepts(grammar, "The answer is 5.")
    assert checker.accepts(grammar, _call("add", {"a": 1, "b": 2}))


@pytest.mark.integration
def test_string_and_call_caps(checker: Checker) -> None:
    limits = GrammarLimits(max_string=20, max_calls=2)
    grammar = tool_call_grammar([ship.spec, add.spec], limits=limits)
    ok = _call("ship", {"recipient": "x" * 20, "to": {"x": 1, "y": 1}})
    assert checker.accepts(grammar, ok)
    assert not checker.accepts(grammar, ok.replace("x" * 20, "x" * 21))
    one = _call("add", {"a": 1, "b": 2})
    assert checker.accepts(grammar, f"{one}\n{one}")
    assert not checker.accepts(grammar, f"{one}\n{one}\n{one}")


@pytest.mark.integration
@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ({"value": 1, "children": [{"value": 2, "children": []}]}, True),
        ({"value": 1}, True),
        ({"value": 1, "children": [{"children": []}]}, False),
    ],
)
def test_recursive_ref(checker: Checker, value: dict[str, Any], ok: bool) -> None:
    grammar = json_schema_grammar(Node.model_json_schema())
    assert checker.accepts(grammar, json.dumps(value)) is ok


@pytest.mark.integration
@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ('"2024-02-29"', True),
        ('"2024-13-01"', False),
        ('"24-01-01"', False),
    ],
)
def test_date_format(checker: Checker, value: str, ok: bool) -> None:
    assert checker.accepts(json_schema_grammar({"type": "string", "format": "date"}), value) is ok
