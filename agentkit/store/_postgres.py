"""The PostgreSQL run store: one database that every worker of a cluster writes and every
monitor reads, with the contract of the SQLite store (``Store``).

It is opened with a libpq URL, ``postgresql://user:password@host:5432/dbname``; the
password may also come from ``PGPASSWORD`` or ``~/.pgpass``, as libpq reads them. The URL
is never shown: messages and ``location`` name the user, host, port and database only.

Each thread gets its own connection in autocommit mode; a write is one explicit
transaction. Every write transaction also sends ``NOTIFY agentkit_changes`` (delivered at
commit), and ``data_version`` counts the notifications that reached a connection which
LISTENs for them, so a monitor learns of a change without querying the database.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import Cursor
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from pydantic import ValidationError

from .._errors import SchemaVersionError, StoreError
from ..events import Event, parse_event
from . import _pg_leases as leases
from ._decode import run_row, step_row, step_values, totals_values
from ._pg_schema import CHANNEL, NAMESPACE, SETUP_LOCK, classify, setup_statements
from ._rows import Batch, Control, RunRow, StepRow, ToolResult, control_problem, is_store_url
from ._schema import APPLICATION, SCHEMA_VERSION, Found

__all__ = ["PostgresRunStore"]

Connection = psycopg.Connection[DictRow]
_CONNECT_TIMEOUT = "10"  # seconds, unless the URL says otherwise: a dead host fails fast
_N = NAMESPACE
_STEP_UPSERT = (
    f"INSERT INTO {_N}.steps(run_id, idx, node, kind, model, tier, prompt_tokens,"
    " cached_tokens, evaluated_tokens, completion_tokens, seconds, compute, started_at,"
    " finished_at, content, tool_calls_json, next_node, state_json)"
    " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
    " ON CONFLICT (run_id, idx) DO UPDATE SET node=EXCLUDED.node, kind=EXCLUDED.kind,"
    " model=EXCLUDED.model, tier=EXCLUDED.tier, prompt_tokens=EXCLUDED.prompt_tokens,"
    " cached_tokens=EXCLUDED.cached_tokens, evaluated_tokens=EXCLUDED.evaluated_tokens,"
    " completion_tokens=EXCLUDED.completion_tokens, seconds=EXCLUDED.seconds,"
    " compute=EXCLUDED.compute, started_at=EXCLUDED.started_at,"
    " finished_at=EXCLUDED.finished_at, content=EXCLUDED.content,"
    " tool_calls_json=EXCLUDED.tool_calls_json, next_node=EXCLUDED.next_node,"
    " state_json=EXCLUDED.state_json"
)
_TOTALS_UPDATE = (
    f"UPDATE {_N}.runs SET steps=%s, prompt_tokens=%s, cached_tokens=%s, completion_tokens=%s,"
    " model_seconds=%s, compute=%s, tiers_json=%s, escalations=%s, alerts=%s,"
    " totals_json=%s, updated_at=%s, current_node=%s WHERE id=%s"
)
_EVENT_INSERT = (
    f"INSERT INTO {_N}.events(run_id, step, ts, type, data_json) VALUES (%s,%s,%s,%s,%s)"
)
_CONTROLS = f"SELECT id, run_id, command, argument FROM {_N}.controls"


def _redacted(url: str) -> tuple[str, str | None]:
    """(what may be shown of ``url``, its password) - StoreError for a malformed URL."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.Error:
        # Not chained: libpq's message may quote the URL, password and all.
        raise StoreError(
            "the PostgreSQL URL cannot be read; it should look like "
            "postgresql://user:password@host:5432/dbname"
        ) from None
    user = f"{parts['user']}@" if parts.get("user") else ""
    host = str(parts.get("host") or "localhost")
    port = f":{parts['port']}" if parts.get("port") else ""
    password = parts.get("password")
    return f"postgresql://{user}{host}{port}/{parts.get('dbname') or ''}", (
        str(password) if password else None
    )


