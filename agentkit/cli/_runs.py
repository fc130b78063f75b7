"""``agentkit runs list|show|resume|control`` and ``agentkit monitor``."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .._errors import ConfigError
from ..events import Event, FilterVerdict
from ..store._open import open_store
from ..store._protocol import Store
from ..store._rows import (
    CONTROL_COMMANDS,
    RunRow,
    StepRow,
    control_problem,
    default_store_spec,
    is_store_url,
)


def register(sub: Any) -> None:
    runs = sub.add_parser("runs", help="list, inspect, resume and steer stored runs")
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="ACTION", required=True)

    p = runs_sub.add_parser("list", help="recent runs, newest first")
    _db(p)
    p.add_argument("--status", help="only runs with this status")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=_list)

    p = runs_sub.add_parser("show", help="one run with its steps")
    _db(p)
    p.add_argument("run_id", help="a run id or a unique prefix of one")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--events", action="store_true", help="also print every event")
    p.set_defaults(handler=_show)

    p = runs_sub.add_parser("resume", help="continue an interrupted run from its last step")
    _db(p)
    p.add_argument("run_id")
    p.add_argument(
        "--app",
        help="where the agent is defined: module:attr or file.py:attr "
        "(an Agent, or a function returning one); defaults to what the run "
        "recorded",
    )
    p.set_defaults(handler=_resume)

    p = runs_sub.add_parser(
        "control", help="pause, resume, abort or force a tier of a live run (from any process)"
    )
    _db(p)
    p.add_argument("run_id")
    p.add_argument("command", choices=sorted(CONTROL_COMMANDS))
    p.add_argument("argument", nargs="?", help="the tier number for force_tier")
    p.set_defaults(handler=_control)

    p = sub.add_parser("monitor", help="watch and steer runs live in a terminal UI")
    _db(p)
    p.set_defaults(handler=_monitor)


def _db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        default=None,
        metavar="PATH_OR_URL",
        help="run database: a SQLite file or a postgresql://user@host/dbname URL "
        "(default: $AGENTKIT_DB or ~/.local/share/agentkit/runs.db)",
    )


def _open(args: argparse.Namespace) -> Store:
    """The store named by --db (which must exist), else the default one, created if new."""
    if args.db is not None:
        return open_store(args.db if is_store_url(args.db) else Path(args.db), create=False)
    spec = default_store_spec()
    return open_store(spec, create=isinstance(spec, str) or not spec.exists())


def _run_dict(run: RunRow) -> dict[str, Any]:
    data = asdict(run)
    data["elapsed"] = round(run.elapsed, 3)
    return data


def _list(args: argparse.Namespace) -> int:
    runs = _open(args).list_runs(limit=args.limit, status=args.status)
    if args.json:
        print(json.dumps([_run_dict(r) for r in runs], indent=2, default=str))
        return 0
    if not runs:
        print("no runs yet")
        return 0
    print(
        f"{'RUN':12}  {'NAME':16}  {'STATUS':16}  {'STEPS':>5}  {'TOKENS':>8}  "
        f"{'ESC':>3}  {'ALERT':>5}  STARTED"
    )
    for r in runs:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.created_at))
        tokens = r.prompt_tokens + r.completion_tokens
        print(
            f"{r.id[:12]:12}  {r.name[:16]:16}  {r.status:16}  {r.steps:>5}  {tokens:>8}  "
            f"{r.escalations:>3}  {r.alerts:>5}  {started}"
        )
    return 0


def _step_dict(step: StepRow) -> dict[str, Any]:
    data = asdict(step)
    data.pop("state_json")
    return data


def _show(args: argparse.Namespace) -> int:
    store = _open(args)
    run = store.get_run(args.run_id)
    steps = store.steps(run.id)
    events = store.events(run.id)
    if args.json:
        print(
            json.dumps(
                {
                    "run": _run_dict(run),
                    "steps": [_step_dict(s) for s in steps],
                    "events": [e.model_dump(mode="json") for _, e in events],
                },
                indent=2,
                default=str,
            )
        )
        return 0
    print(f"run {run.id}  {run.name}  {run.status}  ({run.elapsed:.1f} s)")
    print(f"task: {run.task}")
    if run.answer:
        print(f"answer: {run.answer}")
    if run.error:
        print(f"error: {run.error}")
    print(
        f"tokens: {run.prompt_tokens} prompt ({run.cached_tokens} reused), "
        f"{run.completion_tokens} generated; escalations {run.escalations}; "
        f"alerts {run.alerts}"
    )
    verdicts = _verdicts_by_step(events)
    _print_verdicts(verdicts.pop(0, []), "  filters on the task: ")
    for s in steps:
        tier = f"tier {s.tier}" if s.tier is not None else ""
        line = f"  {s.idx:>3} {s.node:10} {tier:7}"
        if s.kind == "model":
            line += (
                f" prompt {s.prompt_tokens} ({s.cached_tokens} reused) "
                f"gen {s.completion_tokens} {s.seconds:.2f}s"
            )
        for c in s.tool_calls:
            args_text = json.dumps(c.get("arguments", {}))[:60]
            result = c.get("result")
            line += f"\n        {c['name']}({args_text})"
            if result is not None:
                line += f" -> {' '.join(str(result).split())[:70]}"
        if s.kind == "model" and s.content:
            line += f"\n        {' '.join(s.content.split())[:100]}"
        print(line)
        _print_verdicts(verdicts.pop(s.idx, []), "        ")
    for step in sorted(verdicts):  # a step that stopped the run has no stored row
        _print_verdicts(verdicts[step], f"  {step:>3} ")
    for _, e in events if args.events else []:
        print(f"  event {e.type} step={e.step} {e.model_dump_json(exclude={'run_id', 'ts'})}")
    return 0


def _verdicts_by_step(events: list[tuple[int, Event]]) -> dict[int, list[FilterVerdict]]:
    found: dict[int, list[FilterVerdict]] = {}
    for _, e in events:
        if isinstance(e, FilterVerdict):
            found.setdefault(e.step or 0, []).append(e)
    return found


def _print_verdicts(verdicts: list[FilterVerdict], indent: str) -> None:
    """One line per filter verdict: which filter, what it said of what, what was done."""
    for v in verdicts:
        subject = v.target.replace("_", " ") + (f" of {v.tool}" if v.tool else "")
        why = f" ({v.reason})" if v.reason else ""
        error = f" [filter error: {v.error}]" if v.error else ""
        done = f" -> {v.outcome}" if v.outcome else ""
        print(f"{indent}filter {v.filter}: {v.verdict} {subject}{why}{done}{error}")


def _resume(args: argparse.Namespace) -> int:
    store = _open(args)
    run = store.get_run(args.run_id)
    spec = args.app or run.config.get("app")
    if not spec:
        raise ConfigError(
            f"run {run.id} did not record where its agent is defined; pass "
            "--app module:attr or --app path/to/script.py:attr"
        )
    app = load_app(str(spec))
    from ..runtime._agent import Agent, run_sync
    from ..runtime._executor import Runner

    if isinstance(app, Agent):
        app._store = store
        result = app.resume(run.id)
    elif isinstance(app, Runner):
        app.store = store
        result = run_sync(app.aresume(run.id))
    else:
        raise ConfigError(f"{spec} is not an Agent or a Runner (got {type(app).__name__})")
    print(result.summary())
    return result.exit_code


def load_app(spec: str) -> Any:
    """Import ``module:attr`` or ``file.py:attr``; call it if it is a factory."""
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise ConfigError(f"--app {spec!r} must look like module:attr or file.py:attr")
    if target.endswith(".py"):
        path = Path(target)
        if not path.exists():
            raise ConfigError(f"--app file {path} does not exist")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        if module_spec is None or module_spec.loader is None:
            raise ConfigError(f"cannot import {path}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[path.stem] = module
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    try:
        obj = getattr(module, attr)
    except AttributeError as exc:
        raise ConfigError(f"{target} has no attribute {attr!r}") from exc
    from ..runtime._agent import Agent
    from ..runtime._executor import Runner

    if isinstance(obj, (Agent, Runner)):
        return obj
    return obj() if callable(obj) else obj


def _control(args: argparse.Namespace) -> int:
    store = _open(args)
    run = store.get_run(args.run_id)
    problem = control_problem(args.command, args.argument)
    if problem is not None:
        raise ConfigError(problem)
    store.send_control(run.id, args.command, args.argument)
    print(f"sent {args.command}{' ' + args.argument if args.argument else ''} to run {run.id}")
    return 0


def _monitor(args: argparse.Namespace) -> int:
    tui = importlib.import_module("agentkit.tui")
    result: int = tui.run_monitor(args.db)
    return result
