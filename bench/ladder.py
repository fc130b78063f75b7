"""Adaptive compute on real models: the ladder against its smallest and largest tier alone.

    python -m bench.ladder [--kinds K ...] [--limit N] [--tasks ID ...]
                           [--configs smallest largest ladder] [--out bench/results]
    python -m bench.ladder --report-only      # rewrite ladder.md/.png from ladder.json

Every task of ``bench.tasks`` runs under three configurations, each in a fresh agent with
its own temporary folder: ``smallest`` (always smollm2-135m), ``largest`` (always
qwen2.5-coder-1.5b) and ``ladder`` (all three tiers, cheapest first, ``DefaultPolicy``).
The models are loaded once with ``agentkit.get_model`` and shared by every run; every run
writes to one temporary run store, as a real deployment would. Sampling is greedy with a
fixed seed, so a rerun on the same machine repeats the same decisions.

Runs go configuration by configuration and, within one, kind by kind, so consecutive runs
share their system prompt and tools and llama.cpp reuses that prefix, as it would for
an agent serving one kind of request.

For each run the benchmark records success (status ``succeeded`` and the task's checker
satisfied), seconds, steps, compute (billions of parameters x tokens through the model),
the ladder's estimate of what the largest tier would have cost, escalations with their
reasons, and the tiers used. ``ladder.json`` is rewritten after every run, so an
interrupted benchmark leaves its rows behind; ``ladder.md`` and ``ladder.png`` come at the
end (or from ``--report-only``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import agentkit.tools
from agentkit import (
    ChatModel,
    DefaultPolicy,
    Event,
    LlamaConfig,
    ModelLadder,
    RunStore,
    Sampling,
    get_model,
)
from agentkit.events import (
    DetectorStrike,
    ModelCalled,
    TierChosen,
    ToolArgumentsRejected,
    ToolCallFinished,
)

from .tasks import KINDS, Task, build_agent, tasks

TIERS = ("smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct")
CONFIGS = ("smallest", "largest", "ladder")
TARGET_RATIO = 0.40
"""The ladder should solve as many tasks as the largest tier for at most this much compute."""
_ANSWER_CHARS = 240
_MAX_EXAMPLES = 8


@dataclass
class Row:
    """One task under one configuration."""

    task: str
    kind: str
    difficulty: str
    config: str
    success: bool
    checked: bool
    """The checker accepted the outcome, whether or not the run ended normally."""
    detail: str
    status: str
    answer: str | None
    seconds: float
    steps: int
    model_steps: int
    compute: float
    top_tier_compute: float
    top_tier_seconds: float
    escalations: int
    tiers: dict[str, int]
    prompt_tokens: int
    evaluated_tokens: int
    completion_tokens: int
    strikes: int
    rejected_calls: int
    tool_errors: int
    tool_calls: list[str] = field(default_factory=list)
    escalation_reasons: list[str] = field(default_factory=list)
    strike_messages: list[str] = field(default_factory=list)
    confidences: list[float | None] = field(default_factory=list)
    """Decision confidence of each model call, in order."""
    error: str | None = None


@dataclass
class _Recorder:
    """Collects what a run's events tell beyond its RunResult."""

    reasons: list[str] = field(default_factory=list)
    strikes: list[str] = field(default_factory=list)
    rejected: int = 0
    tool_errors: int = 0
    calls: list[str] = field(default_factory=list)
    confidences: list[float | None] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        if isinstance(event, ModelCalled):
            conf = event.confidence
            self.confidences.append(round(conf, 3) if conf is not None else None)
        elif isinstance(event, TierChosen) and event.escalated:
            self.reasons.append(f"{event.previous_tier}->{event.tier}: {event.reason}")
        elif isinstance(event, DetectorStrike):
            self.strikes.append(f"{event.detector} -> {event.response}: {event.message}")
        elif isinstance(event, ToolArgumentsRejected):
            self.rejected += 1
        elif isinstance(event, ToolCallFinished):
            self.tool_errors += int(event.is_error)
            args = json.dumps(event.arguments, ensure_ascii=False)
            self.calls.append(f"{event.name}({args[:80]}){' ERROR' if event.is_error else ''}")


