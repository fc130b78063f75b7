"""A remote tier against the same model in process, and LangGraph's agent on the same server.

    python -m bench.remote [--kinds K ...] [--limit N] [--tasks ID ...]
                           [--configs in-process llama-server langgraph] [--peer-tasks 30]
                           [--threads N] [--out bench/results]
    python -m bench.remote --report-only      # rewrite remote.md/.png from remote.json

The ladder benchmark's task suite (``bench.tasks``) runs on qwen2.5-coder-1.5b three ways:

- ``in-process``: the GGUF loaded with ``agentkit.get_model``;
- ``llama-server``: the same file behind llama-server (built by ``make llama-tools``,
  one slot, the same context and threads), reached through ``RemoteModel``: the same
  prompt bytes and grammar, over HTTP;
- ``langgraph``: LangGraph's prebuilt ReAct agent (``create_react_agent``) with
  langchain-openai's ``ChatOpenAI`` pointed at the same server, set up the way its
  documentation shows a new user, on ``--peer-tasks`` of the tasks (the first of each
  kind in turn). Its tools wrap the same task tools; its answer is checked by the same
  checker. It gets the same token cap per call and LangGraph's default recursion limit.

What HTTP costs is measured twice: per model step over the whole suite (seconds per model
step, remote against in process) and in isolation, as the round trip of a one-token call
whose prompt the server already holds, against the same call in process.

Sampling is greedy with a fixed seed. ``remote.json`` is rewritten after every run, so an
interrupted benchmark leaves its rows behind; ``remote.md`` and ``remote.png`` are written
from the JSON at the end (or with ``--report-only``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import agentkit
from agentkit import (
    ChatModel,
    LlamaConfig,
    Message,
    RemoteModel,
    RunStore,
    Sampling,
    Tool,
    get_model,
)
from agentkit.models import LlamaServer

from .tasks import KINDS, SYSTEM_PROMPTS, Task, build_agent, tasks

MODEL = "qwen2.5-coder-1.5b-instruct"
CONFIGS = ("in-process", "llama-server", "langgraph")
WALL_TARGET = 1.10
"""The remote tier may take at most this much of the in-process wall time."""
_ROUND_TRIPS = 20


@dataclass
class Row:
    """One task run by agentkit under one configuration."""

    task: str
    kind: str
    difficulty: str
    config: str
    success: bool
    detail: str
    status: str
    answer: str | None
    seconds: float
    steps: int
    model_steps: int
    prompt_tokens: int
    cached_tokens: int
    evaluated_tokens: int
    completion_tokens: int
    model_seconds: float
    """Seconds spent inside model calls (HTTP included for the remote tier)."""
    error: str | None = None


def run_task(task: Task, config: str, model: ChatModel, store: RunStore, args: Any) -> Row:
    """One task in a fresh agent and folder; an exception becomes a ``crashed`` row."""
    sampling = Sampling(temperature=0.0, max_tokens=args.max_tokens, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix=f"bench-{task.id}-") as folder:
        agent, env = build_agent(
            task, model, Path(folder), store=store, sampling=sampling, max_steps=args.max_steps
        )
        started = time.perf_counter()
        try:
            result = agent.run(task.prompt)
        except Exception as exc:  # a runtime bug: record it and go on with the suite
            seconds = round(time.perf_counter() - started, 3)
            return Row(task.id, task.kind, task.difficulty, config, False, "the run raised",
                       "crashed", None, seconds, 0, 0, 0, 0, 0, 0, 0.0,
                       f"{type(exc).__name__}: {exc}")  # fmt: skip
        check = env.check(result.answer)
    usage = result.usage
    return Row(
        task=task.id,
        kind=task.kind,
        difficulty=task.difficulty,
        config=config,
        success=result.status == "succeeded" and check.ok,
        detail=check.detail[:200],
        status=result.status,
        answer=result.answer[:240] if result.answer else result.answer,
        seconds=round(result.seconds, 3),
        steps=result.steps,
        model_steps=result.model_steps,
        prompt_tokens=usage.prompt_tokens,
        cached_tokens=usage.cached_tokens,
        evaluated_tokens=usage.evaluated_tokens,
        completion_tokens=usage.completion_tokens,
        model_seconds=round(usage.seconds, 3),
        error=result.error or result.diagnosis,
    )


def machine_info() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "agentkit": agentkit.__version__,
        "llama_cpp_python": metadata.version("llama_cpp_python"),
        "langgraph": metadata.version("langgraph"),
        "langchain_openai": metadata.version("langchain-openai"),
        "load_average_at_start": list(os.getloadavg()),
    }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


@dataclass
class PeerRow:
    """One task run by LangGraph's prebuilt agent."""

    task: str
    kind: str
    difficulty: str
    success: bool
    detail: str
    status: str
    answer: str | None
    seconds: float
    model_calls: int
    tool_calls: list[str]
    error: str | None = None


