"""``RayExecutor``: ``run_many`` fanned out over a Ray cluster, every run in one shared store.

    agent.run_many(tasks, concurrency=16, executor=RayExecutor(
        address="auto", app="myproject.agents:build", store="postgresql://...@db/agentkit"))

The driver (this process) starts one Ray actor per worker (``BatchWorker``); each builds
the agent once from ``app`` and runs up to ``concurrency / workers`` tasks at a time.
Tasks are handed out as workers free up, and results come back in task order, with
``on_result`` called in this process as each run ends (one progress bar for the whole
cluster). Run ids are fixed here before anything runs, so when a worker dies its tasks
go to another worker, which finds their runs in the store and resumes them under the
lease rules: no tool call that finished is run again, and none in flight is repeated.

Ray is an optional dependency (``pip install 'agentkit[ray]'``), imported when a batch
starts. Without ``address`` a local Ray instance is started for the batch (and stopped
after it) unless this process is connected to one already; ``address="auto"`` joins the
cluster of this machine, ``"ray://head:10001"`` a remote one.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import ConfigError
from ..store._rows import default_store_spec, is_store_url
from ..store._sqlite import RunStore
from ._ray_worker import AppSpec, BatchWorker
from ._recorder import EventCallback
from ._result import RunResult, RunTotals

if TYPE_CHECKING:
    from ._agent import Agent
    from ._many import ManyExecutor, ResultCallback

    def _is_an_executor(executor: RayExecutor) -> ManyExecutor:  # checked by mypy only
        return executor


__all__ = ["RayExecutor"]


@dataclass(frozen=True)
class RayExecutor:
    """Where ``run_many`` runs: Ray workers, all writing one shared store."""

    address: str | None = None
    """A Ray cluster (``"auto"``, ``"ray://head:10001"``); None: the one this process is
    connected to, else a local instance started for the batch."""
    workers: int | None = None
    """Worker processes; None: as many as the cluster's CPUs allow (``cpus_per_worker``)."""
    app: AppSpec | None = None
    """How each worker builds the agent (see ``AppSpec``); None: the agent's ``app=``."""
    store: str | os.PathLike[str] | None = None
    """The shared store (a ``postgresql://`` URL on a cluster); None: the agent's own
    ``store=`` path or URL, else ``$AGENTKIT_DB``."""
    cpus_per_worker: float = 1.0
    restarts: int | None = None
    """How many dead workers are replaced in one batch; None: as many as there are workers."""
    runtime_env: dict[str, Any] | None = field(default=None, hash=False)
    """Ray's ``runtime_env`` for a cluster started or joined here (code, packages, env)."""

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
        """Run every task on the cluster; results in task order (a failed run never raises)."""
        if on_event is not None:
            raise ConfigError(
                "the Ray executor does not send events back to this process: they are in "
                "the shared store (watch them with `agentkit monitor --db URL`); use "
                "on_result for progress"
            )
        app, store = self._app(agent), self._store(agent)
        ray = _import_ray()
        started = await asyncio.to_thread(self._connect, ray)
        try:
            pool = _Pool(ray, self, app, store)
            try:
                await pool.start(self._workers(ray), concurrency)
                return await pool.run(tasks, run_ids, on_result)
            finally:
                pool.close()
        finally:
            if started:
                ray.shutdown()

    # -- checks and the cluster ------------------------------------------------------

    def _app(self, agent: Agent[Any]) -> AppSpec:
        app = self.app if self.app is not None else agent.app
        if app is None:
            raise ConfigError(
                "a Ray worker builds its own agent: pass RayExecutor(app='module:build') (a "
                "function returning the Agent, importable on every worker) or Agent(app=...)"
            )
        return app

    def _store(self, agent: Agent[Any]) -> str:
        spec: Any = self.store if self.store is not None else agent._store_arg
        if spec is None:
            spec = default_store_spec()
        if isinstance(spec, RunStore):
            spec = spec.path
        if not isinstance(spec, (str, os.PathLike)):
            raise ConfigError(
                "the Ray workers open the store themselves: give its path or URL "
                "(RayExecutor(store='postgresql://...') or Agent(store='postgresql://...')), "
                "not an open store object"
            )
        return str(spec).strip() if is_store_url(spec) else str(Path(spec).resolve())

    def _connect(self, ray: Any) -> bool:
        """Join or start a Ray instance; whether this call did (and so undoes it after)."""
        if ray.is_initialized():
            return False
        ray.init(
            address=self.address,
            runtime_env=self.runtime_env,
            include_dashboard=False,
            configure_logging=False,
        )
        return True

    def _workers(self, ray: Any) -> int:
        if self.workers is not None:
            if self.workers < 1:
                raise ConfigError(f"workers must be at least 1 (got {self.workers})")
            return self.workers
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        return max(1, int(cpus // self.cpus_per_worker))


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("the Ray executor needs Ray: pip install 'agentkit[ray]'") from exc
    return ray


class _Pool:
    """The driver's view of the workers: who is alive, what each is running."""

    def __init__(self, ray: Any, config: RayExecutor, app: AppSpec, store: str) -> None:
        self.ray = ray
        self.config = config
        self.app = app
        self.store = store
        self.actors: dict[int, Any] = {}
        self.load: dict[int, int] = {}
        self.per_worker = 1
        self.restarts_left = 0
        self._next_id = 0
        self._remote: Any = None

    async def start(self, workers: int, concurrency: int) -> None:
        """Start the workers and wait until each has built its agent (ConfigError if
        they cannot: nothing has run yet)."""
        self.per_worker = max(1, math.ceil(concurrency / workers))
        self.restarts_left = self.config.restarts if self.config.restarts is not None else workers
        self._remote = self.ray.remote(
            num_cpus=self.config.cpus_per_worker, max_concurrency=self.per_worker
        )(BatchWorker)
        for _ in range(workers):
            self._spawn()
        try:
            await asyncio.gather(*(_wait(a.where.remote()) for a in self.actors.values()))
        except self.ray.exceptions.RayError as exc:
            raise ConfigError(f"the Ray workers could not start: {_reason(exc)}") from exc

    def _spawn(self) -> None:
        actor_id, self._next_id = self._next_id, self._next_id + 1
        self.actors[actor_id] = self._remote.remote(self.app, self.store)
        self.load[actor_id] = 0

    def _lost(self, actor_id: int) -> None:
        """A worker died: forget it and start another while restarts are left."""
        actor = self.actors.pop(actor_id, None)
        if actor is None:
            return  # its other tasks report the same death
        self.load.pop(actor_id, None)
        self.ray.kill(actor, no_restart=True)
        if self.restarts_left > 0:
            self.restarts_left -= 1
            self._spawn()

    async def run(
        self, tasks: Sequence[str], run_ids: Sequence[str], on_result: ResultCallback | None
    ) -> list[RunResult[Any]]:
        results: list[RunResult[Any] | None] = [None] * len(tasks)
        queue = deque(range(len(tasks)))
        inflight: dict[asyncio.Future[Any], tuple[int, int]] = {}
        while queue or inflight:
            self._hand_out(queue, inflight, tasks, run_ids)
            if not inflight:  # every worker is gone and none may be started
                for index in queue:
                    results[index] = _failed(run_ids[index], "every Ray worker died")
                break
            done, _ = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                actor_id, index = inflight.pop(future)
                self.load[actor_id] = self.load.get(actor_id, 1) - 1
                result = self._outcome(future, actor_id, run_ids[index])
                if result is None:
                    queue.appendleft(index)  # its worker died: another resumes the run
                    continue
                results[index] = result
                if on_result is not None:
                    on_result(index, result)
        return [
            r if r is not None else _failed(run_ids[i], "not run") for i, r in enumerate(results)
        ]

    def _hand_out(
        self,
        queue: deque[int],
        inflight: dict[asyncio.Future[Any], tuple[int, int]],
        tasks: Sequence[str],
        run_ids: Sequence[str],
    ) -> None:
        while queue:
            free = [a for a in self.actors if self.load[a] < self.per_worker]
            if not free:
                return
            actor_id = min(free, key=lambda a: self.load[a])
            index = queue.popleft()
            ref = self.actors[actor_id].run.remote(tasks[index], run_ids[index])
            inflight[_wait(ref)] = (actor_id, index)
            self.load[actor_id] += 1

    def _outcome(
        self, future: asyncio.Future[Any], actor_id: int, run_id: str
    ) -> RunResult[Any] | None:
        """The task's result; None when its worker died (the task is to be run again)."""
        exceptions = self.ray.exceptions
        try:
            result: RunResult[Any] = future.result()
        except exceptions.RayActorError:
            self._lost(actor_id)
            return None
        except exceptions.RayError as exc:  # the task itself broke (not the worker)
            return _failed(run_id, _reason(exc))
        return result

    def close(self) -> None:
        for actor in self.actors.values():
            self.ray.kill(actor, no_restart=True)
        self.actors.clear()


def _wait(ref: Any) -> asyncio.Future[Any]:
    return asyncio.wrap_future(ref.future())


def _reason(exc: BaseException) -> str:
    """What went wrong on the worker: the exception a Ray error carries, else its first line."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, ConfigError):
        return str(cause)
    cause = cause or exc
    return f"{type(cause).__name__}: {cause}".splitlines()[0][:500]


def _failed(run_id: str, error: str) -> RunResult[Any]:
    """A task that could not be run at all (no state: there was no worker to build one)."""
    return RunResult.from_totals(
        RunTotals(), run_id=run_id, status="failed", answer=None, state=None, seconds=0.0,
        error=error,
    )  # fmt: skip
