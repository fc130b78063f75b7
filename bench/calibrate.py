"""Fit the thresholds agentkit decides by, on training splits only, and save them.

    python -m bench.calibrate choice   [--per-category 30]   # BFCL train half -> tool choice
    python -m bench.calibrate policy   [--suite gsm|tasks]   # ladder-SUITE-train.json -> policy

**Tool choice** (whether a turn makes no call, one, or several): agentkit can ask the model
how many calls its reply needs and read the answer from the digits' probabilities
(``ToolChoice.plan``). On the BFCL training half (live_simple, live_multiple,
live_irrelevance, and live_parallel_multiple, so that live_parallel stays wholly held out)
each case runs twice, once making one call and once making the plan's count of two or more,
recording the outcomes, the plan's probabilities and the call's decision confidence. Every
triple (no-call threshold, several-calls threshold, confidence floor) then has a known
outcome on every case (a text answer is right only where no function fits), and the triple
with the best mean accuracy over the categories is found by search.

**Ladder policy**, one per suite: from always-0.5B and always-1.5B runs on the suite's
training split (``python -m bench.ladder --suite gsm --split train --configs small large``,
the same with ``--suite tasks``), the answer
confidence below which the ladder redoes the 0.5B's final answer on the 1.5B is searched:
each case then takes the 1.5B's outcome at the cost of one cold 1.5B turn (its last prompt
plus the 1.5B's own generation), or keeps the 0.5B's. Whether an answer given without any
tool call is escalated is chosen the same way, and so is starting on the 1.5B outright
(base tier 1: the 1.5B's own runs). The policy that meets the ladder target (as many solved
as the 1.5B within half its compute) at the least compute wins; where none does, the one
with the least compute per solved case.

Everything goes to bench/results/calibration.json, with the training figures behind
each choice; the held-out reports (bench.bfcl, bench.ladder) read it from there.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import random
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentkit import DefaultPolicy, RunStore, ToolChoice

from . import bfcl_data

OUT = Path("bench/results/calibration.json")
CHOICE_CATEGORIES = ("live_simple", "live_multiple", "live_irrelevance", "live_parallel_multiple")
LARGE_PARAMS = 1.78e9
"""Parameters of qwen2.5-coder-1.5b as the catalog counts them (embeddings included)."""


def _load() -> dict[str, Any]:
    return json.loads(OUT.read_text()) if OUT.exists() else {}


def _save(data: dict[str, Any]) -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


# -- tool choice --------------------------------------------------------------------------------


# Two passes over the training cases, both asking the plan question first: "one" makes
# exactly one call whatever the plan says, "several" always makes as many as the plan's most
# likely count of two or more. With a text answer for "no call" (right only where no
# function fits), every threshold pair then has a known outcome on every case.
PASSES = {
    "one": ToolChoice(plan="first", no_call_threshold=1.0, several_threshold=1.0),
    "several": ToolChoice(plan="first", no_call_threshold=1.0, several_threshold=0.0),
}


def choice_cases(per_category: int) -> list[bfcl_data.Case]:
    """Training cases: ``per_category`` of each category's training half, and all of
    live_parallel_multiple (no report uses it; it teaches "several")."""
    cases = []
    for category in CHOICE_CATEGORIES:
        pool = bfcl_data.load(category)
        if category != "live_parallel_multiple":
            pool = [c for c in pool if c.split == "train"]
            random.Random(f"calibrate:{category}").shuffle(pool)
            pool = pool[:per_category]
        cases += pool
    return cases


def fit_choice(per_category: int) -> dict[str, Any]:
    from .bfcl import AgentkitTurn

    check = bfcl_data.checker()
    cases = choice_cases(per_category)
    records = []
    with tempfile.TemporaryDirectory(prefix="calibrate-") as tmp:
        store = RunStore(Path(tmp) / "runs.db")
        for name, choice in PASSES.items():
            turn = AgentkitTurn(store, choice)
            for i, case in enumerate(cases, 1):
                calls, plan = turn.turn(case)
                ok = check(case, calls)[0]
                records.append(
                    {
                        "id": case.id,
                        "category": case.category,
                        "pass": name,
                        "ok": ok,
                        "calls": len(calls),
                        "confidence": turn.last_confidence if calls else None,
                        "p_none": None if plan is None else round(1 - plan.probability, 6),
                        "p_several": None if plan is None else round(plan.several or 0.0, 6),
                    }
                )
                print(
                    f"[calibrate {name} {i}/{len(cases)}] {case.id} ok={ok} calls={len(calls)} "
                    f"p_none={records[-1]['p_none']} p_several={records[-1]['p_several']}",
                    flush=True,
                )
    return {"records": records, **search_choice(records)}


def _paired(records: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Each case's "one" record with its "several" record (itself where that is missing)."""
    several = {r["id"]: r for r in records if r["pass"] == "several"}
    return [(r, several.get(r["id"], r)) for r in records if r["pass"] == "one"]


