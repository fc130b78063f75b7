"""bench.calibrate's ladder-policy fit: chosen from training rows, by cost per solved case."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.calibrate import fit_policy


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
