"""Tools defined by a JSON schema, through the whole Agent loop on the scripted model:
valid and invalid arguments, dotted names, nested schemas, anyOf, defaults, timeouts,
the loop detectors, and one naming rule for every kind of tool."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest

from agentkit import (
    Agent,
    ConfigError,
    DetectorConfig,
    ResponsePlan,
    RunStore,
    Tool,
    ToolError,
    ToolSpec,
    schema_tool,
    tool,
)
from agentkit.models._grammar import tool_call_grammar
from agentkit.models._native import grammar_compiles
from agentkit.runtime import ToolArgumentsError
from agentkit.testing import ScriptedModel, call, calls, reply

FACTORIAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "FactorialArguments",
    "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 20, "title": "N"}},
    "required": ["n"],
}

factorial = Tool.from_schema(
    name="math.factorial",
    description="The factorial of a whole number from 0 to 20.",
    parameters=FACTORIAL_SCHEMA,
    fn=lambda n: math.factorial(n),
)

ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "customer": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "tier": {"enum": ["basic", "gold"], "default": "basic"},
            },
            "required": ["name"],
        },
        "items": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{3}$"},
                    "quantity": {"type": "integer", "minimum": 1, "default": 1},
                },
                "required": ["sku"],
            },
        },
        "gift_note": {"type": "string", "maxLength": 40},
        "express": {"type": "boolean", "default": False},
    },
    "required": ["customer", "items"],
}


def event_types(store: RunStore, run_id: str) -> list[str]:
    return [e.type for _, e in store.events(run_id)]


def test_a_valid_call_runs_and_is_recorded(store: RunStore) -> None:
    model = ScriptedModel([call("math.factorial", n=5), reply("5! is 120.")])
    with model:
        result = Agent(model, tools=[factorial], store=store).run("What is 5 factorial?")
    assert result.ok and result.answer == "5! is 120."
    tool_step = store.steps(result.run_id)[1]
    assert tool_step.tool_calls[0]["name"] == "math.factorial"
    assert tool_step.tool_calls[0]["result"] == "120"
    assert model.requests[1][-1].role == "tool" and model.requests[1][-1].content == "120"


def test_the_model_sees_the_schema_without_titles() -> None:
    seen: list[ToolSpec] = []

    def capture(_: Any, tools: Any) -> bool:
        seen.extend(tools)
        return True

    turn = reply("ok")
    model = ScriptedModel([type(turn)(turn.respond, expect=capture)])
    with model:
        Agent(model, tools=[factorial]).run("hi")
    assert seen[0].name == "math.factorial"
    assert seen[0].parameters == {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 20}},
        "required": ["n"],
    }
    assert FACTORIAL_SCHEMA["title"] == "FactorialArguments"  # the caller's schema is untouched


def test_invalid_arguments_go_back_with_the_schema_rule(store: RunStore) -> None:
    model = ScriptedModel(
        [call("math.factorial", n=-3), call("math.factorial", n=3), reply("3! is 6.")]
    )
    with model:
        result = Agent(model, tools=[factorial], store=store).run("3!")
    assert result.ok
    feedback = model.requests[1][-1].content
    assert "invalid call, not executed" in feedback
    assert "n: -3 is less than the minimum of 0" in feedback
    assert event_types(store, result.run_id).count("tool_arguments_rejected") == 1
    assert store.steps(result.run_id)[1].tool_calls[0]["result"] == "6"


def test_invalid_arguments_after_the_retries_become_an_error_observation(store: RunStore) -> None:
    model = ScriptedModel(
        [call("math.factorial", n="five"), call("math.factorial", n=21), reply("no idea")]
    )
    with model:
        result = Agent(model, tools=[factorial], store=store, argument_retries=1).run("?")
    observation = store.steps(result.run_id)[1].tool_calls[0]
    assert observation["is_error"]
    assert "invalid arguments: n: 21 is greater than the maximum of 20" in observation["result"]


def test_unknown_and_missing_arguments_are_named() -> None:
    with pytest.raises(ToolArgumentsError) as info:
        factorial.validate({"m": 3})
    assert info.value.feedback == (
        "m: unexpected argument; allowed: n; n: required argument is missing"
    )


def test_a_nested_schema_is_validated_deep_and_defaults_are_filled(store: RunStore) -> None:
    received: list[dict[str, Any]] = []

    @schema_tool(name="orders.place", description="Place an order.", parameters=ORDER_SCHEMA)
    def place(**order: Any) -> str:
        received.append(order)
        return f"order for {order['customer']['name']} placed"

    bad = {
        "customer": {"name": ""},
        "items": [{"sku": "pen-1"}, {"sku": "PEN-001", "quantity": 0}],
        "colour": "red",
    }
    good = {"customer": {"name": "Ada"}, "items": [{"sku": "PEN-001"}, {"sku": "INK-002"}]}
    model = ScriptedModel([call("orders.place", **bad), call("orders.place", **good), reply("ok")])
    with model:
        result = Agent(model, tools=[place], store=store).run("order pens")
    assert result.ok
    feedback = model.requests[1][-1].content
    for expected in (
        "colour: unexpected argument; allowed: customer, items, gift_note, express",
        "customer.name: '' should be non-empty",
        "items.0.sku: 'pen-1' does not match '^[A-Z]{3}-[0-9]{3}$'",
        "items.1.quantity: 0 is less than the minimum of 1",
    ):
        assert expected in feedback, feedback
    assert received == [
        {
            "customer": {"name": "Ada", "tier": "basic"},
            "items": [{"sku": "PEN-001", "quantity": 1}, {"sku": "INK-002", "quantity": 1}],
            "express": False,
        }
    ]
    # What the store records is the call the model made, not the filled-in arguments.
    assert store.steps(result.run_id)[1].tool_calls[0]["arguments"] == good


def test_a_pydantic_schema_with_refs_is_followed_for_checks_and_defaults() -> None:
    from pydantic import BaseModel

    class Line(BaseModel):
        sku: str
        quantity: int = 1

    class Basket(BaseModel):
        lines: list[Line]
        coupon: str | None = None

    seen: list[dict[str, Any]] = []
    basket = Tool.from_schema(
        name="basket.add",
        description="Add lines to the basket.",
        parameters=Basket.model_json_schema(),
        fn=lambda **kw: seen.append(kw) or "added",
    )
    assert basket.problems == [] and "$defs" in basket.spec.parameters
    assert grammar_compiles(tool_call_grammar([basket.spec]))
    with pytest.raises(ToolArgumentsError, match=r"lines\.0\.quantity: 'two' is not of type"):
        basket.validate({"lines": [{"sku": "A", "quantity": "two"}]})
    assert asyncio.run(basket.ainvoke({"lines": [{"sku": "A"}]})) == "added"
    assert seen == [{"lines": [{"sku": "A", "quantity": 1}], "coupon": None}]


def test_any_of_accepts_each_form_and_explains_a_miss(store: RunStore) -> None:
    schema = {
        "type": "object",
        "properties": {
            "when": {
                "anyOf": [
                    {"type": "string", "format": "date"},
                    {"type": "integer", "minimum": 0, "description": "days from today"},
                    {"type": "null"},
                ]
            }
        },
        "required": ["when"],
    }
    seen: list[Any] = []
    remind = Tool.from_schema(
        name="calendar.remind",
        description="Set a reminder.",
        parameters=schema,
        fn=lambda when: seen.append(when) or "set",
    )
    model = ScriptedModel(
        [
            calls(("calendar.remind", {"when": "2025-03-01"}), ("calendar.remind", {"when": 3})),
            call("calendar.remind", when=None),
            call("calendar.remind", when=[1]),
            call("calendar.remind", when=-1),
            reply("done"),
        ]
    )
    with model:
        result = Agent(model, tools=[remind], store=store, argument_retries=2).run("remind me")
    assert sorted(map(str, seen)) == ["2025-03-01", "3", "None"]
    rejected = [e for _, e in store.events(result.run_id) if e.type == "tool_arguments_rejected"]
    assert [e.feedback.split(" (")[0] for e in rejected] == [
        "when: matches none of the allowed forms"
    ] * 2


def test_async_schema_tools_and_their_timeout(store: RunStore) -> None:
    async def lookup(city: str) -> str:
        await asyncio.sleep(0 if city == "Oslo" else 30)
        return f"{city}: 4 degrees"

    weather = Tool.from_schema(
        name="weather.now",
        description="Current weather of a city.",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}},
        fn=lookup,
        timeout=0.1,
    )
    assert weather.is_async
    model = ScriptedModel(
        [calls(("weather.now", {"city": "Oslo"}), ("weather.now", {"city": "Atlantis"})), "ok"]
    )
    with model:
        result = Agent(model, tools=[weather], store=store).run("weather?")
    results = [c["result"] for c in store.steps(result.run_id)[1].tool_calls]
    assert results[0] == "Oslo: 4 degrees"
    assert "did not finish within 0.1 s" in results[1]


def test_a_schema_tool_repeating_itself_trips_the_loop_detector(store: RunStore) -> None:
    def fetch(url: str) -> str:
        raise ToolError(f"{url} is not reachable")

    page = Tool.from_schema(
        name="web.fetch",
        description="Fetch a page.",
        parameters={"type": "object", "properties": {"url": {"type": "string"}}},
        fn=fetch,
    )
    model = ScriptedModel([call("web.fetch", url="http://example.test")] * 6)
    agent = Agent(model, tools=[page], store=store, responses=ResponsePlan(sequence=("stop",)))
    result = agent.run("read the page")
    assert result.status == "stopped" and result.exit_code == 4
    assert len(model.requests) < 6  # stopped by the detector, not by the end of the script
    assert "detector_strike" in event_types(store, result.run_id)


def test_volatile_args_are_ignored_by_the_loop_detector(store: RunStore) -> None:
    def make(volatile: set[str]) -> Tool:
        return Tool.from_schema(
            name="jobs.poll",
            description="Check on a job.",
            parameters={
                "type": "object",
                "properties": {"job": {"type": "string"}, "why": {"type": "string"}},
            },
            fn=lambda job, why="": "still running",
            volatile_args=volatile,
        )

    script = [call("jobs.poll", job="j1", why=f"attempt {i}") for i in range(4)] + ["gave up"]
    plain = DetectorConfig(volatile_fields=frozenset())
    stop = ResponsePlan(sequence=("stop",))
    varied = ScriptedModel(script)
    with varied:
        result = Agent(varied, tools=[make(set())], store=store, detectors=plain).run("poll")
    assert result.ok  # each call differs in "why", so nothing repeats
    same = ScriptedModel(script)
    agent = Agent(same, tools=[make({"why"})], store=store, detectors=plain, responses=stop)
    result = agent.run("poll")
    assert result.status == "stopped"  # with "why" volatile, it is one call four times


def test_openai_function_specs_become_tools_directly() -> None:
    spec = {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "The time in a time zone.",
            "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
        },
    }
    t = Tool.from_schema(**spec["function"], fn=lambda zone="UTC": f"12:00 {zone}")
    assert t.problems == [] and t.spec.name == "get_time"
    assert not t.deterministic and not t.idempotent
    flagged = schema_tool(name="f", description="F.", idempotent=True, deterministic=True)(print)
    assert flagged.deterministic and flagged.idempotent
    assert asyncio.run(t.ainvoke({})) == "12:00 UTC"
    assert Tool.from_schema(
        name="ping", description="Ping.", fn=lambda: "pong"
    ).spec.parameters == {
        "type": "object",
        "properties": {},
    }


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({"type": "array", "items": {"type": "string"}}, "must describe an object"),
        ({"type": "object", "properties": {"a": {"type": "text"}}}, "not a valid JSON Schema"),
        ({"properties": {"a": {"type": "string"}}, "required": ["b"]}, "required names 'b'"),
    ],
)
def test_unusable_schemas_are_refused_at_build_time(
    parameters: dict[str, Any], expected: str
) -> None:
    bad = Tool.from_schema(name="bad", description="Bad.", parameters=parameters, fn=print)
    with pytest.raises(ConfigError) as info:
        Agent(ScriptedModel([]), tools=[bad])
    assert len(info.value.problems) == 1 and expected in info.value.problems[0]


# -- names -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["math.factorial", "get-weather", "_private", "v2.search_docs"])
def test_one_name_rule_accepts_what_common_apis_accept(name: str) -> None:
    @tool(name=name)
    def decorated(x: int) -> int:
        """Echo."""
        return x

    assert decorated.problems == []
    assert Tool.from_schema(name=name, description="d.", fn=print).problems == []
    assert ToolSpec(name=name).name == name


@pytest.mark.parametrize("name", ["two words", ".hidden", "-dash", "x" * 65, "a/b", "ü"])
def test_one_name_rule_refuses_the_same_names_everywhere(name: str) -> None:
    @tool(name=name)
    def decorated(x: int) -> int:
        """Echo."""
        return x

    schema = Tool.from_schema(name=name, description="d.", fn=print)
    with pytest.raises(ConfigError) as info:
        ToolSpec(name=name)
    assert decorated.problems[0] == schema.problems[0] == str(info.value)
    assert "not allowed" in str(info.value) and "math.factorial" in str(info.value)


def test_an_empty_name_is_refused_where_nothing_can_stand_in_for_it() -> None:
    # (the decorator falls back to the function's name instead)
    assert "not allowed" in Tool.from_schema(name="", description="d.", fn=print).problems[0]
    with pytest.raises(ConfigError, match="not allowed"):
        ToolSpec(name="")


def test_dotted_names_get_distinct_valid_grammar_rules() -> None:
    specs = [
        factorial.spec,
        Tool.from_schema(
            name="math_factorial", description="d.", parameters=FACTORIAL_SCHEMA, fn=print
        ).spec,
        Tool.from_schema(
            name="orders.place", description="d.", parameters=ORDER_SCHEMA, fn=print
        ).spec,
    ]
    grammar = tool_call_grammar(specs)
    assert grammar_compiles(grammar), grammar
    assert '"\\"math.factorial\\","' in grammar and '"\\"math_factorial\\","' in grammar
    names = [line.split(" ::= ")[0] for line in grammar.splitlines()]
    assert len(names) == len(set(names))
    assert all(n.replace("-", "").isalnum() for n in names)


def test_the_real_chat_template_renders_dotted_names_and_calls() -> None:
    from agentkit._errors import ModelNotFoundError
    from agentkit.models._catalog import resolve_model
    from agentkit.models._gguf import inspect_gguf
    from agentkit.models._messages import Message, ToolCall
    from agentkit.models._template import ChatRenderer, parse_tool_calls

    try:
        path = resolve_model("qwen2.5-coder-0.5b-instruct", pull=False)
    except ModelNotFoundError as exc:
        pytest.skip(str(exc))
    info = inspect_gguf(Path(path))
    renderer = ChatRenderer(info.chat_template, eos_token="<|im_end|>")
    first = ToolCall(name="math.factorial", arguments={"n": 5}, id="call_1")
    messages = [Message.user("5!"), Message.assistant("", (first,)), Message.tool(first, "120")]
    prompt = renderer.render(messages, [factorial.spec])
    assert renderer.mode(messages, [factorial.spec]) == "native"
    assert '"name": "math.factorial"' in prompt
    assert '{"name": "math.factorial", "arguments": {"n": 5}}' in prompt
    reply_text = '<tool_call>\n{"name": "math.factorial", "arguments": {"n": 6}}\n</tool_call>'
    parsed = parse_tool_calls(reply_text, ["math.factorial"])
    assert [(c.name, c.arguments) for c in parsed[1]] == [("math.factorial", {"n": 6})]


# -- problems are reported once, and say what to write ------------------------------------


def test_agent_lists_each_tool_problem_once() -> None:
    def no_docs(count) -> int:  # type: ignore[no-untyped-def]
        return 0

    with pytest.raises(ConfigError) as info:
        Agent(ScriptedModel([]), tools=[Tool(no_docs)])
    problems = info.value.problems
    assert len(problems) == len(set(problems)) == 2, problems
    assert any("annotate it (for example `count: str`)" in p for p in problems), problems
