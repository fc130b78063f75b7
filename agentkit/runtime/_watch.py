"""Watching a step while it runs: an operator's abort, the run's wall-clock limit.

Controls are applied between steps, but a step can take minutes (a long generation, a
slow tool). While one runs, the run's store is asked every ``POLL_SECONDS`` whether an
abort is waiting, and the deadline is watched. Either one sets the run's cancel event,
which stops the model call in progress between two tokens, waits a moment for the step
to hand back what it has, and then cancels it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from typing import TypeVar

from ._context import RunContext

__all__ = ["POLL_SECONDS", "StepInterrupted", "watched"]

T = TypeVar("T")
POLL_SECONDS = 0.25
_GRACE_SECONDS = 1.0


class StepInterrupted(Exception):
    """The step was stopped from outside; ``status`` is the run's ending."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


async def watched(ctx: RunContext, work: Awaitable[T], deadline: float | None) -> T:
    """Await ``work`` unless an abort arrives or the deadline passes first."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            wait = POLL_SECONDS
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - time.monotonic()))
            done, _ = await asyncio.wait({task}, timeout=wait)
            if done:
                return task.result()
            if deadline is not None and time.monotonic() >= deadline:
                status = "timed_out"
            elif ctx.recorder.abort_waiting():
                status = "aborted"
            else:
                ctx.recorder.keep_alive()
                continue
            ctx.cancel.set()
            await asyncio.wait({task}, timeout=_GRACE_SECONDS)
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: the run ends here either way
            raise StepInterrupted(status)
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
