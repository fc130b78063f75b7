"""Getting the answer out: calls that add nothing are not run; the model answers instead."""

from __future__ import annotations

import pytest

from agentkit import Agent, DetectorConfig, ResponsePlan, RunStore, ScriptError, Tool, tool
from agentkit.models import Message, ModelResponse, ToolCall
from agentkit.runtime._answer_now import clean_answer, pointless_calls, runtime_note
from agentkit.testing import ScriptedModel, call, reply

RUNS: list[str] = []


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first addend
        b: the second addend
    """
    RUNS.append(f"add({a},{b})")
    return a + b


def _calc(expression: str) -> str:
    """Evaluate an arithmetic expression.

    Args:
        expression: the expression, for example 2+3
    """
    RUNS.append(f"calc({expression})")
    return str(eval(expression, {"__builtins__": {}}))  # test input only


calc = Tool(_calc, name="calc", deterministic=True)
STATUS = iter(())


@tool
def poll(job: int) -> str:
    """Status of a job.

    Args:
        job: the job's number
    """
    RUNS.append(f"poll({job})")
    return next(STATUS)


@pytest.fixture(autouse=True)
def _fresh() -> None:
    RUNS.clear()


def events(store: RunStore, run_id: str, kind: str) -> list[object]:
    return [e for _, e in store.events(run_id) if e.type == kind]


def test_a_repeated_deterministic_call_is_answered_not_run(store: RunStore) -> None:
    model = ScriptedModel(
        [call("calc", expression="2+3"), call("calc", expression="2+3"), reply("5")]
    )
    with model:
        result = Agent(model, tools=[calc], store=store).run("What is 2+3?")
    assert result.ok and result.answer == "5"
    assert RUNS == ["calc(2+3)"]
    assert model.tool_choices == ["auto", "auto", "none"]
    asked = events(store, result.run_id, "answer_requested")
    assert len(asked) == 1 and "already called" in asked[0].reason  # type: ignore[attr-defined]
    assert asked[0].tool_calls[0]["name"] == "calc"  # type: ignore[attr-defined]
    # the model was told what it has, by a runtime note
    note = model.requests[-1][-1]
    assert note.name == "agentkit" and "calc returned 5" in note.content


def test_a_tool_fed_its_own_result_is_not_run(store: RunStore) -> None:
    model = ScriptedModel(
        [call("calc", expression="4*5"), call("calc", expression="20"), reply("The answer is 20")]
    )
    with model:
        result = Agent(model, tools=[calc], store=store).run("4 times 5?")
    assert RUNS == ["calc(4*5)"]
    asked = events(store, result.run_id, "answer_requested")
    assert "own result 20" in asked[0].reason  # type: ignore[attr-defined]
    assert result.answer == "The answer is 20"


def test_a_poll_is_repeated_until_it_returns_the_same_thing_twice(store: RunStore) -> None:
    global STATUS
    STATUS = iter(["running", "running", "done"])
    model = ScriptedModel([call("poll", job=1)] * 3 + [reply("still running")])
    with model:
        result = Agent(model, tools=[poll], store=store).run("Is job 1 done?")
    # Two identical results of a non-deterministic tool: the third poll is not run.
    assert RUNS == ["poll(1)", "poll(1)"]
    assert model.tool_choices[-1] == "none" and result.ok


def test_polling_that_makes_progress_is_left_alone(store: RunStore) -> None:
    global STATUS
    STATUS = iter(["queued", "running", "done"])
    model = ScriptedModel([call("poll", job=1)] * 3 + [reply("done")])
    with model:
        result = Agent(model, tools=[poll], store=store).run("Wait for job 1.")
    assert RUNS == ["poll(1)"] * 3
    assert "none" not in model.tool_choices and result.answer == "done"


def test_a_call_written_as_text_is_read_as_the_call(store: RunStore) -> None:
    model = ScriptedModel(
        [reply('> {"name": "add", "arguments": {"a": 1, "b": 2}}'), reply("The sum is 3.")]
    )
    with model:
        result = Agent(model, tools=[add], store=store).run("1+2?")
    assert RUNS == ["add(1,2)"] and result.ok and result.answer == "The sum is 3."


def test_markup_that_is_no_call_is_asked_again_and_never_succeeds(store: RunStore) -> None:
    junk = "<tool_call>\n{broken\n</tool_call>"
    model = ScriptedModel([reply(junk), reply(junk), reply(junk)])
    with model:
        result = Agent(model, tools=[add], store=store).run("1+2?")
    assert model.tool_choices == ["auto", "none", "none"]
    assert result.status == "failed" and result.exit_code == 1
    assert result.error is not None and "markup" in result.error


def test_the_runtime_note_never_leaks_into_the_answer(store: RunStore) -> None:
    def parrot(messages: list[Message], tools: object) -> ModelResponse:
        return ModelResponse(content=f"{messages[-1].content} 5")

    from agentkit.testing import Turn

    model = ScriptedModel(
        [call("calc", expression="2+3"), call("calc", expression="2+3"), Turn(parrot)]
    )
    with model:
        result = Agent(model, tools=[calc], store=store).run("2+3?")
    assert result.answer == "5"


def test_a_reply_that_only_copies_the_note_is_asked_again(store: RunStore) -> None:
    # The 0.5B answered a held-out chore with the answer-now note word for word; the run
    # "succeeded" with the runtime's own words as its answer.
    def parrot(messages: list[Message], tools: object) -> ModelResponse:
        return ModelResponse(content=messages[-1].content)

    from agentkit.testing import Turn

    model = ScriptedModel(
        [
            call("calc", expression="2+3"),
            call("calc", expression="2+3"),
            Turn(parrot),
            reply("5"),
        ]
    )
    with model:
        result = Agent(model, tools=[calc], store=store).run("2+3?")
    assert model.tool_choices == ["auto", "auto", "none", "none"]
    assert result.ok and result.answer == "5"


def test_a_run_whose_last_reply_only_copies_notes_has_no_answer(store: RunStore) -> None:
    def parrot(messages: list[Message], tools: object) -> ModelResponse:
        return ModelResponse(content=messages[-1].content)

    from agentkit.testing import Turn

    model = ScriptedModel(
        [call("calc", expression="2+3"), call("calc", expression="2+3"), Turn(parrot), Turn(parrot)]
    )
    with model:
        result = Agent(model, tools=[calc], store=store).run("2+3?")
    assert result.status == "failed" and result.answer is None
    assert result.error is not None and "no answer" in result.error


def test_answer_now_is_the_first_graded_response_to_a_loop(store: RunStore) -> None:
    global STATUS
    STATUS = iter(["no data"] * 10)
    model = ScriptedModel([call("poll", job=1)] * 2 + [reply("no data yet")])
    plan = ResponsePlan()
    assert plan.sequence[0] == "answer_now"
    with model:
        result = Agent(
            model,
            tools=[poll],
            store=store,
            detectors=DetectorConfig(same_result_threshold=2, same_call_threshold=2),
            responses=plan,
        ).run("Get the report.")
    strikes = events(store, result.run_id, "detector_strike")
    assert strikes and strikes[0].response == "answer_now"  # type: ignore[attr-defined]
    assert model.tool_choices == ["auto", "auto", "none"]
    assert RUNS == ["poll(1)", "poll(1)"] and result.ok and result.answer == "no data yet"


def test_scripted_model_refuses_a_call_when_only_text_is_allowed() -> None:
    model = ScriptedModel([call("add", a=1, b=2)])
    from agentkit.models import ToolSpec

    with pytest.raises(ScriptError, match="only a text answer"):
        model.complete([Message.user("x")], tools=[ToolSpec(name="add")], tool_choice="none")


def test_pointless_calls_rules() -> None:
    first = ToolCall(name="calc", arguments={"expression": "1+1"})
    history = [
        Message.user("q"),
        Message.assistant("", (first,)),
        Message.tool(first, "2"),
    ]
    again = ModelResponse(tool_calls=(ToolCall(name="calc", arguments={"expression": "1+1"}),))
    assert pointless_calls(again, history, {"calc"}) is not None
    assert pointless_calls(again, history, set()) is None  # once is not yet a pattern
    echo = ModelResponse(tool_calls=(ToolCall(name="calc", arguments={"expression": "2.0"}),))
    assert "own result" in (pointless_calls(echo, history) or "")
    other = ModelResponse(tool_calls=(ToolCall(name="calc", arguments={"expression": "2*3"}),))
    assert pointless_calls(other, history, {"calc"}) is None
    two_args = ModelResponse(tool_calls=(ToolCall(name="calc", arguments={"a": 2, "b": 2}),))
    assert pointless_calls(two_args, history) is None  # not "only its own result"
    failed = [Message.user("q"), Message.assistant("", (first,)), Message.tool(first, "Error: x")]
    assert pointless_calls(again, failed, {"calc"}) is None  # an error is not a result


def test_clean_answer_removes_runtime_notes() -> None:
    note = runtime_note("Only 2 steps left. Finish soon.")
    assert clean_answer("Only 2 steps left. Finish soon. 42", [note]) == "42"
    assert clean_answer("[agentkit] 42", []) == "42"
    assert clean_answer("42", [Message.user("Only 2 steps left.")]) == "42"


def test_a_first_call_the_model_is_unsure_of_is_not_made(store: RunStore) -> None:
    from agentkit import ToolChoice
    from agentkit.testing import Turn

    unsure = Turn(call("add", a=1, b=2).respond, logprob=-2.0)  # confidence e^-2 = 0.14
    model = ScriptedModel([unsure, reply("I cannot help with that.")])
    choice = ToolChoice(min_call_confidence=0.5)
    with model:
        result = Agent(model, tools=[add], store=store, tool_choice=choice).run("a poem?")
    assert RUNS == [] and result.ok and result.answer == "I cannot help with that."
    assert model.tool_choices == ["auto", "none"]
    asked = events(store, result.run_id, "answer_requested")
    assert "not sure a tool fits" in asked[0].reason  # type: ignore[attr-defined]


def test_a_confident_first_call_and_later_calls_are_made(store: RunStore) -> None:
    from agentkit import ToolChoice
    from agentkit.testing import Turn

    sure = Turn(call("add", a=1, b=2).respond, logprob=-0.01)
    later_unsure = Turn(call("add", a=3, b=3).respond, logprob=-2.0)  # not the first call
    model = ScriptedModel([sure, later_unsure, reply("6")])
    choice = ToolChoice(min_call_confidence=0.5)
    with model:
        result = Agent(model, tools=[add], store=store, tool_choice=choice).run("sums")
    assert RUNS == ["add(1,2)", "add(3,3)"] and result.answer == "6"
