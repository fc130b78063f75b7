"""``Agent.run_many`` / ``arun_many`` on the scripted model: order, concurrency, the store,
failures and aborts that stay with their own run, argument checks, the executor seam."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from agentkit import Agent, ConfigError, Message, ModelResponse, RunResult, RunStore, ToolCall, tool
from agentkit.runtime._many import LocalExecutor
from agentkit.testing import ScriptedModel, Turn


@tool
def double(x: int) -> int:
    """Double a number.

    Args:
        x: the number
    """
    return 2 * x


def _number(messages: Sequence[Message]) -> int:
    task = next(m.content for m in messages if m.role == "user")
    found = re.search(r"-?\d+", task or "")
    assert found is not None
    return int(found.group())


class Doubler:
    """Responds to any run in any order: call ``double`` on the task's number, then answer
    with the result. Counts how many calls are in the model at once."""

    def __init__(self, barrier: threading.Barrier | None = None, fail_on: int | None = None):
        self.barrier = barrier
        self.fail_on = fail_on
        self.abort: tuple[RunStore, dict[int, str]] | None = None
        self.inside = 0
        self.most_inside = 0
        self._lock = threading.Lock()

    def __call__(self, messages: Sequence[Message], tools: Sequence[Any]) -> ModelResponse:
        with self._lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            n = _number(messages)
            if self.barrier is not None and messages[-1].role == "user":
                self.barrier.wait(timeout=30)  # proof that the first steps overlap
            if n == self.fail_on:
                raise RuntimeError(f"model crashed on task {n}")
            if self.abort is not None and n in self.abort[1]:
                store, ids = self.abort
                store.send_control(ids[n], "abort")
            if messages[-1].role == "tool":
                return ModelResponse(content=f"The answer is {messages[-1].content}.")
            call = ToolCall(name="double", arguments={"x": n})
            return ModelResponse(tool_calls=(call,), finish_reason="tool_calls")
        finally:
            with self._lock:
                self.inside -= 1


def agent_for(responder: Doubler, calls: int, store: RunStore) -> tuple[Agent[Any], ScriptedModel]:
    model = ScriptedModel([Turn(responder)] * calls)
    return Agent(model, tools=[double], store=store, max_steps=6), model


def test_results_come_in_task_order_and_every_run_is_stored(store: RunStore) -> None:
    responder = Doubler(barrier=threading.Barrier(3))
    agent, model = agent_for(responder, 12, store)
    tasks = [f"Double {n}." for n in range(6)]
    seen: list[int] = []
    results = agent.run_many(tasks, concurrency=3, on_result=lambda i, r: seen.append(i))
    assert [r.answer for r in results] == [f"The answer is {2 * n}." for n in range(6)]
    assert all(r.ok for r in results)
    assert sorted(seen) == list(range(6))
    assert responder.most_inside == 3  # the barrier let three in at once, never more
    stored = {run.id: run for run in store.list_runs()}
    assert {r.run_id for r in results} <= set(stored)
    for r in results:
        assert stored[r.run_id].status == "succeeded"
        assert stored[r.run_id].answer == r.answer
    model.verify()


def test_one_failing_run_does_not_take_the_others_down(store: RunStore) -> None:
    agent, _ = agent_for(Doubler(fail_on=2), 9, store)
    results = agent.run_many([f"Double {n}." for n in range(5)], concurrency=5)
    failed = results[2]
    assert failed.status == "failed" and "model crashed on task 2" in (failed.error or "")
    assert [r.ok for r in results] == [True, True, False, True, True]
    assert store.get_run(failed.run_id).status == "failed"


def test_aborting_one_run_leaves_the_others_finishing(store: RunStore) -> None:
    responder = Doubler()
    agent, _ = agent_for(responder, 12, store)
    ids = [f"run-{n}" for n in range(4)]
    responder.abort = (store, {1: ids[1]})
    results = agent.run_many([f"Double {n}." for n in range(4)], concurrency=4, run_ids=ids)
    assert [r.run_id for r in results] == ids
    assert results[1].status == "aborted"
    assert [r.status for i, r in enumerate(results) if i != 1] == ["succeeded"] * 3
    assert store.get_run(ids[1]).status == "aborted"


async def test_arun_many_inside_an_event_loop(store: RunStore) -> None:
    agent, _ = agent_for(Doubler(), 4, store)
    results = await agent.arun_many(["Double 5.", "Double 7."], concurrency=2)
    assert [r.answer for r in results] == ["The answer is 10.", "The answer is 14."]
    with pytest.raises(ConfigError, match="running event loop"):
        agent.run_many(["Double 1."])


def test_bad_arguments_are_refused_before_anything_runs(store: RunStore) -> None:
    agent, model = agent_for(Doubler(), 0, store)
    with pytest.raises(ConfigError) as info:
        agent.run_many("Double 1.", concurrency=0)
    text = str(info.value)
    assert "not one string" in text and "concurrency must be" in text
    with pytest.raises(ConfigError, match="2 run ids were given for 1 tasks"):
        agent.run_many(["Double 1."], run_ids=["a", "b"])
    with pytest.raises(ConfigError, match="task 1 is a int"):
        agent.run_many(["Double 1.", 3])  # type: ignore[list-item]
    assert agent.run_many([]) == []
    assert model.requests == [] and store.list_runs() == []


def test_an_executor_decides_where_runs_execute(store: RunStore) -> None:
    class Counting(LocalExecutor):
        calls = 0

        async def run_all(self, agent: Agent[Any], tasks: Sequence[str], *args: Any, **kw: Any):  # type: ignore[no-untyped-def]
            Counting.calls += 1
            return await super().run_all(agent, tasks, *args, **kw)

    agent, _ = agent_for(Doubler(), 2, store)
    results: list[RunResult[Any]] = agent.run_many(["Double 4."], executor=Counting())
    assert Counting.calls == 1 and results[0].answer == "The answer is 8."


def test_cancelling_arun_many_stops_the_runs(store: RunStore) -> None:
    gate = threading.Event()

    class Slow(Doubler):
        def __call__(self, messages: Sequence[Message], tools: Sequence[Any]) -> ModelResponse:
            gate.wait(30)
            return super().__call__(messages, tools)

    agent, _ = agent_for(Slow(), 12, store)

    async def main() -> None:
        job = asyncio.ensure_future(agent.arun_many([f"Double {n}." for n in range(3)]))
        await asyncio.sleep(0.2)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job

    try:
        asyncio.run(main())
    finally:
        gate.set()
    # All three had started; none finished: each is left resumable, as after a crash.
    assert sorted(r.status for r in store.list_runs()) == ["running"] * 3
