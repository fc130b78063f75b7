"""The run store: an embedded SQLite database (WAL) that every run writes as it goes.

It is the one contract between the runtime and whatever watches it: the monitor,
``agentkit runs``, benchmarks. Controls (pause, resume, abort, force a tier) travel
the other way through the ``controls`` table, so another process can steer a run.

Writes are small transactions committed at once: a completed tool call is durable
before the next one starts, which is what lets a killed run resume without running
it again. Writes that happen together share one transaction (a ``Batch`` of events
and tool results rides with a step's checkpoint, say), so a step costs two commits,
not one per event: on disk, the bytes sent to the WAL are most of the store's cost.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .._errors import SchemaVersionError, StoreError
from ..events import Event, parse_event
from . import _sqlite_leases as leases
from ._decode import STEP_INSERT, TOTALS_UPDATE, run_row, step_row, step_values, totals_values
from ._rows import (
    Batch,
    Control,
    RunRow,
    StepRow,
    ToolResult,
    control_problem,
    default_db_path,
)
from ._schema import (
    APPLICATION,
    MIGRATIONS,
    SCHEMA,
    SCHEMA_VERSION,
    Found,
    classify,
    inspect_database,
)

__all__ = ["SCHEMA_VERSION", "RunStore"]

_MARK = "INSERT OR IGNORE INTO meta(key, value) VALUES ('application', ?)"
_CHANGE_POLL_SECONDS = 0.05


_open: Counter[str] = Counter()
"""Database files open as run stores in this process (checked when the first opened)."""
_open_lock = threading.Lock()


class RunStore:
    """A handle on one SQLite run database. Safe to share between threads."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, create: bool = True):
        self.path = Path(path).expanduser() if path is not None else default_db_path()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._key = str(self.path.resolve())
        self._counted = False
        if not create and not self.path.exists():
            raise StoreError(
                f"no run database at {self.path}; run an agent first, or pass --db PATH"
            )
        if create:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create {self.path.parent}: {exc}") from exc
        self._init_schema(create)

    # -- connections -------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path, timeout=30.0, isolation_level=None, check_same_thread=False
                )
                conn.execute("PRAGMA journal_mode=WAL")
                # NORMAL in WAL mode: a commit survives a process crash (SIGKILL), which
                # is what resume needs; only a power loss may drop the last commits.
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA busy_timeout=30000")
            except sqlite3.DatabaseError as exc:
                raise StoreError(
                    f"{self.path} is not a readable SQLite database ({exc}); move it away "
                    "or pass another path"
                ) from exc
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open run database {self.path}: {exc}") from exc
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
                if not self._counted:
                    self._counted = True
                    with _open_lock:
                        _open[self._key] += 1
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(f"run database {self.path}: {exc}") from exc
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"run database {self.path}: {exc}") from exc

    def _init_schema(self, create: bool) -> None:
        # Looked at read-only first: a file that is not ours is refused before the first
        # connection switches it to WAL or anything is written to it. Not while this
        # process has the file open already: reading it outside SQLite would drop the
        # POSIX locks of those connections (closing any descriptor of a file releases all
        # of a process's locks on it), and another process could then delete the
        # write-ahead log under them.
        with _open_lock:
            already = _open[self._key] > 0
        if not already:
            self._set_up(inspect_database(self.path), create)
        self._conn()

    def _set_up(self, found: Found, create: bool) -> None:
        self._check(found, create)
        if found.kind == "ours" and found.version == SCHEMA_VERSION and found.marked:
            return  # nothing to set up: no write transaction (the file may be read-only)
        try:
            with self._tx() as tx:
                # Again under the write lock: another process may have set it up meanwhile.
                found = classify(tx)
                self._check(found, create)
                if found.kind == "ours" and found.version == SCHEMA_VERSION:
                    tx.execute(_MARK, (APPLICATION,))  # files from before the marker
                    return
                if found.kind == "ours":
                    for target in range(found.version + 1, SCHEMA_VERSION + 1):
                        for statement in MIGRATIONS.get(target, ()):
                            tx.execute(statement)
                else:
                    for statement in SCHEMA.split(";"):
                        if statement.strip():
                            tx.execute(statement)
                tx.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
                tx.execute(_MARK, (APPLICATION,))
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path} is not a readable SQLite database ({exc}); move it away or "
                "pass another path"
            ) from exc

    def _check(self, found: Found, create: bool) -> None:
        """Refuse what the store must not open (or, without ``create``, set up)."""
        if found.kind == "foreign":
            shown = ", ".join(found.tables[:8]) + (", ..." if len(found.tables) > 8 else "")
            raise StoreError(
                f"{self.path} is not an agentkit run database: it is another application's "
                f"SQLite database (tables: {shown}), left unchanged. Pass another path "
                "(--db, store= or AGENTKIT_DB) for agentkit's runs."
            )
        if found.kind == "ours" and found.version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{self.path} was written by a newer agentkit (schema {found.version}, this "
                f"one reads up to {SCHEMA_VERSION}); upgrade agentkit to read it"
            )
        if found.kind != "ours" and not create:
            raise StoreError(f"{self.path} is not an agentkit run database")

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
            if self._counted:
                self._counted = False
                with _open_lock:
                    _open[self._key] -= 1
        self._local = threading.local()

    # -- writing -----------------------------------------------------------------

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
        """A new run, leased to ``owner`` (an executor's id, see ``new_owner``) if given."""
        now = time.time()
        with self._tx() as tx:
            tx.execute(
                "INSERT INTO runs(id, name, task, status, created_at, updated_at, graph_json,"
                " config_json, pid, owner, heartbeat) VALUES (?,?,?,'running',?,?,?,?,?,?,?)",
                (
                    run_id,
                    name,
                    task,
                    now,
                    now,
                    json.dumps(graph or {}),
                    json.dumps(config or {}, default=str),
                    os.getpid(),
                    owner,
                    now if owner else None,
                ),
            )

    # -- leases (one executor per run) ---------------------------------------------

    def claim(self, run_id: str, owner: str) -> None:
        """Lease the run to ``owner``; RunLeasedError if a live executor holds it."""
        with self._tx() as tx:
            leases.claim(tx, run_id, owner)

    def renew(self, run_id: str, owner: str) -> None:
        """Renew the lease; LeaseLostError if another executor took the run over."""
        with self._tx() as tx:
            leases.renew(tx, run_id, owner)

    def write(self, batch: Batch) -> None:
        """Record a batch of tool results and events in one transaction."""
        with self._tx() as tx:
            self._write_batch(tx, batch)

    def _write_batch(self, tx: sqlite3.Connection, batch: Batch | None) -> None:
        if batch is None:
            return
        for r in batch.results:
            self._finish_call(tx, r)
        for event in batch.events:
            self._insert_event(tx, event)

    @staticmethod
    def _insert_event(tx: sqlite3.Connection, event: Event) -> None:
        tx.execute(
            "INSERT INTO events(run_id, step, ts, type, data_json) VALUES (?, ?, ?, ?, ?)",
            (event.run_id, event.step, event.ts, event.type, event.model_dump_json()),
        )

    def save_step(
        self,
        step: StepRow,
        totals: dict[str, Any],
        *,
        batch: Batch | None = None,
        owner: str | None = None,
    ) -> None:
        """Record a completed step, its checkpoint, the run's totals and ``batch`` at once.

        ``totals`` is the runtime's ``RunTotals`` as JSON: the runs row keeps a copy of
        them (for lists and the monitor), it does not count anything itself. With
        ``owner`` the write also renews that executor's lease, and nothing is written if
        another executor took the run over (LeaseLostError).
        """
        with self._tx() as tx:
            leases.renew(tx, step.run_id, owner)
            self._write_batch(tx, batch)
            tx.execute(STEP_INSERT, step_values(step))
            tx.execute(TOTALS_UPDATE, totals_values(step, totals))

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
        with self._tx() as tx:
            self._write_batch(tx, batch)
            tx.execute(
                "INSERT OR IGNORE INTO tool_calls(run_id, step, call_id, name, arguments_json,"
                " status) VALUES (?, ?, ?, ?, ?, 'started')",
                (run_id, step, call_id, name, json.dumps(arguments, default=str)),
            )

    @staticmethod
    def _finish_call(tx: sqlite3.Connection, r: ToolResult) -> None:
        tx.execute(
            "UPDATE tool_calls SET status='done', result=?, is_error=?, seconds=?"
            " WHERE run_id=? AND call_id=?",
            (r.result, int(r.is_error), r.seconds, r.run_id, r.call_id),
        )

    def unfinished_tool_calls(self, run_id: str) -> set[str]:
        """Ids of the run's tool calls that started but never finished (in flight at a
        crash): their outcome is unknown."""
        rows = self._read(
            "SELECT call_id FROM tool_calls WHERE run_id=? AND status='started'", (run_id,)
        )
        return {r["call_id"] for r in rows}

    def completed_tool_calls(self, run_id: str) -> dict[str, tuple[str, bool]]:
        """Results of every tool call of the run that finished, by call id."""
        rows = self._read(
            "SELECT call_id, result, is_error FROM tool_calls WHERE run_id=? AND status='done'",
            (run_id,),
        )
        return {r["call_id"]: (r["result"] or "", bool(r["is_error"])) for r in rows}

    def set_status(self, run_id: str, status: str) -> None:
        with self._tx() as tx:
            tx.execute(
                "UPDATE runs SET status=?, updated_at=?, pid=? WHERE id=?",
                (status, time.time(), os.getpid(), run_id),
            )

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
        """The run's ending; ``owner``'s lease is released with it."""
        now = time.time()
        with self._tx() as tx:
            leases.renew(tx, run_id, owner)
            self._write_batch(tx, batch)
            tx.execute(
                "UPDATE runs SET status=?, answer=?, error=?, finished_at=?, updated_at=?"
                " WHERE id=?",
                (status, answer, error, now, now, run_id),
            )
            leases.release(tx, run_id, owner)

    # -- controls ----------------------------------------------------------------

    def send_control(self, run_id: str, command: str, argument: str | None = None) -> int:
        """Queue a control for a run (pause, resume, abort, force_tier N)."""
        problem = control_problem(command, argument)
        if problem is not None:
            raise StoreError(problem)
        with self._tx() as tx:
            cur = tx.execute(
                "INSERT INTO controls(run_id, ts, command, argument) VALUES (?, ?, ?, ?)",
                (run_id, time.time(), command, argument),
            )
            return int(cur.lastrowid or 0)

    def take_controls(self, run_id: str) -> list[Control]:
        """Return and mark consumed every pending control of a run, oldest first."""
        # Called before every step and nearly always empty: look first, without the
        # write lock (and the commit) that taking them needs.
        if not self._read(
            "SELECT 1 FROM controls WHERE run_id=? AND consumed_at IS NULL LIMIT 1", (run_id,)
        ):
            return []
        with self._tx() as tx:
            rows = tx.execute(
                "SELECT id, run_id, command, argument FROM controls"
                " WHERE run_id=? AND consumed_at IS NULL ORDER BY id",
                (run_id,),
            ).fetchall()
            if rows:
                tx.execute(
                    f"UPDATE controls SET consumed_at=? WHERE id IN ({','.join('?' * len(rows))})",
                    (time.time(), *[r["id"] for r in rows]),
                )
        return [Control(r["id"], r["run_id"], r["command"], r["argument"]) for r in rows]

    def pending_controls(self, run_id: str) -> list[Control]:
        rows = self._read(
            "SELECT id, run_id, command, argument FROM controls"
            " WHERE run_id=? AND consumed_at IS NULL ORDER BY id",
            (run_id,),
        )
        return [Control(r["id"], r["run_id"], r["command"], r["argument"]) for r in rows]

    # -- reading -----------------------------------------------------------------

    def list_runs(self, *, limit: int = 200, status: str | None = None) -> list[RunRow]:
        sql = "SELECT * FROM runs"
        params: tuple[Any, ...] = ()
        if status:
            sql += " WHERE status = ?"
            params = (status,)
        sql += " ORDER BY created_at DESC LIMIT ?"
        return [run_row(r) for r in self._read(sql, (*params, limit))]

    def get_run(self, run_id: str) -> RunRow:
        """A run by id or unique id prefix."""
        rows = self._read("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            # A plain prefix: LIKE would take % and _ in it for wildcards.
            rows = self._read(
                "SELECT * FROM runs WHERE substr(id, 1, length(?1)) = ?1 LIMIT 2", (run_id,)
            )
        if len(rows) != 1:
            what = "no run" if not rows else "more than one run"
            raise StoreError(
                f"{what} matches {run_id!r} in {self.path}; `agentkit runs list` shows the ids"
            )
        return run_row(rows[0])

    def steps(self, run_id: str) -> list[StepRow]:
        rows = self._read("SELECT * FROM steps WHERE run_id=? ORDER BY idx", (run_id,))
        return [step_row(r) for r in rows]

    def last_step(self, run_id: str) -> StepRow | None:
        rows = self._read("SELECT * FROM steps WHERE run_id=? ORDER BY idx DESC LIMIT 1", (run_id,))
        return step_row(rows[0]) if rows else None

    def events(self, run_id: str, *, after: int = 0) -> list[tuple[int, Event]]:
        """Events of a run after the given id, oldest first.

        Events of a type this agentkit does not know (written by a newer one) are
        skipped, so an old reader still sees everything it understands.
        """
        rows = self._read(
            "SELECT id, data_json FROM events WHERE run_id=? AND id>? ORDER BY id", (run_id, after)
        )
        events: list[tuple[int, Event]] = []
        for r in rows:
            try:
                events.append((r["id"], parse_event(r["data_json"])))
            except ValidationError:
                continue
        return events

    def data_version(self) -> int:
        """Changes whenever another connection commits; cheap to poll for live views."""
        try:
            row = self._conn().execute("PRAGMA data_version").fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"run database {self.path}: {exc}") from exc
        return int(row[0])

    def wait_for_change(self, since: int, timeout: float) -> int:
        """The data version once it differs from ``since``, or after ``timeout`` seconds.

        SQLite has no change notification across processes; its data version is a read
        of the file's header in shared memory, so asking it often costs next to nothing.
        """
        deadline = time.monotonic() + timeout
        while (version := self.data_version()) == since and time.monotonic() < deadline:
            time.sleep(min(_CHANGE_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        return version

    @property
    def location(self) -> str:
        """The database file, for messages."""
        return str(self.path)
