"""Ordinary agent runs through the loop detectors: the strikes they earn (target: none).

Part of ``python -m bench.detectors`` (``--ordinary-only`` runs just this part). Two sources:

- **Replays.** Every task of the ladder's task suite (``bench/tasks.py``) is run by its
  reference solution, through agentkit's ``ScriptedModel`` in a real ``Agent`` with the
  task's real tools and a real run store, so the runtime's own detectors watch it as they
  would watch a model. Each task runs twice: as written, and with its last call made
  twice in a row (an agent that checks its work before answering). None of these runs
  loops, so every strike is a false alarm.
- **Recorded runs** (``--runs-db PATH``): the steps of stored runs are given again to a
  fresh ``LoopDetector`` as the runtime gave them. Recorded runs of small models can loop
  for real, so these are reported by status, next to the strikes recorded at the time,
  not counted as false alarms.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agentkit import Agent, RunStore, Sampling, ToolError, tool
from agentkit.detection import LoopDetector, StepObservation
from agentkit.events import DetectorStrike
from agentkit.testing import ScriptedModel, Turn, call, reply

from .tasks import TASKS, Task, build_agent

__all__ = ["OrdinaryRow", "redetect_store", "replay_tasks", "summarise_ordinary"]

VARIANTS = ("reference", "last call checked again")
_SAMPLING = Sampling(temperature=0.0, max_tokens=64, seed=0)


@dataclass(frozen=True)
class OrdinaryRow:
    """One ordinary run and what the detectors said about it."""

    task: str
    kind: str
    variant: str
    status: str
    steps: int
    checked: bool
    """Whether the task's checker accepted the outcome (the replay really was a solution)."""
    strikes: int
    detectors: tuple[str, ...]
    windows: tuple[str, ...]


def _script(task: Task, variant: str) -> list[Turn]:
    solution = list(task.solution)
    if variant == VARIANTS[1] and solution:
        solution.append(solution[-1])
    return [call(name, **args) for name, args in solution] + [reply(task.answer)]


def _replay(
    task: Task, variant: str, script: list[Turn], root: Path, store: RunStore
) -> OrdinaryRow:
    model = ScriptedModel(script)
    agent, env = build_agent(task, model, root, store=store, sampling=_SAMPLING, max_steps=40)
    result = agent.run(task.prompt)
    strikes = [
        event for _, event in store.events(result.run_id) if isinstance(event, DetectorStrike)
    ]
    return OrdinaryRow(
        task=task.id,
        kind=task.kind,
        variant=variant,
        status=result.status,
        steps=result.steps,
        checked=env.check(result.answer).ok,
        strikes=result.strikes,
        detectors=tuple(s.detector for s in strikes),
        windows=tuple(s.window for s in strikes),
    )


def _control(store: RunStore) -> OrdinaryRow:
    """A run that loops: three jobs asked after, the same failure each time. (A repeated
    identical call never reaches the detectors: the runtime asks for the answer first.)"""

    def job_status(job: str) -> str:
        """The status of a background job.

        Args:
            job: the job's name
        """
        raise ToolError("the job service is down")

    script = [call("job_status", job=f"export-{n}") for n in range(3)] + [reply("Unknown.")]
    agent = Agent(ScriptedModel(script), tools=[tool(job_status)], store=store, max_steps=20)
    result = agent.run("Are the exports done?")
    strikes = [e for _, e in store.events(result.run_id) if isinstance(e, DetectorStrike)]
    return OrdinaryRow(
        task="control",
        kind="control",
        variant="the same failure from three calls",
        status=result.status,
        steps=result.steps,
        checked=True,
        strikes=result.strikes,
        detectors=tuple(s.detector for s in strikes),
        windows=tuple(s.window for s in strikes),
    )


