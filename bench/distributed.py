"""Beyond one machine: the PostgreSQL store against SQLite, Ray against one process.

    python -m bench.distributed [--out bench/results] [--steps 400] [--tasks 200]
                                [--real-tasks 6] [--no-real] [--report-only]

Three parts, all in one run, each against a baseline measured in the same run:

- **Store write cost per step.** The writes the runtime makes for one step (the events
  flushed before the model call, then the step's checkpoint, totals, events and lease
  renewal in one transaction), timed on SQLite (WAL, ``synchronous=NORMAL``, the default
  store) and on a PostgreSQL server started here (durable: ``fsync`` on), once with
  ``synchronous_commit=on`` (the default) and once with it off (set in the URL's
  ``options``). Then the same scripted agent end to end on each store.
- **Orchestration overhead per task.** 200 scripted-model tasks through ``run_many`` in
  this process, against the same batch through ``RayExecutor`` on 2 workers, both writing
  to the PostgreSQL store; the marginal cost per task is taken from a batch of N against
  a batch of 1 (which holds the fixed cost: worker start-up, the cluster is up already).
- **Real-model throughput**, the 0.5B model on arithmetic tasks of ``bench/tasks.py``
  through Ray with 1 worker (all cores) against 2 workers (half the cores each),
  recorded with the machine's core count: on 2 cores two workers share the same cores.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from agentkit import (
    Agent,
    LlamaConfig,
    RayExecutor,
    RunResult,
    RunStore,
    Sampling,
    Store,
    get_model,
    open_store,
    tool,
)
from agentkit.events import ModelCalled, StepFinished, StepStarted, TierChosen
from agentkit.models import Message, ModelResponse, ToolCall, ToolSpec
from agentkit.store import Batch, StepRow, TemporaryPostgres
from agentkit.testing import ScriptedModel, Turn
from agentkit.tools import calculator

from . import tasks as suite

ROOT = Path(__file__).resolve().parent.parent
REAL_MODEL = "qwen2.5-coder-0.5b-instruct"
ROUNDS = 3  # the store variants take turns, so a noisy moment does not hit one alone
ASYNC_COMMIT = "?options=-c%20synchronous_commit%3Doff"
"""A commit returns before its WAL is flushed (libpq's options, in the URL)."""


# -- part 1: store write cost per step -------------------------------------------------------


def _step_events(run_id: str, idx: int) -> tuple[list[Any], list[Any]]:
    """What a model step emits: before the model call, and with its checkpoint."""
    before = [
        StepStarted(run_id=run_id, step=idx, node="model", kind="model"),
        TierChosen(run_id=run_id, step=idx, node="model", tier=0, model="m", reason="start"),
    ]
    called = ModelCalled(
        run_id=run_id, step=idx, model="m", tier=0, prompt_tokens=400, cached_tokens=380,
        evaluated_tokens=20, completion_tokens=24, seconds=0.4, finish_reason="tool_calls",
        content="", tool_calls=[{"name": "calculator", "arguments": {"expression": "2*3"}}],
    )  # fmt: skip
    return before, [called, StepFinished(run_id=run_id, step=idx, node="model", next_node="tools")]


def _write_steps(store: Store, run_id: str, steps: int) -> float:
    """Seconds per step for ``steps`` steps written the way the runtime writes them."""
    owner = f"{socket.gethostname()}:{os.getpid()}:bench"
    store.create_run(run_id, name="bench", task="t", owner=owner)
    state = json.dumps({"state": {"messages": [{"role": "user", "content": "x" * 400}]}})
    started = time.perf_counter()
    for idx in range(1, steps + 1):
        before, after = _step_events(run_id, idx)
        store.write(Batch(events=before))
        row = StepRow(
            run_id=run_id, idx=idx, node="model", kind="model", started_at=0.0,
            finished_at=0.0, state_json=state, model="m", tier=0, next_node="tools",
        )  # fmt: skip
        store.save_step(row, {"steps": idx}, batch=Batch(events=after), owner=owner)
    return (time.perf_counter() - started) / steps


def store_part(pg: TemporaryPostgres, scratch: Path, steps: int) -> dict[str, Any]:
    url = pg.create_database("bench_store")
    variants: dict[str, Callable[[], Store]] = {
        "sqlite": lambda: RunStore(scratch / "store.db"),
        "postgres": lambda: open_store(url),
        "postgres_async_commit": lambda: open_store(url + ASYNC_COMMIT),
    }
    raw: dict[str, list[float]] = {k: [] for k in variants}
    agent: dict[str, list[float]] = {k: [] for k in variants}
    for round_ in range(ROUNDS):
        for key, opener in variants.items():
            store = opener()
            raw[key].append(_write_steps(store, f"{key}-{round_}", steps))
            agent[key].append(_agent_seconds_per_step(store, f"{key}-agent-{round_}"))
            store.close()
    return {
        "steps_per_round": steps,
        "rounds": ROUNDS,
        "write_seconds_per_step": {k: statistics.median(v) for k, v in raw.items()},
        "agent_seconds_per_step": {k: statistics.median(v) for k, v in agent.items()},
        "all_rounds": {"write": raw, "agent": agent},
    }


@tool
def lookup(n: int) -> str:
    """Look a number up (instant)."""
    return f"value {n}"


def _agent_seconds_per_step(store: Store, run_id: str, calls: int = 10) -> float:
    """A scripted tool loop (``calls`` calls, then an answer) end to end on ``store``."""
    turns = [
        Turn(ModelResponse(tool_calls=(ToolCall(name="lookup", arguments={"n": i}),)))
        for i in range(calls)
    ]
    model = ScriptedModel([*turns, Turn(ModelResponse(content="done"))])
    agent = Agent(model, tools=[lookup], store=store, max_steps=4 * calls, answer_now=False)
    result = agent.run("look them up", run_id=run_id)
    assert result.status == "succeeded", result.error
    return result.seconds / result.steps


# -- part 2: orchestration overhead per task ---------------------------------------------------


def _respond(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelResponse:
    """A model for many runs at once: call lookup(n) for the task "look n up", then answer."""
    last = messages[-1]
    if last.role == "user":
        n = int("".join(ch for ch in last.content or "" if ch.isdigit()) or 0)
        return ModelResponse(tool_calls=(ToolCall(name="lookup", arguments={"n": n}),))
    return ModelResponse(content=f"got {last.content}")


def scripted_agent(turns: int = 4000) -> Agent[Any]:
    """The scripted agent of the orchestration part (what every Ray worker builds once)."""
    model = ScriptedModel([Turn(_respond)] * turns)
    return Agent(model, tools=[lookup], name="bench-ray", answer_now=False)


def _batch(
    n: int, url: str, executor: RayExecutor | None, concurrency: int
) -> tuple[float, list[RunResult[Any]]]:
    agent = scripted_agent()
    agent._store = open_store(url)
    started = time.perf_counter()
    results = agent.run_many(
        [f"look {i} up" for i in range(n)], concurrency=concurrency, executor=executor
    )
    seconds = time.perf_counter() - started
    bad = [r for r in results if r.status != "succeeded"]
    assert not bad, bad[0].error
    agent.store.close()
    return seconds, results


def orchestration_part(pg: TemporaryPostgres, tasks: int, workers: int) -> dict[str, Any]:
    import ray

    concurrency = 8
    started = time.perf_counter()
    ray.init(
        num_cpus=os.cpu_count(),
        include_dashboard=False,
        configure_logging=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
    )
    ray_start = time.perf_counter() - started
    figures: dict[str, dict[str, float]] = {"local": {}, "ray": {}}
    try:
        for name in figures:
            for n in (1, tasks):
                url = pg.create_database(f"bench_{name}_{n}") + ASYNC_COMMIT
                executor = (
                    RayExecutor(workers=workers, app=scripted_agent, store=url)
                    if name == "ray"
                    else None
                )
                figures[name][f"batch_{n}_seconds"] = _batch(n, url, executor, concurrency)[0]
    finally:
        ray.shutdown()
    for f in figures.values():
        f["seconds_per_task"] = (f[f"batch_{tasks}_seconds"] - f["batch_1_seconds"]) / (tasks - 1)
    return {
        "tasks": tasks,
        "workers": workers,
        "concurrency": concurrency,
        "ray_init_seconds": ray_start,
        "local": figures["local"],
        "ray": figures["ray"],
        "overhead_seconds_per_task": figures["ray"]["seconds_per_task"]
        - figures["local"]["seconds_per_task"],
        "fixed_seconds_ray": figures["ray"]["batch_1_seconds"],
    }


# -- part 3: real-model throughput -------------------------------------------------------------


def real_agent(threads: int) -> Agent[Any]:
    """The 0.5B model with the calculator, loaded once per worker on ``threads`` threads."""
    model = get_model(REAL_MODEL, LlamaConfig(n_threads=threads, seed=7))
    return Agent(
        model,
        tools=[calculator],
        system_prompt=suite.SYSTEM_PROMPTS["arithmetic"],
        name="bench-ray-real",
        max_steps=8,
        sampling=Sampling(temperature=0.0, max_tokens=160),
    )


def real_part(pg: TemporaryPostgres, n: int, per_worker: int) -> dict[str, Any]:
    import ray

    cases = suite.tasks(["arithmetic"], limit=n)
    cpus = os.cpu_count() or 1
    ray.init(
        num_cpus=cpus,
        include_dashboard=False,
        configure_logging=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
    )
    rows: dict[str, Any] = {}
    try:
        for workers in (1, 2):
            threads = max(1, cpus // workers)
            url = pg.create_database(f"bench_real_{workers}")
            app = functools.partial(real_agent, threads)
            executor = RayExecutor(
                workers=workers, app=app, store=url, cpus_per_worker=cpus / workers
            )
            # The driver loads no model: each worker builds the real agent from ``app``.
            driver = Agent(ScriptedModel([]), tools=[calculator], name="bench-ray-real")
            started = time.perf_counter()
            results = driver.run_many(
                [c.prompt for c in cases], concurrency=workers * per_worker, executor=executor
            )
            wall = time.perf_counter() - started
            rows[f"{workers}_workers"] = _throughput(cases, results, wall, workers, threads)
    finally:
        ray.shutdown()
    one, two = rows["1_workers"], rows["2_workers"]
    return {
        "model": REAL_MODEL,
        "tasks": [c.id for c in cases],
        "per_worker_concurrency": per_worker,
        **rows,
        "speedup_2_over_1": one["wall_seconds"] / two["wall_seconds"]
        if two["wall_seconds"]
        else None,
    }


def _throughput(
    cases: list[Any], results: list[RunResult[Any]], wall: float, workers: int, threads: int
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        solved = sum(
            c.setup(Path(scratch)).check(r.answer).ok for c, r in zip(cases, results, strict=True)
        )
    generated = sum(r.usage.completion_tokens for r in results)
    return {
        "workers": workers,
        "threads_per_worker": threads,
        "wall_seconds": wall,
        "tasks_per_minute": 60 * len(results) / wall,
        "generated_tokens": generated,
        "generated_tokens_per_second": generated / wall,
        "solved": solved,
        "statuses": [r.status for r in results],
    }


# -- environment and reports -------------------------------------------------------------------


def environment(pg: TemporaryPostgres | None) -> dict[str, Any]:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    server = None
    if pg is not None:
        import psycopg

        with psycopg.connect(pg.url) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            server = row[0] if row else None
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "sqlite": sqlite3.sqlite_version,
        "postgres_server": server,
        "postgres_settings": "fsync on, full_page_writes on (a durable server)",
        "versions": {
            n: version(n) for n in ("ray", "psycopg", "psycopg-binary", "llama_cpp_python")
        },
    }


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{1000 * x:.2f}"


def render_markdown(payload: dict[str, Any]) -> str:
    env = payload["environment"]
    lines = [
        "# Distributed runs: the PostgreSQL store and Ray",
        "",
        "Generated by `python -m bench.distributed` from `bench/results/distributed.json` on a "
        f"machine with **{env['cpus']} CPU cores** (Python {env['python']}, SQLite "
        f"{env['sqlite']}, PostgreSQL {env['postgres_server']}, Ray {env['versions']['ray']}, "
        f"psycopg {env['versions']['psycopg']}). The PostgreSQL server runs on the same "
        f"machine ({env['postgres_settings']}), reached over TCP on 127.0.0.1. Load average "
        f"at the end: {', '.join(f'{x:.1f}' for x in env['load_average_at_end'])} (other "
        "jobs shared the cores: seconds are noisy, ratios within one part less so).",
        "",
        f"Command: `{payload['command'].strip()}`",
        "",
    ]
    lines += _store_lines(payload.get("store"))
    lines += _orchestration_lines(payload.get("orchestration"))
    lines += _real_lines(payload.get("real"))
    return "\n".join(lines) + "\n"


_STORE_LABELS = {
    "sqlite": "SQLite (WAL, synchronous=NORMAL)",
    "postgres": "PostgreSQL (synchronous_commit=on)",
    "postgres_async_commit": "PostgreSQL (synchronous_commit=off)",
}


def _store_lines(store: dict[str, Any] | None) -> list[str]:
    if not store:
        return []
    write, agent = store["write_seconds_per_step"], store["agent_seconds_per_step"]
    base_w, base_a = write["sqlite"], agent["sqlite"]
    lines = [
        "## Store write cost per step",
        "",
        f"{store['steps_per_round']} steps written the way the runtime writes a model step (two "
        "transactions: the events before the model call; the checkpoint, totals, events and "
        f"lease renewal), median of {store['rounds']} rounds; then a scripted 21-step tool "
        "loop end to end on each store.",
        "",
        "| store | write ms/step | vs SQLite | scripted agent ms/step | vs SQLite |",
        "|---|---|---|---|---|",
    ]
    for key, label in _STORE_LABELS.items():
        lines.append(
            f"| {label} | {_ms(write[key])} | {write[key] / base_w:.2f}x | "
            f"{_ms(agent[key])} | {agent[key] / base_a:.2f}x |"
        )
    return [*lines, ""]


def _orchestration_lines(orch: dict[str, Any] | None) -> list[str]:
    if not orch:
        return []
    local, ray = orch["local"], orch["ray"]
    n = orch["tasks"]
    return [
        "## Orchestration overhead per task",
        "",
        f"{n} scripted-model tasks (a tool call and an answer each), concurrency "
        f"{orch['concurrency']}, written to the PostgreSQL store (synchronous_commit=off, so "
        "the disk's flushes stay out of it): `run_many` in one process "
        f"against `RayExecutor` with {orch['workers']} workers. Per task is the marginal cost: "
        f"(batch of {n} - batch of 1) / {n - 1}; the batch of 1 holds the fixed cost.",
        "",
        f"| executor | batch of 1 (s) | batch of {n} (s) | ms per task |",
        "|---|---|---|---|",
        f"| run_many, one process | {local['batch_1_seconds']:.2f} | "
        f"{local[f'batch_{n}_seconds']:.2f} | {_ms(local['seconds_per_task'])} |",
        f"| Ray, {orch['workers']} workers | {ray['batch_1_seconds']:.2f} | "
        f"{ray[f'batch_{n}_seconds']:.2f} | {_ms(ray['seconds_per_task'])} |",
        "",
        f"Ray adds **{_ms(orch['overhead_seconds_per_task'])} ms per task** here, plus "
        f"{orch['fixed_seconds_ray']:.1f} s per batch to start its workers and "
        f"{orch['ray_init_seconds']:.1f} s to start a local Ray instance (once).",
        "",
    ]


def _real_lines(real: dict[str, Any] | None) -> list[str]:
    if not real:
        return ["## Real-model throughput", "", "Not measured in this run (--no-real).", ""]
    lines = [
        "## Real-model throughput: 2 workers against 1",
        "",
        f"`{real['model']}` on {len(real['tasks'])} arithmetic tasks of `bench/tasks.py` "
        f"({', '.join(real['tasks'])}), {real['per_worker_concurrency']} run(s) at a time per "
        "worker; wall time includes each worker loading the model.",
        "",
        "| workers | threads each | wall (s) | tasks/min | generated tok/s | solved |",
        "|---|---|---|---|---|---|",
    ]
    for key in ("1_workers", "2_workers"):
        r = real[key]
        lines.append(
            f"| {r['workers']} | {r['threads_per_worker']} | {r['wall_seconds']:.1f} | "
            f"{r['tasks_per_minute']:.2f} | {r['generated_tokens_per_second']:.1f} | "
            f"{r['solved']}/{len(real['tasks'])} |"
        )
    speedup = real["speedup_2_over_1"]
    lines += [
        "",
        f"2 workers against 1: {speedup:.2f}x the throughput. Both configurations share the "
        f"same {payload_cpus(real)} cores, so a second worker adds no compute here; it "
        "shows what the fan-out costs or gains on one machine, not what a cluster gains."
        if speedup
        else "",
        "",
    ]
    return lines


def payload_cpus(real: dict[str, Any]) -> int:
    """The cores the real-model part ran on (1 worker used them all)."""
    return int(real["1_workers"]["threads_per_worker"])


def render_chart(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    store = payload.get("store")
    if store:
        keys = list(_STORE_LABELS)
        axes[0].bar(
            [k.replace("_", "\n") for k in keys],
            [1000 * store["write_seconds_per_step"][k] for k in keys],
        )
        axes[0].set_ylabel("ms per step")
        axes[0].set_title("store writes per step")
    orch = payload.get("orchestration")
    if orch:
        axes[1].bar(
            ["run_many\n(one process)", f"Ray\n({orch['workers']} workers)"],
            [1000 * orch["local"]["seconds_per_task"], 1000 * orch["ray"]["seconds_per_task"]],
        )
        axes[1].set_ylabel("ms per task (marginal)")
        axes[1].set_title(f"{orch['tasks']} scripted tasks")
    real = payload.get("real")
    if real:
        axes[2].bar(
            ["1 worker", "2 workers"],
            [real["1_workers"]["tasks_per_minute"], real["2_workers"]["tasks_per_minute"]],
        )
        axes[2].set_ylabel("tasks per minute")
    axes[2].set_title(f"0.5B model, {payload['environment']['cpus']} cores")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_reports(payload: dict[str, Any], out: Path, *, rewrite_json: bool = True) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if rewrite_json:
        text = json.dumps(payload, indent=1) + "\n"
        (out / "distributed.json").write_text(text, encoding="utf-8")
    (out / "distributed.md").write_text(render_markdown(payload), encoding="utf-8")
    render_chart(payload, out / "distributed.png")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.distributed", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--steps", type=int, default=400, help="steps per store round")
    parser.add_argument("--tasks", type=int, default=200, help="scripted tasks per batch")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--real-tasks", type=int, default=6, help="arithmetic tasks, real model")
    parser.add_argument("--per-worker", type=int, default=1, help="real runs at a time per worker")
    parser.add_argument("--no-real", action="store_true", help="skip the real-model part")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    if args.report_only:
        payload = json.loads((args.out / "distributed.json").read_text(encoding="utf-8"))
        write_reports(payload, args.out, rewrite_json=False)
        return 0
    started = time.perf_counter()
    with TemporaryPostgres(durable=True) as pg, tempfile.TemporaryDirectory() as scratch:
        payload: dict[str, Any] = {
            "benchmark": "PostgreSQL store against SQLite; Ray against one process",
            "environment": environment(pg),
        }
        payload["store"] = store_part(pg, Path(scratch), args.steps)
        print("  store part done", file=sys.stderr, flush=True)
        payload["orchestration"] = orchestration_part(pg, args.tasks, args.workers)
        print("  orchestration part done", file=sys.stderr, flush=True)
        if not args.no_real:
            payload["real"] = real_part(pg, args.real_tasks, args.per_worker)
    payload["environment"]["wall_seconds"] = time.perf_counter() - started
    payload["environment"]["load_average_at_end"] = list(os.getloadavg())
    payload["command"] = "python -m bench.distributed " + " ".join(argv or sys.argv[1:])
    write_reports(payload, args.out)
    print((args.out / "distributed.md").read_text(encoding="utf-8"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