# -- running ------------------------------------------------------------------------------


def config_model(config: str, models: dict[str, ChatModel]) -> ChatModel | ModelLadder:
    """The model (or a fresh ladder over the shared models) of one configuration."""
    if config == "smallest":
        return models[TIERS[0]]
    if config == "largest":
        return models[TIERS[-1]]
    return ModelLadder([models[name] for name in TIERS])


def tiers_of(config: str) -> tuple[str, ...]:
    """The models of a configuration, cheapest first."""
    return {"smallest": TIERS[:1], "largest": TIERS[-1:], "ladder": TIERS}[config]


def tier_names(config: str, tiers: dict[str, int]) -> dict[str, int]:
    """Model steps per tier, keyed by model name instead of tier index."""
    names = tiers_of(config)
    return {names[int(k)]: v for k, v in sorted(tiers.items())}


def run_task(
    task: Task,
    config: str,
    model: ChatModel | ModelLadder,
    *,
    store: RunStore,
    sampling: Sampling,
    max_steps: int,
) -> Row:
    recorder = _Recorder()
    with tempfile.TemporaryDirectory(prefix=f"bench-{task.id}-") as folder:
        agent, env = build_agent(
            task, model, Path(folder), store=store, sampling=sampling, max_steps=max_steps
        )
        started = time.perf_counter()
        try:
            result = agent.run(task.prompt, on_event=recorder)
        except Exception as exc:  # a runtime bug: record it and go on with the suite
            return _crashed(task, config, exc, time.perf_counter() - started, recorder)
        check = env.check(result.answer)
    answer = result.answer
    return Row(
        task=task.id,
        kind=task.kind,
        difficulty=task.difficulty,
        config=config,
        success=result.status == "succeeded" and check.ok,
        checked=check.ok,
        detail=check.detail,
        status=result.status,
        answer=answer[:_ANSWER_CHARS] if answer else answer,
        seconds=round(result.seconds, 3),
        steps=result.steps,
        model_steps=sum(result.tiers.values()),
        compute=result.compute,
        top_tier_compute=result.top_tier_compute,
        top_tier_seconds=round(result.top_tier_seconds, 3),
        escalations=result.escalations,
        tiers=tier_names(config, result.tiers),
        prompt_tokens=result.usage.prompt_tokens,
        evaluated_tokens=result.usage.evaluated_tokens,
        completion_tokens=result.usage.completion_tokens,
        strikes=result.strikes,
        rejected_calls=recorder.rejected,
        tool_errors=recorder.tool_errors,
        tool_calls=recorder.calls,
        escalation_reasons=recorder.reasons,
        strike_messages=recorder.strikes,
        confidences=recorder.confidences,
        error=result.error or result.diagnosis,
    )


def _crashed(task: Task, config: str, exc: Exception, seconds: float, rec: _Recorder) -> Row:
    return Row(
        task=task.id,
        kind=task.kind,
        difficulty=task.difficulty,
        config=config,
        success=False,
        checked=False,
        detail="the run raised",
        status="crashed",
        answer=None,
        seconds=round(seconds, 3),
        steps=0,
        model_steps=0,
        compute=0.0,
        top_tier_compute=0.0,
        top_tier_seconds=0.0,
        escalations=len(rec.reasons),
        tiers={},
        prompt_tokens=0,
        evaluated_tokens=0,
        completion_tokens=0,
        strikes=len(rec.strikes),
        rejected_calls=rec.rejected,
        tool_errors=rec.tool_errors,
        tool_calls=rec.calls,
        escalation_reasons=rec.reasons,
        strike_messages=rec.strikes,
        confidences=rec.confidences,
        error=f"{type(exc).__name__}: {exc}",
    )