class PostgresRunStore:
    """A handle on the run store in one PostgreSQL database. Safe to share between threads.

    ``url`` defaults to ``$AGENTKIT_DB`` when that is a ``postgresql://`` URL. Without
    ``create`` the database must hold a run store already.
    """

    def __init__(self, url: str | None = None, *, create: bool = True) -> None:
        if url is None:
            env = os.environ.get("AGENTKIT_DB", "")
            if not is_store_url(env):
                raise StoreError("no PostgreSQL URL given, and AGENTKIT_DB holds none")
            url = env.strip()
        self._url = url
        self._shown, self._password = _redacted(url)
        self._local = threading.local()
        self._connections: list[Connection] = []
        self._lock = threading.Lock()
        self._listener: Connection | None = None
        self._listen_lock = threading.Lock()
        self._version = 0
        self._set_up(create)

    @property
    def location(self) -> str:
        """The database, as ``postgresql://user@host:port/dbname`` (no password)."""
        return self._shown

    def __repr__(self) -> str:
        return f"PostgresRunStore({self._shown!r})"

    # -- connections -------------------------------------------------------------

    def _scrub(self, exc: BaseException) -> str:
        text = str(exc).strip()
        return text.replace(self._password, "***") if self._password else text

    def _connect(self) -> Connection:
        extra: dict[str, Any] = {}
        if "connect_timeout" not in self._url:
            extra["connect_timeout"] = _CONNECT_TIMEOUT
        try:
            return psycopg.connect(self._url, autocommit=True, row_factory=dict_row, **extra)
        except psycopg.Error as exc:
            # Not chained (the original may quote the password); the scrubbed text says why.
            raise StoreError(
                f"cannot connect to the run store at {self._shown}: {self._scrub(exc)}"
            ) from None

    def _conn(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _error(self, exc: psycopg.Error) -> StoreError:
        return StoreError(f"run store {self._shown}: {self._scrub(exc)}")

    @contextmanager
    def _tx(self, run_id: str = "") -> Iterator[Cursor[DictRow]]:
        """One write transaction; its commit notifies every listener of a change."""
        conn = self._conn()
        try:
            with conn.transaction(), conn.cursor() as cur:
                yield cur
                cur.execute("SELECT pg_notify(%s, %s)", (CHANNEL, run_id))
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[DictRow]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    def _set_up(self, create: bool) -> None:
        try:
            with self._conn().cursor() as cur:
                found = classify(cur)  # read first: a current store needs no write
        except psycopg.Error as exc:
            raise self._error(exc) from exc
        self._check(found, create)
        if found.kind == "ours" and found.version == SCHEMA_VERSION:
            return
        with self._tx() as cur:
            # Under a lock of the whole database: workers starting together set it up once.
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (SETUP_LOCK,))
            found = classify(cur)
            self._check(found, create)
            for statement in setup_statements(found):
                cur.execute(statement.encode())
            cur.executemany(
                f"INSERT INTO {_N}.meta(key, value) VALUES (%s, %s)"
                " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                [("schema_version", str(SCHEMA_VERSION)), ("application", APPLICATION)],
            )

    def _check(self, found: Found, create: bool) -> None:
        """Refuse what the store must not open (or, without ``create``, set up)."""
        if found.kind == "foreign":
            shown = ", ".join(found.tables[:8]) + (", ..." if len(found.tables) > 8 else "")
            raise StoreError(
                f"{self._shown} is not an agentkit run store: its schema {NAMESPACE!r} holds "
                f"another application's tables ({shown}), left unchanged. Use another "
                "database (--db, store= or AGENTKIT_DB) for agentkit's runs."
            )
        if found.kind == "ours" and found.version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{self._shown} was written by a newer agentkit (schema {found.version}, this "
                f"one reads up to {SCHEMA_VERSION}); upgrade agentkit to read it"
            )
        if found.kind != "ours" and not create:
            raise StoreError(
                f"no run database in {self._shown} yet (no agentkit tables); run an agent "
                "with this URL first, or pass another --db"
            )

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        with self._listen_lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
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
        with self._tx(run_id) as cur:
            cur.execute(
                f"INSERT INTO {_N}.runs(id, name, task, status, created_at, updated_at,"
                " graph_json, config_json, pid, owner, heartbeat)"
                " VALUES (%s,%s,%s,'running',%s,%s,%s,%s,%s,%s,%s)",
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

    def claim(self, run_id: str, owner: str) -> None:
        """Lease the run to ``owner``; RunLeasedError if a live executor holds it."""
        with self._tx(run_id) as cur:
            leases.claim(cur, run_id, owner)

    def renew(self, run_id: str, owner: str) -> None:
        """Renew the lease; LeaseLostError if another executor took the run over."""
        with self._tx(run_id) as cur:
            leases.renew(cur, run_id, owner)

    def write(self, batch: Batch) -> None:
        """Record a batch of tool results and events in one transaction."""
        with self._tx(_run_of(batch)) as cur:
            self._write_batch(cur, batch)

    @staticmethod
    def _write_batch(cur: Cursor[DictRow], batch: Batch | None) -> None:
        if batch is None:
            return
        if batch.results:
            cur.executemany(
                f"UPDATE {_N}.tool_calls SET status='done', result=%s, is_error=%s, seconds=%s"
                " WHERE run_id=%s AND call_id=%s",
                [_result_values(r) for r in batch.results],
            )
        if batch.events:
            cur.executemany(
                _EVENT_INSERT,
                [(e.run_id, e.step, e.ts, e.type, e.model_dump_json()) for e in batch.events],
            )

    def save_step(
        self,
        step: StepRow,
        totals: dict[str, Any],
        *,
        batch: Batch | None = None,
        owner: str | None = None,
    ) -> None:
        """Record a completed step, its checkpoint, the run's totals and ``batch`` at once
        (nothing if another executor took the run from ``owner``: LeaseLostError)."""
        with self._tx(step.run_id) as cur:
            leases.renew(cur, step.run_id, owner)
            self._write_batch(cur, batch)
            cur.execute(_STEP_UPSERT, step_values(step))
            cur.execute(_TOTALS_UPDATE, totals_values(step, totals))

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
        with self._tx(run_id) as cur:
            self._write_batch(cur, batch)
            cur.execute(
                f"INSERT INTO {_N}.tool_calls(run_id, step, call_id, name, arguments_json,"
                " status) VALUES (%s,%s,%s,%s,%s,'started') ON CONFLICT DO NOTHING",
                (run_id, step, call_id, name, json.dumps(arguments, default=str)),
            )

    def unfinished_tool_calls(self, run_id: str) -> set[str]:
        """Ids of the run's tool calls that started but never finished."""
        rows = self._read(
            f"SELECT call_id FROM {_N}.tool_calls WHERE run_id=%s AND status='started'",
            (run_id,),
        )
        return {str(r["call_id"]) for r in rows}

    def completed_tool_calls(self, run_id: str) -> dict[str, tuple[str, bool]]:
        """Results of every tool call of the run that finished, by call id."""
        rows = self._read(
            f"SELECT call_id, result, is_error FROM {_N}.tool_calls"
            " WHERE run_id=%s AND status='done'",
            (run_id,),
        )
        return {str(r["call_id"]): (r["result"] or "", bool(r["is_error"])) for r in rows}

    def set_status(self, run_id: str, status: str) -> None:
        with self._tx(run_id) as cur:
            cur.execute(
                f"UPDATE {_N}.runs SET status=%s, updated_at=%s, pid=%s WHERE id=%s",
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
        with self._tx(run_id) as cur:
            leases.renew(cur, run_id, owner)
            self._write_batch(cur, batch)
            cur.execute(
                f"UPDATE {_N}.runs SET status=%s, answer=%s, error=%s, finished_at=%s,"
                " updated_at=%s WHERE id=%s",
                (status, answer, error, now, now, run_id),
            )
            leases.release(cur, run_id, owner)

    # -- controls ----------------------------------------------------------------

    def send_control(self, run_id: str, command: str, argument: str | None = None) -> int:
        """Queue a control for a run (pause, resume, abort, force_tier N)."""
        problem = control_problem(command, argument)
        if problem is not None:
            raise StoreError(problem)
        with self._tx(run_id) as cur:
            cur.execute(
                f"INSERT INTO {_N}.controls(run_id, ts, command, argument)"
                " VALUES (%s,%s,%s,%s) RETURNING id",
                (run_id, time.time(), command, argument),
            )
            row = cur.fetchone()
        return int(row["id"]) if row else 0

    def take_controls(self, run_id: str) -> list[Control]:
        """Return and mark consumed every pending control of a run, oldest first."""
        # Asked before every step and nearly always empty: look before the transaction.
        if not self.pending_controls(run_id):
            return []
        with self._tx(run_id) as cur:
            # One statement takes and marks them: a second taker waits on the row locks
            # and then finds them consumed.
            cur.execute(
                f"UPDATE {_N}.controls SET consumed_at=%s WHERE run_id=%s AND consumed_at IS NULL"
                " RETURNING id, run_id, command, argument",
                (time.time(), run_id),
            )
            rows = cur.fetchall()
        return sorted((_control(r) for r in rows), key=lambda c: c.id)

    def pending_controls(self, run_id: str) -> list[Control]:
        rows = self._read(
            f"{_CONTROLS} WHERE run_id=%s AND consumed_at IS NULL ORDER BY id", (run_id,)
        )
        return [_control(r) for r in rows]

    # -- reading -----------------------------------------------------------------

    def list_runs(self, *, limit: int = 200, status: str | None = None) -> list[RunRow]:
        where, params = ("WHERE status = %s", (status,)) if status else ("", ())
        rows = self._read(
            f"SELECT * FROM {_N}.runs {where} ORDER BY created_at DESC LIMIT %s", (*params, limit)
        )
        return [run_row(r) for r in rows]

    def get_run(self, run_id: str) -> RunRow:
        """A run by id or unique id prefix."""
        rows = self._read(f"SELECT * FROM {_N}.runs WHERE id = %s", (run_id,))
        if not rows:
            rows = self._read(
                f"SELECT * FROM {_N}.runs WHERE starts_with(id, %s) LIMIT 2", (run_id,)
            )
        if len(rows) != 1:
            what = "no run" if not rows else "more than one run"
            raise StoreError(
                f"{what} matches {run_id!r} in {self._shown}; `agentkit runs list` shows the ids"
            )
        return run_row(rows[0])

    def steps(self, run_id: str) -> list[StepRow]:
        rows = self._read(f"SELECT * FROM {_N}.steps WHERE run_id=%s ORDER BY idx", (run_id,))
        return [step_row(r) for r in rows]

    def last_step(self, run_id: str) -> StepRow | None:
        rows = self._read(
            f"SELECT * FROM {_N}.steps WHERE run_id=%s ORDER BY idx DESC LIMIT 1", (run_id,)
        )
        return step_row(rows[0]) if rows else None

    def events(self, run_id: str, *, after: int = 0) -> list[tuple[int, Event]]:
        """Events of a run after the given id, oldest first; unknown types are skipped."""
        rows = self._read(
            f"SELECT id, data_json FROM {_N}.events WHERE run_id=%s AND id>%s ORDER BY id",
            (run_id, after),
        )
        events: list[tuple[int, Event]] = []
        for r in rows:
            try:
                events.append((int(r["id"]), parse_event(r["data_json"])))
            except ValidationError:
                continue
        return events

    # -- the change signal: LISTEN/NOTIFY ------------------------------------------------

    def data_version(self) -> int:
        """Moves with every commit notified since the last call; reads only what the
        server has already sent to this process (no query)."""
        return self._drain(0.0)

    def wait_for_change(self, since: int, timeout: float) -> int:
        """The data version once it differs from ``since``, or after ``timeout`` seconds."""
        version = self._drain(0.0)
        return version if version != since else self._drain(timeout, stop_after=1)

    def _drain(self, timeout: float, stop_after: int | None = None) -> int:
        with self._listen_lock:
            listener = self._listener
            if listener is None or listener.closed or listener.broken:
                listener = self._connect()
                try:
                    listener.execute(f"LISTEN {CHANNEL}".encode())
                except psycopg.Error as exc:
                    raise self._error(exc) from exc
                self._listener = listener
                self._version += 1  # changes made while nobody listened are not known
            try:
                for _ in listener.notifies(timeout=timeout, stop_after=stop_after):
                    self._version += 1
            except psycopg.Error as exc:
                raise self._error(exc) from exc
            return self._version


def _run_of(batch: Batch) -> str:
    first = batch.events[:1] or batch.results[:1]
    return first[0].run_id if first else ""


def _result_values(r: ToolResult) -> tuple[Any, ...]:
    return (r.result, int(r.is_error), r.seconds, r.run_id, r.call_id)


def _control(r: DictRow) -> Control:
    return Control(int(r["id"]), r["run_id"], r["command"], r["argument"])
