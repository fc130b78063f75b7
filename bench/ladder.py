"""Cost per solved task: the small model, the large model and the ladder, on agent suites.

    python -m bench.ladder --suite gsm   [--split test] [--configs plain small large ladder]
    python -m bench.ladder --suite tasks [--configs small large ladder]
    python -m bench.ladder --suite gsm --report-only      # rewrite .md/.png from the .json
    python -m bench.ladder --suite gsm --configs ladder --merge   # re-measure one config

Suites: ``gsm`` (reasoning-gym's gsm_symbolic with the calculator; a training and a
held-out split) and ``tasks`` (the 45 program-checked chores of ``bench.tasks``: 16 for
training, 29 held out, split by a hash of their ids). Configurations
(``bench.harness``): ``plain`` (one completion of the 0.5B, no tools: the baseline of QA
suites), ``small`` (always the 0.5B), ``large`` (always the 1.5B) and ``ladder``
(0.5B -> 1.5B; with ``--policy`` the policy fitted by ``bench.calibrate`` on the training
split, else the default).

Every run goes to one run store; the causes of failure are read from its events. The
JSON (rewritten after every run, so an interrupted benchmark leaves its rows) holds every
row; the Markdown report and the plot come from it. Greedy sampling, seed 0.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import agentkit
from agentkit import LlamaConfig, RunStore, Sampling, get_model

from . import harness
from .harness import CONFIGS, LABELS, LARGE, SMALL, Case, Row, Setup

TARGET_SHARE = 0.50
"""The ladder should solve at least as many as always-large for at most this much compute."""


def suite_cases(suite: str, split: str, limit: int | None) -> list[Case]:
    if suite == "gsm":
        from . import gsm

        return gsm.cases(split, limit)
    from .tasks import as_cases

    return as_cases(split, limit)


def _policy(path: Path | None, suite: str) -> agentkit.LadderPolicy | None:
    """The policy fitted for ``suite`` in a calibration file (its ``policy-SUITE`` section)."""
    if path is None:
        return None
    from agentkit import DefaultPolicy

    return DefaultPolicy.from_file(path, section=f"policy-{suite}")


def _load_models() -> dict[str, Any]:
    return {name: get_model(name, LlamaConfig(n_ctx=4096)) for name in (SMALL, LARGE)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    cases = suite_cases(args.suite, args.split, args.limit)
    configs = [c for c in args.configs if not (c == "plain" and args.suite != "gsm")]
    out = args.out / f"ladder-{args.suite}{'' if args.split == 'test' else '-' + args.split}.json"
    previous = json.loads(out.read_text()) if args.merge and out.exists() else None
    started = time.perf_counter()
    models: dict[str, Any] | None = _load_models()
    load_seconds = time.perf_counter() - started
    payload: dict[str, Any] = {
        "suite": args.suite,
        "split": args.split,
        "configs": configs,
        "policy": str(args.policy) if args.policy else None,
        "machine": machine_info(),
        "setup": {
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "cases": len(cases),
            "load_seconds": round(load_seconds, 1),
            "sampling": {"temperature": 0.0, "seed": 0, "max_tokens": 512},
        },
        "rows": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-ladder-") as tmp:
        store = RunStore(args.db or Path(tmp) / "runs.db")
        total = len(cases) * len(configs)
        done = 0
        # Config by config, so consecutive runs share their prompt prefix in the cache; each
        # config on freshly loaded models, so none finds another's runs of the same cases
        # in the cache (the ladder's 1.5B turns would otherwise reuse always-1.5B's prompts).
        for config in configs:
            if models is None:
                models = _load_models()
            setup = Setup(
                models=models,
                store=store,
                sampling=Sampling(temperature=0.0, seed=0, max_tokens=512),
                policy=_policy(args.policy, args.suite),
            )
            for case in cases:
                row = harness.run_case(case, config, setup)
                done += 1
                payload["rows"].append(asdict(row))
                print(progress(done, total, row), flush=True)
                write_json(out, payload)
            for model in models.values():
                model.close()
            models = None
        store.close()
    payload["setup"]["wall_seconds"] = round(time.perf_counter() - started, 1)
    if args.merge and previous is not None:
        kept = [r for r in previous["rows"] if r["config"] not in configs]
        payload["merged"] = {
            "configs_kept": sorted({r["config"] for r in kept}),
            "their_run": previous["setup"]["started"],
        }
        payload["rows"] = kept + payload["rows"]
        configs = [c for c in CONFIGS if any(r["config"] == c for r in payload["rows"])]
        payload["configs"] = configs
    payload["summary"] = summarize([Row(**r) for r in payload["rows"]], configs)
    write_json(out, payload)
    return payload


def progress(index: int, total: int, row: Row) -> str:
    mark = "ok  " if row.solved else "FAIL"
    return (
        f"[{index:3d}/{total}] {row.config:6s} {row.case:14s} {mark} {row.status:16s} "
        f"{row.seconds:6.1f}s steps={row.steps:2d} compute={row.compute:7.1f} "
        f"esc={row.escalations} ask={row.answer_requests} {row.cause or ''}"
    )


def summarize(rows: Sequence[Row], configs: Sequence[str]) -> dict[str, Any]:
    per = {c: harness.totals([r for r in rows if r.config == c]) for c in configs}
    summary: dict[str, Any] = {"per_config": per}
    if "large" in per and "ladder" in per and per["large"]["compute"]:
        large, ladder = per["large"], per["ladder"]
        summary["ladder_vs_large"] = {
            "solved": (ladder["solved"], large["solved"]),
            "compute_share": ladder["compute"] / large["compute"],
            "target_share": TARGET_SHARE,
            "met": ladder["solved"] >= large["solved"]
            and ladder["compute"] <= TARGET_SHARE * large["compute"],
        }
        estimate = sum(r.top_tier_estimate for r in rows if r.config == "ladder")
        summary["estimate_check"] = {
            "ladder_estimate_of_large": round(estimate, 1),
            "large_measured": large["compute"],
            "error": round(estimate / large["compute"] - 1, 3) if large["compute"] else None,
        }
    if "small" in per:
        small = per["small"]
        summary["small_finishes"] = {"rate": small["finished_rate"], "target": 0.95}
        if "plain" in per and per["plain"]["solved"]:
            summary["small_vs_plain"] = {
                "ratio": small["solved"] / per["plain"]["solved"],
                "target": 1.5,
            }
    return summary


# -- reports ----------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    import llama_cpp

    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "agentkit": agentkit.__version__,
        "llama_cpp_python": metadata.version("llama_cpp_python"),
        "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
        "load_average_at_start": list(os.getloadavg()),
    }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def _cost(x: float | None) -> str:
    return "-" if x is None else f"{x:,.1f}"


def render_markdown(payload: dict[str, Any]) -> str:
    from .ladder_report import markdown

    return markdown(payload)


def render_plot(payload: dict[str, Any], path: Path) -> None:
    from .ladder_report import plot

    plot(payload, path)


def write_reports(payload: dict[str, Any], json_path: Path) -> None:
    json_path.with_suffix(".md").write_text(render_markdown(payload), encoding="utf-8")
    render_plot(payload, json_path.with_suffix(".png"))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.ladder", description=__doc__.split("\n")[0])
    p.add_argument("--suite", choices=("gsm", "tasks"), default="gsm")
    p.add_argument("--split", choices=("train", "test"), default="test")
    p.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    p.add_argument("--limit", type=int, default=None, help="only the first N cases")
    p.add_argument("--policy", type=Path, default=None, help="a fitted policy (bench.calibrate)")
    p.add_argument("--db", type=Path, default=None, help="keep the run store here")
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    p.add_argument("--report-only", action="store_true")
    p.add_argument(
        "--merge",
        action="store_true",
        help="keep the existing JSON's rows of the configurations not run now",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    name = f"ladder-{args.suite}{'' if args.split == 'test' else '-' + args.split}.json"
    path = args.out / name
    payload = json.loads(path.read_text()) if args.report_only else run(args)
    write_reports(payload, path)
    per = payload["summary"]["per_config"]
    for config, t in per.items():
        print(
            f"{LABELS[config]:38s} solved {t['solved']:3d}/{t['cases']}  compute "
            f"{t['compute']:9.1f}  per solved {_cost(t['compute_per_solved'])}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
