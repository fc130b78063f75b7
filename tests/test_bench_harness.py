"""The benchmark harness: cost per solved task, causes read from events, the reports."""

from __future__ import annotations

from dataclasses import asdict
from decimal import Decimal
from typing import Any

import pytest

from agentkit.events import DetectorStrike, ToolCallFinished
from bench import gsm
from bench.harness import CAUSES, Row, cause, totals
from bench.ladder import summarize
from bench.ladder_report import markdown


def row(case: str, config: str, solved: bool, compute: float, **extra: Any) -> Row:
    base: dict[str, Any] = {
        "case": case,
        "suite": "gsm",
        "split": "test",
        "kind": "gsm",
        "config": config,
        "solved": solved,
        "status": "succeeded",
        "detail": "",
        "answer": "42",
        "seconds": 2.0,
    }
    base.update(extra)
    return Row(compute=compute, **base)


def test_cost_per_solved_and_the_ladder_target() -> None:
    rows = [
        row("a", "large", True, 100.0),
        row("b", "large", True, 100.0),
        row("a", "ladder", True, 20.0),
        row("b", "ladder", False, 40.0, escalations=1),
    ]
    t = totals([r for r in rows if r.config == "large"])
    assert t["solved"] == 2 and t["compute_per_solved"] == 100.0 and t["seconds_per_solved"] == 2.0
    s = summarize(rows, ["large", "ladder"])
    assert s["ladder_vs_large"]["compute_share"] == pytest.approx(0.3)
    assert s["ladder_vs_large"]["met"] is False  # one fewer solved
    rows[3] = row("b", "ladder", True, 40.0)
    assert summarize(rows, ["large", "ladder"])["ladder_vs_large"]["met"] is True
    rows[3] = row("b", "ladder", True, 90.0)  # as many solved, but 55% of the compute
    assert summarize(rows, ["large", "ladder"])["ladder_vs_large"]["met"] is False


def test_the_estimate_is_checked_against_measured_runs() -> None:
    rows = [row("a", "large", True, 100.0), row("a", "ladder", True, 30.0, top_tier_estimate=150.0)]
    est = summarize(rows, ["large", "ladder"])["estimate_check"]
    assert est["error"] == pytest.approx(0.5)


def _strike(step: int) -> DetectorStrike:
    return DetectorStrike(
        run_id="r",
        step=step,
        detector="same_result",
        message="m",
        window="",
        steps=[step],
        response="stop",
    )


def _call(result: str, error: bool = False) -> ToolCallFinished:
    return ToolCallFinished(
        run_id="r",
        step=2,
        call_id="c",
        name="calculator",
        arguments={},
        result=result,
        is_error=error,
    )


@pytest.mark.parametrize(
    ("status", "answer", "detail", "events", "expected"),
    [
        ("stopped", None, "", [_strike(4)], f"{CAUSES[3]} (same_result)"),
        ("budget_exhausted", None, "", [], CAUSES[4]),
        ("failed", "<tool_call>", "the final answer is tool-call markup", [], CAUSES[1]),
        ("failed", None, "empty", [], CAUSES[2]),
        ("succeeded", "[agentkit] 5", "", [_call("5")], CAUSES[5]),
        ("succeeded", "5", "", [], CAUSES[6]),
        ("succeeded", "5", "", [_call("Error: x", True)], CAUSES[7]),
        ("succeeded", "It is 7", "", [_call("5")], CAUSES[8]),
        ("succeeded", "It is 5", "", [_call("5")], CAUSES[9]),
    ],
)
def test_causes_come_from_the_events(
    status: str, answer: str | None, detail: str, events: list[Any], expected: str
) -> None:
    r = row("a", "small", False, 1.0, status=status, answer=answer, detail=detail)
    assert cause(r, events) == expected
    assert cause(row("a", "small", True, 1.0), events) is None


def test_gsm_checker_reads_the_last_number() -> None:
    assert gsm.last_number("First 12, then 1,234.5") == Decimal("1234.5")
    assert gsm.last_number("no number") is None
    assert gsm._check(Decimal(42), "The answer is 42.").ok
    assert not gsm._check(Decimal(42), "42 apples, so 41").ok


def test_the_report_renders_from_rows() -> None:
    rows = [
        row("a", "small", False, 5.0, status="stopped", cause=f"{CAUSES[3]} (same_result)"),
        row("a", "large", True, 100.0),
        row(
            "a",
            "ladder",
            True,
            30.0,
            escalations=1,
            escalation_reasons=["0->1: escalate within the step: low answer confidence 0.2 < 0.3"],
        ),
    ]
    payload = {
        "suite": "gsm",
        "split": "test",
        "policy": None,
        "setup": {"started": "2026-01-01", "cases": 1, "sampling": {"max_tokens": 512}},
        "machine": {
            "platform": "test",
            "cpu_count": 2,
            "load_average_at_start": [1.0],
            "llama_cpp_python": "0",
        },
        "rows": [asdict(r) for r in rows],
        "summary": summarize(rows, ["small", "large", "ladder"]),
    }
    text = markdown(payload)
    assert "**met**" in text  # 1 vs 1 solved at 30% of the compute
    assert f"| {CAUSES[3]} (same_result) | 1 | 0 | 0 |" in text
    assert "low answer confidence 0.2 < 0.3 | 1 |" in text