# -- the peer: LangGraph's prebuilt ReAct agent ---------------------------------------------


def _langchain_tool(tool: Tool) -> Any:
    """An agentkit tool as a LangChain tool: its JSON schema, its function, its errors."""
    from langchain_core.tools import StructuredTool

    def run(**arguments: Any) -> str:
        # ToolNode runs sync tools in worker threads, where no event loop is running.
        return tool.render(asyncio.run(tool.ainvoke(arguments)))

    return StructuredTool.from_function(
        func=run, name=tool.name, description=tool.description, args_schema=tool.spec.parameters
    )


def run_peer(task: Task, server: LlamaServer, sampling: Sampling) -> PeerRow:
    """One task through ``create_react_agent`` over ``ChatOpenAI`` on the llama-server."""
    from langchain_openai import ChatOpenAI
    from langgraph.prebuilt import create_react_agent

    with tempfile.TemporaryDirectory(prefix=f"bench-peer-{task.id}-") as folder:
        env = task.setup(Path(folder))
        llm = ChatOpenAI(
            base_url=server.base_url,
            api_key="not-needed",  # type: ignore[arg-type]
            model=server.alias,
            temperature=sampling.temperature,
            max_tokens=sampling.max_tokens,  # type: ignore[call-arg]
            seed=sampling.seed,
        )
        agent = create_react_agent(
            llm, [_langchain_tool(t) for t in env.tools], prompt=SYSTEM_PROMPTS[task.kind]
        )
        started = time.perf_counter()
        status, error, messages = "finished", None, []
        try:
            messages = agent.invoke({"messages": [("user", task.prompt)]})["messages"]
        except Exception as exc:  # what a user of the library would meet: keep the row
            status, error = _peer_failure(exc), f"{type(exc).__name__}: {str(exc)[:300]}"
        seconds = time.perf_counter() - started
        answer = _last_answer(messages)
        check = env.check(answer)
    calls = [
        f"{c['name']}({json.dumps(c['args'])[:80]})"
        for m in messages
        for c in (getattr(m, "tool_calls", None) or ())
    ]
    return PeerRow(
        task=task.id,
        kind=task.kind,
        difficulty=task.difficulty,
        success=status == "finished" and check.ok,
        detail=check.detail,
        status=status,
        answer=answer[:240] if answer else answer,
        seconds=round(seconds, 3),
        model_calls=sum(1 for m in messages if getattr(m, "type", "") == "ai"),
        tool_calls=calls,
        error=error,
    )


def _peer_failure(exc: Exception) -> str:
    return "recursion_limit" if "recursion" in type(exc).__name__.lower() else "crashed"


def _last_answer(messages: Sequence[Any]) -> str | None:
    for message in reversed(messages):
        if getattr(message, "type", "") == "ai" and not getattr(message, "tool_calls", None):
            content = message.content
            return content if isinstance(content, str) else json.dumps(content)
    return None


