"""The runtime's worker threads, which outlive event loops and never hold up exit.

``Agent.run`` starts a new event loop, and so a new default executor, for every run:
starting and joining its threads cost more than a step of the executor, so the runtime
keeps its own workers. They are daemon threads in a pool that grows whenever every
worker is busy: a tool that hangs past its timeout (a thread cannot be killed) keeps its
worker, and the next call simply gets another one, instead of queueing behind the hung
ones (and the interpreter does not wait for a hung worker when the program ends, as it
would for ``ThreadPoolExecutor``'s). Model calls and tool calls use separate pools, so
hung tools never hold up the model, and many runs sharing a model can all be waiting in
it at once (the batched backend decodes them together).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Literal, TypeVar

__all__ = ["in_thread"]

T = TypeVar("T")
Pool = Literal["model", "tools"]
_IDLE_SECONDS = 60.0
"""A worker idle this long leaves, unless it is one of the few kept warm."""
_KEEP_WARM = 4


class _DaemonPool:
    """Daemon worker threads; a new one starts whenever none is idle."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._work: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._workers = 0
        self._idle = 0

    def submit(self, call: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            start = self._idle == 0
            if start:
                self._workers += 1
            else:
                self._idle -= 1
        self._work.put((future, call))
        if start:
            threading.Thread(
                target=self._serve, name=f"agentkit-{self._name}-{self._workers}", daemon=True
            ).start()
        return future

    def _serve(self) -> None:
        while True:
            try:
                future, call = self._work.get(timeout=_IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0 and self._workers > _KEEP_WARM:
                        self._idle -= 1
                        self._workers -= 1
                        return
                continue
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(call())
                except BaseException as exc:  # handed to the awaiting coroutine
                    future.set_exception(exc)
            with self._lock:
                self._idle += 1


_pools: dict[str, _DaemonPool] = {}
_pools_lock = threading.Lock()


def _pool(name: Pool) -> _DaemonPool:
    pool = _pools.get(name)
    if pool is None:
        with _pools_lock:
            pool = _pools.setdefault(name, _DaemonPool(name))
    return pool


async def in_thread(pool: Pool, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``asyncio.to_thread`` on one of the runtime's pools."""
    context = contextvars.copy_context()
    call = functools.partial(context.run, fn, *args, **kwargs)
    return await asyncio.wrap_future(_pool(pool).submit(call))
