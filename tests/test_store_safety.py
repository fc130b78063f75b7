"""The run store never changes a database that is not its own, and one bad value in a row
does not break the readers (``agentkit runs``, the monitor).

The foreign databases here are real SQLite files, made the way other applications make
them; every refusal is checked by comparing the file's bytes (and its neighbours, such
as a ``-wal`` file) before and after.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from agentkit import Agent
from agentkit._errors import StoreError
from agentkit.cli import main
from agentkit.store import RunStore
from agentkit.testing import ScriptedModel, reply
from agentkit.tui.data import StoreProblem, open_store

FOREIGN = "another application's SQLite database"


def _notes_app(path: Path) -> None:
    """A note-taking app: its own tables, rollback journal (the SQLite default)."""
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);"
            "INSERT INTO notes (body) VALUES ('buy milk'), ('call mum');"
            "CREATE INDEX notes_body ON notes (body);"
        )


def _app_with_meta(path: Path) -> None:
    """An app that keeps its own ``meta`` key/value table, schema_version included."""
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "INSERT INTO meta VALUES ('schema_version', '2'), ('owner', 'inventory');"
            "CREATE TABLE items (sku TEXT, qty INTEGER);"
            "INSERT INTO items VALUES ('A-1', 4);"
        )


def _app_with_other_meta(path: Path) -> None:
    """A ``meta`` table of another shape (no key/value columns)."""
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(
            "CREATE TABLE meta (id INTEGER PRIMARY KEY, data BLOB);"
            "INSERT INTO meta (data) VALUES (x'00ff');"
        )


def _app_with_our_table_names(path: Path) -> None:
    """Tables called runs and steps, but no meta saying they are agentkit's."""
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(
            "CREATE TABLE runs (id TEXT, km REAL); CREATE TABLE steps (run TEXT, n INTEGER);"
            "INSERT INTO runs VALUES ('monday', 5.2);"
        )


FOREIGN_APPS: list[Callable[[Path], None]] = [
    _notes_app,
    _app_with_meta,
    _app_with_other_meta,
    _app_with_our_table_names,
]