def peer_tasks(suite: Sequence[Task], n: int) -> list[Task]:
    """``n`` tasks of the suite, taken from each kind in turn (suite order within a kind)."""
    by_kind = {k: [t for t in suite if t.kind == k] for k in KINDS}
    chosen: list[Task] = []
    while len(chosen) < n and any(by_kind.values()):
        for kind in KINDS:
            if by_kind[kind] and len(chosen) < n:
                chosen.append(by_kind[kind].pop(0))
    return sorted(chosen, key=list(suite).index)


# -- what HTTP costs ----------------------------------------------------------------------


def round_trips(model: ChatModel, n: int = _ROUND_TRIPS) -> dict[str, float]:
    """Seconds of a one-token call whose prompt is already cached, ``n`` times."""
    messages = [Message.system(SYSTEM_PROMPTS["arithmetic"]), Message.user("What is 2 + 2?")]
    one = Sampling(temperature=0.0, seed=0, max_tokens=1)
    model.complete(messages, sampling=one)  # fills the cache
    seconds = []
    for _ in range(n):
        started = time.perf_counter()
        model.complete(messages, sampling=one)
        seconds.append(time.perf_counter() - started)
    started = time.perf_counter()
    for i in range(n):  # a new prompt each time: a remote tier remembers the last counts
        model.count_tokens([*messages, Message.user(f"And {i} + 1?")])
    return {
        "median_call_s": round(statistics.median(seconds), 5),
        "min_call_s": round(min(seconds), 5),
        "count_tokens_s": round((time.perf_counter() - started) / n, 5),
    }


# -- summaries and reports ----------------------------------------------------------------


def _per_config(rows: Sequence[Row]) -> dict[str, Any]:
    n = len(rows)
    model_steps = sum(r.model_steps for r in rows)
    seconds = sum(r.seconds for r in rows)
    return {
        "tasks": n,
        "solved": sum(r.success for r in rows),
        "seconds": round(seconds, 2),
        "seconds_per_task": round(seconds / n, 3) if n else 0.0,
        "model_steps": model_steps,
        "seconds_per_model_step": round(seconds / model_steps, 4) if model_steps else None,
        "model_seconds_per_model_step": (
            round(sum(r.model_seconds for r in rows) / model_steps, 4) if model_steps else None
        ),
        "cached_tokens": sum(r.cached_tokens for r in rows),
        "prompt_tokens": sum(r.prompt_tokens for r in rows),
        "evaluated_tokens": sum(r.evaluated_tokens for r in rows),
        "completion_tokens": sum(r.completion_tokens for r in rows),
    }


def summarize(payload: dict[str, Any]) -> dict[str, Any]:
    rows = [Row(**r) for r in payload["rows"]]
    peers = [PeerRow(**r) for r in payload["peer_rows"]]
    per_config = {
        c: _per_config([r for r in rows if r.config == c])
        for c in CONFIGS[:2]
        if any(r.config == c for r in rows)
    }
    summary: dict[str, Any] = {"per_config": per_config}
    local, remote = per_config.get("in-process"), per_config.get("llama-server")
    both = sorted(
        {r.task for r in rows if r.config == "in-process"}
        & {r.task for r in rows if r.config == "llama-server"}
    )
    if local and remote and both:
        by = {(r.task, r.config): r for r in rows}
        wall = sum(by[(t, "llama-server")].seconds for t in both) / max(
            sum(by[(t, "in-process")].seconds for t in both), 1e-9
        )
        summary["remote_vs_local"] = {
            "tasks": len(both),
            "solved_in_process": sum(by[(t, "in-process")].success for t in both),
            "solved_remote": sum(by[(t, "llama-server")].success for t in both),
            "same_outcome": sum(
                by[(t, "in-process")].success == by[(t, "llama-server")].success for t in both
            ),
            "wall_ratio": round(wall, 4),
            "wall_target_met": wall <= WALL_TARGET,
            "extra_seconds_per_model_step": (
                round(
                    remote["model_seconds_per_model_step"] - local["model_seconds_per_model_step"],
                    4,
                )
                if remote["model_seconds_per_model_step"] and local["model_seconds_per_model_step"]
                else None
            ),
        }
    if peers:
        ours = {r.task: r for r in rows if r.config == "llama-server"}
        summary["peer"] = {
            "tasks": len(peers),
            "solved": sum(p.success for p in peers),
            "seconds": round(sum(p.seconds for p in peers), 2),
            "statuses": {s: sum(p.status == s for p in peers) for s in {p.status for p in peers}},
            "agentkit_remote_solved_same_tasks": sum(
                ours[p.task].success for p in peers if p.task in ours
            ),
            "agentkit_remote_seconds_same_tasks": round(
                sum(ours[p.task].seconds for p in peers if p.task in ours), 2
            ),
            "tasks_with_a_tool_call": sum(bool(p.tool_calls) for p in peers),
            "example_failed_answer": next(
                (f"{p.task}: {p.answer}" for p in peers if not p.success and p.answer), None
            ),
        }
    return summary


