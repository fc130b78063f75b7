"""The agent parts of ``bench.batching``: many runs at once, llama-server, prefix reuse.

Every configuration gets a freshly loaded model (or a fresh server), so none inherits
another's cache. Runs are real agent runs of ``bench.tasks`` (each task with its own
tools and checker) written to one temporary store; each is started as an asyncio task of
one event loop, ``concurrency`` at a time, exactly as ``Agent.run_many`` runs its tasks.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import agentkit
from agentkit import (
    Agent,
    BatchConfig,
    ChatModel,
    LlamaConfig,
    ModelLadder,
    RunStore,
    Sampling,
    StepReview,
    StepSignals,
    TierDecision,
    load_tier,
    tool,
)
from agentkit.events import ModelCalled
from agentkit.models import LlamaServer

from .tasks import KINDS, Task, build_agent, tasks

SPEEDUP_TARGET = 2.0
SERVER_TARGET = 1.2
REUSE_TARGET = 0.85


@dataclass
class Row:
    task: str
    kind: str
    status: str
    solved: bool
    seconds: float
    steps: int
    prompt_tokens: int
    cached_tokens: int
    evaluated_tokens: int
    completion_tokens: int
    error: str | None


def suite(limit: int) -> list[Task]:
    """``limit`` tasks of each kind, interleaved kind by kind (the same list every run)."""
    by_kind = [tasks([kind], limit=limit) for kind in KINDS]
    return [t for group in itertools.zip_longest(*by_kind) for t in group if t is not None]


def _load(
    name: str, args: argparse.Namespace, parallel: int, sequences: int = 64, saved_mb: float = 256
) -> Any:
    batching = BatchConfig(
        parallel=parallel, sequences=max(sequences, parallel + 1), saved_mb=saved_mb
    )
    config = LlamaConfig(n_ctx=4096, n_threads=args.threads, seed=0, batching=batching)
    return agentkit.LlamaCppModel.load(name, config)


def run_suite(
    model: ChatModel | ModelLadder, chosen: list[Task], concurrency: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Every task, ``concurrency`` at a time; rows in task order and the wall time."""
    sampling = Sampling(temperature=0.0, max_tokens=args.max_tokens, seed=0)
    with tempfile.TemporaryDirectory(prefix="bench-batching-") as root:
        store = RunStore(Path(root) / "runs.db")

        async def one(i: int, task: Task, gate: asyncio.Semaphore) -> Row:
            folder = Path(root) / f"t{i}"
            folder.mkdir()
            agent, env = build_agent(
                task, model, folder, store=store, sampling=sampling, max_steps=args.max_steps
            )
            async with gate:
                started = time.perf_counter()
                try:
                    result = await agent.arun(task.prompt)
                except Exception as exc:  # a runtime bug: a row, and the suite goes on
                    return Row(task.id, task.kind, "crashed", False,
                               time.perf_counter() - started, 0, 0, 0, 0, 0, repr(exc))  # fmt: skip
            u = result.usage
            solved = result.status == "succeeded" and env.check(result.answer).ok
            return Row(task.id, task.kind, result.status, solved, round(result.seconds, 3),
                       result.steps, u.prompt_tokens, u.cached_tokens, u.evaluated_tokens,
                       u.completion_tokens, result.error)  # fmt: skip

        async def everything() -> list[Row]:
            gate = asyncio.Semaphore(concurrency)
            return list(await asyncio.gather(*(one(i, t, gate) for i, t in enumerate(chosen))))

        started = time.perf_counter()
        rows = asyncio.run(everything())
        wall = time.perf_counter() - started
        store.close()
    return _totals(rows, wall, concurrency)


