"""Getting the answer out of a real small model: answer now, several calls, declining.

Each case runs the cached qwen2.5-coder-0.5b with greedy decoding, so it is the same on
every run of the same build.
"""

from __future__ import annotations

import sys
from pathlib import Path

from agentkit import (
    Agent,
    AgentState,
    Message,
    RunStore,
    Sampling,
    Tool,
    ToolCall,
    ToolChoice,
    ToolSpec,
    get_model,
)
from agentkit.models import Decision, ModelResponse
from agentkit.runtime._answer_now import runtime_note
from agentkit.tools import calculator

QWEN = "qwen2.5-coder-0.5b-instruct"
GREEDY = Sampling(temperature=0.0, seed=0, max_tokens=160)
WEATHER = ToolSpec(
    name="get_weather",
    description="The current weather in one city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string", "description": "the city's name"}},
        "required": ["city"],
    },
)
PLAN = ToolChoice(plan="first")


def test_answer_now_turn_is_text_with_the_result() -> None:
    model = get_model(QWEN)
    call = ToolCall(name="calculator", arguments={"expression": "5*2.40 + 2*34.90 + 3*6.25"})
    messages = [
        Message.user(
            "What is the total of 5 notebooks at 2.40, 2 bags at 34.90 and 3 pens at 6.25?"
        ),
        Message.assistant("", (call,)),
        Message.tool(call, "100.55"),
        runtime_note(
            "You already have what you need (calculator returned 100.55). Do not call a "
            "tool again: reply now with your final answer."
        ),
    ]
    response: ModelResponse = model.complete(
        messages, tools=[calculator.spec], sampling=GREEDY, tool_choice="none"
    )
    assert not response.tool_calls
    assert "100.55" in response.content
    assert "<tool_call>" not in response.raw_text and '{"name"' not in response.raw_text


def test_the_demo_finishes_on_the_small_model(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
    try:
        import demo
    finally:
        sys.path.pop(0)
    agent = demo.build_agent(QWEN, db=str(tmp_path / "runs.db"))
    result = agent.run(demo.TASK)
    assert result.ok, result.summary()
    assert demo.states_total(result.answer), result.summary()
    assert result.model_steps <= 4, result.summary()


def _plan(question: str, choice: ToolChoice = PLAN) -> tuple[ModelResponse, Decision]:
    response = get_model(QWEN).complete(
        [Message.user(question)], tools=[WEATHER], sampling=GREEDY, tool_choice=choice
    )
    plan = response.decisions[0]
    assert plan.kind == "plan" and plan.several is not None, response
    return response, plan


TWO_CITIES = "What is the weather in Boston and what is the weather in Paris?"
POEM = "Write a two-line poem about autumn leaves."


def test_the_plan_question_points_the_right_way() -> None:
    # The 0.5B's answer to "how many calls?" is weak (it says 1 to both), but its
    # probabilities rank the requests correctly: more "several" for two cities, more
    # "none" for a poem. Thresholds fitted on recorded runs act on exactly this signal.
    _, cities = _plan(TWO_CITIES)
    _, poem = _plan(POEM)
    assert cities.several is not None and poem.several is not None
    assert cities.several > poem.several, (cities, poem)
    assert 1 - poem.probability > 1 - cities.probability, (cities, poem)  # P(no call)


def test_several_calls_in_one_turn() -> None:
    # A plan of several calls makes the grammar ask for a call per item asked for.
    eager = PLAN.model_copy(update={"several_threshold": 0.0})
    response, plan = _plan(TWO_CITIES, eager)
    cities = sorted(c.arguments.get("city", "") for c in response.tool_calls)
    assert plan.calls is not None and plan.calls >= 2, plan
    assert len(response.tool_calls) == 2, response
    assert cities[0].startswith("Boston") and cities[1].startswith("Paris"), cities


def test_declines_when_the_plan_says_no_tool_fits(tmp_path: Path) -> None:
    weather = Tool.from_schema(
        name=WEATHER.name,
        description=WEATHER.description,
        parameters=WEATHER.parameters,
        fn=lambda city: f"sunny in {city}",
    )
    # no_call_threshold=0.23: below this request's P(no call), above the two-city one's
    # (the ranking test above); the run must then answer in words and call nothing.
    choice = PLAN.model_copy(update={"no_call_threshold": 0.23})
    agent: Agent[AgentState] = Agent(
        get_model(QWEN),
        tools=[weather],
        store=RunStore(tmp_path / "runs.db"),
        sampling=GREEDY,
        tool_choice=choice,
    )
    result = agent.run(POEM)
    assert result.ok and result.tool_calls == 0, result.summary()
    assert result.answer and len(result.answer) > 10
    called = [e for _, e in agent.store.events(result.run_id) if e.type == "model_called"]
    plan = called[0].decisions[0]  # type: ignore[union-attr]
    assert plan["kind"] == "plan" and plan["calls"] == 0
    _, cities = _plan(TWO_CITIES, choice)
    assert cities.calls != 0, cities  # the same threshold still calls for the weather
