"""The PostgreSQL run store's tables, their migrations, and how a database is recognised
as holding one of ours.

The tables are those of the SQLite store (``_schema``), in a PostgreSQL schema of their
own named ``agentkit``, so a database that other applications use too keeps their
``runs`` or ``events`` tables apart from ours. JSON columns stay text, as in SQLite: the
same decoding reads both, and a damaged value is blanked in the same way.
"""

from __future__ import annotations

from typing import Any

from ._schema import APPLICATION, SCHEMA_VERSION, Found

__all__ = [
    "CHANNEL",
    "FIRST_VERSION",
    "MIGRATIONS",
    "NAMESPACE",
    "SCHEMA",
    "SETUP_LOCK",
    "classify",
    "setup_statements",
]

NAMESPACE = "agentkit"
"""The PostgreSQL schema that holds the tables."""
FIRST_VERSION = 3
"""The store's schema version when PostgreSQL support came: its tables start there."""
CHANNEL = "agentkit_changes"
"""The LISTEN/NOTIFY channel every write transaction notifies (payload: the run id)."""
SETUP_LOCK = 0x6167_6B74  # pg_advisory_xact_lock key: one process sets the schema up at a time
_OUR_TABLES = frozenset({"meta", "runs", "steps", "tool_calls", "events", "controls"})

SCHEMA = f"""
CREATE SCHEMA IF NOT EXISTS {NAMESPACE};
CREATE TABLE {NAMESPACE}.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE {NAMESPACE}.runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    task TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION,
    graph_json TEXT NOT NULL DEFAULT '{{}}',
    config_json TEXT NOT NULL DEFAULT '{{}}',
    answer TEXT,
    error TEXT,
    current_node TEXT,
    steps BIGINT NOT NULL DEFAULT 0,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    cached_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    model_seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
    compute DOUBLE PRECISION NOT NULL DEFAULT 0,
    tiers_json TEXT NOT NULL DEFAULT '{{}}',
    escalations BIGINT NOT NULL DEFAULT 0,
    alerts BIGINT NOT NULL DEFAULT 0,
    pid INTEGER,
    totals_json TEXT NOT NULL DEFAULT '{{}}',
    owner TEXT,
    heartbeat DOUBLE PRECISION
);
CREATE INDEX runs_created ON {NAMESPACE}.runs(created_at);
CREATE TABLE {NAMESPACE}.steps (
    run_id TEXT NOT NULL REFERENCES {NAMESPACE}.runs(id),
    idx INTEGER NOT NULL,
    node TEXT NOT NULL,
    kind TEXT NOT NULL,
    model TEXT,
    tier INTEGER,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    cached_tokens BIGINT NOT NULL DEFAULT 0,
    evaluated_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
    compute DOUBLE PRECISION NOT NULL DEFAULT 0,
    started_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION NOT NULL,
    content TEXT NOT NULL DEFAULT '',
    tool_calls_json TEXT NOT NULL DEFAULT '[]',
    next_node TEXT,
    state_json TEXT NOT NULL,
    PRIMARY KEY (run_id, idx)
);
CREATE TABLE {NAMESPACE}.tool_calls (
    run_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    call_id TEXT NOT NULL,
    name TEXT NOT NULL,
    arguments_json TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT,
    is_error INTEGER NOT NULL DEFAULT 0,
    seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, call_id)
);
CREATE TABLE {NAMESPACE}.events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id TEXT NOT NULL,
    step INTEGER,
    ts DOUBLE PRECISION NOT NULL,
    type TEXT NOT NULL,
    data_json TEXT NOT NULL
);
CREATE INDEX events_run ON {NAMESPACE}.events(run_id, id);
CREATE TABLE {NAMESPACE}.controls (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id TEXT NOT NULL,
    ts DOUBLE PRECISION NOT NULL,
    command TEXT NOT NULL,
    argument TEXT,
    consumed_at DOUBLE PRECISION
);
CREATE INDEX controls_run ON {NAMESPACE}.controls(run_id, consumed_at);
"""

MIGRATIONS: dict[int, tuple[str, ...]] = {}
"""Schema changes after ``FIRST_VERSION``, by the version they lead to. A change of
``SCHEMA_VERSION`` needs its statements here as well as in ``_schema.MIGRATIONS``."""


def classify(cur: Any) -> Found:
    """Whose ``agentkit`` schema the database holds, read with cursor ``cur``.

    Missing or empty: ours to set up. Ours when ``meta`` says ``application = agentkit``;
    anything else in that schema belongs to someone else and is left alone.
    """
    cur.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
        (NAMESPACE,),
    )
    names = tuple(sorted(str(r["table_name"]) for r in cur.fetchall()))
    if not names:
        return Found("empty")
    meta: dict[str, str] = {}
    if "meta" in names:
        cur.execute(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = %s"
            " AND table_name = 'meta' AND column_name IN ('key', 'value')",
            (NAMESPACE,),
        )
        if len(cur.fetchall()) != 2:  # a meta table of another shape: someone else's
            return Found("foreign", tables=names)
        cur.execute(f"SELECT key, value FROM {NAMESPACE}.meta")
        meta = {str(r["key"]): str(r["value"]) for r in cur.fetchall()}
    if meta.get("application") != APPLICATION or not set(names) >= _OUR_TABLES:
        return Found("foreign", tables=names)
    try:
        version = int(meta.get("schema_version", "0"))
    except ValueError:
        return Found("foreign", tables=names)
    return Found("ours", version, names, marked=True)


def setup_statements(found: Found) -> list[str]:
    """What brings the database from ``found`` to ``SCHEMA_VERSION``."""
    if found.kind == "ours":
        return [s for v in range(found.version + 1, SCHEMA_VERSION + 1) for s in MIGRATIONS[v]]
    return [s for s in SCHEMA.split(";") if s.strip()]
