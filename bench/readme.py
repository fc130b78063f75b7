"""The README's benchmark figures, generated from bench/results/*.json, never typed.

    python -m bench.readme           # rewrite the generated blocks of README.md
    python -m bench.readme --check   # exit 1 when README.md is out of date (the tests run it)

A generated block sits between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``; NAME
is a renderer below. A result file that does not exist yet leaves its block saying so.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"
_BLOCK = re.compile(
    r"(<!-- bench:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /bench:(?P=name) -->)", re.S
)


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _missing(name: str) -> str:
    return f"_No recorded results yet: run `python -m bench {name.split('-')[0]}`._\n"


def overhead() -> str:
    r = _load("overhead")
    if r is None:
        return _missing("overhead")
    h = r["headline"]
    lines = [
        f"A {r['settings']['steps_per_run']}-step tool loop with the scripted model (zero model "
        f"time), run store on disk: agentkit **{h['agentkit_steps_per_s']:,.0f} steps/s "
        f"({h['agentkit_ms_per_step']:.2f} ms per step)** against LangGraph's "
        f"{h['langgraph_steps_per_s']:,.0f} with its SQLite checkpointer in the same process: "
        f"**{h['ratio']:.1f}x** ({h['cpu_ratio']:.1f}x on CPU time). The target was 5x and "
        f"under 1 ms per step: {'met' if h['ratio_met'] and h['ms_per_step_met'] else 'not met'}.",
    ]
    if a := r.get("against"):
        lines.append(
            f"Against commit {a['commit']} in the same run: {a['current_steps_per_s']:,.0f} vs "
            f"{a['rev_steps_per_s']:,.0f} steps/s ({a['ratio']:.2f}x)."
        )
    return " ".join(lines) + "\n"


def detectors() -> str:
    r = _load("detectors")
    if r is None:
        return _missing("detectors")
    loops, normal = r["summary"]["loops"], r["summary"]["normal"]
    parts = [
        f"On {loops['prompts']} prompts that drive smollm2-135m into degenerate text (greedy), "
        f"the streaming detector stopped {loops['caught']}: **{loops['tokens_without']:,} tokens "
        f"-> {loops['tokens_with']:,} ({loops['tokens_saved_share']:.0%} fewer)**, "
        f"{loops['seconds_without']:.1f} s -> {loops['seconds_with']:.1f} s. On "
        f"{normal['prompts']} ordinary generations it cost {normal['overhead']:.2%} of "
        f"generation time and tripped {len(normal['false_trips'])} times.",
    ]
    if agents := r["summary"].get("agent_runs"):
        parts.append(
            f"Over {agents['runs']} ordinary agent runs the loop detector raised "
            f"{agents['false_alarms']} false alarms."
        )
    return " ".join(parts) + "\n"


def _ladder_table(name: str) -> str:
    r = _load(name)
    if r is None:
        return _missing(name)
    per = r["summary"]["per_config"]
    labels = {
        "plain": "one plain completion, 0.5B",
        "small": "always 0.5B",
        "large": "always 1.5B",
        "ladder": "ladder 0.5B -> 1.5B",
    }
    rows = [
        "| configuration | solved | finished with an answer | compute | compute per solved "
        "| seconds per solved |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for config, t in per.items():
        cps = "-" if t["compute_per_solved"] is None else f"{t['compute_per_solved']:,.0f}"
        sps = "-" if t["seconds_per_solved"] is None else f"{t['seconds_per_solved']:,.1f}"
        rows.append(
            f"| {labels[config]} | {t['solved']}/{t['cases']} | {t['finished_rate']:.0%} "
            f"| {t['compute']:,.0f} | {cps} | {sps} |"
        )
    notes = []
    s = r["summary"]
    if lv := s.get("ladder_vs_large"):
        notes.append(
            f"Ladder vs always-1.5B: {lv['solved'][0]} vs {lv['solved'][1]} solved at "
            f"{lv['compute_share']:.0%} of its compute (target: as many, at most "
            f"{lv['target_share']:.0%}): **{'met' if lv['met'] else 'not met'}**."
        )
    if sp := s.get("small_vs_plain"):
        notes.append(f"Always-0.5B solves {sp['ratio']:.2f}x one plain completion (target 1.5x).")
    if fin := s.get("small_finishes"):
        notes.append(f"Always-0.5B runs ending with an answer: {fin['rate']:.0%} (target 95%).")
    return "\n".join(rows) + "\n\n" + " ".join(notes) + "\n"


def ladder_gsm() -> str:
    return _ladder_table("ladder-gsm")


def ladder_tasks() -> str:
    return _ladder_table("ladder-tasks")


def bfcl() -> str:
    r = _load("bfcl")
    if r is None:
        return _missing("bfcl")
    from .bfcl_data import CATEGORIES, LABELS

    table = r["summary"]["table"]
    modes = list(table)
    head = {"agentkit": "agentkit", "template": "raw, chat template", "chatml": "raw, chatml-fc"}
    rows = [
        "| category | " + " | ".join(head.get(m, m) for m in modes) + " |",
        "|---|" + "---:|" * len(modes),
    ]
    for c in CATEGORIES:
        rows.append(
            f"| {LABELS[c]} | " + " | ".join(f"{table[m][c]['accuracy']:.0%}" for m in modes) + " |"
        )
    return "\n".join(rows) + "\n"


def batching() -> str:
    r = _load("batching")
    if r is None or "decode" not in r:
        return _missing("batching")
    d = r["decode"]
    rows = [
        f"Decode throughput, {d['model']}, {d['prompt_tokens']} prompt and "
        f"{d['generated_tokens']} generated tokens per sequence, against llama.cpp's own "
        "`llama-batched-bench` in the same run:",
        "",
        "| sequences together | llama-batched-bench tok/s | agentkit tok/s | agentkit / raw |",
        "|---:|---:|---:|---:|",
    ]
    for row in d["rows"]:
        rows.append(
            f"| {row['n']} | {row['raw_median']:.1f} | {row['agentkit_median']:.1f} | "
            f"{row['ratio']:.0%} |"
        )
    rows += ["", f"Target: at least {d['target']:.0%} of raw at every N: "
             f"{'met' if d['met'] else 'not met'}."]  # fmt: skip
    return "\n".join(rows) + "\n"


RENDERERS: dict[str, Callable[[], str]] = {
    "batching": batching,
    "overhead": overhead,
    "detectors": detectors,
    "ladder-gsm": ladder_gsm,
    "ladder-tasks": ladder_tasks,
    "bfcl": bfcl,
}


def render(text: str) -> str:
    def block(m: re.Match[str]) -> str:
        fn = RENDERERS.get(m.group("name"))
        body = fn() if fn else m.group("body")
        return m.group(1) + body + m.group(4)

    return _BLOCK.sub(block, text)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.readme", description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true")
    args = p.parse_args(argv)
    current = README.read_text(encoding="utf-8")
    fresh = render(current)
    if args.check:
        if fresh != current:
            print("README.md is out of date with bench/results; run `python -m bench.readme`")
            return 1
        return 0
    README.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