def _totals(rows: list[Row], wall: float, concurrency: int) -> dict[str, Any]:
    prompt = sum(r.prompt_tokens for r in rows)
    return {
        "concurrency": concurrency,
        "tasks": len(rows),
        "wall_seconds": round(wall, 2),
        "tasks_per_minute": round(60 * len(rows) / wall, 3),
        "solved": sum(r.solved for r in rows),
        "statuses": dict(sorted(Counter(r.status for r in rows).items())),
        "prompt_tokens": prompt,
        "cached_tokens": sum(r.cached_tokens for r in rows),
        "evaluated_tokens": sum(r.evaluated_tokens for r in rows),
        "completion_tokens": sum(r.completion_tokens for r in rows),
        "reused": round(sum(r.cached_tokens for r in rows) / prompt, 4) if prompt else None,
        "rows": [asdict(r) for r in rows],
    }


# -- (b) many runs at once against one after another -----------------------------------


def agents_part(args: argparse.Namespace) -> dict[str, Any]:
    chosen = suite(args.limit)
    out: dict[str, Any] = {"model": args.model, "task_ids": [t.id for t in chosen]}
    for name, concurrency in (("sequential", 1), ("concurrent", args.concurrency)):
        model = _load(args.model, args, parallel=max(1, concurrency))
        print(f"   {name}: {len(chosen)} tasks at concurrency {concurrency}", file=sys.stderr)
        out[name] = run_suite(model, chosen, concurrency, args)
        out[name]["batch_stats"] = asdict(model.batch_stats())
        out[name]["kv_bytes_per_token"] = model.kv_bytes_per_token
        model.close()
    seq, con = out["sequential"], out["concurrent"]
    out["speedup"] = round(seq["wall_seconds"] / con["wall_seconds"], 3)
    out["target"] = SPEEDUP_TARGET
    out["met"] = out["speedup"] >= SPEEDUP_TARGET
    out["memory"] = _memory(con, args.concurrency)
    return out