def progress(index: int, total: int, row: Row) -> str:
    tiers = " ".join(f"{_short(k)}x{v}" for k, v in row.tiers.items()) or "-"
    return (
        f"[{index:3d}/{total}] {row.config:8s} {row.task} {row.kind:10s} "
        f"{'ok  ' if row.success else 'FAIL'} {row.status:16s} {row.seconds:6.1f}s "
        f"steps={row.steps:2d} compute={row.compute:7.1f} esc={row.escalations} tiers={tiers}"
    )


def _short(model: str) -> str:
    return {TIERS[0]: "135m", TIERS[1]: "0.5b", TIERS[2]: "1.5b"}.get(model, model)


# -- summaries ----------------------------------------------------------------------------


def _totals(rows: Sequence[Row]) -> dict[str, Any]:
    n = len(rows)
    solved = sum(r.success for r in rows)
    tiers: Counter[str] = Counter()
    for r in rows:
        tiers.update(r.tiers)
    return {
        "tasks": n,
        "solved": solved,
        "success_rate": solved / n if n else 0.0,
        "checked_but_unfinished": sum(r.checked and not r.success for r in rows),
        "seconds": round(sum(r.seconds for r in rows), 2),
        "compute": round(sum(r.compute for r in rows), 3),
        "top_tier_compute_estimate": round(sum(r.top_tier_compute for r in rows), 3),
        "steps": sum(r.steps for r in rows),
        "escalations": sum(r.escalations for r in rows),
        "model_steps_by_tier": dict(tiers),
        "statuses": dict(Counter(r.status for r in rows)),
    }


_CALL_AS_TEXT = re.compile(r'^\s*(?:<tool_call>|```json|\{+\s*"name"\s*:)')

FAILURE_MODES = (
    "the run raised (runtime error)",
    "the model step failed (model error)",
    "final answer is a tool call the runtime did not read",
    "answered without calling any tool",
    "ran out of steps",
    "stopped by the repetition detector",
    "used tools, wrong outcome",
)


def failure_mode(row: Row) -> str | None:
    """Why a run did not solve its task, in one of ``FAILURE_MODES`` (None if solved)."""
    if row.success:
        return None
    if row.status == "crashed":
        return FAILURE_MODES[0]
    if row.status == "failed":
        return FAILURE_MODES[1]
    if row.answer and _CALL_AS_TEXT.match(row.answer):
        return FAILURE_MODES[2]
    if row.status == "budget_exhausted":
        return FAILURE_MODES[4]
    if row.status == "stopped":
        return FAILURE_MODES[5]
    if not row.tool_calls:
        return FAILURE_MODES[3]
    return FAILURE_MODES[6]


def summarize(rows: Sequence[Row]) -> dict[str, Any]:
    configs = [c for c in CONFIGS if any(r.config == c for r in rows)]
    per_config = {c: _totals([r for r in rows if r.config == c]) for c in configs}
    per_kind = {
        c: {
            k: _totals([r for r in rows if r.config == c and r.kind == k])
            for k in KINDS
            if any(r.config == c and r.kind == k for r in rows)
        }
        for c in configs
    }
    per_difficulty = {
        c: {
            d: _totals([r for r in rows if r.config == c and r.difficulty == d])
            for d in ("easy", "multi")
            if any(r.config == c and r.difficulty == d for r in rows)
        }
        for c in configs
    }
    return {
        "per_config": per_config,
        "per_kind": per_kind,
        "per_difficulty": per_difficulty,
        "failure_modes": {
            c: dict(Counter(m for r in rows if r.config == c if (m := failure_mode(r))))
            for c in configs
        },
        "ladder_vs_largest": _compare(rows),
        "escalation_reasons": dict(_reason_counts(rows).most_common()),
    }