def _digest(folder: Path) -> dict[str, str]:
    """Every file in the folder (database, -wal, -shm, journals) by content hash."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("make", FOREIGN_APPS, ids=lambda f: f.__name__.strip("_"))
def test_a_foreign_database_is_refused_and_left_byte_for_byte(
    tmp_path: Path, make: Callable[[Path], None], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "other_app.db"
    make(path)
    before = _digest(tmp_path)
    # The command line, read-only by nature: `agentkit runs list --db other_app.db`.
    assert main(["runs", "list", "--db", str(path)]) == 2
    assert FOREIGN in capsys.readouterr().err
    assert main(["runs", "show", "x", "--db", str(path)]) == 2
    # An agent told to write its runs there.
    agent = Agent(ScriptedModel([reply("hi")]), store=path)
    with pytest.raises(StoreError, match=FOREIGN) as info:
        agent.run("hello")
    assert "left unchanged" in str(info.value)
    # A store opened directly, and the monitor.
    for create in (True, False):
        with pytest.raises(StoreError, match=FOREIGN):
            RunStore(path, create=create)
    problem = open_store(path)
    assert isinstance(problem, StoreProblem) and FOREIGN in problem.detail
    assert _digest(tmp_path) == before  # no WAL switch, no -wal/-shm, no new table
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_a_foreign_database_in_use_in_wal_mode_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    owner = sqlite3.connect(path)  # the other application, still running
    owner.execute("PRAGMA journal_mode=WAL")
    owner.execute("CREATE TABLE events (t REAL, what TEXT)")
    owner.execute("INSERT INTO events VALUES (1.5, 'boot')")
    owner.commit()
    before = _digest(tmp_path)
    assert (tmp_path / "live.db-wal").exists()
    with pytest.raises(StoreError, match=r"tables: events"):
        RunStore(path)
    assert _digest(tmp_path) == before
    owner.close()


def test_the_message_names_the_tables_and_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "other_app.db"
    _notes_app(path)
    with pytest.raises(StoreError) as info:
        RunStore(path)
    assert str(info.value) == (
        f"{path} is not an agentkit run database: it is another application's SQLite "
        "database (tables: notes), left unchanged. Pass another path (--db, store= or "
        "AGENTKIT_DB) for agentkit's runs."
    )


def test_an_empty_file_or_database_becomes_a_store(tmp_path: Path) -> None:
    empty_file = tmp_path / "empty.db"
    empty_file.touch()
    tableless = tmp_path / "tableless.db"
    with closing(sqlite3.connect(tableless)) as conn:
        conn.execute("PRAGMA user_version = 7")  # a database, but nothing in it
    for path in (empty_file, tableless):
        result = Agent(ScriptedModel([reply("hi")]), store=path).run("hello")
        assert result.exit_code == 0
        with closing(sqlite3.connect(path)) as conn:
            meta = dict(conn.execute("SELECT key, value FROM meta"))
        assert meta["application"] == "agentkit"
        assert RunStore(path, create=False).get_run(result.run_id).status == "succeeded"


def test_an_empty_database_is_not_taken_by_a_reader(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with pytest.raises(StoreError, match="not an agentkit run database"):
        RunStore(path, create=False)
    assert path.read_bytes() == b""


def test_a_store_from_before_the_marker_is_recognised_and_marked(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    RunStore(path).close()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("DELETE FROM meta WHERE key = 'application'")  # as older agentkits wrote
        conn.commit()
    store = RunStore(path, create=False)
    store.create_run("r1", name="n", task="t")
    assert store.get_run("r1").status == "running"
    store.close()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key='application'").fetchone() == (
            "agentkit",
        )


def test_not_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"not a regular file|directory"):
        RunStore(tmp_path, create=False)


# -- a bad value in a row --------------------------------------------------------------

BAD_VALUES = [
    ("tiers_json", "{not json"),
    ("tiers_json", '{"qwen": "many"}'),
    ("tiers_json", "[1, 2]"),
    ("graph_json", "nan nan"),
    ("config_json", '"a string"'),
    ("totals_json", "{"),
]


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    path = tmp_path / "runs.db"
    for task in ("first", "second"):
        Agent(ScriptedModel([reply(f"answer to {task}")]), store=path, name=task).run(task)
    return path


@pytest.mark.parametrize(("column", "value"), BAD_VALUES)
def test_a_bad_json_value_is_blanked_with_a_warning(
    damaged: Path,
    column: str,
    value: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with closing(sqlite3.connect(damaged)) as conn:
        run_id = conn.execute("SELECT id FROM runs WHERE name = 'first'").fetchone()[0]
        conn.execute(f"UPDATE runs SET {column} = ? WHERE id = ?", (value, run_id))
        conn.commit()
    store = RunStore(damaged, create=False)
    with caplog.at_level(logging.WARNING, logger="agentkit.store"):
        runs = store.list_runs()
    assert sorted(r.name for r in runs) == ["first", "second"]  # nothing lost
    bad = next(r for r in runs if r.id == run_id)
    field = {"tiers_json": "tiers", "graph_json": "graph", "config_json": "config"}
    assert getattr(bad, field.get(column, "totals")) == {}
    assert f"run {run_id}: {column}" in caplog.text
    assert store.get_run(run_id).answer == "answer to first"
    store.close()
    # The command line and the monitor's data layer get through too.
    capsys.readouterr()
    assert main(["runs", "list", "--db", str(damaged)]) == 0
    assert main(["runs", "list", "--json", "--db", str(damaged)]) == 0
    assert main(["runs", "show", run_id, "--db", str(damaged)]) == 0
    assert "answer to first" in capsys.readouterr().out
    monitor_store = open_store(damaged)
    assert isinstance(monitor_store, RunStore)
    assert len(monitor_store.list_runs()) == 2


def test_bad_tool_calls_json_in_a_step_is_blanked(
    damaged: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with closing(sqlite3.connect(damaged)) as conn:
        run_id, idx = conn.execute("SELECT run_id, idx FROM steps LIMIT 1").fetchone()
        conn.execute("UPDATE steps SET tool_calls_json = '[{' WHERE run_id = ?", (run_id,))
        conn.commit()
    store = RunStore(damaged, create=False)
    with caplog.at_level(logging.WARNING, logger="agentkit.store"):
        steps = store.steps(run_id)
    assert steps and steps[0].tool_calls == []
    assert f"run {run_id} step {idx}: tool_calls_json is not valid JSON" in caplog.text
    assert json.loads(steps[0].state_json)  # the rest of the row is intact
    store.close()
