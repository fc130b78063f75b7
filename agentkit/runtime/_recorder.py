"""The one writer of a run: every store write and every event callback goes through here.

Steps never touch the store. They hand events to the recorder (``emit``), which holds
them until the next write so that a step costs two commits, not one per event; a step
calls ``flush`` before slow work (a model call, a plain function) so that watchers see
what happened so far. Tool calls go through the recorder's journal (``call_started``,
``call_finished``): a finished call is durable before the step ends, which is what lets
a resumed run replay it instead of running it twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..events import Event, RunFinished, RunStarted
from ..models._messages import ToolCall
from ..store._lease import HEARTBEAT_SECONDS, new_owner
from ..store._protocol import Store
from ..store._rows import Batch, Control, StepRow, ToolResult

__all__ = ["EventCallback", "Recorder"]

EventCallback = Callable[[Event], None]


class Recorder:
    """Writes one run to its store and tells the run's event callback, in commit order."""

    def __init__(self, store: Store, run_id: str, on_event: EventCallback | None) -> None:
        self.store = store
        self.run_id = run_id
        self.owner = new_owner()
        """This executor's lease on the run (one executor per run, see store leases)."""
        self._on_event = on_event
        self._pending = Batch()
        self._renewed = time.monotonic()

    # -- events ---------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        """Record an event with the next write (see ``flush``)."""
        self._pending.events.append(event)

    def flush(self) -> None:
        """Commit the events held so far, now."""
        if self._pending:
            batch = self._take()
            self.store.write(batch)
            self._notify(batch)

    def _take(self) -> Batch:
        batch, self._pending = self._pending, Batch()
        return batch

    def _notify(self, batch: Batch) -> None:
        if self._on_event is not None:
            for event in batch.events:
                self._on_event(event)

    # -- the run --------------------------------------------------------------------

    def run_started(
        self, event: RunStarted, *, graph: dict[str, Any], config: dict[str, Any]
    ) -> None:
        self.store.create_run(
            self.run_id,
            name=event.name,
            task=event.task,
            graph=graph,
            config=config,
            owner=self.owner,
        )
        self.emit(event)

    def claim(self) -> None:
        """Take the run's lease before resuming it (RunLeasedError if it is live)."""
        self.store.claim(self.run_id, self.owner)

    def run_resumed(self, event: RunStarted) -> None:
        self.store.set_status(self.run_id, "running")
        self.emit(event)

    def keep_alive(self) -> None:
        """Renew the lease if the last renewal is a few seconds old (during long steps)."""
        if time.monotonic() - self._renewed >= HEARTBEAT_SECONDS:
            self.store.renew(self.run_id, self.owner)
            self._renewed = time.monotonic()

    def set_status(self, status: str) -> None:
        self.store.set_status(self.run_id, status)

    def take_controls(self) -> list[Control]:
        return self.store.take_controls(self.run_id)

    def abort_waiting(self) -> bool:
        """Whether an operator's abort is queued for this run (not consumed)."""
        return any(c.command == "abort" for c in self.store.pending_controls(self.run_id))

    def step_finished(self, row: StepRow, totals: dict[str, Any], finished: Event) -> None:
        """The step's checkpoint, the run's totals and every event still held, at once."""
        batch = self._take()
        batch.events.append(finished)
        self.store.save_step(row, totals, batch=batch, owner=self.owner)
        self._renewed = time.monotonic()
        self._notify(batch)

    def run_finished(self, event: RunFinished) -> None:
        batch = self._take()
        batch.events.append(event)
        self.store.finish_run(
            self.run_id,
            event.status,
            answer=event.answer,
            error=event.error or event.diagnosis,
            batch=batch,
            owner=self.owner,
        )
        self._notify(batch)

    # -- the tool-call journal ------------------------------------------------------

    def call_started(self, step: int, call: ToolCall) -> None:
        """Durable before the tool runs, with every event held so far."""
        batch = self._take()
        self.store.tool_call_started(
            self.run_id, step, call.id, call.name, call.arguments, batch=batch
        )
        self._notify(batch)

    def call_finished(self, result: ToolResult, event: Event, *, commit: bool) -> None:
        """A finished call; ``commit`` makes it durable now instead of with the step.

        A lone call of a step commits with the step's checkpoint, which follows at once;
        calls that run beside others commit as each finishes.
        """
        self._pending.results.append(result)
        self._pending.events.append(event)
        if commit:
            self.flush()

    def completed_calls(self) -> dict[str, tuple[str, bool]]:
        return self.store.completed_tool_calls(self.run_id)

    def unfinished_calls(self) -> set[str]:
        return self.store.unfinished_tool_calls(self.run_id)
