"""What every run store provides: the contract the runtime, the CLI and the monitor use.

Two stores keep it: ``RunStore`` (an embedded SQLite file, the default) and
``PostgresRunStore`` (one database shared by many machines). Both keep the same model of
data (runs with running totals, steps with their checkpoints, the tool-call journal,
typed events, controls, leases) and behave the same way, which ``tests/store_contract.py``
checks against each of them. ``open_store`` picks one from a path or a URL.

Every write is one transaction: a ``Batch`` of events and tool results given with a write
commits with it or not at all. Errors of the database underneath reach callers as
``StoreError``; lease conflicts as ``RunLeasedError`` and ``LeaseLostError``.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..events import Event
from ._rows import Batch, Control, RunRow, StepRow

__all__ = ["Store"]


class Store(Protocol):
    """A run store. Safe to share between the threads of one process; not picklable (open
    one per process from the same path or URL, see ``open_store``)."""

    @property
    def location(self) -> str:
        """Where the store is, for messages: a path, or a URL without its password."""
        ...

    def close(self) -> None:
        """Close every connection; the handle must not be used afterwards."""

    # -- writing a run -------------------------------------------------------------

    def create_run(
        self,
        run_id: str,
        *,
        name: str,
        task: str,
        graph: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
        owner: str | None = None,
    ) -> None:
        """A new run, status ``running``, leased to ``owner`` if given (StoreError if the
        id is taken)."""

    def save_step(
        self,
        step: StepRow,
        totals: dict[str, Any],
        *,
        batch: Batch | None = None,
        owner: str | None = None,
    ) -> None:
        """A completed step with its checkpoint, the run's totals (a copy of the runtime's,
        never counted by the store) and ``batch``, at once. With ``owner`` it renews that
        lease and writes nothing if another executor holds the run (LeaseLostError)."""

    def write(self, batch: Batch) -> None:
        """Tool results and events in one transaction."""

    def set_status(self, run_id: str, status: str) -> None:
        """The run's status (``running``, ``paused``, ...) while it goes on."""

    def finish_run(
        self,
        run_id: str,
        status: str,
        *,
        answer: str | None = None,
        error: str | None = None,
        batch: Batch | None = None,
        owner: str | None = None,
    ) -> None:
        """The run's ending with ``batch``; ``owner``'s lease is released with it."""

    # -- the tool-call journal -----------------------------------------------------

    def tool_call_started(
        self,
        run_id: str,
        step: int,
        call_id: str,
        name: str,
        arguments: dict[str, Any],
        *,
        batch: Batch | None = None,
    ) -> None:
        """Durable before the tool runs; a second start of the same call id is ignored."""

    def unfinished_tool_calls(self, run_id: str) -> set[str]:
        """Ids of calls that started and never finished: their outcome is unknown."""
        ...

    def completed_tool_calls(self, run_id: str) -> dict[str, tuple[str, bool]]:
        """(result, is_error) of every finished call of the run, by call id."""
        ...

    # -- leases (one executor per run) -----------------------------------------------

    def claim(self, run_id: str, owner: str) -> None:
        """Lease the run to ``owner``: RunLeasedError while a live executor holds it,
        ResumeError for an unknown run. Two claims at once never both succeed."""

    def renew(self, run_id: str, owner: str) -> None:
        """Renew ``owner``'s heartbeat; LeaseLostError if another executor took the run."""

    # -- controls --------------------------------------------------------------------

    def send_control(self, run_id: str, command: str, argument: str | None = None) -> int:
        """Queue pause, resume, abort or ``force_tier N`` (StoreError for anything else)."""
        ...

    def take_controls(self, run_id: str) -> list[Control]:
        """Every pending control of the run, oldest first, each handed out only once."""
        ...

    def pending_controls(self, run_id: str) -> list[Control]:
        """The run's controls not taken yet, oldest first."""
        ...

    # -- reading ---------------------------------------------------------------------

    def list_runs(self, *, limit: int = 200, status: str | None = None) -> list[RunRow]:
        """The newest runs first; ``interrupted`` is derived from a stale lease."""
        ...

    def get_run(self, run_id: str) -> RunRow:
        """A run by id or unique id prefix (StoreError naming the store if none or several)."""
        ...

    def steps(self, run_id: str) -> list[StepRow]:
        """The run's completed steps in order."""
        ...

    def last_step(self, run_id: str) -> StepRow | None:
        """The run's last completed step (the checkpoint a resume starts from)."""
        ...

    def events(self, run_id: str, *, after: int = 0) -> list[tuple[int, Event]]:
        """(id, event) of the run after event id ``after``, oldest first; ids grow in the
        order a run's events were committed. Types this agentkit does not know are
        skipped."""
        ...

    # -- the change signal -------------------------------------------------------------

    def data_version(self) -> int:
        """A number that moves when another connection commits; cheap enough to ask
        several times a second (it sends nothing to a database server)."""
        ...

    def wait_for_change(self, since: int, timeout: float) -> int:
        """Block until ``data_version()`` differs from ``since`` or ``timeout`` seconds
        pass; the version then."""
        ...
