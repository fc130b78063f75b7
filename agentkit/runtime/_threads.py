"""The runtime's thread pools, which outlive event loops.

``Agent.run`` starts a new event loop, and so a new default executor, for every run:
starting and joining its threads cost more than a step of the executor. Model calls and
tool calls get separate pools, so tools that hang past their timeout (a thread cannot be
killed) never hold up the model.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar

__all__ = ["in_thread"]

T = TypeVar("T")
Pool = Literal["model", "tools"]

_pools: dict[str, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool(name: Pool) -> ThreadPoolExecutor:
    executor = _pools.get(name)
    if executor is None:
        with _pools_lock:
            executor = _pools.get(name)
            if executor is None:
                executor = _pools[name] = ThreadPoolExecutor(thread_name_prefix=f"agentkit-{name}")
    return executor


async def in_thread(pool: Pool, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``asyncio.to_thread`` on one of the runtime's pools."""
    context = contextvars.copy_context()
    call = functools.partial(context.run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_pool(pool), call)
