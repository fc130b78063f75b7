"""Many runs of one agent at once: ``Agent.run_many`` and ``Agent.arun_many``.

The runs share one event loop; each model call goes to a worker thread, and a loaded
model's scheduler decodes the calls of all waiting runs together (see
``agentkit.models``), so N concurrent runs cost far less than N runs one after another.
A run that fails (a model error, a bug in a tool, anything) becomes a ``failed`` result
with the error, and the other runs go on.

Where the runs execute is an ``executor``: ``LocalExecutor`` runs them as tasks of this
process. The seam is there for executors that fan runs out elsewhere (a Ray cluster,
say): anything with the same ``run_all`` coroutine.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .._errors import ConfigError
from ._graph import AgentState
from ._recorder import EventCallback
from ._result import RunResult, RunTotals

if TYPE_CHECKING:
    from ._agent import Agent

__all__ = ["LocalExecutor", "ManyExecutor", "ResultCallback", "run_many_async"]

S = TypeVar("S", bound=AgentState)
ResultCallback = Callable[[int, RunResult[Any]], None]
"""Called as each run ends, with its task's index and its result."""


class ManyExecutor(Protocol):
    """Runs an agent on many tasks; results in task order, a failed run never raises."""

    async def run_all(
        self,
        agent: Agent[Any],
        tasks: Sequence[str],
        run_ids: Sequence[str],
        *,
        concurrency: int,
        on_result: ResultCallback | None,
        on_event: EventCallback | None,
    ) -> list[RunResult[Any]]: ...


class LocalExecutor:
    """Runs every task as an asyncio task of this process, ``concurrency`` at a time."""

    async def run_all(
        self,
        agent: Agent[Any],
        tasks: Sequence[str],
        run_ids: Sequence[str],
        *,
        concurrency: int,
        on_result: ResultCallback | None,
        on_event: EventCallback | None,
    ) -> list[RunResult[Any]]:
        gate = asyncio.Semaphore(concurrency)

        async def one(index: int) -> RunResult[Any]:
            async with gate:
                result = await _guarded(agent, tasks[index], run_ids[index], on_event)
            if on_result is not None:
                on_result(index, result)
            return result

        jobs = [asyncio.ensure_future(one(i)) for i in range(len(tasks))]
        try:
            return list(await asyncio.gather(*jobs))
        finally:
            for job in jobs:  # cancelled from outside: stop the runs still going
                job.cancel()


async def run_many_async(
    agent: Agent[S],
    tasks: Sequence[str],
    *,
    concurrency: int,
    run_ids: Sequence[str] | None,
    on_result: ResultCallback | None,
    on_event: EventCallback | None,
    executor: ManyExecutor | None,
) -> list[RunResult[S]]:
    """Check the arguments (ConfigError, before anything runs), then run every task."""
    problems = _problems(tasks, concurrency, run_ids)
    if problems:
        raise ConfigError(problems)
    ids = list(run_ids) if run_ids is not None else [uuid.uuid4().hex[:12] for _ in tasks]
    runner = executor or LocalExecutor()
    results = await runner.run_all(
        agent, list(tasks), ids, concurrency=concurrency, on_result=on_result, on_event=on_event
    )
    return results


def _problems(tasks: Sequence[str], concurrency: int, run_ids: Sequence[str] | None) -> list[str]:
    problems = []
    if isinstance(tasks, str):
        problems.append("tasks must be a list of task strings, not one string")
    else:
        problems += [
            f"task {i} is a {type(t).__name__}, not a string"
            for i, t in enumerate(tasks)
            if not isinstance(t, str)
        ]
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        problems.append(f"concurrency must be a whole number of at least 1 (got {concurrency!r})")
    if run_ids is not None:
        if len(run_ids) != len(tasks):
            problems.append(f"{len(run_ids)} run ids were given for {len(tasks)} tasks")
        if len(set(run_ids)) != len(run_ids):
            problems.append("run ids must be unique")
    return problems


async def _guarded(
    agent: Agent[Any], task: str, run_id: str, on_event: EventCallback | None
) -> RunResult[Any]:
    """One run; an exception becomes a failed result (the executor has already recorded
    the run as failed in the store when it got that far)."""
    started = time.perf_counter()
    try:
        return await agent.arun(task, run_id=run_id, on_event=on_event)
    except Exception as exc:
        return RunResult.from_totals(
            RunTotals(),
            run_id=run_id,
            status="failed",
            answer=None,
            state=agent.initial_state(task),
            seconds=time.perf_counter() - started,
            error=f"{type(exc).__name__}: {exc}",
        )
