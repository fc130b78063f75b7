"""bench.bfcl's bookkeeping: which tool choice it measures, and how it scores the modes."""

from __future__ import annotations

import json
from pathlib import Path

import pydantic
import pytest

from agentkit import ToolChoice
from bench.bfcl import _choice, summarize
from bench.bfcl_data import CATEGORIES


def test_a_calibration_file_without_a_fitted_choice_measures_the_default(
    tmp_path: Path,
) -> None:
    # The file the ladder fit writes holds policies only; it must not be read as a choice.
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"policy-gsm": {"base_tier": 1}}))
    assert _choice(path) == ToolChoice()
    assert _choice(None) == ToolChoice()


def test_a_fitted_choice_is_read_from_its_section(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    path.write_text(
        json.dumps(
            {
                "policy-gsm": {"base_tier": 1},
                "tool_choice": {"min_call_confidence": 0.4, "several_example": True},
            }
        )
    )
    choice = _choice(path)
    assert choice.min_call_confidence == 0.4
    assert choice.several_example is True


def test_a_fitted_choice_with_an_unknown_field_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"tool_choice": {"min_call_confidnce": 0.4}}))
    with pytest.raises(pydantic.ValidationError, match="min_call_confidnce"):
        _choice(path)


def _rows(mode: str, category: str, ok: int, of: int) -> list[dict[str, object]]:
    return [
        {"mode": mode, "category": category, "ok": i < ok, "id": f"{category}-{i}"}
        for i in range(of)
    ]


def test_each_category_is_judged_against_the_best_raw_mode() -> None:
    rows = []
    for category in CATEGORIES:
        rows += _rows("agentkit", category, 8, 10)
        rows += _rows("template", category, 7, 10)
        rows += _rows("chatml", category, 5, 10)
    summary = summarize(rows, ["agentkit", "template", "chatml"])
    simple = summary["targets"]["live_simple"]
    assert simple["raw_best"] == pytest.approx(0.7)
    assert simple["margin"] == pytest.approx(0.1)
    assert simple["met"] is True  # 10 points over the best raw mode, no floor
    # several calls needs 50% and no tool fits 70%: 80% meets both floors
    assert summary["targets"]["live_parallel"]["met"] is True
    assert summary["table"]["chatml"]["live_irrelevance"] == {
        "cases": 10,
        "ok": 5,
        "accuracy": 0.5,
    }


def test_a_category_below_its_floor_misses_even_with_a_margin() -> None:
    rows = _rows("agentkit", "live_irrelevance", 6, 10) + _rows(
        "template", "live_irrelevance", 2, 10
    )
    verdict = summarize(rows, ["agentkit", "template"])["targets"]["live_irrelevance"]
    assert verdict["margin"] == pytest.approx(0.4)
    assert verdict["met"] is False  # 60% is under the 70% asked of "no tool fits"
