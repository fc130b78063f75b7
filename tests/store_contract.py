"""The run store contract: every behaviour a store must have, tested once.

``StoreContract`` holds the tests; ``tests/test_store_contract.py`` runs them against each
store (SQLite, PostgreSQL) by giving a ``backend`` fixture: a ``Backend`` opens handles on
one fresh store and reaches under it for what only a test does (age a heartbeat, damage
a value, write a row a newer agentkit would write).
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Protocol

import pytest

from agentkit import Agent, LeaseLostError, ResumeError, RunLeasedError, tool
from agentkit._errors import SchemaVersionError, StoreError
from agentkit.events import DetectorStrike, ModelCalled, RunStarted
from agentkit.models import Usage
from agentkit.runtime import RunTotals, StepRecord
from agentkit.store import SCHEMA_VERSION, Batch, StepRow, Store, ToolResult
from agentkit.store._lease import STALE_SECONDS, new_owner
from agentkit.testing import ScriptedModel, Turn, call, reply


class Backend(Protocol):
    """One fresh store of one kind, and the raw access its tests need."""

    name: str

    def open(self, *, create: bool = True) -> Store:
        """A new handle on the store (closed by the backend at teardown)."""
        ...

    def close_all(self) -> None:
        """Close every handle opened so far."""

    def age(self, run_id: str, seconds: float) -> None:
        """Move the run's heartbeat ``seconds`` into the past."""

    def set_column(self, table: str, column: str, value: str, run_id: str) -> None:
        """Write a raw text value into a column of the run's rows."""

    def insert_event_json(self, run_id: str, data_json: str) -> None:
        """An events row with any JSON, as a newer agentkit might write it."""

    def meta(self) -> dict[str, str]:
        """The store's meta table."""
        ...

    def set_meta(self, key: str, value: str) -> None: ...

    def add_foreign_table(self) -> None:
        """Make the (still empty) place of the store hold another application's table."""

    def foreign_rows(self) -> list[tuple[Any, ...]]:
        """What that table holds."""
        ...


def step(run_id: str, idx: int, tier: int | None = 0) -> StepRow:
    return StepRow(
        run_id=run_id,
        idx=idx,
        node="model",
        kind="model",
        started_at=1.0,
        finished_at=2.0,
        state_json=json.dumps({"state": {}, "counters": {}}),
        model="m",
        tier=tier,
        prompt_tokens=100,
        cached_tokens=80,
        evaluated_tokens=20,
        completion_tokens=10,
        seconds=0.5,
        compute=0.1,
        next_node="tools",
    )


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


def strike(run_id: str, step: int = 1) -> DetectorStrike:
    return DetectorStrike(
        run_id=run_id, step=step, detector="same_call", message="m", window="w",
        steps=[step], response="nudge",
    )  # fmt: skip


def together(n: int, work: Any) -> list[BaseException | None]:
    """Run ``work(i)`` on n threads released at once; what each raised (None: nothing)."""
    gate = threading.Barrier(n)
    outcome: list[BaseException | None] = [None] * n

    def body(i: int) -> None:
        gate.wait()
        try:
            work(i)
        except BaseException as exc:  # collected and judged by the test
            outcome[i] = exc

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcome


class Crash(BaseException):
    """Stands in for the death of a process: nothing in the runtime catches it."""


