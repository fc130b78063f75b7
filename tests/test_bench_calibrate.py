"""bench.calibrate's ladder-policy fit: chosen from training rows, by cost per solved case."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.calibrate import fit_policy, search_choice


def _row(case: str, config: str, solved: bool, compute: float, confidence: float) -> dict[str, Any]:
    return {
        "case": case,
        "config": config,
        "solved": solved,
        "status": "succeeded",
        "compute": compute,
        "confidences": [confidence],
        "tool_calls": 1,
        "last_prompt_tokens": 100,
        "completion_tokens": 50,
    }


def _fit(tmp_path: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    path = tmp_path / "rows.json"
    path.write_text(json.dumps({"rows": rows}))
    return fit_policy(path)


def test_a_small_model_that_is_sure_when_right_starts_the_ladder(tmp_path: Path) -> None:
    # The 0.5B solves 8 of 10, confidently; where it fails it is unsure: escalating those
    # two below a threshold between the confidences solves all 10 for far less.
    rows = []
    for i in range(10):
        right = i < 8
        rows.append(_row(f"c{i}", "small", right, 50.0, 0.9 if right else 0.2))
        rows.append(_row(f"c{i}", "large", True, 600.0, 0.9))
    fit = _fit(tmp_path, rows)
    assert fit["policy"]["base_tier"] == 0
    assert 0.2 < fit["policy"]["answer_confidence"] < 0.9
    assert fit["train"]["simulated_ladder_solved"] == 10
    assert fit["train"]["simulated_ladder_compute"] < 0.5 * fit["train"]["large_compute"]


def test_a_first_rung_that_costs_more_per_solved_case_is_skipped(tmp_path: Path) -> None:
    # The 0.5B solves 1 of 10 and its confidence says nothing; the 1.5B solves 6, each
    # run costing less than the 0.5B's failed attempt plus a cold 1.5B turn.
    rows = []
    for i in range(10):
        rows.append(_row(f"c{i}", "small", i == 0, 300.0, 0.5 + i / 100))
        rows.append(_row(f"c{i}", "large", i < 6, 250.0, 0.9))
    fit = _fit(tmp_path, rows)
    assert fit["policy"]["base_tier"] == 1
    assert fit["train"]["chosen"] == "start on the large model"
    assert fit["train"]["simulated_ladder_solved"] == 6
    best = fit["train"]["best_small_first"]
    assert best["compute"] / best["solved"] > 2500 / 6  # why the small rung lost


def _choice_records(
    case: str, category: str, p_none: float, p_several: float, one_ok: bool, several_ok: bool
) -> list[dict[str, Any]]:
    common = {"id": case, "category": category, "p_none": p_none, "p_several": p_several}
    return [
        {**common, "pass": "one", "ok": one_ok, "calls": 1, "confidence": 0.9},
        {**common, "pass": "several", "ok": several_ok, "calls": 2, "confidence": 0.9},
    ]


def test_the_tool_choice_fit_reads_no_call_and_several_from_the_plan() -> None:
    # On these records the plan separates the kinds of request only by a little (the 0.5B's
    # P(several) is 0.40-0.44 where several calls are needed, 0.30-0.34 elsewhere), which
    # the shipped 0.5 thresholds never reach: the fit must place both between the groups.
    records = []
    for i in range(5):
        records += _choice_records(f"s{i}", "live_simple", 0.1, 0.30 + i / 100, True, False)
        records += _choice_records(
            f"p{i}", "live_parallel_multiple", 0.1, 0.40 + i / 100, False, True
        )
        records += _choice_records(f"n{i}", "live_irrelevance", 0.30 + i / 100, 0.3, False, False)
    fit = search_choice(records)
    choice = fit["tool_choice"]
    assert choice["plan"] == "first"
    assert 0.34 < choice["several_threshold"] < 0.40
    assert 0.1 < choice["no_call_threshold"] < 0.30
    assert fit["train_accuracy"] == {
        "live_simple": 1.0,
        "live_parallel_multiple": 1.0,
        "live_irrelevance": 1.0,
    }
    # one call every time: only the single-call requests are right
    assert fit["train_accuracy_one_call"]["live_simple"] == 1.0
    assert fit["train_accuracy_one_call"]["live_parallel_multiple"] == 0.0


def test_without_a_signal_the_tool_choice_fit_keeps_plain_behaviour() -> None:
    # The plan's probabilities are the same for every request: no threshold can help,
    # so the fit must not force extra calls or declines on anyone.
    records = []
    for i in range(4):
        records += _choice_records(f"s{i}", "live_simple", 0.2, 0.3, True, False)
        records += _choice_records(f"p{i}", "live_parallel_multiple", 0.2, 0.3, i == 0, i < 2)
    choice = search_choice(records)["tool_choice"]
    assert choice["no_call_threshold"] == 1.0
    assert choice["several_threshold"] == 1.0
    assert choice["min_call_confidence"] == 0.0