def _compare(rows: Sequence[Row]) -> dict[str, Any] | None:
    ladder = {r.task: r for r in rows if r.config == "ladder"}
    largest = {r.task: r for r in rows if r.config == "largest"}
    common = sorted(set(ladder) & set(largest))
    if not common:
        return None
    lad = [ladder[t] for t in common]
    big = [largest[t] for t in common]
    lad_compute = sum(r.compute for r in lad)
    big_compute = sum(r.compute for r in big)
    ratio = lad_compute / big_compute if big_compute else None
    estimate = sum(r.top_tier_compute for r in lad)
    solved_l, solved_b = sum(r.success for r in lad), sum(r.success for r in big)
    return {
        "tasks": len(common),
        "ladder_solved": solved_l,
        "largest_solved": solved_b,
        "ladder_compute": round(lad_compute, 3),
        "largest_compute": round(big_compute, 3),
        "compute_ratio": round(ratio, 4) if ratio is not None else None,
        "compute_ratio_vs_own_estimate": round(lad_compute / estimate, 4) if estimate else None,
        "seconds_ratio": round(sum(r.seconds for r in lad) / sum(r.seconds for r in big), 4),
        "only_largest_solved": [t for t in common if largest[t].success and not ladder[t].success],
        "only_ladder_solved": [t for t in common if ladder[t].success and not largest[t].success],
        "target_met": ratio is not None and solved_l >= solved_b and ratio <= TARGET_RATIO,
    }


_REASON_KINDS = (
    ("low decision confidence", re.compile(r"low decision confidence")),
    ("tool calls invalid after retries", re.compile(r"stayed invalid")),
    ("tool errors in a row", re.compile(r"tool errors in a row")),
    ("repetition detector", re.compile(r"repetition detector")),
    ("degenerate text within the step", re.compile(r"degenerate text")),
    ("previous model step failed", re.compile(r"previous model step failed")),
    ("operator control", re.compile(r"forced")),
)


def reason_kinds(reason: str) -> list[str]:
    """The trouble signals named in one escalation reason (one reason may name several)."""
    found = [name for name, pattern in _REASON_KINDS if pattern.search(reason)]
    return found or ["other"]


