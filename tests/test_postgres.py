"""The PostgreSQL store beyond the contract: chosen by a URL everywhere a store is named,
`agentkit runs` and the monitor on it, credentials never shown, clear errors, the test
server itself. The store's behaviours are in tests/store_contract.py."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from textual.pilot import Pilot

from agentkit import Agent, RunStore, StoreError, tool
from agentkit.cli import main
from agentkit.store import (
    PostgresRunStore,
    TemporaryPostgres,
    default_db_path,
    open_store,
)
from agentkit.testing import ScriptedModel, call, reply
from agentkit.tui import MonitorApp
from agentkit.tui.data import Monitor, StoreProblem
from agentkit.tui.data import open_store as monitor_open_store
from agentkit.tui.widgets import RunsTable


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def _run_agent(store: Any, run_id: str = "pg-run-0001") -> None:
    model = ScriptedModel([call("add", a=2, b=3), reply("The sum is 5.")])
    result = Agent(model, tools=[add], store=store, name="adder").run("2+3?", run_id=run_id)
    assert result.status == "succeeded"


def _password(url: str) -> str:
    return url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]


def test_a_url_picks_the_postgres_store_everywhere(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _run_agent(postgres_url)  # store= a URL
    store = open_store(postgres_url, create=False)
    assert isinstance(store, PostgresRunStore)
    run = store.get_run("pg-run")
    assert run.answer == "The sum is 5." and run.steps == 3
    assert [s.kind for s in store.steps(run.id)] == ["model", "tool", "model"]
    assert main(["runs", "list", "--db", postgres_url]) == 0  # --db a URL
    assert "pg-run-0001" in capsys.readouterr().out
    monkeypatch.setenv("AGENTKIT_DB", postgres_url)  # AGENTKIT_DB a URL
    _run_agent(None, "pg-run-0002")
    assert main(["runs", "show", "pg-run-0002"]) == 0
    assert "The sum is 5." in capsys.readouterr().out
    assert main(["runs", "control", "pg-run-0002", "pause"]) == 0
    assert [c.command for c in store.pending_controls("pg-run-0002")] == ["pause"]
    with pytest.raises(StoreError, match="PostgreSQL run store, not a file"):
        default_db_path()
    with pytest.raises(StoreError, match="open_store"):
        RunStore()
    store.close()


def test_sqlite_stays_the_default(tmp_path: Path) -> None:
    _run_agent(None)
    store = open_store()
    assert isinstance(store, RunStore) and store.path == tmp_path / "default-runs.db"
    assert store.get_run("pg-run-0001").status == "succeeded"
    store.close()


def test_the_password_is_never_shown(postgres_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    secret = _password(postgres_url)
    store = open_store(postgres_url)
    assert secret not in store.location and secret not in repr(store)
    assert store.location.startswith("postgresql://agentkit@127.0.0.1:")
    with pytest.raises(StoreError) as unknown:
        store.get_run("nothing")
    wrong = postgres_url.replace(secret, "not-the-" + secret)
    with pytest.raises(StoreError, match="password authentication failed") as refused:
        open_store(wrong)
    port = postgres_url.rsplit(":", 1)[1].split("/", 1)[0]
    closed = postgres_url.replace(f":{port}/", ":1/")
    with pytest.raises(StoreError, match="cannot connect to the run store") as unreachable:
        open_store(closed)
    assert main(["runs", "list", "--db", wrong]) != 0
    printed = capsys.readouterr()
    for text in (str(unknown.value), str(refused.value), str(unreachable.value), *printed):
        assert secret not in text
    assert refused.value.__cause__ is None  # a chained libpq error could quote the URL
    store.close()


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("postgresql://a b c", "cannot be read"),
        ("postgresql://u:p@127.0.0.1:5432/db?nonsense_option=1", "cannot be read"),
    ],
)
def test_a_malformed_url_is_a_clear_error(spec: str, says: str) -> None:
    with pytest.raises(StoreError, match=says) as caught:
        open_store(spec)
    assert "postgresql://user:password@host:5432/dbname" in str(caught.value)


def test_without_psycopg_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "agentkit.store._postgres")
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(StoreError, match=r"pip install 'agentkit\[postgres\]'"):
        open_store("postgresql://agentkit@127.0.0.1:1/runs")


def test_workers_opening_a_new_database_at_once_set_it_up_once(postgres_url: str) -> None:
    from store_contract import together

    opened: list[Any] = [None] * 8
    outcome = together(8, lambda i: opened.__setitem__(i, open_store(postgres_url)))
    assert outcome == [None] * 8
    opened[0].create_run("r", name="n", task="t")
    assert all(s.get_run("r").task == "t" for s in opened)
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute("SELECT key, value FROM agentkit.meta ORDER BY key").fetchall()
    assert [k for k, _ in rows] == ["application", "schema_version"]
    for s in opened:
        s.close()


def test_the_monitor_learns_of_changes_from_notifications(postgres_url: str) -> None:
    _run_agent(postgres_url)
    opened = monitor_open_store(postgres_url)
    assert not isinstance(opened, StoreProblem)
    monitor = Monitor(opened)
    assert monitor.path.startswith("postgresql://") and _password(postgres_url) not in monitor.path
    assert monitor.poll() and not monitor.poll()  # first look, then nothing new
    assert [r.id for r in monitor.runs()] == ["pg-run-0001"]
    writer = open_store(postgres_url)
    writer.send_control("pg-run-0001", "abort")
    seen = opened.wait_for_change(opened.data_version(), timeout=30)
    assert seen and monitor.poll()  # the notification moved the version
    assert not monitor.poll()
    writer.close()
    monitor.close()


def test_the_monitor_on_a_database_without_a_store_says_so(postgres_url: str) -> None:
    opened = monitor_open_store(postgres_url)
    assert isinstance(opened, StoreProblem) and opened.title == "No run database"
    assert _password(postgres_url) not in opened.detail + opened.hint


async def test_the_monitor_app_shows_runs_of_a_postgres_store(postgres_url: str) -> None:
    await asyncio.to_thread(_run_agent, postgres_url)
    app = MonitorApp(postgres_url, poll_interval=0.05)  # type: ignore[arg-type]
    async with app.run_test(size=(140, 40)) as pilot:
        await _until(pilot, lambda: isinstance(app.screen.query(RunsTable).first(None), RunsTable))
        table = app.screen.query_one(RunsTable)
        await _until(pilot, lambda: table.row_count == 1)
        # Written meanwhile by another writer; the monitor hears of it through NOTIFY.
        await asyncio.to_thread(_run_agent, postgres_url, "pg-run-0002")
        await _until(pilot, lambda: table.row_count == 2)


async def _until(pilot: Pilot[Any], condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the monitor did not get there"
        await pilot.pause(0.05)


def test_the_test_server_runs_unprivileged_and_leaves_nothing(tmp_path: Path) -> None:
    server = TemporaryPostgres().start()
    root = server._root
    assert root is not None and (root / "data").is_dir()
    with psycopg.connect(server.url) as conn:
        user = conn.execute("SELECT current_setting('data_directory')").fetchone()
        assert user is not None and user[0] == str(root / "data")
    if os.geteuid() == 0:  # PostgreSQL refuses root: the server runs as another user
        assert (root / "data").stat().st_uid != 0
    assert _password(server.url) not in repr(server)
    server.stop()
    assert not root.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(server.url, connect_timeout=3)


def test_every_schema_version_after_the_first_has_its_postgres_migration() -> None:
    from agentkit.store import SCHEMA_VERSION
    from agentkit.store._pg_schema import FIRST_VERSION, MIGRATIONS

    # A new SQLite schema version needs its PostgreSQL statements too, or a shared store
    # could not be brought up to date.
    assert FIRST_VERSION <= SCHEMA_VERSION
    assert sorted(MIGRATIONS) == list(range(FIRST_VERSION + 1, SCHEMA_VERSION + 1))
