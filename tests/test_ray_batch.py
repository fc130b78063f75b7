"""``run_many`` on a real local Ray cluster (2 workers), writing to a real PostgreSQL store.

The agent is a scripted model and one tool with a side effect: ``record(n)`` appends
``n`` and the worker's process id to a ledger file. A batch of 200 tasks must leave 200
runs, each with all its events, none lost or twice; and with one worker SIGKILLed
mid-way (while it is inside a tool call) all 200 still finish, and the ledger holds
every effect exactly once.
"""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from agentkit import Agent, ConfigError, RayExecutor, RunStore, tool
from agentkit.cli import main
from agentkit.models import Message, ModelResponse, ToolCall, ToolSpec
from agentkit.store import open_store
from agentkit.testing import ScriptedModel, Turn

ray = pytest.importorskip("ray")  # a dev dependency: present wherever `make setup` ran

TASKS = 200
WORKERS = 2
TESTS = Path(__file__).resolve().parent
STUCK_AT = 60
"""In the kill test, the call of task 60 hangs in its tool after its effect, and its worker
is killed there."""


def _respond(messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelResponse:
    """The model: call record(n) for the task "record n", then answer with the outcome."""
    last = messages[-1]
    if last.role == "user":
        n = int(re.findall(r"\d+", last.content or "")[-1])
        call = ToolCall(name="record", arguments={"n": n})
        return ModelResponse(tool_calls=(call,), finish_reason="tool_calls")
    return ModelResponse(content=f"done: {last.content}", finish_reason="stop")


def build_agent(ledger: str, stuck_at: int = -1) -> Agent[Any]:
    """What every worker builds once: the scripted model serves all of its runs."""

    @tool
    def record(n: int) -> str:
        """Record n in the ledger (a side effect that must happen once)."""
        time.sleep(0.01)
        fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, f"{n} {os.getpid()}\n".encode())
        finally:
            os.close(fd)
        if n == stuck_at:
            time.sleep(600)  # stands in for a long call; its worker is killed meanwhile
        return f"recorded {n}"

    model = ScriptedModel([Turn(_respond, delay=0.005)] * 4 * TASKS)
    return Agent(model, tools=[record], name="ledger", answer_now=False)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """A local Ray instance on this machine's cores; workers import this test module."""
    ray.init(
        num_cpus=WORKERS,
        include_dashboard=False,
        configure_logging=False,
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}},
    )
    yield
    ray.shutdown()


def _ledger(path: Path) -> list[tuple[int, int]]:
    if not path.exists():
        return []
    return [
        (int(n), int(pid))
        for n, pid in (line.split() for line in path.read_text().split("\n") if line)
    ]


def _reference_events(tmp_path: Path) -> list[str]:
    """The event types of one run of the same agent, in this process, on SQLite."""
    store = RunStore(tmp_path / "reference.db")
    agent = build_agent(str(tmp_path / "reference-ledger"))
    agent._store = store
    result = agent.run("record 7", run_id="reference")
    assert result.status == "succeeded"
    types = [e.type for _, e in store.events("reference")]
    store.close()
    return types


def _batch(url: str, ledger: Path, stuck_at: int = -1) -> tuple[list[Any], list[int]]:
    app = functools.partial(build_agent, str(ledger), stuck_at)
    executor = RayExecutor(workers=WORKERS, app=app, store=url)
    done: list[int] = []
    results = app().run_many(
        [f"record {n}" for n in range(TASKS)],
        concurrency=8,
        run_ids=[f"task-{n:03d}" for n in range(TASKS)],
        executor=executor,
        on_result=lambda index, _: done.append(index),
    )
    return results, done


def test_a_batch_of_200_on_two_workers_writes_every_run_once(
    ray_cluster: None, postgres_url: str, tmp_path: Path
) -> None:
    reference = _reference_events(tmp_path)
    results, done = _batch(postgres_url, tmp_path / "ledger")
    assert [r.status for r in results] == ["succeeded"] * TASKS
    assert [r.answer for r in results] == [f"done: recorded {n}" for n in range(TASKS)]
    assert sorted(done) == list(range(TASKS))  # the progress callback saw each run once
    ledger = _ledger(tmp_path / "ledger")
    assert sorted(n for n, _ in ledger) == list(range(TASKS))
    assert len({pid for _, pid in ledger}) == WORKERS  # both workers did work
    store = open_store(postgres_url, create=False)
    runs = store.list_runs(limit=1000)
    assert sorted(r.id for r in runs) == [f"task-{n:03d}" for n in range(TASKS)]
    for run in runs:
        assert run.status == "succeeded" and run.steps == 3
        assert [e.type for _, e in store.events(run.id)] == reference, run.id
    store.close()


