"""The SQLite run store: schema, writes, reads, controls, bad databases."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from store_contract import step  # one StepRow maker for every store test

from agentkit._errors import SchemaVersionError, StoreError
from agentkit.events import DetectorStrike, Event, ModelCalled, RunStarted, TierChosen
from agentkit.models import Usage
from agentkit.runtime import RunTotals, StepRecord
from agentkit.store import SCHEMA_VERSION, Batch, RunStore, ToolResult


def add_events(store: RunStore, *events: Event) -> None:
    store.write(Batch(events=list(events)))


def record(tier: int | None = 0, *, escalations: int = 0, strikes: int = 0) -> StepRecord:
    """What the runtime adds to its totals for a step like ``step()``."""
    return StepRecord(
        state=None,
        kind="model",
        model="m",
        tier=tier,
        usage=Usage(prompt_tokens=100, cached_tokens=80, evaluated_tokens=20, completion_tokens=10),
        model_calls=1,
        compute=0.1,
        escalations=escalations,
        strikes=strikes,
    )


def test_wal_mode_and_schema_version(store: RunStore) -> None:
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    assert int(version) == SCHEMA_VERSION


def test_run_lifecycle_and_totals(store: RunStore) -> None:
    store.create_run("r1", name="calc", task="2+2", graph={"nodes": {"model": "model"}})
    totals = RunTotals()
    totals.add(record(0), 1)
    store.save_step(step("r1", 1, tier=0), totals.to_json())
    totals.add(record(1, escalations=1, strikes=1), 2)
    store.save_step(step("r1", 2, tier=1), totals.to_json())
    add_events(
        store,
        TierChosen(
            run_id="r1",
            step=2,
            node="model",
            tier=1,
            model="big",
            reason="low confidence",
            previous_tier=0,
        ),
        DetectorStrike(
            run_id="r1",
            step=2,
            detector="same_call",
            message="m",
            window="w",
            steps=[1, 2],
            response="nudge",
        ),
    )
    store.finish_run("r1", "succeeded", answer="4")
    run = store.get_run("r1")
    assert run.status == "succeeded" and run.answer == "4" and run.finished_at is not None
    assert run.steps == 2 and run.prompt_tokens == 200 and run.cached_tokens == 160
    assert run.tiers == {"0": 1, "1": 1}
    assert run.escalations == 1 and run.alerts == 1
    assert run.totals["tiers"] == {"m": 2} and run.totals["model_calls"] == 2
    assert [s.idx for s in store.steps("r1")] == [1, 2]
    assert store.last_step("r1") is not None


def test_totals_are_the_runtimes_not_counted_from_events(store: RunStore) -> None:
    # Events never change the totals: the runs row is a copy of what the runtime counted.
    store.create_run("r", name="n", task="t")
    add_events(
        store,
        DetectorStrike(
            run_id="r",
            step=1,
            detector="same_call",
            message="m",
            window="",
            steps=[1],
            response="nudge",
        ),
    )
    assert store.get_run("r").alerts == 0
    totals = RunTotals()
    totals.add(record(0, strikes=1), 1)
    store.save_step(step("r", 1), totals.to_json())
    assert store.get_run("r").alerts == 1


def test_a_first_schema_database_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    RunStore(path).close()
    conn = sqlite3.connect(path)
    for added_since_v1 in ("totals_json", "owner", "heartbeat"):
        conn.execute(f"ALTER TABLE runs DROP COLUMN {added_since_v1}")
    conn.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    conn.execute(
        "INSERT INTO runs(id, name, task, status, created_at, updated_at)"
        " VALUES ('old', 'n', 't', 'succeeded', 0, 0)"
    )
    conn.commit()
    conn.close()
    store = RunStore(path)
    assert store.get_run("old").totals == {}
    version = (
        sqlite3.connect(path)
        .execute("SELECT value FROM meta WHERE key='schema_version'")
        .fetchone()[0]
    )
    assert int(version) == SCHEMA_VERSION


def test_get_run_by_prefix_and_unknown(store: RunStore) -> None:
    store.create_run("abcdef123456", name="n", task="t")
    assert store.get_run("abcd").id == "abcdef123456"
    with pytest.raises(StoreError, match="no run matches"):
        store.get_run("zzz")


def test_events_roundtrip_typed(store: RunStore) -> None:
    store.create_run("r", name="n", task="t")
    add_events(
        store,
        RunStarted(run_id="r", name="n", task="t"),
        ModelCalled(
            run_id="r",
            step=1,
            model="m",
            tier=0,
            prompt_tokens=5,
            cached_tokens=0,
            evaluated_tokens=5,
            completion_tokens=2,
            seconds=0.1,
            finish_reason="stop",
            content="hi",
        ),
    )
    events = store.events("r")
    assert [type(e).__name__ for _, e in events] == ["RunStarted", "ModelCalled"]
    first_id = events[0][0]
    assert [e.type for _, e in store.events("r", after=first_id)] == ["model_called"]


def test_controls_are_consumed_once(store: RunStore) -> None:
    store.create_run("r", name="n", task="t")
    store.send_control("r", "pause")
    store.send_control("r", "force_tier", "2")
    assert len(store.pending_controls("r")) == 2
    taken = store.take_controls("r")
    assert [(c.command, c.argument) for c in taken] == [("pause", None), ("force_tier", "2")]
    assert store.take_controls("r") == []
    with pytest.raises(StoreError, match="unknown control"):
        store.send_control("r", "explode")


def test_tool_calls_durable_for_resume(store: RunStore) -> None:
    store.create_run("r", name="n", task="t")
    store.tool_call_started("r", 2, "c1", "add", {"a": 1})
    store.tool_call_started("r", 2, "c2", "add", {"a": 2})
    store.write(Batch(results=[ToolResult("r", "c1", "3", False, 0.01)]))
    assert store.completed_tool_calls("r") == {"c1": ("3", False)}


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    RunStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaVersionError, match="newer agentkit"):
        RunStore(path)


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a readable SQLite database"):
        RunStore(path)


def test_missing_database_without_create(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no run database"):
        RunStore(tmp_path / "absent.db", create=False)


def test_many_threads_write_without_loss(store: RunStore) -> None:
    def writer(i: int) -> None:
        rid = f"run{i}"
        store.create_run(rid, name="n", task="t")
        totals = RunTotals()
        for k in range(1, 26):
            totals.add(record(), k)
            store.save_step(step(rid, k), totals.to_json())
        store.finish_run(rid, "succeeded")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    runs = store.list_runs()
    assert len(runs) == 20
    assert all(r.steps == 25 and r.prompt_tokens == 2500 for r in runs)


def test_events_of_unknown_types_are_skipped(store: RunStore) -> None:
    store.create_run("r", name="n", task="t")
    add_events(store, RunStarted(run_id="r", name="n", task="t"))
    conn = sqlite3.connect(store.path)
    conn.execute(
        "INSERT INTO events(run_id, step, ts, type, data_json) VALUES ('r', 1, 0, 'future',"
        ' \'{"type": "from_the_future", "run_id": "r"}\')'
    )
    conn.commit()
    conn.close()
    add_events(store, RunStarted(run_id="r", name="n", task="t", resumed=True))
    assert [e.type for _, e in store.events("r")] == ["run_started", "run_started"]
