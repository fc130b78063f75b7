"""The executor on the scripted model: loop, budgets, retries, timeouts, feedback,
concurrency, condensing, events, controls and parallel runs."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import BaseModel

from agentkit import (
    END,
    Agent,
    AgentState,
    ConfigError,
    FunctionNode,
    Graph,
    ModelLadder,
    ModelNode,
    RetryPolicy,
    Runner,
    RunStore,
    ScriptError,
    ToolNode,
    ToolSpec,
    tool,
)
from agentkit.models._messages import Message
from agentkit.testing import ScriptedModel, Turn, call, calls, reply


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def event_types(store: RunStore, run_id: str) -> list[str]:
    return [e.type for _, e in store.events(run_id)]


def test_tool_loop_to_final_answer(store: RunStore) -> None:
    model = ScriptedModel([call("add", a=2, b=3), reply("The sum is 5.")])
    with model:
        result = Agent(model, tools=[add], store=store).run("What is 2 + 3?")
    assert result.ok and result.answer == "The sum is 5." and result.exit_code == 0
    assert result.steps == 3
    steps = store.steps(result.run_id)
    assert [s.node for s in steps] == ["model", "tools", "model"]
    assert steps[1].tool_calls[0]["result"] == "5"
    assert all(s.prompt_tokens > 0 and s.completion_tokens > 0 for s in steps if s.kind == "model")
    assert store.get_run(result.run_id).status == "succeeded"
    assert model.requests[1][-1].content == "5"


def test_budget_wind_down_gives_last_step_without_tools(store: RunStore) -> None:
    seen_tools: list[int] = []

    def note_tools(msgs: Sequence[Message], tools: Sequence[ToolSpec]) -> bool:
        seen_tools.append(len(tools))
        return True

    script = [Turn(call("add", a=1, b=i).respond, expect=note_tools) for i in range(2)]
    script.append(Turn(reply("Best so far: 2").respond, expect=note_tools))
    model = ScriptedModel(script)
    with model:
        result = Agent(model, tools=[add], store=store, max_steps=5).run("count")
    assert result.status == "succeeded" and result.answer == "Best so far: 2"
    # The tools stay in the prompt (its cached prefix is unchanged) but the last turn may
    # only answer in text.
    assert seen_tools == [1, 1, 1]
    assert model.tool_choices == ["auto", "auto", "none"]
    last_prompt = model.requests[-1]
    assert any("last step" in m.content for m in last_prompt)
    assert "budget_warning" in event_types(store, result.run_id)


def test_a_call_with_no_step_left_to_read_its_result_is_not_offered(store: RunStore) -> None:
    # max_steps=4: a call at step 3 would run at step 4, and no model step would be left to
    # use its result: step 3 is the model's last chance to answer, so it answers.
    script = [call("add", a=1, b=1), reply("It is 2.")]
    model = ScriptedModel(script)
    with model:
        result = Agent(model, tools=[add], store=store, max_steps=4).run("1 + 1")
    assert result.status == "succeeded" and result.answer == "It is 2."
    assert model.tool_choices == ["auto", "none"]
    assert result.steps == 3


def test_budget_exhausted_returns_partial_result(store: RunStore) -> None:
    # An agent's own loop always keeps a step to answer; a graph whose later nodes spend
    # the budget ends with it spent, and the run's answer is the last tool result.
    model = ScriptedModel([call("add", a=2, b=2)])
    graph: Graph[AgentState] = Graph(AgentState, model=model, max_steps=4)
    graph.add_node("model", ModelNode(tools=[add]))
    graph.add_node("tools", ToolNode(tools=[add]))
    graph.add_node("settle", FunctionNode(lambda state: {}))
    graph.add_edge("model", "tools")
    graph.add_edge("tools", "settle")
    graph.add_conditional_edges("settle", lambda state: "settle", ["settle", END])
    state = AgentState(messages=[Message.user("loop")])
    with model:
        result = asyncio.run(Runner(graph.build(), store=store).arun("loop", state))
    assert result.status == "budget_exhausted" and result.exit_code != 0
    assert result.answer is not None and "4" in result.answer
    assert store.get_run(result.run_id).status == "budget_exhausted"


class Counter(BaseModel):
    n: int = 0
    attempts: int = 0


def test_transient_failures_are_retried_with_backoff(store: RunStore) -> None:
    failures = {"left": 2}

    def flaky(state: Counter) -> dict[str, Any]:
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("backend hiccup")
        return {"n": state.n + 1}

    g = Graph(Counter, name="flaky")
    g.add_node("f", FunctionNode(flaky, retry=RetryPolicy(attempts=3, initial_delay=0.001)))
    g.add_edge("f", END)
    from agentkit.runtime._executor import Runner

    result = asyncio.run(Runner(g.build(), store=store).arun("t", Counter()))
    assert result.ok and result.state.n == 1
    assert event_types(store, result.run_id).count("step_retried") == 2


def test_retries_give_up_and_the_run_fails_loudly(store: RunStore) -> None:
    def broken(state: Counter) -> None:
        raise ConnectionError("down")

    g = Graph(Counter).add_node(
        "f", FunctionNode(broken, retry=RetryPolicy(attempts=2, initial_delay=0.001))
    )
    g.add_edge("f", END)
    from agentkit.runtime._executor import Runner

    with pytest.raises(ConnectionError):
        asyncio.run(Runner(g.build(), store=store).arun("t", Counter()))
    assert store.list_runs()[0].status == "failed"


def test_tool_timeout_and_exception_become_observations(store: RunStore) -> None:
    @tool(timeout=0.05)
    async def slow(x: int) -> int:
        """Take forever."""
        await asyncio.sleep(30)
        return x

    @tool
    def broken(x: int) -> int:
        """Always fail."""
        raise ValueError(f"cannot handle {x}")

    model = ScriptedModel([calls(("slow", {"x": 1}), ("broken", {"x": 2})), reply("gave up")])
    with model:
        result = Agent(model, tools=[slow, broken], store=store).run("try")
    assert result.ok
    observations = [m.content for m in model.requests[1] if m.role == "tool"]
    assert "did not finish within 0.05 s" in observations[0]
    assert "ValueError: cannot handle 2" in observations[1]
    calls_made = store.steps(result.run_id)[1].tool_calls
    assert [c["is_error"] for c in calls_made] == [True, True]


def test_invalid_arguments_go_back_to_the_model(store: RunStore) -> None:
    model = ScriptedModel([call("add", a="two", b=3), call("add", a=2, b=3), reply("5")])
    with model:
        result = Agent(model, tools=[add], store=store).run("2+3")
    assert result.ok and result.answer == "5"
    second_request = model.requests[1]
    assert second_request[-1].role == "tool" and "invalid call" in second_request[-1].content
    assert "a:" in second_request[-1].content
    assert event_types(store, result.run_id).count("tool_arguments_rejected") == 1
    assert result.steps == 3  # the retry happened inside the model step


def test_argument_retries_are_limited(store: RunStore) -> None:
    model = ScriptedModel([call("add", a="x", b=1), call("add", a="y", b=1), reply("no idea")])
    with model:
        result = Agent(model, tools=[add], store=store, argument_retries=1).run("?")
    tool_step = store.steps(result.run_id)[1]
    assert tool_step.tool_calls[0]["is_error"]
    assert "invalid arguments" in tool_step.tool_calls[0]["result"]


def test_unknown_tool_name_is_fed_back(store: RunStore) -> None:
    model = ScriptedModel([call("multiply", a=1, b=2), call("add", a=1, b=2), reply("3")])
    with model:
        result = Agent(model, tools=[add], store=store).run("1*2")
    assert "no tool named 'multiply'" in model.requests[1][-1].content
    assert result.ok


def test_calls_in_one_turn_run_concurrently(store: RunStore) -> None:
    barrier = threading.Barrier(3, timeout=10)

    @tool
    def meet(who: str) -> str:
        """Wait until all three callers have arrived."""
        barrier.wait()  # raises BrokenBarrierError unless all three run at once
        return who

    model = ScriptedModel(
        [
            calls(("meet", {"who": "a"}), ("meet", {"who": "b"}), ("meet", {"who": "c"})),
            reply("met"),
        ]
    )
    with model:
        result = Agent(model, tools=[meet], store=store).run("meet")
    results = [c["result"] for c in store.steps(result.run_id)[1].tool_calls]
    assert results == ["a", "b", "c"]


def test_long_conversations_are_condensed_not_overflowed(store: RunStore) -> None:
    @tool
    def read(page: int) -> str:
        """Read a long page."""
        return f"page {page}: " + "lorem ipsum " * 60

    turns = [call("read", page=i) for i in range(8)] + [reply("done")]
    model = ScriptedModel(turns, context_size=900)
    agent = Agent(model, tools=[read], store=store, sampling=None, max_steps=30)
    with model:
        result = agent.run("read everything")
    assert result.ok
    assert "context_condensed" in event_types(store, result.run_id)
    budget = 900 - 512 - 16
    spec = read.spec
    for request in model.requests:
        assert model.count_tokens(request, [spec]) <= budget + 40


def test_live_events_callback_and_stream(store: RunStore) -> None:
    seen: list[str] = []
    model = ScriptedModel([call("add", a=1, b=1), reply("2")])
    with model:
        Agent(model, tools=[add], store=store).run("1+1", on_event=lambda e: seen.append(e.type))
    assert seen[0] == "run_started" and seen[-1] == "run_finished"
    assert "tool_call" in seen and "model_called" in seen

    async def collect() -> list[str]:
        model2 = ScriptedModel([reply("hi")])
        return [e.type async for e in Agent(model2, store=store).stream("hello")]

    streamed = asyncio.run(collect())
    assert streamed[0] == "run_started" and streamed[-1] == "run_finished"


def test_abort_control_from_another_thread(store: RunStore) -> None:
    slow = [Turn(call("add", a=1, b=i).respond, delay=0.2) for i in range(20)]
    model = ScriptedModel(slow)
    agent = Agent(model, tools=[add], store=store, max_steps=60)
    run_id = "abortme"

    def abort_soon() -> None:
        while not store.list_runs():
            time.sleep(0.01)
        store.send_control(run_id, "abort")

    threading.Thread(target=abort_soon).start()
    result = agent.run("loop", run_id=run_id)
    assert result.status == "aborted" and result.exit_code != 0
    assert "control_applied" in event_types(store, run_id)


def test_pause_and_resume_controls(store: RunStore) -> None:
    model = ScriptedModel([call("add", a=1, b=1), reply("2")])
    store.create_run("placeholder", name="x", task="x")  # ids are independent
    run_id = "paused-run"
    statuses: list[str] = []

    def steer() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            runs = {r.id: r for r in store.list_runs()}
            if run_id in runs and runs[run_id].status == "paused":
                statuses.append("paused")
                break
            time.sleep(0.01)
        store.send_control(run_id, "resume")

    # queued before the run starts, so it applies at the first step boundary
    store.send_control(run_id, "pause")
    worker = threading.Thread(target=steer)
    worker.start()
    with model:
        result = Agent(model, tools=[add], store=store).run("1+1", run_id=run_id)
    worker.join()
    assert statuses == ["paused"] and result.ok


def test_force_tier_control(store: RunStore) -> None:
    small = ScriptedModel([call("add", a=1, b=1)], name="small")
    big = ScriptedModel([reply("2")], name="big", parameters=10_000_000)
    run_id = "forced"
    store.create_run("other", name="x", task="x")
    ladder = ModelLadder([small, big])
    agent = Agent(ladder, tools=[add], store=store)
    # queue the control before the run starts: it applies at the first step boundary
    # after the run exists, so send it from the event callback once the run is created.
    sent = {"done": False}

    def on_event(e: Any) -> None:
        if e.type == "tool_call" and not sent["done"]:
            store.send_control(run_id, "force_tier", "1")
            sent["done"] = True

    with small, big:
        result = agent.run("1+1", run_id=run_id, on_event=on_event)
    chosen = [e for _, e in store.events(run_id) if e.type == "tier_chosen"]
    assert [e.tier for e in chosen] == [0, 1]
    assert "forced" in chosen[1].reason
    assert result.tiers == {"small": 1, "big": 1}


def test_twenty_parallel_runs_share_one_store(store: RunStore) -> None:
    results: dict[int, Any] = {}

    def work(i: int) -> None:
        model = ScriptedModel([call("add", a=i, b=1), call("add", a=i, b=2), reply(f"r{i}")])
        with model:
            results[i] = Agent(model, tools=[add], store=store).run(f"task {i}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 20 and all(r.ok for r in results.values())
    for i, r in results.items():
        run = store.get_run(r.run_id)
        assert run.task == f"task {i}" and run.answer == f"r{i}" and run.steps == 5
        events = store.events(r.run_id)
        assert {e.run_id for _, e in events} == {r.run_id}
        step_numbers = [e.step for _, e in events if e.step is not None]
        assert step_numbers == sorted(step_numbers)
        tool_results = [
            c["result"] for s in store.steps(r.run_id) for c in s.tool_calls if "result" in c
        ]
        assert tool_results == [str(i + 1), str(i + 2)]


def test_framework_bugs_raise_and_mark_the_run_failed(store: RunStore) -> None:
    def bug(state: Counter) -> None:
        raise KeyError("oops")

    g = Graph(Counter).add_node("f", FunctionNode(bug, retry=RetryPolicy(attempts=1)))
    g.add_edge("f", END)
    from agentkit.runtime._executor import Runner

    with pytest.raises(KeyError):
        asyncio.run(Runner(g.build(), store=store).arun("t", Counter()))
    assert store.list_runs()[0].status == "failed"


def test_scripted_model_fails_loudly_on_unexpected_calls(store: RunStore) -> None:
    model = ScriptedModel([call("add", a=1, b=1)])
    with pytest.raises(ScriptError, match="unexpected call #2"):
        Agent(model, tools=[add], store=store).run("1+1")
    unused = ScriptedModel([reply("a"), reply("b")])
    with pytest.raises(ScriptError, match="never consumed"), unused:
        Agent(unused, store=store).run("x")


def test_run_inside_event_loop_points_to_arun(store: RunStore) -> None:
    async def inside() -> None:
        Agent(ScriptedModel([]), store=store).run("x")

    with pytest.raises(ConfigError, match="arun"):
        asyncio.run(inside())


@pytest.mark.parametrize("final", ["", ">", " ... ", "```"])
def test_an_empty_final_reply_is_not_a_success(store: RunStore, final: str) -> None:
    # A stub of punctuation (Qwen 0.5B ended a GSM run with ">") is no answer either.
    model = ScriptedModel([call("add", a=1, b=1), reply(final)])
    with model:
        result = Agent(model, tools=[add], store=store).run("1+1")
    assert result.status == "failed"
    assert result.error == "the model's final reply held no answer (empty, or punctuation alone)"
    assert result.exit_code != 0


@pytest.mark.parametrize("final", ["2", "👍", "€"])
def test_a_short_final_reply_with_content_is_an_answer(store: RunStore, final: str) -> None:
    model = ScriptedModel([call("add", a=1, b=1), reply(final)])
    with model:
        result = Agent(model, tools=[add], store=store).run("1+1")
    assert result.status == "succeeded" and result.answer == final
