"""One executor per run: leases, heartbeats, take-over of stale runs, interrupted runs."""

from __future__ import annotations

import json
import time

import pytest

from agentkit import Agent, LeaseLostError, RunLeasedError, RunStore
from agentkit.store import StepRow
from agentkit.store._lease import STALE_SECONDS, derived_status, lease_live, new_owner
from agentkit.testing import ScriptedModel, reply


def _age(store: RunStore, run_id: str, seconds: float) -> None:
    conn = store._conn()
    conn.execute("UPDATE runs SET heartbeat = heartbeat - ? WHERE id = ?", (seconds, run_id))


def test_a_live_lease_is_refused_and_a_stale_one_taken_over(store: RunStore) -> None:
    first, second = new_owner(), new_owner()
    store.create_run("r", name="n", task="t", owner=first)
    with pytest.raises(RunLeasedError, match="another executor"):
        store.claim("r", second)
    store.claim("r", first)  # its own lease: fine
    _age(store, "r", STALE_SECONDS + 1)
    store.claim("r", second)
    with pytest.raises(LeaseLostError, match="took this run over"):
        store.renew("r", first)


def test_a_step_is_not_written_by_an_executor_that_lost_the_lease(store: RunStore) -> None:
    first, second = new_owner(), new_owner()
    store.create_run("r", name="n", task="t", owner=first)
    _age(store, "r", STALE_SECONDS + 1)
    store.claim("r", second)
    row = StepRow(
        run_id="r",
        idx=1,
        node="model",
        kind="model",
        started_at=1.0,
        finished_at=2.0,
        state_json=json.dumps({"state": {}}),
    )
    with pytest.raises(LeaseLostError):
        store.save_step(row, {}, owner=first)
    assert store.steps("r") == []
    store.save_step(row, {}, owner=second)
    assert len(store.steps("r")) == 1


def test_a_run_whose_executor_is_gone_shows_as_interrupted(store: RunStore) -> None:
    store.create_run("r", name="n", task="t", owner=new_owner())
    assert store.get_run("r").status == "running"
    _age(store, "r", STALE_SECONDS + 1)
    assert store.get_run("r").status == "interrupted"
    dead = "elsewhere:1:abc"  # another host: only the heartbeat tells
    assert lease_live(dead, time.time()) and not lease_live(dead, time.time() - 60)
    gone = f"{new_owner().split(':')[0]}:999999999:abc"  # this host, no such process
    assert not lease_live(gone, time.time())
    assert derived_status("succeeded", gone, time.time()) == "succeeded"


def test_resuming_a_live_run_is_refused(store: RunStore) -> None:
    store.create_run("live", name="agent", task="t", owner=new_owner(), graph={})
    agent = Agent(ScriptedModel([reply("x")]), store=store)
    store._conn().execute(
        "UPDATE runs SET graph_json = ? WHERE id = 'live'", (json.dumps(agent.graph.describe()),)
    )
    with pytest.raises(RunLeasedError):
        agent.resume("live")