class StoreContract:
    """Every store behaviour; a subclass supplies the ``backend`` fixture."""

    # -- schema and opening ------------------------------------------------------------

    def test_a_new_store_is_marked_ours_at_the_current_version(self, backend: Backend) -> None:
        backend.open()
        meta = backend.meta()
        assert meta["application"] == "agentkit"
        assert int(meta["schema_version"]) == SCHEMA_VERSION

    def test_a_store_written_by_a_newer_agentkit_is_refused(self, backend: Backend) -> None:
        backend.open().create_run("r", name="n", task="t")
        backend.close_all()  # a process checks a store when it first opens it
        backend.set_meta("schema_version", str(SCHEMA_VERSION + 90))
        with pytest.raises(SchemaVersionError, match="newer agentkit"):
            backend.open()

    def test_another_applications_tables_are_refused_and_left_alone(self, backend: Backend) -> None:
        backend.add_foreign_table()
        before = backend.foreign_rows()
        with pytest.raises(StoreError, match="another application") as caught:
            backend.open()
        assert "orders" in str(caught.value)  # names what it found
        assert backend.foreign_rows() == before

    def test_without_create_a_missing_store_is_an_error(self, backend: Backend) -> None:
        with pytest.raises(StoreError, match="no run database"):
            backend.open(create=False)

    def test_a_second_handle_opens_an_existing_store_without_create(self, backend: Backend) -> None:
        backend.open().create_run("r", name="n", task="t")
        assert backend.open(create=False).get_run("r").task == "t"

    # -- runs, steps, totals -----------------------------------------------------------

    def test_run_lifecycle_and_totals(self, backend: Backend) -> None:
        store = backend.open()
        store.create_run("r1", name="calc", task="2+2", graph={"nodes": {"model": "model"}})
        totals = RunTotals()
        totals.add(record(0), 1)
        store.save_step(step("r1", 1, tier=0), totals.to_json())
        totals.add(record(1, escalations=1, strikes=1), 2)
        store.save_step(step("r1", 2, tier=1), totals.to_json(), batch=Batch(events=[strike("r1")]))
        store.finish_run("r1", "succeeded", answer="4")
        run = store.get_run("r1")
        assert run.status == "succeeded" and run.answer == "4" and run.finished_at is not None
        assert run.steps == 2 and run.prompt_tokens == 200 and run.cached_tokens == 160
        assert run.tiers == {"0": 1, "1": 1} and run.graph == {"nodes": {"model": "model"}}
        assert run.escalations == 1 and run.alerts == 1
        assert run.totals["tiers"] == {"m": 2} and run.totals["model_calls"] == 2
        assert [s.idx for s in store.steps("r1")] == [1, 2]
        last = store.last_step("r1")
        assert last is not None and last.tier == 1 and last.next_node == "tools"
        assert json.loads(last.state_json) == {"state": {}, "counters": {}}

    def test_totals_are_the_runtimes_never_counted_from_events(self, backend: Backend) -> None:
        store = backend.open()
        store.create_run("r", name="n", task="t")
        store.write(Batch(events=[strike("r")]))
        assert store.get_run("r").alerts == 0
        totals = RunTotals()
        totals.add(record(0, strikes=1), 1)
        store.save_step(step("r", 1), totals.to_json())
        assert store.get_run("r").alerts == 1

    def test_a_step_written_again_replaces_the_first(self, backend: Backend) -> None:
        store = backend.open()
        store.create_run("r", name="n", task="t")
        store.save_step(step("r", 1, tier=0), {})
        store.save_step(step("r", 1, tier=2), {})
        assert [(s.idx, s.tier) for s in store.steps("r")] == [(1, 2)]

    def test_a_run_id_is_taken_once(self, backend: Backend) -> None:
        store = backend.open()
        store.create_run("r", name="n", task="t")
        with pytest.raises(StoreError):
            store.create_run("r", name="n", task="again")
        assert store.get_run("r").task == "t"

    def test_status_changes_and_listing(self, backend: Backend) -> None:
        store = backend.open()
        for rid in ("a", "b", "c"):
            store.create_run(rid, name="n", task=rid)
        store.set_status("b", "paused")
        store.finish_run("c", "failed", error="boom")
        assert [r.id for r in store.list_runs()] == ["c", "b", "a"]  # newest first
        assert [r.id for r in store.list_runs(status="paused")] == ["b"]
        assert len(store.list_runs(limit=2)) == 2
        assert store.get_run("c").error == "boom" and store.get_run("c").status == "failed"

    def test_get_run_by_prefix_unknown_and_ambiguous(self, backend: Backend) -> None:
        store = backend.open()
        store.create_run("abcdef123456", name="n", task="t")
        store.create_run("abzz", name="n", task="t")
        assert store.get_run("abcd").id == "abcdef123456"
        with pytest.raises(StoreError, match="no run matches") as caught:
            store.get_run("zzz")
        assert store.location in str(caught.value)
        with pytest.raises(StoreError, match="more than one run"):
            store.get_run("ab")
        with pytest.raises(StoreError, match="no run matches"):
            store.get_run("a%")  # a pattern character is not a wildcard

    # -- events ---------------------------------------------------------------------

    def test_events_round_trip_typed_in_order(self, backend: Backend) -> None:
        store = backend.open()
        store.create_run("r", name="n", task="t")
        called = ModelCalled(
            run_id="r", step=1, model="m", tier=0, prompt_tokens=5, cached_tokens=0,
            evaluated_tokens=5, completion_tokens=2, seconds=0.1, finish_reason="stop",
            content="hi",
        )  # fmt: skip
        store.write(Batch(events=[RunStarted(run_id="r", name="n", task="t"), called]))
        events = store.events("r")
        assert [type(e).__name__ for _, e in events] == ["RunStarted", "ModelCalled"]
        assert events[1][1] == called
        assert [e.type for _, e in store.events("r", after=events[0][0])] == ["model_called"]
        store.write(Batch(events=[strike("r", 2)]))
        ids = [i for i, _ in store.events("r")]
        assert ids == sorted(ids) and len(set(ids)) == 3

    def test_events_of_unknown_types_are_skipped(self, backend: Backend) -> None:
        store = backend.open()
        store.create_run("r", name="n", task="t")
        store.write(Batch(events=[RunStarted(run_id="r", name="n", task="t")]))
        backend.insert_event_json("r", '{"type": "from_the_future", "run_id": "r"}')
        store.write(Batch(events=[RunStarted(run_id="r", name="n", task="t", resumed=True)]))
        assert [e.type for _, e in store.events("r")] == ["run_started", "run_started"]

    def test_a_failed_write_keeps_none_of_its_batch(self, backend: Backend) -> None:
        store = backend.open()
        first, second = new_owner(), new_owner()
        store.create_run("r", name="n", task="t", owner=first)
        backend.age("r", STALE_SECONDS + 1)
        store.claim("r", second)
        with pytest.raises(LeaseLostError):
            store.save_step(step("r", 1), {}, batch=Batch(events=[strike("r")]), owner=first)
        with pytest.raises(LeaseLostError):
            store.finish_run("r", "succeeded", batch=Batch(events=[strike("r")]), owner=first)
        assert store.events("r") == [] and store.steps("r") == []
        assert store.get_run("r").status == "running"

    # -- the tool-call journal -----------------------------------------------------------

    def test_the_tool_call_journal(self, backend: Backend) -> None:
        store = backend.open()
        store.create_run("r", name="n", task="t")
        store.tool_call_started("r", 2, "c1", "add", {"a": 1})
        store.tool_call_started("r", 2, "c2", "add", {"a": 2})
        store.tool_call_started("r", 2, "c1", "add", {"a": 1})  # started again: ignored
        store.write(Batch(results=[ToolResult("r", "c1", "3", False, 0.01)]))
        assert store.completed_tool_calls("r") == {"c1": ("3", False)}
        assert store.unfinished_tool_calls("r") == {"c2"}
        store.save_step(
            step("r", 2), {}, batch=Batch(results=[ToolResult("r", "c2", "no", True, 0.1)])
        )
        assert store.completed_tool_calls("r") == {"c1": ("3", False), "c2": ("no", True)}
        assert store.unfinished_tool_calls("r") == set()

    # -- controls ---------------------------------------------------------------------

    def test_controls_are_handed_out_once_in_order(self, backend: Backend) -> None:
        store = backend.open()
        store.create_run("r", name="n", task="t")
        store.send_control("r", "pause")
        store.send_control("r", "force_tier", "2")
        assert [c.command for c in store.pending_controls("r")] == ["pause", "force_tier"]
        taken = store.take_controls("r")
        assert [(c.command, c.argument) for c in taken] == [("pause", None), ("force_tier", "2")]
        assert store.take_controls("r") == [] and store.pending_controls("r") == []
        with pytest.raises(StoreError, match="unknown control"):
            store.send_control("r", "explode")
        with pytest.raises(StoreError, match="tier number"):
            store.send_control("r", "force_tier", "high")

    def test_two_takers_at_once_never_both_get_a_control(self, backend: Backend) -> None:
        store = backend.open()
        store.create_run("r", name="n", task="t")
        for _ in range(20):
            store.send_control("r", "pause")
        handles = [backend.open() for _ in range(4)]
        taken: list[list[int]] = [[] for _ in handles]

        def take(i: int) -> None:
            for _ in range(10):
                taken[i] += [c.id for c in handles[i].take_controls("r")]

        assert together(len(handles), take) == [None] * len(handles)
        ids = [c for t in taken for c in t]
        assert len(ids) == 20 and len(set(ids)) == 20

    # -- leases ------------------------------------------------------------------------

    def test_a_live_lease_is_refused_and_a_stale_one_taken_over(self, backend: Backend) -> None:
        store = backend.open()
        first, second = new_owner(), new_owner()
        store.create_run("r", name="n", task="t", owner=first)
        with pytest.raises(RunLeasedError, match="another executor"):
            store.claim("r", second)
        store.claim("r", first)  # its own lease: fine
        backend.age("r", STALE_SECONDS + 1)
        store.claim("r", second)
        with pytest.raises(LeaseLostError, match="took this run over"):
            store.renew("r", first)
        store.renew("r", second)
        with pytest.raises(ResumeError, match="no such run"):
            store.claim("nothing", first)

    def test_a_step_is_not_written_by_an_executor_that_lost_the_lease(
        self, backend: Backend
    ) -> None:
        store = backend.open()
        first, second = new_owner(), new_owner()
        store.create_run("r", name="n", task="t", owner=first)
        backend.age("r", STALE_SECONDS + 1)
        store.claim("r", second)
        with pytest.raises(LeaseLostError):
            store.save_step(step("r", 1), {}, owner=first)
        assert store.steps("r") == []
        store.save_step(step("r", 1), {}, owner=second)
        assert len(store.steps("r")) == 1

    def test_a_stale_lease_reads_as_interrupted_and_finishing_releases_it(
        self, backend: Backend
    ) -> None:
        store = backend.open()
        owner = new_owner()
        store.create_run("r", name="n", task="t", owner=owner)
        assert store.get_run("r").status == "running"
        backend.age("r", STALE_SECONDS + 1)
        assert store.get_run("r").status == "interrupted"
        assert [r.status for r in store.list_runs()] == ["interrupted"]
        store.claim("r", owner)  # a renewed lease makes it live again
        assert store.get_run("r").status == "running"
        store.finish_run("r", "succeeded", answer="x", owner=owner)
        store.claim("r", new_owner())  # released: anyone may claim it (resume refuses it)
        assert store.get_run("r").status == "succeeded"

    def test_concurrent_claims_of_a_stale_run_elect_one_executor(self, backend: Backend) -> None:
        store = backend.open()
        store.create_run("r", name="n", task="t", owner=new_owner())
        backend.age("r", STALE_SECONDS + 1)
        handles = [backend.open() for _ in range(6)]
        owners = [new_owner() for _ in handles]
        outcome = together(len(handles), lambda i: handles[i].claim("r", owners[i]))
        winners = [owners[i] for i, exc in enumerate(outcome) if exc is None]
        assert len(winners) == 1, outcome
        assert all(isinstance(e, RunLeasedError) for e in outcome if e is not None)
        for i, owner in enumerate(owners):
            if owner == winners[0]:
                handles[i].renew("r", owner)
            else:
                with pytest.raises(LeaseLostError):
                    handles[i].renew("r", owner)

    # -- many writers, the change signal -------------------------------------------------

    def test_many_threads_write_without_loss(self, backend: Backend) -> None:
        store = backend.open()

        def writer(i: int) -> None:
            rid = f"run{i}"
            store.create_run(rid, name="n", task="t", owner=new_owner())
            totals = RunTotals()
            for k in range(1, 16):
                totals.add(record(), k)
                store.save_step(
                    step(rid, k), totals.to_json(), batch=Batch(events=[strike(rid, k)])
                )
            store.finish_run(rid, "succeeded")

        assert together(12, writer) == [None] * 12
        runs = store.list_runs()
        assert len(runs) == 12
        assert all(r.steps == 15 and r.prompt_tokens == 1500 and r.alerts == 0 for r in runs)
        assert all(len(store.events(r.id)) == 15 for r in runs)

    def test_the_change_signal_moves_on_another_handles_commit(self, backend: Backend) -> None:
        watcher, writer = backend.open(), backend.open()
        writer.create_run("r", name="n", task="t")
        version = watcher.data_version()
        assert watcher.wait_for_change(version, timeout=0.2) == version  # nothing written
        assert watcher.data_version() == version
        writer.send_control("r", "pause")
        moved = watcher.wait_for_change(version, timeout=30)
        assert moved != version and watcher.data_version() == moved

    # -- damaged values ----------------------------------------------------------------

    @pytest.mark.parametrize(
        ("table", "column", "value", "field"),
        [
            ("runs", "tiers_json", '{"qwen": "many"}', "tiers"),
            ("runs", "graph_json", "nan nan", "graph"),
            ("runs", "totals_json", "{", "totals"),
            ("steps", "tool_calls_json", "[{", "tool_calls"),
        ],
    )
    def test_a_damaged_value_is_blanked_with_a_warning(
        self,
        backend: Backend,
        caplog: pytest.LogCaptureFixture,
        table: str,
        column: str,
        value: str,
        field: str,
    ) -> None:
        store = backend.open()
        store.create_run("r", name="n", task="t", graph={"nodes": {}})
        store.save_step(step("r", 1), {"tier_steps": {"0": 1}})
        backend.set_column(table, column, value, "r")
        with caplog.at_level(logging.WARNING, logger="agentkit.store"):
            row: Any = store.steps("r")[0] if table == "steps" else store.list_runs()[0]
        assert not getattr(row, field)
        assert f"{column}" in caplog.text and "run r" in caplog.text
        assert store.get_run("r").task == "t"  # the rest of the row is intact

    # -- the runtime on the store: a run, an interruption, a resume ---------------------

    def test_an_interrupted_run_resumes_without_running_a_call_twice(
        self, backend: Backend
    ) -> None:
        store = backend.open()
        effects: list[int] = []

        @tool
        def record_n(n: int) -> str:
            """Record n (a side effect that must happen once)."""
            effects.append(n)
            return f"recorded {n}"

        def crash(*_: Any) -> Any:
            raise Crash()

        first = Agent(
            ScriptedModel([call("record_n", n=1), Turn(crash)]), tools=[record_n], store=store
        )
        with pytest.raises(Crash):
            first.run("record", run_id="r")
        assert store.get_run("r").status == "running" and effects == [1]
        with pytest.raises(RunLeasedError):  # its executor is this live process
            Agent(ScriptedModel([]), tools=[record_n], store=store).resume("r")
        backend.age("r", STALE_SECONDS + 1)
        again = Agent(ScriptedModel([reply("recorded 1")]), tools=[record_n], store=store)
        result = again.resume("r")
        assert result.status == "succeeded" and result.answer == "recorded 1"
        assert effects == [1]
        run = store.get_run("r")
        assert run.status == "succeeded" and run.steps == 3
        kinds = [e.type for _, e in store.events("r")]
        assert kinds.count("run_started") == 2 and kinds[-1] == "run_finished"
