"""The ladder benchmark's Markdown report and plot, made from its JSON alone."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from .harness import LABELS


def _n(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def markdown(payload: dict[str, Any]) -> str:
    s = payload["summary"]
    per: dict[str, dict[str, Any]] = s["per_config"]
    setup, machine = payload["setup"], payload["machine"]
    suite = {
        "gsm": "GSM-style word problems (reasoning-gym gsm_symbolic)",
        "tasks": "45 small agent chores (bench/tasks.py)",
    }[payload["suite"]]
    out = [
        f"# Cost per solved task: {suite}, {payload['split']} split",
        "",
        f"{setup['cases']} cases, run {setup['started']} on {machine['platform']} "
        f"({machine['cpu_count']} CPU cores, load {machine['load_average_at_start'][0]:.1f} at "
        f"start), llama-cpp-python {machine['llama_cpp_python']}. Greedy sampling, "
        f"max_tokens {setup['sampling']['max_tokens']}. Compute is billions of parameters x "
        "tokens that went through the model (evaluated prompt tokens plus generated ones; "
        "tokens reused from the KV cache are not compute). A case is solved when the run "
        "ended normally with an answer the checker accepts."
        + (
            f" Ladder policy fitted on the training split: `{payload['policy']}`."
            if payload.get("policy")
            else ""
        )
        + (
            f" The rows of {', '.join(payload['merged']['configs_kept'])} come from the run "
            f"of {payload['merged']['their_run']} (same code and cases); the others from "
            "this run, each configuration on freshly loaded models."
            if payload.get("merged")
            else ""
        ),
        "",
        "| configuration | solved | finished with an answer | compute | compute per solved "
        "| seconds per solved | escalations | answer-now turns |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for config, t in per.items():
        out.append(
            f"| {LABELS[config]} | {t['solved']}/{t['cases']} | {_pct(t['finished_rate'])} "
            f"| {_n(t['compute'])} | {_n(t['compute_per_solved'])} "
            f"| {_n(t['seconds_per_solved'])} | {t['escalations']} | {t['answer_requests']} |"
        )
    out += ["", *_targets(s), "", "## Why runs failed (from the stored events)", ""]
    causes = sorted({c for t in per.values() for c in t["causes"]})
    if causes:
        out.append("| cause | " + " | ".join(per) + " |")
        out.append("|---|" + "---:|" * len(per))
        for c in causes:
            out.append(
                f"| {c} | " + " | ".join(str(per[k]["causes"].get(c, 0)) for k in per) + " |"
            )
    else:
        out.append("Every run solved its case.")
    out += ["", *_escalations(payload), ""]
    return "\n".join(out)


def _targets(s: dict[str, Any]) -> list[str]:
    lines = []
    lv = s.get("ladder_vs_large")
    if lv:
        verdict = "met" if lv["met"] else "NOT met"
        lines.append(
            f"Ladder target (at least as many solved as always-1.5B, at most "
            f"{lv['target_share']:.0%} of its compute): **{verdict}**: {lv['solved'][0]} vs "
            f"{lv['solved'][1]} solved, {lv['compute_share']:.0%} of the compute."
        )
    est = s.get("estimate_check")
    if est and est["error"] is not None:
        lines.append(
            "The ladder's own estimate of what always-1.5B would cost "
            f"({_n(est['ladder_estimate_of_large'])}) against the measured always-1.5B runs "
            f"({_n(est['large_measured'])}): off by "
            f"{est['error']:+.0%}, because the large model alone takes other (often fewer) steps."
        )
    fin = s.get("small_finishes")
    if fin:
        verdict = "met" if fin["rate"] >= fin["target"] else "NOT met"
        lines.append(
            f"Always-0.5B runs that end with a final answer: {fin['rate']:.0%} "
            f"(target {fin['target']:.0%}: {verdict})."
        )
    sp = s.get("small_vs_plain")
    if sp:
        verdict = "met" if sp["ratio"] >= sp["target"] else "NOT met"
        lines.append(
            f"Always-0.5B through agentkit solves {sp['ratio']:.2f}x what one plain completion "
            f"of the same model solves (target {sp['target']}x: {verdict})."
        )
    return [x for line in lines for x in (line, "")][:-1]


def _escalations(payload: dict[str, Any]) -> list[str]:
    reasons: Counter[str] = Counter()
    for r in payload["rows"]:
        if r["config"] == "ladder":
            for reason in r["escalation_reasons"]:
                reasons[reason.split(": ", 1)[-1][:90]] += 1
    if not reasons:
        return []
    out = ["## Why the ladder escalated", "", "| reason | times |", "|---|---:|"]
    out += [f"| {reason} | {n} |" for reason, n in reasons.most_common(12)]
    return out


def plot(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per: dict[str, dict[str, Any]] = payload["summary"]["per_config"]
    names = [LABELS[c] for c in per]
    solved = [t["solved"] for t in per.values()]
    cost = [t["compute_per_solved"] or 0.0 for t in per.values()]
    colours = ["#a0aec0" if c in ("plain", "large") else "#2b6cb0" for c in per]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
    left.barh(names, solved, color=colours)
    left.set_xlabel(f"cases solved (of {payload['setup']['cases']})")
    for y, v in enumerate(solved):
        left.text(v, y, f" {v}", va="center", fontsize=9)
    right.barh(names, cost, color=colours)
    right.set_xlabel("compute per solved case (B-params x tokens)")
    for y, v in enumerate(cost):
        right.text(v, y, f" {v:,.0f}", va="center", fontsize=9)
    fig.suptitle(
        f"Cost per solved task: {payload['suite']} ({payload['split']} split)", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