def _memory(con: dict[str, Any], concurrency: int) -> dict[str, Any]:
    """KV bytes per run, from the cells the concurrent runs held at their peak."""
    stats, per_token = con["batch_stats"], con["kv_bytes_per_token"]
    peak = stats["peak_kv_cells_used"]
    per_run = peak / max(1, min(concurrency, con["tasks"]))
    return {
        "kv_bytes_per_token": per_token,
        "kv_cells": stats["kv_cells"],
        "kv_budget_mb": round(stats["kv_cells"] * per_token / 2**20, 1),
        "peak_cells_used": peak,
        "cells_per_run": round(per_run, 1),
        "kv_mb_per_run": round(per_run * per_token / 2**20, 2),
        "runs_in_budget": int(stats["kv_cells"] // per_run) if per_run else None,
    }


# -- (c) llama-server with parallel slots ------------------------------------------------


def server_part(args: argparse.Namespace, agents: dict[str, Any] | None) -> dict[str, Any]:
    chosen = suite(args.limit)
    ids = [t.id for t in chosen]
    if agents is None or agents.get("task_ids") != ids or "concurrent" not in agents:
        model = _load(args.model, args, parallel=args.concurrency)
        ours = run_suite(model, chosen, args.concurrency, args)
        model.close()
    else:
        ours = agents["concurrent"]  # measured in this same invocation, same tasks
    server = LlamaServer(args.model, slots=args.concurrency, context=4096, threads=args.threads)
    with server:
        print(f"   llama-server: {len(chosen)} tasks, {args.concurrency} slots", file=sys.stderr)
        remote = run_suite(load_tier(server.spec), chosen, args.concurrency, args)
    ratio = ours["tasks_per_minute"] / remote["tasks_per_minute"]
    return {
        "model": args.model,
        "server_command": " ".join(server.command()),
        "agentkit": ours,
        "llama_server": remote,
        "ratio": round(ratio, 3),
        "target": SERVER_TARGET,
        "met": ratio >= SERVER_TARGET,
    }


# -- prefix reuse over a 20-step run -----------------------------------------------------


@dataclass(frozen=True)
class Scheduled:
    """Tier 1 for the model steps at ``up`` (run step numbers), tier 0 otherwise."""

    up: frozenset[int]

    def choose(self, signals: StepSignals, tiers: int) -> TierDecision:
        if signals.step in self.up:
            return TierDecision(tier=min(1, tiers - 1), reason="scheduled: a tier change")
        return TierDecision(tier=0, reason="scheduled: the base tier")

    def review(self, review: StepReview, tiers: int) -> str | None:
        return None


PAGES = 12
PAGER_PROMPT = (
    "Read the report with read_page, one page per call, starting at page 1 and going on "
    "to the next page each time. After the last page, reply with the sum of the numbers "
    "on all pages."
)


def _pager(seed: int) -> Any:
    values = [(seed * 37 + 11 * p) % 90 + 10 for p in range(1, PAGES + 1)]

    @tool
    def read_page(page: int) -> str:
        """Read one page of the report.

        Args:
            page: the page number, from 1
        """
        if not 1 <= page <= PAGES:
            return f"There is no page {page}; the report has pages 1 to {PAGES}."
        tail = "This was the last page." if page == PAGES else f"Next: page {page + 1}."
        return f"Page {page} of {PAGES}. The number on this page is {values[page - 1]}. {tail}"

    return read_page


def prefix_part(args: argparse.Namespace) -> dict[str, Any]:
    """The reuse of a 20-step run with a tier change and back, beside three other runs,
    with per-run KV sequences and (baseline) with one shared sequence as before."""
    out: dict[str, Any] = {"steps": 20, "tier_change_steps": [7, 9]}
    # The baseline keeps one conversation per model and nothing saved aside: what a
    # model with one KV cache did before time-sharing.
    for name, parallel, sequences, saved in (
        ("one_sequence", 1, 2, 0.0),
        ("per_run_sequences", 4, 64, 256.0),
    ):
        small = _load(args.model, args, parallel, sequences, saved)
        large = _load(args.large, args, parallel, sequences, saved)
        ladder = ModelLadder([small, large], policy=Scheduled(frozenset({7, 9})))
        out[name] = _prefix_runs(ladder, args)
        small.close()
        large.close()
    runs = out["per_run_sequences"]["runs"]
    # The first run on freshly loaded models evaluates the shared system prompt and tool
    # block cold on each tier; the others find them cached, as every run after the first
    # does on a model that serves many. The target is judged on those, and the first run's
    # figure is reported beside it.
    out["reused"] = runs[0]["reused"]
    out["reused_sharing"] = min(r["reused"] for r in runs[1:]) if len(runs) > 1 else None
    out["target"] = REUSE_TARGET
    out["met"] = (out["reused_sharing"] or 0.0) >= REUSE_TARGET
    return out


def _prefix_runs(ladder: ModelLadder, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-prefix-") as root:
        store = RunStore(Path(root) / "runs.db")
        agents = [
            Agent(ladder, tools=[_pager(seed)], system_prompt=PAGER_PROMPT, store=store,
                  max_steps=20, sampling=Sampling(temperature=0.0, max_tokens=96, seed=0))
            for seed in range(4)
        ]  # fmt: skip

        async def everything() -> list[Any]:
            return list(await asyncio.gather(*(a.arun("Sum up the report.") for a in agents)))

        started = time.perf_counter()
        results = asyncio.run(everything())
        wall = time.perf_counter() - started
        runs = [_reuse_of(store, r) for r in results]
        store.close()
    return {"wall_seconds": round(wall, 2), "runs": runs}


def _reuse_of(store: RunStore, result: Any) -> dict[str, Any]:
    calls = [e for _, e in store.events(result.run_id) if isinstance(e, ModelCalled)]
    prompt = sum(e.prompt_tokens for e in calls)
    return {
        "status": result.status,
        "steps": result.steps,
        "reused": round(sum(e.cached_tokens for e in calls) / prompt, 4) if prompt else 0.0,
        "prompt_tokens": prompt,
        "per_step": [
            {
                "step": e.step,
                "tier": e.tier,
                "prompt": e.prompt_tokens,
                "cached": e.cached_tokens,
                "evaluated": e.evaluated_tokens,
            }
            for e in calls
        ],
        "median_evaluated": statistics.median([e.evaluated_tokens for e in calls] or [0]),
    }
