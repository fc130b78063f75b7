"""``agentkit batch TASKS.jsonl``: one agent on many tasks, ``--concurrency`` at a time.

Each line of the tasks file is a task: a JSON string, or an object with ``"task"`` (and
optionally ``"id"``; other keys are copied to the result). The whole file is checked
before anything runs. Runs go to the store like any other (``agentkit monitor`` shows
them live); a progress bar goes to stderr; one JSON line per task goes to the results
file as each run ends, and the file is rewritten in task order at the end. The exit
status is 0 when every run succeeded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .._errors import ConfigError
from ..runtime._result import RunResult
from ..store._open import open_store
from ._runs import load_app

__all__ = ["read_tasks", "register"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "batch",
        help="run an agent on every task of a JSONL file, many at a time",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    p.add_argument("tasks", type=Path, help="JSONL file: one task (a string or an object) a line")
    p.add_argument(
        "--app",
        required=True,
        help="where the agent is defined: module:attr or file.py:attr (an Agent, or a "
        "function returning one)",
    )
    p.add_argument("--concurrency", "-n", type=int, default=8, help="runs at a time (default: 8)")
    p.add_argument(
        "--out", type=Path, default=None, help="results JSONL (default: TASKS.results.jsonl)"
    )
    p.add_argument(
        "--db",
        default=None,
        metavar="PATH_OR_URL",
        help="run database, created if new (default: the agent's own store)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="where runs execute: this process (default), or Ray workers that all write "
        "one shared store (pip install 'agentkit[ray]'; give --db a postgresql:// URL)",
    )
    p.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDRESS",
        help="with --executor ray: the cluster (auto, ray://head:10001); default: "
        "$RAY_ADDRESS, else a local Ray instance for this batch",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="with --executor ray: worker processes (default: one per CPU of the cluster)",
    )
    p.set_defaults(handler=_batch)


@dataclass(frozen=True)
class TaskLine:
    """One task of the file, with where it came from."""

    line: int
    task: str
    id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def read_tasks(path: Path) -> list[TaskLine]:
    """Every task of a JSONL file; one ConfigError listing every bad line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"tasks file {path} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"tasks file {path} cannot be read: {exc}") from exc
    tasks: list[TaskLine] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.strip():
            parsed = _task_line(number, raw)
            if isinstance(parsed, str):
                problems.append(f"{path}:{parsed}")
            else:
                tasks.append(parsed)
    if not tasks and not problems:
        problems.append(f"{path} holds no tasks (one JSON string or object a line)")
    if problems:
        raise ConfigError(problems)
    return tasks


def _task_line(number: int, raw: str) -> TaskLine | str:
    """The task on one line, or what is wrong with it (``LINE: problem``)."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        return f"{number}: not JSON ({exc.msg}); write one JSON string or object a line"
    if isinstance(value, str):
        return TaskLine(number, value) if value.strip() else f"{number}: the task is empty"
    if not isinstance(value, dict):
        return f'{number}: a task is a string or an object with "task", not {type(value).__name__}'
    task = value.get("task")
    if not isinstance(task, str) or not task.strip():
        return f'{number}: the object needs a non-empty string "task"'
    ident = value.get("id")
    if ident is not None and not isinstance(ident, (str, int)):
        return f'{number}: "id" must be a string or a number'
    extra = {k: v for k, v in value.items() if k not in ("task", "id")}
    return TaskLine(number, task, None if ident is None else str(ident), extra)


def _batch(args: argparse.Namespace) -> int:
    tasks = read_tasks(args.tasks)
    if args.concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1 (got {args.concurrency})")
    from ..runtime._agent import Agent

    agent = load_app(args.app)
    if not isinstance(agent, Agent):
        raise ConfigError(f"--app {args.app} is not an Agent (got {type(agent).__name__})")
    if args.db is not None:
        agent._store = open_store(args.db)
    if agent.app is None:
        agent.app = args.app  # so `agentkit runs resume` finds the agent again
    executor = _executor(args)
    out: Path = args.out or args.tasks.with_name(args.tasks.stem + ".results.jsonl")
    rows: dict[int, dict[str, Any]] = {}
    with out.open("w", encoding="utf-8") as sink, _progress(len(tasks), args.no_progress) as bar:

        def on_result(index: int, result: RunResult[Any]) -> None:
            rows[index] = _row(index, tasks[index], result)
            _write(sink, rows[index])
            bar.advance(result.ok)

        agent.run_many(
            [t.task for t in tasks],
            concurrency=args.concurrency,
            on_result=on_result,
            executor=executor,
        )
    _rewrite_in_order(out, [rows[i] for i in range(len(tasks))])
    ok = sum(row["status"] == "succeeded" for row in rows.values())
    print(
        f"{len(tasks)} runs: {ok} succeeded, {len(tasks) - ok} did not. Results: {out}. "
        f"Runs are in {agent.store.location} (`agentkit monitor` shows them)."
    )
    return 0 if ok == len(tasks) else 1


def _executor(args: argparse.Namespace) -> Any:
    """None (this process) or a RayExecutor whose workers load ``--app`` themselves."""
    if args.executor != "ray":
        if args.ray_address is not None or args.workers is not None:
            raise ConfigError("--ray-address and --workers need --executor ray")
        return None
    from ..runtime._ray import RayExecutor

    target, _, attr = str(args.app).rpartition(":")
    app = f"{Path(target).resolve()}:{attr}" if target.endswith(".py") else args.app
    address = args.ray_address or os.environ.get("RAY_ADDRESS") or None
    return RayExecutor(address=address, workers=args.workers, app=app, store=args.db)


def _row(index: int, task: TaskLine, result: RunResult[Any]) -> dict[str, Any]:
    u = result.usage
    return {
        "index": index,
        "id": task.id,
        "line": task.line,
        "task": task.task,
        "run_id": result.run_id,
        "status": result.status,
        "answer": result.answer,
        "error": result.error,
        "diagnosis": result.diagnosis,
        "steps": result.steps,
        "seconds": round(result.seconds, 3),
        "prompt_tokens": u.prompt_tokens,
        "cached_tokens": u.cached_tokens,
        "evaluated_tokens": u.evaluated_tokens,
        "completion_tokens": u.completion_tokens,
        "escalations": result.escalations,
        **task.extra,
    }


def _write(sink: IO[str], row: dict[str, Any]) -> None:
    sink.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    sink.flush()


def _rewrite_in_order(out: Path, rows: list[dict[str, Any]]) -> None:
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as sink:
        for row in rows:
            _write(sink, row)
    os.replace(tmp, out)


class _Bar:
    """The progress bar on stderr: runs done of all, and how many succeeded."""

    def __init__(self, total: int, quiet: bool) -> None:
        # rich loads here, not with the CLI: `agentkit runs list` should start fast.
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("runs"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[ok]} ok, {task.fields[bad]} not"),
            TimeElapsedColumn(),
            console=Console(file=sys.stderr),
            disable=quiet,
        )
        self._task = self._progress.add_task("runs", total=total, ok=0, bad=0)
        self._ok = self._bad = 0

    def advance(self, ok: bool) -> None:
        self._ok += ok
        self._bad += not ok
        self._progress.update(self._task, advance=1, ok=self._ok, bad=self._bad)

    def __enter__(self) -> _Bar:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()


def _progress(total: int, quiet: bool) -> _Bar:
    return _Bar(total, quiet)