def _reason_counts(rows: Sequence[Row]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for r in rows:
        for reason in r.escalation_reasons:
            counts.update(reason_kinds(reason))
    return counts


# -- reports ------------------------------------------------------------------------------


def source_digest() -> str:
    """sha256 over the runtime's source files, to tell which working tree a run measured."""
    root = Path(agentkit.__file__).parent
    files = sorted(root.glob("*.py")) + sorted(Path(agentkit.tools.__file__).parent.glob("*.py"))
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def machine_info() -> dict[str, Any]:
    import llama_cpp

    return {
        "agentkit_source_sha256": source_digest(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "agentkit": agentkit.__version__,
        "llama_cpp_python": metadata.version("llama_cpp_python"),
        "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
        "load_average_at_start": list(os.getloadavg()),
    }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def _pct(x: float) -> str:
    return f"{x:.0%}"


def _mark(row: Row | None) -> str:
    if row is None:
        return ""
    mark = "ok" if row.success else ("done, unfinished" if row.checked else "fail")
    if row.config == "ladder" and row.tiers:
        mark += " (" + " ".join(f"{_short(k)}x{v}" for k, v in row.tiers.items()) + ")"
    return mark


def render_markdown(payload: dict[str, Any]) -> str:
    rows = [Row(**r) for r in payload["rows"]]
    summary = payload["summary"]
    setup = payload["setup"]
    machine = payload["machine"]
    n_tasks = len(dict.fromkeys(r.task for r in rows))
    out: list[str] = [f"# Ladder benchmark: adaptive compute on {n_tasks} small agent tasks", ""]
    out += [
        f"Run {setup['started']} on {machine['platform']} ({machine['cpu_count']} CPU cores, "
        f"shared; load average at start {machine['load_average_at_start'][0]:.1f}), "
        f"llama-cpp-python {machine['llama_cpp_python']}, agentkit {machine['agentkit']}. "
        f"Greedy sampling (temperature 0, seed {setup['seed']}), max_tokens "
        f"{setup['max_tokens']}, max_steps {setup['max_steps']}, a temporary run store. "
        f"Wall time {setup['wall_seconds'] / 60:.1f} min (model loading "
        f"{setup['load_seconds']:.1f} s, not counted per task).",
        "",
        "Configurations: **smallest** = always smollm2-135m; **largest** = always "
        "qwen2.5-coder-1.5b; **ladder** = smollm2-135m -> qwen2.5-coder-0.5b -> "
        "qwen2.5-coder-1.5b with `DefaultPolicy`. Compute is billions of parameters x "
        "tokens through the model (evaluated prompt tokens plus generated ones), as "
        "`RunResult.compute` counts it. A task is solved when the run ended normally and "
        "its checker accepts the outcome.",
        "",
        "## Per configuration",
        "",
        "| config | solved | success | seconds | s/task | compute | vs largest | "
        "escalations | model steps by tier |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    per_config = summary["per_config"]
    big = per_config.get("largest", {}).get("compute")
    for config, s in per_config.items():
        tiers = ", ".join(f"{_short(k)} {v}" for k, v in s["model_steps_by_tier"].items())
        vs = _pct(s["compute"] / big) if big else "-"
        out.append(
            f"| {config} | {s['solved']}/{s['tasks']} | {_pct(s['success_rate'])} | "
            f"{s['seconds']:.0f} | {s['seconds'] / s['tasks']:.1f} | {s['compute']:.0f} | "
            f"{vs} | {s['escalations']} | {tiers} |"
        )
    out += ["", "## Per kind (solved / tasks, compute)", ""]
    configs = list(per_config)
    out.append("| kind | " + " | ".join(configs) + " |")
    out.append("|---|" + "---|" * len(configs))
    for kind in KINDS:
        cells = []
        for c in configs:
            s = summary["per_kind"][c].get(kind)
            cells.append(f"{s['solved']}/{s['tasks']}, {s['compute']:.0f}" if s else "-")
        out.append(f"| {kind} | " + " | ".join(cells) + " |")
    for difficulty in ("easy", "multi"):
        cells = []
        for c in configs:
            s = summary["per_difficulty"][c].get(difficulty)
            cells.append(f"{s['solved']}/{s['tasks']}, {s['compute']:.0f}" if s else "-")
        out.append(f"| *{difficulty}* | " + " | ".join(cells) + " |")
    out += ["", "## Ladder against always-largest", ""]
    out += _verdict(summary, rows)
    out += ["", "## Why runs failed", ""]
    out += _failures(summary, rows, configs)
    out += ["", "## Escalations", ""]
    out += _escalations(summary, rows)
    out += ["", "## Every task", ""]
    out.append("| task | kind | difficulty | " + " | ".join(configs) + " |")
    out.append("|---|---|---|" + "---|" * len(configs))
    by_key = {(r.task, r.config): r for r in rows}
    for task in dict.fromkeys(r.task for r in rows):
        first = next(r for r in rows if r.task == task)
        cells = [_mark(by_key.get((task, c))) for c in configs]
        out.append(f"| {task} | {first.kind} | {first.difficulty} | " + " | ".join(cells) + " |")
    out += [
        "",
        "`done, unfinished`: the checker accepted the outcome but the run did not end "
        "normally (it ran out of steps or was stopped), so it does not count as solved.",
        "",
        f"Rerun: `.venv/bin/python -m {setup.get('command', 'bench.ladder').split('-m ')[-1]}` "
        f"(this run: {setup['wall_seconds'] / 60:.0f} min; `--kinds`, `--limit`, `--tasks` "
        "and `--configs` run a part; `--report-only` rewrites this file and the plot from "
        "`ladder.json`). `--threads 1` keeps llama.cpp from stalling when other processes "
        "share the cores.",
        "",
    ]
    return "\n".join(out)


def _verdict(summary: dict[str, Any], rows: Sequence[Row]) -> list[str]:
    cmp = summary.get("ladder_vs_largest")
    if not cmp:
        return ["Not measured: this run did not include both the ladder and the largest tier."]
    ratio = cmp["compute_ratio"]
    lines = [
        f"On the {cmp['tasks']} tasks both ran, the ladder solved {cmp['ladder_solved']} and "
        f"always-largest {cmp['largest_solved']}; the ladder used {ratio:.0%} of the largest "
        f"tier's compute ({cmp['ladder_compute']:.0f} against {cmp['largest_compute']:.0f}) "
        f"and {cmp['seconds_ratio']:.0%} of its wall time.",
        "",
    ]
    gap = cmp["largest_solved"] - cmp["ladder_solved"]
    if cmp["target_met"]:
        lines.append(
            f"**Target met**: at least as many tasks solved for at most "
            f"{TARGET_RATIO:.0%} of the compute."
        )
    else:
        misses = []
        if gap > 0:
            misses.append(f"it solved {gap} task(s) fewer")
        if ratio is not None and ratio > TARGET_RATIO:
            misses.append(f"it spent {ratio:.0%} instead of at most {TARGET_RATIO:.0%}")
        lines.append("**Target missed**: " + " and ".join(misses) + ".")
    by_key = {(r.task, r.config): r for r in rows}
    for title, tasks_ in (
        ("Solved by always-largest but not by the ladder", cmp["only_largest_solved"]),
        ("Solved by the ladder but not by always-largest", cmp["only_ladder_solved"]),
    ):
        if not tasks_:
            continue
        shown = tasks_[:_MAX_EXAMPLES]
        more = f" (the first {len(shown)} of {len(tasks_)})" if len(tasks_) > len(shown) else ""
        lines += ["", f"{title}{more}:", ""]
        lines += [_example(by_key[(t, "ladder")], by_key[(t, "largest")]) for t in shown]
    return lines


def _example(ladder: Row, largest: Row) -> str:
    tiers = " ".join(f"{_short(k)}x{v}" for k, v in ladder.tiers.items()) or "none"
    reasons = "; ".join(ladder.escalation_reasons[:3]) or "no escalation"
    calls = ", ".join(ladder.tool_calls[:4]) or "no tool calls"
    return (
        f"- **{ladder.task}** ({ladder.kind}, {ladder.difficulty}): ladder {ladder.status}, "
        f"tiers {tiers}, {reasons}; calls: {calls}; answer {ladder.answer!r:.140}; "
        f"checker: {ladder.detail[:140]}. Largest: {largest.status}, {largest.detail[:100]}."
    )


def _failures(summary: dict[str, Any], rows: Sequence[Row], configs: list[str]) -> list[str]:
    modes = summary["failure_modes"]
    lines = ["| why | " + " | ".join(configs) + " |", "|---|" + "---|" * len(configs)]
    for mode in FAILURE_MODES:
        if any(modes[c].get(mode) for c in configs):
            lines.append(
                f"| {mode} | " + " | ".join(str(modes[c].get(mode, 0)) for c in configs) + " |"
            )
    errors = Counter(f"{r.config}: {r.error}" for r in rows if r.status == "crashed")
    if errors:
        lines += ["", "Runs that raised:", ""]
        lines += [f"- {n} x {text[:200]}" for text, n in errors.most_common()]
    unread = [r for r in rows if failure_mode(r) == FAILURE_MODES[2]]
    if unread:
        r = unread[0]
        lines += [
            "",
            f"Example of a call left as text ({r.config}, {r.task}): `{(r.answer or '')[:120]}`",
        ]
    return lines


def _escalations(summary: dict[str, Any], rows: Sequence[Row]) -> list[str]:
    ladder = [r for r in rows if r.config == "ladder"]
    if not ladder:
        return ["The ladder did not run."]
    escalated = [r for r in ladder if r.escalations]
    counts = summary["escalation_reasons"]
    lines = [
        f"{len(escalated)} of {len(ladder)} ladder runs escalated at least once, "
        f"{sum(r.escalations for r in ladder)} escalations in all; "
        f"{sum(r.success for r in escalated)} of the escalated runs were solved, "
        f"{sum(r.success for r in ladder if not r.escalations)} of the "
        f"{len(ladder) - len(escalated)} that stayed on the smallest tier.",
        "",
        "Signals named in the escalation reasons: "
        + (", ".join(f"{k} {v}" for k, v in counts.items()) or "none")
        + ".",
    ]
    threshold = DefaultPolicy().low_confidence
    ended_low = [
        r
        for r in ladder
        if not r.escalations
        and r.confidences
        and r.confidences[-1] is not None
        and r.confidences[-1] < threshold
    ]
    if ended_low:
        lines += [
            "",
            f"{len(ended_low)} ladder runs ended with a final answer from the smallest tier "
            f"whose decision confidence was below the policy's threshold ({threshold}); "
            f"{sum(r.success for r in ended_low)} of them were solved. The policy chooses "
            "the tier of the next model step, and a final answer has no next step, so it "
            "never saw these.",
        ]
    samples = list(dict.fromkeys(f"{r.task}: {x}" for r in escalated for x in r.escalation_reasons))
    samples = samples[:_MAX_EXAMPLES]
    if samples:
        lines += ["", "Examples of recorded reasons:", ""]
        lines += [f"- `{s}`" for s in samples]
    return lines


def render_plot(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    summary = payload["summary"]
    per_config = summary["per_config"]
    colors = {"smallest": "#4c9be8", "largest": "#e8744c", "ladder": "#3aa35b"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, (config, s) in enumerate(per_config.items()):
        left.scatter(s["compute"], s["success_rate"] * 100, s=90, color=colors[config])
        # Staggered labels stay readable when two configurations land on one point.
        left.annotate(
            f"{config}: {s['solved']}/{s['tasks']}, {s['seconds'] / 60:.1f} min",
            (s["compute"], s["success_rate"] * 100),
            textcoords="offset points",
            xytext=(8, -12 + 12 * i),
            fontsize=8,
            color=colors[config],
        )
    left.set_xscale("log")
    left.xaxis.set_minor_formatter(NullFormatter())
    computes = [s["compute"] for s in per_config.values() if s["compute"] > 0]
    if computes:
        left.set_xlim(min(computes) / 1.6, max(computes) * 4)
    left.set_xlabel("total compute (billions of parameters x tokens, log)")
    left.set_ylabel("tasks solved (%)")
    left.set_ylim(0, 105)
    left.set_title("success against compute")
    left.grid(alpha=0.3)
    kinds = [k for k in KINDS if any(k in summary["per_kind"][c] for c in per_config)]
    width = 0.8 / max(1, len(per_config))
    for i, (config, by_kind) in enumerate(summary["per_kind"].items()):
        xs = [j + (i - (len(per_config) - 1) / 2) * width for j in range(len(kinds))]
        ys = [by_kind[k]["success_rate"] * 100 if k in by_kind else 0 for k in kinds]
        right.bar(xs, ys, width=width, color=colors[config], label=config)
    right.set_xticks(range(len(kinds)), kinds)
    right.set_ylabel("tasks solved (%)")
    right.set_ylim(0, 105)
    right.set_title("success per kind")
    right.legend(fontsize=8)
    right.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_reports(payload: dict[str, Any], out: Path) -> None:
    payload["summary"] = summarize([Row(**r) for r in payload["rows"]])
    write_json(out / "ladder.json", payload)
    (out / "ladder.md").write_text(render_markdown(payload), encoding="utf-8")
    render_plot(payload, out / "ladder.png")


# -- command line -------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.ladder", description=__doc__.split("\n")[0])
    p.add_argument("--kinds", nargs="+", choices=KINDS, help="only these kinds of task")
    p.add_argument("--limit", type=int, help="at most N tasks of each kind")
    p.add_argument("--tasks", nargs="+", metavar="ID", help="only these tasks (e.g. a01 l05)")
    p.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    p.add_argument("--max-tokens", type=int, default=192)
    p.add_argument("--max-steps", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threads",
        type=int,
        help="llama.cpp threads per model (default: every core; 1 behaves far better "
        "when other processes compete for the cores)",
    )
    p.add_argument("--store", type=Path, help="keep the run store here (default: temporary)")
    p.add_argument(
        "--report-only", action="store_true", help="rewrite ladder.md/.png from ladder.json"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        write_reports(json.loads((out / "ladder.json").read_text(encoding="utf-8")), out)
        print(f"rewrote {out / 'ladder.md'} and {out / 'ladder.png'}")
        return 0
    suite = tasks(args.kinds, limit=args.limit, ids=args.tasks)
    if not suite:
        print("no task matches the filters", file=sys.stderr)
        return 2
    configs = [c for c in CONFIGS if c in args.configs]
    sampling = Sampling(temperature=0.0, max_tokens=args.max_tokens, seed=args.seed)
    machine = machine_info()
    started = time.perf_counter()
    needed = sorted({n for c in configs for n in tiers_of(c)}, key=TIERS.index)
    llama = LlamaConfig(n_threads=args.threads) if args.threads else LlamaConfig()
    models: dict[str, ChatModel] = {name: get_model(name, llama) for name in needed}
    load_seconds = time.perf_counter() - started
    print(f"loaded {', '.join(needed)} in {load_seconds:.1f} s", flush=True)
    payload: dict[str, Any] = {
        "setup": {
            "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "tiers": list(TIERS),
            "configs": configs,
            "tasks": [t.id for t in suite],
            "max_tokens": args.max_tokens,
            "max_steps": args.max_steps,
            "seed": args.seed,
            "temperature": 0.0,
            "threads": llama.n_threads,
            "load_seconds": round(load_seconds, 2),
            "wall_seconds": 0.0,
            "complete": False,
            "command": " ".join(["python -m bench.ladder", *(argv or sys.argv[1:])]),
        },
        "machine": machine,
        "models": {n: {"parameters": m.parameters} for n, m in models.items()},
        "rows": [],
    }
    rows: list[Row] = []
    total = len(suite) * len(configs)
    with tempfile.TemporaryDirectory(prefix="bench-ladder-") as folder:
        store = RunStore(args.store or Path(folder) / "runs.db")
        try:
            for config in configs:
                for task in suite:
                    model = config_model(config, models)
                    row = run_task(
                        task,
                        config,
                        model,
                        store=store,
                        sampling=sampling,
                        max_steps=args.max_steps,
                    )
                    rows.append(row)
                    print(progress(len(rows), total, row), flush=True)
                    payload["rows"] = [asdict(r) for r in rows]
                    payload["setup"]["wall_seconds"] = round(time.perf_counter() - started, 1)
                    write_json(out / "ladder.json", payload)
        finally:
            store.close()
    payload["setup"]["complete"] = True
    payload["machine"]["load_average_at_end"] = list(os.getloadavg())
    write_reports(payload, out)
    summary = payload["summary"]
    for config, s in summary["per_config"].items():
        print(
            f"{config:8s} solved {s['solved']}/{s['tasks']} ({s['success_rate']:.0%}) "
            f"in {s['seconds']:.0f} s, compute {s['compute']:.1f}"
        )
    cmp = summary["ladder_vs_largest"]
    if cmp:
        print(f"ladder/largest compute {cmp['compute_ratio']:.0%}; target met: {cmp['target_met']}")
    print(f"wrote {out / 'ladder.json'}, {out / 'ladder.md'}, {out / 'ladder.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
