"""Bad input, table-driven: every case ends in a clear agentkit error that says what was
wrong, or in a recorded run whose error says it, never in a raw exception."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from agentkit import (
    END,
    Agent,
    AgentkitError,
    AgentState,
    ConfigError,
    DetectorConfig,
    FunctionNode,
    Graph,
    LlamaConfig,
    ModelFileError,
    ModelLadder,
    ModelNotFoundError,
    ResponsePlan,
    ResumeError,
    RunStore,
    Sampling,
    StoreError,
    Tool,
    tool,
)
from agentkit.testing import ScriptedModel, call, reply

ROOT = Path(__file__).resolve().parents[1]


class State(AgentState):
    count: int = 0


def _graph(*nodes: tuple[str, Any], edges: list[tuple[str, str]] | None = None) -> Any:
    g: Graph[State] = Graph(State, model=ScriptedModel([]), max_steps=5)
    for name, node in nodes:
        g.add_node(name, node)
    for a, b in edges or [(nodes[-1][0], END)]:
        g.add_edge(a, b)
    return g.build()


def _no_doc(x: int) -> int:
    return x


def _untyped(x):  # type: ignore[no-untyped-def]
    """Has no annotation."""
    return x


def _star(*xs: int) -> int:
    """Takes *args."""
    return 0


def _ok(x: int) -> int:
    """Returns x."""
    return x


BUILD: list[tuple[str, Callable[[], object], str]] = [
    ("node that is not callable", lambda: _graph(("a", 42)), "not a node or a function"),
    (
        "router that is not callable",
        lambda: (
            Graph(State, max_steps=3)
            .add_node("a", lambda s: None)
            .add_conditional_edges("a", "b", [END])  # type: ignore[arg-type]
            .build()
        ),
        "router of node 'a'",
    ),
    (
        "edge to an unknown node",
        lambda: _graph(("a", lambda s: None), edges=[("a", "nowhere")]),
        "unknown node",
    ),
    ("node defined twice", lambda: _graph(("a", lambda s: None), ("a", lambda s: None)), "twice"),
    (
        "tool parameter without a type",
        lambda: Agent(ScriptedModel([]), tools=[_untyped]),
        "annotat",
    ),
    ("tool with *args", lambda: Agent(ScriptedModel([]), tools=[_star]), "name every parameter"),
    ("tool without a description", lambda: Agent(ScriptedModel([]), tools=[_no_doc]), "docstring"),
    (
        "tool name with spaces",
        lambda: Agent(ScriptedModel([]), tools=[Tool(_ok, name="no good")]),
        "name",
    ),
    ("two tools of one name", lambda: Agent(ScriptedModel([]), tools=[_ok, Tool(_ok)]), "unique"),
    ("step budget of 0", lambda: Agent(ScriptedModel([]), max_steps=0), "max_steps"),
    ("negative time limit", lambda: Agent(ScriptedModel([]), max_seconds=-1), "max_seconds"),
    (
        "cycle without a step budget",
        lambda: (
            Graph(State, max_steps=None)
            .add_node("a", lambda s: None)
            .add_conditional_edges("a", lambda s: "a", ["a", END])
            .build()
        ),
        "cycle",
    ),
    ("unknown detector option", lambda: DetectorConfig(shiny=True), "extra"),  # type: ignore[call-arg]
    (
        "unknown detector name",
        lambda: DetectorConfig(disabled=frozenset({"x"})),
        "unknown detector",
    ),
    ("empty response plan", lambda: ResponsePlan(sequence=()), "sequence is empty"),
    ("sampling temperature out of range", lambda: Sampling(temperature=9), "temperature"),
    ("unknown llama option", lambda: LlamaConfig(n_gpu=1), "extra"),  # type: ignore[call-arg]
    ("empty ladder", lambda: ModelLadder([]), "at least one tier"),
]


@pytest.mark.parametrize(("what", "make", "says"), BUILD, ids=[c[0] for c in BUILD])
def test_definitions_are_refused_with_a_clear_error(
    what: str, make: Callable[[], object], says: str
) -> None:
    with pytest.raises((AgentkitError, ValueError)) as info:
        make()
    error = info.value
    # pydantic's own ValidationError (a ValueError) is what settings objects raise
    assert isinstance(error, (ConfigError, ValueError)), type(error)
    assert says.lower() in str(error).lower(), str(error)


def _function_run(result: object, store: RunStore) -> Any:
    g: Graph[State] = Graph(State, max_steps=3)
    g.add_node("f", FunctionNode(lambda s: result))
    g.add_edge("f", END)
    from agentkit import Runner
    from agentkit.runtime import run_sync

    return run_sync(Runner(g.build(), store=store).arun("t", State()))


class Other(BaseModel):
    x: int = 1


@tool(timeout=0.2)
def sleepy() -> str:
    """Sleeps too long."""
    import time

    time.sleep(2)
    return "late"


@tool
def broken() -> str:
    """Raises."""
    raise RuntimeError("disk on fire")


RUNS: list[tuple[str, Callable[[RunStore], Any], str]] = [
    (
        "function node returning messages: 'oops'",
        lambda s: _function_run({"messages": "oops"}, s),
        "messages",
    ),
    ("function node returning an int", lambda s: _function_run(42, s), "returned int"),
    (
        "function node returning another model",
        lambda s: _function_run(Other(), s),
        "returned a Other",
    ),
    (
        "function node setting an unknown type",
        lambda s: _function_run({"count": "many"}, s),
        "count",
    ),
    ("model reply empty", lambda s: Agent(ScriptedModel([reply("")]), store=s).run("x"), "empty"),
    (
        "answer that is call markup",
        lambda s: Agent(ScriptedModel([reply('{"name": "f", "arguments": {}}')]), store=s).run("x"),
        "markup",
    ),
]


@pytest.mark.parametrize(("what", "run", "says"), RUNS, ids=[c[0] for c in RUNS])
def test_runtime_failures_are_recorded_runs(
    what: str, run: Callable[[RunStore], Any], says: str, store: RunStore
) -> None:
    result = run(store)
    assert result.status == "failed" and result.exit_code == 1
    assert result.error and says in result.error, result.error
    assert store.get_run(result.run_id).status == "failed"


TOOLS: list[tuple[str, Tool, str]] = [
    ("a tool that raises", broken, "disk on fire"),
    ("a tool that hangs past its timeout", sleepy, "did not finish within 0.2 s"),
]


@pytest.mark.parametrize(("what", "bad", "says"), TOOLS, ids=[c[0] for c in TOOLS])
def test_tool_failures_are_observations(what: str, bad: Tool, says: str, store: RunStore) -> None:
    model = ScriptedModel([call(bad.name), reply("carried on")])
    with model:
        result = Agent(model, tools=[bad], store=store).run("go")
    assert result.ok
    seen = model.requests[-1][-1].content
    assert seen.startswith("Error") and says in seen


def _resume(store: RunStore, run_id: str, *, graph_of: Agent[Any] | None = None) -> Any:
    agent = graph_of or Agent(ScriptedModel([reply("x")]), store=store)
    return agent.resume(run_id)


def _corrupt_checkpoint(store: RunStore) -> Any:
    agent = Agent(ScriptedModel([call("_ok", x=1), reply("done")]), tools=[_ok], store=store)
    result = agent.run("go")
    conn = store._conn()
    conn.execute("UPDATE runs SET status='running', owner=NULL WHERE id=?", (result.run_id,))
    conn.execute(
        "UPDATE steps SET state_json=? WHERE run_id=?",
        (json.dumps({"state": {"messages": "oops"}}), result.run_id),
    )
    conn.execute("DELETE FROM steps WHERE run_id=? AND idx>1", (result.run_id,))
    return Agent(ScriptedModel([reply("x")]), tools=[_ok], store=store).resume(result.run_id)


def _finished(store: RunStore) -> Any:
    agent = Agent(ScriptedModel([reply("x"), reply("y")]), store=store)
    return agent.resume(agent.run("go").run_id)


def _other_graph(store: RunStore) -> Any:
    first = Agent(ScriptedModel([reply("x")]), store=store)
    run_id = first.run("go").run_id
    store._conn().execute("UPDATE runs SET status='running', owner=NULL WHERE id=?", (run_id,))
    from agentkit import Runner
    from agentkit.runtime import run_sync

    other = _graph(
        ("plan", lambda s: None), ("act", lambda s: None), edges=[("plan", "act"), ("act", END)]
    )
    return run_sync(Runner(other, store=store).aresume(run_id))


def _store_at(path: Path) -> Any:
    return RunStore(path)


def _foreign(tmp: Path) -> Any:
    path = tmp / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    return RunStore(path)


def _fifo(tmp: Path) -> Any:
    from agentkit.models._gguf import inspect_gguf

    path = tmp / "x.gguf"
    os.mkfifo(path)
    return inspect_gguf(path)


ERRORS: list[tuple[str, Callable[[RunStore, Path], Any], type[AgentkitError], str]] = [
    ("resume an unknown run", lambda s, t: _resume(s, "nope"), StoreError, "no run matches"),
    ("resume a finished run", lambda s, t: _finished(s), ResumeError, "already finished"),
    ("resume with another graph", lambda s, t: _other_graph(s), ResumeError, "does not match"),
    (
        "resume a corrupt checkpoint",
        lambda s, t: _corrupt_checkpoint(s),
        ResumeError,
        "cannot be read",
    ),
    ("store path is a folder", lambda s, t: _store_at(t), StoreError, ""),
    (
        "store file is not SQLite",
        lambda s, t: (t / "j.db").write_bytes(b"x" * 200) and _store_at(t / "j.db"),
        StoreError,
        "not a readable SQLite",
    ),
    ("store file is another app's", lambda s, t: _foreign(t), StoreError, "another application"),
    (
        "a control that does not exist",
        lambda s, t: s.send_control("r", "explode"),
        StoreError,
        "unknown control",
    ),
    (
        "force_tier without a tier",
        lambda s, t: s.send_control("r", "force_tier"),
        StoreError,
        "tier number",
    ),
    (
        "a model path that does not exist",
        lambda s, t: Agent(str(t / "none.gguf")).run("x"),
        ModelNotFoundError,
        "none.gguf",
    ),
    (
        "a model that is not a GGUF",
        lambda s, t: (t / "m.gguf").write_text("hello") and Agent(str(t / "m.gguf")).run("x"),
        ModelFileError,
        "not a GGUF",
    ),
    ("a FIFO named .gguf", lambda s, t: _fifo(t), ModelFileError, "regular file"),
]


@pytest.mark.parametrize(("what", "do", "kind", "says"), ERRORS, ids=[c[0] for c in ERRORS])
def test_bad_input_gives_a_clear_agentkit_error(
    what: str,
    do: Callable[[RunStore, Path], Any],
    kind: type[AgentkitError],
    says: str,
    store: RunStore,
    tmp_path: Path,
) -> None:
    try:
        outcome = do(store, tmp_path)
    except AgentkitError as exc:
        assert isinstance(exc, kind), f"{type(exc).__name__}: {exc}"
        assert says in str(exc), str(exc)
        return
    # Some of these end as a recorded failed run instead (a model that cannot load).
    assert getattr(outcome, "status", None) == "failed", outcome
    assert says in (outcome.error or ""), outcome.error


CLI: list[tuple[str, list[str]]] = [
    ("show an unknown run", ["runs", "show", "nope"]),
    ("info on a missing file", ["models", "info", "/nonexistent/model.gguf"]),
    ("control with a bad command", ["runs", "control", "nope", "force_tier"]),
    ("list a database that is not SQLite", ["runs", "list", "--db", "JUNK"]),
]


@pytest.mark.parametrize(("what", "argv"), CLI, ids=[c[0] for c in CLI])
def test_the_cli_says_what_is_wrong_without_a_traceback(
    what: str, argv: list[str], tmp_path: Path
) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"junk" * 100)
    argv = [str(junk) if a == "JUNK" else a for a in argv]
    env = {**os.environ, "AGENTKIT_DB": str(tmp_path / "runs.db")}
    RunStore(tmp_path / "runs.db").close()
    out = subprocess.run(
        [sys.executable, "-m", "agentkit.cli", *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert out.returncode == 2, out
    assert out.stderr.startswith("agentkit: error:"), out.stderr
    assert "Traceback" not in out.stderr


def test_the_table_is_big_enough() -> None:
    assert len(BUILD) + len(RUNS) + len(TOOLS) + len(ERRORS) + len(CLI) >= 30