def render_markdown(payload: dict[str, Any]) -> str:
    summary, setup, machine = payload["summary"], payload["setup"], payload["machine"]
    out = [
        f"# Remote tier: {MODEL} in process and behind llama-server",
        "",
        f"Run {setup['started']} on {machine['platform']} ({machine['cpu_count']} CPU cores, "
        f"shared; load average at start {machine['load_average_at_start'][0]:.1f}), "
        f"llama-cpp-python {machine['llama_cpp_python']} and llama-server built from the "
        f"llama.cpp it vendors. Greedy sampling (seed {setup['seed']}), max_tokens "
        f"{setup['max_tokens']}, max_steps {setup['max_steps']}, {setup['threads']} threads "
        f"for both. Wall time {setup['wall_seconds'] / 60:.1f} min.",
        "",
        "## agentkit, in process and remote",
        "",
        "| config | solved | seconds | s/task | model steps | model s/step | "
        "prompt tokens | cached | evaluated | generated |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for config, s in summary["per_config"].items():
        per_step = s["model_seconds_per_model_step"]
        out.append(
            f"| {config} | {s['solved']}/{s['tasks']} | {s['seconds']:.0f} | "
            f"{s['seconds_per_task']:.1f} | {s['model_steps']} | "
            + (f"{per_step:.2f}" if per_step is not None else "-")
            + f" | {s['prompt_tokens']:,} | {s['cached_tokens']:,} | "
            f"{s['evaluated_tokens']:,} | {s['completion_tokens']:,} |"
        )
    cmp = summary.get("remote_vs_local")
    if cmp:
        verdict = "met" if cmp["wall_target_met"] else "missed"
        out += [
            "",
            f"On the {cmp['tasks']} tasks both ran: {cmp['solved_in_process']} solved in "
            f"process, {cmp['solved_remote']} remote ({cmp['same_outcome']} with the same "
            f"outcome); the remote tier took {cmp['wall_ratio']:.0%} of the in-process wall "
            f"time (target at most {WALL_TARGET:.0%}: **{verdict}**).",
        ]
    trips = payload.get("round_trips") or {}
    if "in-process" in trips and "llama-server" in trips:
        local, remote = trips["in-process"], trips["llama-server"]
        extra = remote["median_call_s"] - local["median_call_s"]
        out += [
            "",
            "## What HTTP costs per call",
            "",
            f"A one-token call whose prompt is already cached, {setup['round_trips']} times: "
            f"median {local['median_call_s'] * 1000:.1f} ms in process, "
            f"{remote['median_call_s'] * 1000:.1f} ms through llama-server, so "
            f"**{extra * 1000:.1f} ms per call** for HTTP, JSON and the server's scheduling. "
            f"Counting the prompt's tokens (once per step, to keep it inside the window) takes "
            f"{local['count_tokens_s'] * 1000:.1f} ms in process and "
            f"{remote['count_tokens_s'] * 1000:.1f} ms over HTTP (`/tokenize`).",
        ]
        if cmp and cmp["extra_seconds_per_model_step"] is not None:
            out.append(
                f"Over the suite the model calls of a step took "
                f"{cmp['extra_seconds_per_model_step']:+.2f} s more remote than in process "
                "(decisions can differ between the two, so this mixes HTTP with different "
                "work)."
            )
    peer = summary.get("peer")
    if peer:
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(peer["statuses"].items()))
        out += [
            "",
            "## The peer: LangGraph's prebuilt ReAct agent on the same server",
            "",
            f"`create_react_agent` with `ChatOpenAI(base_url=<llama-server>/v1)`, the same "
            f"tools and checkers, on {peer['tasks']} tasks: **{peer['solved']} solved** in "
            f"{peer['seconds']:.0f} s ({statuses}); {peer['tasks_with_a_tool_call']} runs "
            "made at least one tool call."
            + (
                f" agentkit's remote tier solved {peer['agentkit_remote_solved_same_tasks']} "
                f"of the same tasks in {peer['agentkit_remote_seconds_same_tasks']:.0f} s."
                if summary["per_config"].get("llama-server")
                else ""
            ),
        ]
        if peer.get("example_failed_answer"):
            out += ["", f"A final answer it returned: `{peer['example_failed_answer'][:200]}`"]
    out += ["", "## Every task", "", "| task | kind | " + " | ".join(CONFIGS) + " |"]
    out.append("|---|---|" + "---|" * len(CONFIGS))
    marks: dict[tuple[str, str], str] = {}
    for r in payload["rows"]:
        marks[(r["task"], r["config"])] = _mark(r["success"], r["status"], r["seconds"])
    for p in payload["peer_rows"]:
        marks[(p["task"], "langgraph")] = _mark(p["success"], p["status"], p["seconds"])
    kinds = {r["task"]: r["kind"] for r in [*payload["rows"], *payload["peer_rows"]]}
    for task, kind in kinds.items():
        cells = [marks.get((task, c), "") for c in CONFIGS]
        out.append(f"| {task} | {kind} | " + " | ".join(cells) + " |")
    out += ["", f"Rerun: `.venv/bin/{setup['command']}`.", ""]
    return "\n".join(out)


