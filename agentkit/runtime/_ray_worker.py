"""The worker side of the Ray executor: one Ray actor per worker process.

A worker builds the agent once (so its models load once per process and are shared by
all its runs), opens the shared store, and runs many tasks at a time on one event loop,
where a loaded model's scheduler decodes the model calls of its runs together.

A task whose run the store already has was started by a worker that died: the run is
resumed (finished tool calls are replayed, calls that were in flight are reported to
the model as of unknown outcome), after waiting for the dead worker's lease to go stale;
a run the store already has as finished is not run again.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from .._errors import ConfigError, ResumeError, RunLeasedError, StoreError
from ..events import FINISHED_STATUSES
from ..store._lease import STALE_SECONDS
from ..store._open import open_store
from ..store._rows import RunRow
from ._agent import Agent
from ._result import RunResult, RunTotals

__all__ = ["AppSpec", "BatchWorker", "build_agent"]

AppSpec = str | Callable[[], Any]
"""How a worker gets its agent: ``module:attr`` or ``file.py:attr`` (an Agent, or a
function returning one), or a picklable function returning an Agent."""

_LEASE_WAIT = STALE_SECONDS + 15.0  # a dead worker's lease goes stale within STALE_SECONDS
_LEASE_POLL_SECONDS = 0.5


def build_agent(app: AppSpec) -> Agent[Any]:
    """The agent ``app`` names or builds (ConfigError if it is not an Agent)."""
    if isinstance(app, str):
        from ..cli._runs import load_app  # the same loader as `agentkit runs resume --app`

        built = load_app(app)
    else:
        built = app()
    if not isinstance(built, Agent):
        raise ConfigError(
            f"the Ray executor's app {app!r} gave a {type(built).__name__}, not an Agent"
        )
    return built


class BatchWorker:
    """One worker: the agent built once, the shared store opened once, many runs."""

    def __init__(self, app: AppSpec, store: str) -> None:
        # An error here is kept for ``where`` to raise: Ray reports an exception of an
        # actor's constructor only as "the actor died", without the reason.
        self.problem: str | None = None
        try:
            self.agent = build_agent(app)
            self.store = open_store(store)
        except Exception as exc:
            self.problem = f"{type(exc).__name__}: {exc}"
            return
        self.agent._store = self.store  # every worker writes the one shared store

    def where(self) -> str:
        """``host:pid`` of this worker once its agent is built (ConfigError if it was not)."""
        if self.problem is not None:
            raise ConfigError(
                f"a worker could not build the agent or open the store: {self.problem}"
            )
        return f"{socket.gethostname()}:{os.getpid()}"

    async def run(self, task: str, run_id: str) -> RunResult[Any]:
        """Run the task as run ``run_id``, or resume it; a failure is a failed result."""
        started = time.perf_counter()
        if self.problem is not None:  # a replacement worker that could not start
            return _failed_early(run_id, started, self.problem)
        try:
            row = self._stored(run_id)
            if row is None:
                return await self.agent.arun(task, run_id=run_id)
            return await self._resume(row, started)
        except Exception as exc:
            return self._failed(task, run_id, started, f"{type(exc).__name__}: {exc}")

    def _stored(self, run_id: str) -> RunRow | None:
        try:
            row = self.store.get_run(run_id)
        except StoreError:
            return None  # not there: nobody started it
        return row if row.id == run_id else None  # get_run also matches a prefix

    async def _resume(self, row: RunRow, started: float) -> RunResult[Any]:
        """Resume a run a dead worker left, once its lease is free; a finished run's
        stored result."""
        deadline = time.monotonic() + _LEASE_WAIT
        while row.status not in FINISHED_STATUSES:
            try:
                return await self.agent.aresume(row.id)
            except RunLeasedError:
                if time.monotonic() >= deadline:
                    raise
            except ResumeError:
                # It finished between our look and the claim (another worker's result).
                if self.store.get_run(row.id).status not in FINISHED_STATUSES:
                    raise
            await asyncio.sleep(_LEASE_POLL_SECONDS)
            row = self.store.get_run(row.id)
        return self._finished(row, started)

    def _finished(self, row: RunRow, started: float) -> RunResult[Any]:
        """A run that had finished already, as its stored row and checkpoint tell it."""
        last = self.store.last_step(row.id)
        data = json.loads(last.state_json)["state"] if last else row.config["initial_state"]
        return RunResult.from_totals(
            RunTotals.from_json(row.totals),
            run_id=row.id,
            status=row.status,
            answer=row.answer,
            state=self.agent.state_type.model_validate(data),
            seconds=time.perf_counter() - started,
            error=row.error,
        )

    def _failed(self, task: str, run_id: str, started: float, error: str) -> RunResult[Any]:
        return RunResult.from_totals(
            RunTotals(),
            run_id=run_id,
            status="failed",
            answer=None,
            state=self.agent.initial_state(task),
            seconds=time.perf_counter() - started,
            error=error,
        )


def _failed_early(run_id: str, started: float, error: str) -> RunResult[Any]:
    """A task on a worker without an agent (so without a state to report)."""
    return RunResult.from_totals(
        RunTotals(), run_id=run_id, status="failed", answer=None, state=None,
        seconds=time.perf_counter() - started, error=error,
    )  # fmt: skip