def test_a_worker_killed_mid_batch_loses_nothing_and_repeats_nothing(
    ray_cluster: None, postgres_url: str, tmp_path: Path
) -> None:
    ledger_path = tmp_path / "ledger"
    killed: list[int] = []

    def kill_the_stuck_worker() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            stuck = [pid for n, pid in _ledger(ledger_path) if n == STUCK_AT]
            if stuck:
                os.kill(stuck[0], signal.SIGKILL)
                killed.append(stuck[0])
                return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_the_stuck_worker)
    killer.start()
    results, done = _batch(postgres_url, ledger_path, stuck_at=STUCK_AT)
    killer.join()
    assert killed, "the stuck call was never reached"
    assert [r.status for r in results] == ["succeeded"] * TASKS
    assert sorted(done) == list(range(TASKS))
    counts = Counter(n for n, _ in _ledger(ledger_path))
    assert max(counts.values()) == 1, "an effect happened twice"
    store = open_store(postgres_url, create=False)
    runs = {r.id: r for r in store.list_runs(limit=1000)}
    assert sorted(runs) == [f"task-{n:03d}" for n in range(TASKS)]
    unknown: set[int] = set()
    resumed: set[int] = set()
    for n in range(TASKS):
        run_id = f"task-{n:03d}"
        types = [e.type for _, e in store.events(run_id)]
        assert runs[run_id].status == "succeeded" and len(store.steps(run_id)) == 3, run_id
        assert types.count("run_finished") == 1 and types[-1] == "run_finished", run_id
        if any(getattr(e, "resumed", False) for _, e in store.events(run_id)):
            resumed.add(n)
        (call,) = [c for s in store.steps(run_id) if s.kind == "tool" for c in s.tool_calls]
        if call["result"] == f"recorded {n}":
            assert counts[n] == 1, (
                f"task {n}: its call finished, but the ledger has it {counts[n]} times"
            )
        else:  # in flight when its worker died: not run again, reported as unknown
            assert call["result"].startswith("Error: the outcome of this call is unknown"), n
            unknown.add(n)
    assert set(range(TASKS)) - set(counts) <= unknown  # only a call of unknown outcome is missing
    assert STUCK_AT in unknown and STUCK_AT in resumed and counts[STUCK_AT] == 1
    assert unknown <= resumed  # each was resumed on another worker
    assert "unknown" in (results[STUCK_AT].answer or "")
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)  # the worker is really gone
    store.close()


APP_FILE = """
from agentkit import Agent, tool
from agentkit.testing import ScriptedModel, Turn
from test_ray_batch import _respond

@tool
def record(n: int) -> str:
    '''Pretend to record n.'''
    return f"recorded {n}"

def build():
    return Agent(ScriptedModel([Turn(_respond)] * 100), tools=[record], name="cli-batch")
"""


def test_agentkit_batch_on_ray_writes_the_shared_store(
    ray_cluster: None, postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = tmp_path / "batch_app.py"
    app.write_text(APP_FILE)
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(f'{{"task": "record {n}", "id": "t{n}"}}\n' for n in range(20)))
    argv = ["batch", str(tasks), "--app", f"{app}:build", "--db", postgres_url]
    code = main([*argv, "--executor", "ray", "--workers", "2", "--no-progress"])
    assert code == 0, capsys.readouterr()
    rows = [
        json.loads(line)
        for line in (tmp_path / "tasks.results.jsonl").read_text().split("\n")
        if line
    ]
    assert [r["id"] for r in rows] == [f"t{n}" for n in range(20)]
    assert all(r["status"] == "succeeded" for r in rows)
    out = capsys.readouterr().out
    assert "20 runs: 20 succeeded" in out and _password_of(postgres_url) not in out
    store = open_store(postgres_url, create=False)
    assert sorted(r.id for r in store.list_runs()) == sorted(r["run_id"] for r in rows)
    store.close()
    assert main([*argv, "--workers", "2"]) != 0
    assert "--ray-address and --workers need --executor ray" in capsys.readouterr().err


def _password_of(url: str) -> str:
    return url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]


def _broken_app() -> Agent[Any]:
    raise RuntimeError("the model file is missing on this worker")


def test_bad_executor_settings_are_refused_before_anything_runs(
    ray_cluster: None, postgres_url: str, tmp_path: Path
) -> None:
    agent = build_agent(str(tmp_path / "ledger"))
    with pytest.raises(ConfigError, match="builds its own agent"):
        agent.run_many(["record 1"], executor=RayExecutor(store=postgres_url))
    with pytest.raises(ConfigError, match="does not send events back"):
        agent.run_many(
            ["record 1"],
            executor=RayExecutor(app=_broken_app, store=postgres_url),
            on_event=lambda e: None,
        )
    with pytest.raises(ConfigError, match=r"could not start: .*model file is missing"):
        agent.run_many(
            ["record 1"], executor=RayExecutor(workers=1, app=_broken_app, store=postgres_url)
        )
    with pytest.raises(ConfigError, match="workers must be at least 1"):
        agent.run_many(
            ["record 1"], executor=RayExecutor(workers=0, app=_broken_app, store=postgres_url)
        )
    assert not (tmp_path / "ledger").exists()
