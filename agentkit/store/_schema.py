"""The SQLite run store's tables, the migrations from older versions of them, and how a
database file is recognised as one of ours before anything is written to it."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import tempfile
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .._errors import StoreError

__all__ = [
    "APPLICATION",
    "MIGRATIONS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "Found",
    "classify",
    "inspect_database",
]

SCHEMA_VERSION = 3
APPLICATION = "agentkit"
"""The value of meta's ``application`` row in every run database agentkit made."""
_OUR_TABLES = frozenset({"meta", "runs", "steps", "tool_calls", "events", "controls"})
_SQLITE_MAGIC = b"SQLite format 3\x00"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    task TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    finished_at REAL,
    graph_json TEXT NOT NULL DEFAULT '{}',
    config_json TEXT NOT NULL DEFAULT '{}',
    answer TEXT,
    error TEXT,
    current_node TEXT,
    steps INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    model_seconds REAL NOT NULL DEFAULT 0,
    compute REAL NOT NULL DEFAULT 0,
    tiers_json TEXT NOT NULL DEFAULT '{}',
    escalations INTEGER NOT NULL DEFAULT 0,
    alerts INTEGER NOT NULL DEFAULT 0,
    pid INTEGER,
    totals_json TEXT NOT NULL DEFAULT '{}',
    owner TEXT,
    heartbeat REAL
);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL REFERENCES runs(id),
    idx INTEGER NOT NULL,
    node TEXT NOT NULL,
    kind TEXT NOT NULL,
    model TEXT,
    tier INTEGER,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    evaluated_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    seconds REAL NOT NULL DEFAULT 0,
    compute REAL NOT NULL DEFAULT 0,
    started_at REAL NOT NULL,
    finished_at REAL NOT NULL,
    content TEXT NOT NULL DEFAULT '',
    tool_calls_json TEXT NOT NULL DEFAULT '[]',
    next_node TEXT,
    state_json TEXT NOT NULL,
    PRIMARY KEY (run_id, idx)
);
CREATE TABLE IF NOT EXISTS tool_calls (
    run_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    call_id TEXT NOT NULL,
    name TEXT NOT NULL,
    arguments_json TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT,
    is_error INTEGER NOT NULL DEFAULT 0,
    seconds REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, call_id)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    step INTEGER,
    ts REAL NOT NULL,
    type TEXT NOT NULL,
    data_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_run ON events(run_id, id);
CREATE TABLE IF NOT EXISTS controls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    ts REAL NOT NULL,
    command TEXT NOT NULL,
    argument TEXT,
    consumed_at REAL
);
CREATE INDEX IF NOT EXISTS controls_run ON controls(run_id, consumed_at);
"""

# Schema changes since version 1, applied in order to an older database of ours.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: ("ALTER TABLE runs ADD COLUMN totals_json TEXT NOT NULL DEFAULT '{}'",),
    3: ("ALTER TABLE runs ADD COLUMN owner TEXT", "ALTER TABLE runs ADD COLUMN heartbeat REAL"),
}


@dataclass(frozen=True)
class Found:
    """What a database file holds, as far as the run store is concerned."""

    kind: Literal["missing", "empty", "ours", "foreign"]
    version: int = 0
    """Our schema version, for ``ours``."""
    tables: tuple[str, ...] = ()
    """What is in it (for the message that refuses a foreign file)."""
    marked: bool = False
    """Whether meta names agentkit (files from before that row only have our tables)."""


def classify(conn: sqlite3.Connection) -> Found:
    """Whose database ``conn`` is: empty, ours (meta says so) or another application's.

    A database is ours when its ``meta`` table says ``application = agentkit``, or, for
    files written before that row existed, when it has a ``schema_version`` in ``meta``
    and all of our tables. Anything else with tables in it belongs to someone else.
    """
    names = tuple(
        sorted(
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite_%'"
            )
        )
    )
    if not names:
        return Found("empty")
    meta: dict[str, str] = {}
    if "meta" in names:
        try:
            meta = {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM meta")}
        except sqlite3.Error:  # a meta table of another shape: someone else's
            return Found("foreign", tables=names)
    legacy = "schema_version" in meta and set(names) >= _OUR_TABLES
    if meta.get("application") != APPLICATION and not legacy:
        return Found("foreign", tables=names)
    try:
        version = int(meta.get("schema_version", "0"))
    except ValueError:
        return Found("foreign", tables=names)
    return Found("ours", version, names, marked=meta.get("application") == APPLICATION)


def inspect_database(path: Path) -> Found:
    """What the file at ``path`` holds, found without writing a byte to it.

    Only its schema and ``meta`` are read, through a connection opened ``immutable`` (no
    locks, no ``-wal`` or ``-shm`` files), or from a copy where the schema may still be in
    a ``-wal`` file. StoreError for what is not a SQLite file at all.
    """
    try:
        # O_NONBLOCK: a FIFO named runs.db must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        return Found("missing")
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StoreError(f"{path} is not a regular file; pass the path of a database file")
        header = os.read(fd, len(_SQLITE_MAGIC))
    finally:
        os.close(fd)
    if not header:
        return Found("empty")  # SQLite takes an empty file for an empty database
    if header != _SQLITE_MAGIC:
        raise StoreError(
            f"{path} is not a readable SQLite database (it does not start with the SQLite "
            "header); move it away or pass another path"
        )
    try:
        found = _classify_file(path)
        if found.kind == "empty" and Path(f"{path}-wal").exists():
            # immutable reads the main file alone; with a -wal file beside it (a database
            # another connection has open) the schema may still sit in the log. A copy is
            # read instead, so not even the -shm index of the original is touched.
            with tempfile.TemporaryDirectory(prefix="agentkit-inspect-") as scratch:
                copy = Path(scratch) / "copy.db"
                shutil.copyfile(path, copy)
                shutil.copyfile(f"{path}-wal", f"{copy}-wal")
                with closing(sqlite3.connect(copy)) as conn:  # reads (and replays) the log
                    found = classify(conn)
        return found
    except (sqlite3.Error, OSError) as exc:
        raise StoreError(
            f"{path} is not a readable SQLite database ({exc}); move it away or pass another path"
        ) from exc


def _classify_file(path: Path) -> Found:
    uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
    with closing(sqlite3.connect(uri, uri=True)) as conn:
        return classify(conn)