def _outcomes_of(
    pairs: Sequence[tuple[dict[str, Any], dict[str, Any]]],
    no_call: float,
    several: float,
    floor: float,
) -> dict[str, float]:
    """Per category, the accuracy the thresholds give, read from the two passes' outcomes."""
    per: dict[str, list[bool]] = {}
    for r, forced in pairs:
        fits_none = r["category"] == "live_irrelevance"
        if (r["p_none"] or 0.0) >= no_call:
            ok = fits_none  # answered in text
        else:
            made = forced if (r["p_several"] or 0.0) >= several else r
            declined = made["confidence"] is not None and made["confidence"] < floor
            ok = fits_none if declined else bool(made["ok"])
        per.setdefault(r["category"], []).append(ok)
    return {c: sum(v) / len(v) for c, v in per.items()}


def _midpoints(values: Sequence[float | None], most: int = 40) -> list[float]:
    """Thresholds between the recorded values (at most ``most`` of them, by quantile)."""
    seen = sorted({v for v in values if v is not None})
    mids = [(a + b) / 2 for a, b in itertools.pairwise(seen)]
    if len(mids) > most:
        mids = [mids[round(i * (len(mids) - 1) / (most - 1))] for i in range(most)]
    return mids


def search_choice(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The thresholds with the best mean accuracy over the categories on these records.

    Ties go to the choice closest to plain behaviour: fewer declines (a higher no-call
    threshold), fewer forced extra calls (a higher several threshold), the lower floor.
    """
    one = [r for r in records if r["pass"] == "one"]
    no_calls = [*_midpoints([r["p_none"] for r in one]), 1.0]
    severals = [*_midpoints([r["p_several"] for r in one]), 1.0]
    floors = [0.0, *_midpoints([r["confidence"] for r in records], most=12)]
    pairs = _paired(records)
    best: tuple[Any, ...] | None = None
    for t0, ts, floor in itertools.product(no_calls, severals, floors):
        acc = _outcomes_of(pairs, t0, ts, floor)
        key = (round(sum(acc.values()) / len(acc), 9), t0, ts, -floor)
        if best is None or key > best[0]:
            best = (key, t0, ts, floor, acc)
    assert best is not None, "no records to fit the tool choice on"
    _, t0, ts, floor, acc = best
    return {
        "tool_choice": ToolChoice(
            plan="first",
            no_call_threshold=round(t0, 6),
            several_threshold=round(ts, 6),
            min_call_confidence=round(floor, 6),
        ).model_dump(exclude={"plan_question"}),
        "train_accuracy": acc,
        "train_mean_accuracy": sum(acc.values()) / len(acc),
        "train_accuracy_one_call": _outcomes_of(pairs, 1.0, 1.0, 0.0),
    }


# -- ladder policy ------------------------------------------------------------------------------


def fit_policy(rows_path: Path) -> dict[str, Any]:
    rows = json.loads(rows_path.read_text())["rows"]
    small = {r["case"]: r for r in rows if r["config"] == "small"}
    large = {r["case"]: r for r in rows if r["config"] == "large"}
    cases = sorted(small.keys() & large.keys())
    if not cases:
        raise SystemExit(f"{rows_path} has no case run under both small and large")
    large_compute = sum(large[c]["compute"] for c in cases)
    large_solved = sum(bool(large[c]["solved"]) for c in cases)
    budget = 0.5 * large_compute
    finals = sorted({(small[c]["confidences"] or [None])[-1] or 0.0 for c in cases})
    thresholds = [0.0, *[(a + b) / 2 for a, b in itertools.pairwise(finals)], 1.01]
    # (base tier, threshold, escalate tool-less answers) -> (solved, compute, escalations);
    # starting on the large model is a candidate too: a first rung that costs more per
    # solved case than the large alone is not fit for the work.
    candidates: dict[tuple[int, float, bool], tuple[int, float, int]] = {
        (1, 0.0, False): (large_solved, large_compute, 0)
    }
    for tau in thresholds:
        for no_tools in (False, True):
            candidates[(0, tau, no_tools)] = _simulate(cases, small, large, tau, no_tools)
    best = min(candidates, key=lambda k: _objective(candidates[k], budget, large_solved))
    base, tau, no_tools = best
    solved, compute, escalated = candidates[best]
    policy = DefaultPolicy(
        low_confidence=0.0,  # mid-run calls are judged by hard signals, not confidence
        answer_confidence=round(min(tau, 1.0), 4),
        expect_tool_use=no_tools,
        base_tier=base,
    )
    cheapest_small_first = min(
        (v for k, v in candidates.items() if k[0] == 0),
        key=lambda v: v[1] / max(v[0], 1),
    )
    return {
        "policy": dataclasses.asdict(policy),
        "train": {
            "cases": len(cases),
            "small_solved": sum(small[c]["solved"] for c in cases),
            "large_solved": large_solved,
            "large_compute": round(large_compute, 1),
            "objective": "within half the large model's compute with as many solved if any "
            "policy gets there, else the least compute per solved case",
            "chosen": "start on the large model" if base else "start on the small model",
            "simulated_ladder_solved": solved,
            "simulated_ladder_compute": round(compute, 1),
            "simulated_escalations": escalated,
            "best_small_first": {
                "solved": cheapest_small_first[0],
                "compute": round(cheapest_small_first[1], 1),
                "escalations": cheapest_small_first[2],
            },
        },
    }


def _objective(
    outcome: tuple[int, float, int], budget: float, large_solved: int
) -> tuple[bool, float, int]:
    """Smaller is better: meeting the ladder target first, then compute per solved case."""
    solved, compute, _ = outcome
    meets = compute <= budget and solved >= large_solved
    per_solved = compute / solved if solved else float("inf")
    return (not meets, compute if meets else per_solved, -solved)


def _simulate(
    cases: Sequence[str],
    small: dict[str, Any],
    large: dict[str, Any],
    tau: float,
    no_tools: bool,
) -> tuple[int, float, int]:
    solved, compute, escalated = 0, 0.0, 0
    for c in cases:
        s, big = small[c], large[c]
        final = (s["confidences"] or [None])[-1]
        unfinished = s["status"] != "succeeded"
        up = unfinished or final is None or final < tau or (no_tools and s["tool_calls"] == 0)
        compute += s["compute"]
        if up:
            escalated += 1
            compute += (s["last_prompt_tokens"] + big["completion_tokens"]) * LARGE_PARAMS / 1e9
            solved += bool(big["solved"])
        else:
            solved += bool(s["solved"])
    return solved, compute, escalated


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.calibrate", description=__doc__.split("\n")[0] if __doc__ else ""
    )
    p.add_argument("what", choices=("choice", "policy"))
    p.add_argument("--per-category", type=int, default=30)
    p.add_argument("--suite", choices=("gsm", "tasks"), default="gsm")
    p.add_argument("--rows", type=Path, help="default: bench/results/ladder-SUITE-train.json")
    args = p.parse_args(argv)
    data = _load()
    if args.what == "choice":
        fitted = fit_choice(args.per_category)
        data["tool_choice"] = fitted["tool_choice"]
        data["tool_choice_fit"] = {k: v for k, v in fitted.items() if k != "tool_choice"}
    else:
        rows = args.rows or OUT.parent / f"ladder-{args.suite}-train.json"
        fitted = fit_policy(rows)
        data.pop("policy", None)  # one unnamed policy, from before policies were per suite
        data.pop("policy_fit", None)
        data[f"policy-{args.suite}"] = fitted["policy"]
        data[f"policy-{args.suite}-fit"] = fitted["train"]
    _save(data)
    print(json.dumps({k: v for k, v in fitted.items() if k != "records"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