def _ok(success: bool) -> str:
    return "ok  " if success else "FAIL"


def _mark(success: bool, status: str, seconds: float) -> str:
    return f"{'ok' if success else 'fail'} ({status}, {seconds:.0f} s)"


def render_plot(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = payload["summary"]
    names, solved, totals, per_task = [], [], [], []
    for config, s in summary["per_config"].items():
        names.append(f"agentkit\n{config}")
        solved.append(s["solved"])
        totals.append(s["tasks"])
        per_task.append(s["seconds_per_task"])
    if summary.get("peer"):
        peer = summary["peer"]
        names.append("LangGraph\nllama-server")
        solved.append(peer["solved"])
        totals.append(peer["tasks"])
        per_task.append(peer["seconds"] / peer["tasks"])
    colors = ["#4c9be8", "#3aa35b", "#e8744c"][: len(names)]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    bars = left.bar(
        names, [100 * s / t if t else 0 for s, t in zip(solved, totals, strict=True)], color=colors
    )
    for bar, s, t in zip(bars, solved, totals, strict=True):
        left.annotate(
            f"{s}/{t}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
        )
    left.set_ylabel("tasks solved (%)")
    left.set_ylim(0, 115)  # room for the counts above a full bar
    left.set_title(f"{MODEL}: tasks solved")
    right.bar(names, per_task, color=colors)
    right.set_ylabel("seconds per task")
    right.set_title("wall time per task")
    for ax in (left, right):
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_reports(payload: dict[str, Any], out: Path) -> None:
    payload["summary"] = summarize(payload)
    write_json(out / "remote.json", payload)
    (out / "remote.md").write_text(render_markdown(payload), encoding="utf-8")
    render_plot(payload, out / "remote.png")


# -- command line -------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.remote", description=__doc__.split("\n")[0])
    p.add_argument("--kinds", nargs="+", choices=KINDS, help="only these kinds of task")
    p.add_argument("--limit", type=int, help="at most N tasks of each kind")
    p.add_argument("--tasks", nargs="+", metavar="ID", help="only these tasks (e.g. a01 l05)")
    p.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    p.add_argument("--peer-tasks", type=int, default=30, help="tasks for LangGraph (default 30)")
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    p.add_argument("--max-tokens", type=int, default=192)
    p.add_argument("--max-steps", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--report-only", action="store_true", help="rewrite the reports from JSON")
    return p


def _setup(
    args: argparse.Namespace, suite: list[Task], peers: list[Task], argv: Any
) -> dict[str, Any]:
    return {
        "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "model": MODEL,
        "configs": list(args.configs),
        "tasks": [t.id for t in suite],
        "peer_tasks": [t.id for t in peers],
        "max_tokens": args.max_tokens,
        "max_steps": args.max_steps,
        "seed": args.seed,
        "threads": args.threads,
        "round_trips": _ROUND_TRIPS,
        "wall_seconds": 0.0,
        "complete": False,
        "command": " ".join(
            ["python -m bench.remote", *(argv if argv is not None else sys.argv[1:])]
        ),
    }


def _run_agentkit(
    config: str, model: ChatModel, suite: list[Task], payload: dict[str, Any], args: Any, out: Path
) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-remote-") as folder:
        store = RunStore(Path(folder) / "runs.db")
        try:
            for i, task in enumerate(suite, 1):
                row = run_task(task, config, model, store, args)
                payload["rows"].append(asdict(row))
                print(
                    f"[{i:2d}/{len(suite)}] {config:12s} {task.id} {_ok(row.success)} "
                    f"{row.status:16s} {row.seconds:6.1f}s steps={row.steps}",
                    flush=True,
                )
                write_json(out / "remote.json", payload)
        finally:
            store.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        write_reports(json.loads((out / "remote.json").read_text(encoding="utf-8")), out)
        print(f"rewrote {out / 'remote.md'} and {out / 'remote.png'}")
        return 0
    suite = tasks(args.kinds, limit=args.limit, ids=args.tasks)
    if not suite:
        print("no task matches the filters", file=sys.stderr)
        return 2
    peers = peer_tasks(suite, args.peer_tasks) if "langgraph" in args.configs else []
    started = time.perf_counter()
    payload: dict[str, Any] = {
        "setup": _setup(args, suite, peers, argv),
        "machine": machine_info(),
        "round_trips": {},
        "rows": [],
        "peer_rows": [],
    }
    sampling = Sampling(temperature=0.0, max_tokens=args.max_tokens, seed=args.seed)
    models: dict[str, ChatModel] = {}
    if "in-process" in args.configs:
        models["in-process"] = get_model(MODEL, LlamaConfig(n_threads=args.threads))
    with LlamaServer(MODEL, slots=1, context=LlamaConfig().n_ctx, threads=args.threads,
                     extra_args=("--jinja",)) as server:  # fmt: skip
        remote = RemoteModel(server.base_url, server.alias)
        payload["machine"]["llama_server_build"] = remote.server().version
        if "llama-server" in args.configs:
            models["llama-server"] = remote
        for config, model in models.items():
            payload["round_trips"][config] = round_trips(model)
        for config in (c for c in CONFIGS[:2] if c in models):
            _run_agentkit(config, models[config], suite, payload, args, out)
        for i, task in enumerate(peers, 1):
            peer = run_peer(task, server, sampling)
            payload["peer_rows"].append(asdict(peer))
            print(
                f"[{i:2d}/{len(peers)}] langgraph    {task.id} {_ok(peer.success)} "
                f"{peer.status:16s} {peer.seconds:6.1f}s",
                flush=True,
            )
            payload["setup"]["wall_seconds"] = round(time.perf_counter() - started, 1)
            write_json(out / "remote.json", payload)
    payload["setup"]["wall_seconds"] = round(time.perf_counter() - started, 1)
    payload["setup"]["complete"] = True
    payload["machine"]["load_average_at_end"] = list(os.getloadavg())
    write_reports(payload, out)
    print(render_markdown(payload).split("## Every task")[0])
    print(f"wrote {out / 'remote.json'}, {out / 'remote.md'}, {out / 'remote.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
