"""The @tool decorator: schemas from hints and docstrings, validation, rendering."""

from __future__ import annotations

import asyncio
from typing import Literal

import pytest
from pydantic import BaseModel

from agentkit import ConfigError, Tool, tool
from agentkit.runtime._tools import ToolArgumentsError, trim


@tool
def convert(amount: float, unit: Literal["km", "mi"] = "km", digits: int = 2) -> str:
    """Convert a distance.

    Args:
        amount: the distance to convert
        unit: the unit the amount is in
        digits: how many decimals to keep
    """
    factor = 1.609344 if unit == "mi" else 1 / 1.609344
    return f"{amount * factor:.{digits}f}"


def test_schema_from_hints_and_docstring() -> None:
    spec = convert.spec
    assert spec.name == "convert"
    assert spec.description == "Convert a distance."
    props = spec.parameters["properties"]
    assert props["amount"] == {"type": "number", "description": "the distance to convert"}
    assert props["unit"]["enum"] == ["km", "mi"]
    assert props["unit"]["default"] == "km"
    assert spec.parameters["required"] == ["amount"]


def test_validation_feedback_names_the_field() -> None:
    with pytest.raises(ToolArgumentsError) as info:
        convert.validate({"amount": "far", "unit": "yd"})
    assert "amount" in info.value.feedback and "unit" in info.value.feedback


def test_unknown_arguments_are_rejected() -> None:
    with pytest.raises(ToolArgumentsError, match="colour: unexpected argument; allowed: amount"):
        convert.validate({"amount": 1, "colour": "red"})
    with pytest.raises(ToolArgumentsError, match="amount: required argument is missing"):
        convert.validate({})


async def test_sync_and_async_tools_run() -> None:
    @tool
    async def slow_echo(text: str) -> str:
        """Echo text after a pause."""
        await asyncio.sleep(0)
        return text

    assert await convert.ainvoke({"amount": 10, "unit": "mi"}) == "16.09"
    assert await slow_echo.ainvoke({"text": "hi"}) == "hi"


def test_render_trims_and_serialises() -> None:
    class Point(BaseModel):
        x: int

    t = Tool(lambda: None, name="noop", description="Nothing.", max_output_chars=100)
    assert t.render(Point(x=1)) == '{"x":1}'
    assert t.render({"a": [1, 2]}) == '{"a": [1, 2]}'
    long = t.render("x" * 1000)
    assert len(long) < 200 and "characters cut" in long


def test_trim_keeps_head_and_tail() -> None:
    text = "HEAD" + "." * 5000 + "TAIL"
    out = trim(text, 300)
    assert out.startswith("HEAD") and out.endswith("TAIL") and len(out) < 400


def test_problems_are_collected_not_raised() -> None:
    def bad(*args: int) -> int:
        return 0

    t = Tool(bad, name="bad name")
    assert len(t.problems) >= 3  # name, description, *args
    with pytest.raises(ConfigError):
        _ = t.spec


def test_direct_call_is_plain_python() -> None:
    assert convert(1.0, "km", 1) == "0.6"
