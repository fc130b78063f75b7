"""The false-alarm part of the detector benchmark: ordinary runs replayed through the real
runtime earn no strike, the control that loops does, and recorded runs are re-observed."""

from __future__ import annotations

import sys
from pathlib import Path

from agentkit import Agent, RunStore, ToolError, tool
from agentkit.testing import ScriptedModel, call, reply

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench` is not installed

from bench.detectors import render_ordinary
from bench.ordinary import redetect_store, replay_tasks, summarise_ordinary
from bench.tasks import tasks


def test_reference_replays_earn_no_strike_and_the_control_does() -> None:
    rows, control = replay_tasks(tasks(limit=2))
    assert len(rows) == 2 * 2 * 4  # two tasks per kind, two variants each
    assert all(r.status == "succeeded" and r.checked for r in rows)
    assert [r.strikes for r in rows] == [0] * len(rows)
    assert control.strikes == 1 and control.detectors == ("same_error",)
    summary = summarise_ordinary(rows, control, None)
    assert summary["false_alarm_runs"] == 0 and "recorded" not in summary
    text = "\n".join(render_ordinary({"summary": summary, "runs_db": None}))
    assert "| **total** | **16** | **0** | **0** |" in text
    assert "No replayed run earned a strike." in text


def test_recorded_runs_are_observed_again(tmp_path: Path) -> None:
    @tool
    def status(job: str) -> str:
        """The status of a job.

        Args:
            job: its name
        """
        raise ToolError("the job service is down")

    store = RunStore(tmp_path / "runs.db")
    looping = [call("status", job=f"j{n}") for n in range(3)] + [reply("Unknown.")]
    Agent(ScriptedModel(looping), tools=[status], store=store).run("Are the jobs done?")
    Agent(ScriptedModel([reply("Hello.")]), store=store).run("Say hello.")
    store.close()
    recorded = redetect_store(tmp_path / "runs.db")
    assert sorted((r["strikes_now"], r["recorded_strikes"]) for r in recorded) == [(0, 0), (1, 1)]
    flagged = next(r for r in recorded if r["strikes_now"])
    assert flagged["detectors_now"] == ["same_error"]