def replay_tasks(tasks: Iterable[Task] = TASKS) -> tuple[list[OrdinaryRow], OrdinaryRow]:
    """Every task by its reference solution, in both variants, through the real runtime;
    and a control that does loop, which shows that the count sees strikes where there
    are some."""
    chosen = list(tasks)
    rows = []
    with tempfile.TemporaryDirectory(prefix="agentkit-ordinary-") as tmp:
        store = RunStore(Path(tmp) / "runs.db")
        for n, task in enumerate(chosen):
            for v, variant in enumerate(VARIANTS):
                root = Path(tmp) / f"{n}-{v}"
                root.mkdir()
                rows.append(_replay(task, variant, _script(task, variant), root, store))
        control = _control(store)
        store.close()
    return rows, control


def _observations(store: RunStore, run_id: str) -> list[StepObservation]:
    """The steps of a stored run as the runtime showed them to its loop detector: a tool
    step with its calls and results, a model step that called nothing with its text."""
    out = []
    for step in store.steps(run_id):
        calls = step.tool_calls
        if step.kind == "tool" and calls:
            out.append(
                StepObservation(
                    index=step.idx,
                    tool_calls=tuple((c.get("name", ""), c.get("arguments") or {}) for c in calls),
                    results=tuple(
                        (str(c.get("result", "")), bool(c.get("is_error"))) for c in calls
                    ),
                    content=step.content,
                )
            )
        elif step.kind == "model" and not calls:
            out.append(
                StepObservation(
                    index=step.idx, content=step.content, is_empty=not step.content.strip()
                )
            )
    return out


def redetect_store(path: Path, limit: int = 2000) -> list[dict[str, Any]]:
    """Each recorded run of the store at ``path``, re-observed by a fresh LoopDetector."""
    store = RunStore(path, create=False)
    rows = []
    for run in store.list_runs(limit=limit):
        detector = LoopDetector()
        found = [s for obs in _observations(store, run.id) for s in detector.observe(obs)]
        struck = [e for _, e in store.events(run.id) if isinstance(e, DetectorStrike)]
        rows.append(
            {
                "run": run.id,
                "name": run.name,
                "status": run.status,
                "recorded_strikes": run.alerts,
                "recorded": [
                    {"step": e.step, "detector": e.detector, "window": e.window[:60]}
                    for e in struck
                ],
                "strikes_now": len(found),
                "detectors_now": sorted(Counter(s.detector for s in found)),
            }
        )
    store.close()
    return rows


def summarise_ordinary(
    rows: list[OrdinaryRow], control: OrdinaryRow, recorded: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """Counts for the report: false alarms by kind and variant, recorded runs by status."""
    by_kind = {
        kind: {
            "runs": sum(1 for r in rows if r.kind == kind),
            "runs_with_strikes": sum(1 for r in rows if r.kind == kind and r.strikes),
            "strikes": sum(r.strikes for r in rows if r.kind == kind),
        }
        for kind in sorted({r.kind for r in rows})
    }
    summary: dict[str, Any] = {
        "runs": len(rows),
        "tasks": len({r.task for r in rows}),
        "variants": list(VARIANTS),
        "all_succeeded_and_checked": all(r.status == "succeeded" and r.checked for r in rows),
        "false_alarm_runs": sum(1 for r in rows if r.strikes),
        "false_alarm_strikes": sum(r.strikes for r in rows),
        "by_kind": by_kind,
        "false_alarms": [asdict(r) for r in rows if r.strikes],
        "control": asdict(control),
    }
    if recorded is not None:
        statuses = sorted({r["status"] for r in recorded})
        summary["recorded"] = {
            "runs": len(recorded),
            "by_status": {
                status: {
                    "runs": sum(1 for r in recorded if r["status"] == status),
                    "flagged_now": sum(
                        1 for r in recorded if r["status"] == status and r["strikes_now"]
                    ),
                    "flagged_when_recorded": sum(
                        1 for r in recorded if r["status"] == status and r["recorded_strikes"]
                    ),
                }
                for status in statuses
            },
            "strikes": [
                {"name": r["name"], "status": r["status"], **strike}
                for r in recorded
                for strike in r.get("recorded", [])
            ],
        }
    return summary
