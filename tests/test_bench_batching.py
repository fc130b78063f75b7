"""The batching benchmark's pieces that need no model: its task list, its scheduled
ladder policy, and reports written from a results file."""

from __future__ import annotations

from pathlib import Path

from agentkit import StepSignals
from bench.batching_agents import Scheduled, suite
from bench.batching_report import readme_block, write
from bench.tasks import KINDS

RESULTS = {
    "meta": {"date": "2025-01-01", "machine": "x86_64, 2 CPUs", "threads": 2, "command": "c"},
    "decode": {
        "model": "m", "prompt_tokens": 256, "generated_tokens": 64, "repeats": 3,
        "raw_command": "llama-batched-bench ...", "target": 0.9, "met": False,
        "rows": [
            {"n": 1, "raw_median": 25.0, "agentkit_median": 24.0, "ratio": 0.96},
            {"n": 8, "raw_median": 100.0, "agentkit_median": 85.0, "ratio": 0.85},
        ],
    },
    "prefix": {
        "tier_change_steps": [7, 9], "reused": 0.8, "reused_sharing": 0.9, "target": 0.85,
        "met": True,
        "per_run_sequences": {"runs": [
            {"status": "succeeded", "steps": 20, "prompt_tokens": 20000, "reused": 0.8,
             "per_step": [{"step": 1, "tier": 0, "evaluated": 700},
                          {"step": 3, "tier": 1, "evaluated": 600}]},
            {"status": "succeeded", "steps": 20, "prompt_tokens": 20000, "reused": 0.9,
             "per_step": [{"step": 1, "tier": 0, "evaluated": 1},
                          {"step": 3, "tier": 1, "evaluated": 60}]},
        ]},
    },
}  # fmt: skip


def test_the_suite_interleaves_kinds_and_is_stable() -> None:
    chosen = suite(2)
    assert [t.kind for t in chosen[: len(KINDS)]] == list(KINDS)
    assert len(chosen) == 2 * len(KINDS)
    assert [t.id for t in suite(2)] == [t.id for t in chosen]


def test_the_scheduled_policy_changes_tier_and_comes_back() -> None:
    policy = Scheduled(frozenset({7, 9}))
    tiers = [policy.choose(StepSignals(step=s, node="model"), 2).tier for s in range(1, 14, 2)]
    assert tiers == [0, 0, 0, 1, 1, 0, 0]


def test_reports_are_written_from_the_results(tmp_path: Path) -> None:
    write(RESULTS, tmp_path)
    md = (tmp_path / "batching.md").read_text()
    assert "| 8 | 100.0 | 85.0 | 85% |" in md
    assert "at every N: **not met**" in md
    assert "reused at least **90%** of their prompt tokens (target 85%): **met**" in md
    assert "Run 1, the first on freshly loaded models, reused 80%" in md
    assert "its first step 700 tokens, its first tier-1 step 600" in md
    assert "_Not measured yet._" in md  # the parts not in the file
    assert (tmp_path / "batching.png").stat().st_size > 1000
    block = readme_block(RESULTS)
    assert "8: 85 vs 100" in block and "reused at least **90%**" in block
