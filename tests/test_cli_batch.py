"""``agentkit batch``: a JSONL of tasks through one agent, on the scripted model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentkit.cli import main
from agentkit.store import RunStore

APP = '''
import re
from agentkit import Agent, ModelResponse, ToolCall, tool
from agentkit.testing import ScriptedModel, Turn


@tool
def double(x: int) -> int:
    """Double a number.

    Args:
        x: the number
    """
    return 2 * x


def respond(messages, tools):
    task = next(m.content for m in messages if m.role == "user")
    n = int(re.search(r"-?\\d+", task).group())
    if n == 13:
        raise RuntimeError("unlucky number")
    if messages[-1].role == "tool":
        return ModelResponse(content=f"It is {messages[-1].content}.")
    return ModelResponse(
        tool_calls=(ToolCall(name="double", arguments={"x": n}),), finish_reason="tool_calls"
    )


def build():
    return Agent(ScriptedModel([Turn(respond)] * 100), tools=[double], name="doubler")


not_an_agent = 42
'''


@pytest.fixture
def app(tmp_path: Path) -> str:
    path = tmp_path / "doubler_app.py"
    path.write_text(APP)
    return f"{path}:build"


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "tasks.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_every_task_runs_and_lands_in_the_store(
    tmp_path: Path, app: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks = write(
        tmp_path,
        '"Double 1."',
        "",
        '{"task": "Double 2.", "id": "b", "expected": 4}',
        '{"task": "Double 3.", "id": 7}',
        '"Double 4."',
    )
    db = tmp_path / "runs.db"
    code = main(["batch", str(tasks), "--app", app, "--concurrency", "2", "--db", str(db)])
    out = capsys.readouterr()
    assert code == 0, out.err
    rows = [
        json.loads(line) for line in (tmp_path / "tasks.results.jsonl").read_text().splitlines()
    ]
    assert [r["index"] for r in rows] == [0, 1, 2, 3]  # task order, whatever finished first
    assert [r["answer"] for r in rows] == ["It is 2.", "It is 4.", "It is 6.", "It is 8."]
    assert [r["id"] for r in rows] == [None, "b", "7", None]
    assert [r["line"] for r in rows] == [1, 3, 4, 5]
    assert rows[1]["expected"] == 4
    assert "4 runs: 4 succeeded" in out.out
    assert "4/4" in out.err  # the progress bar, on stderr
    store = RunStore(db)
    stored = {run.id: run for run in store.list_runs()}
    assert {r["run_id"] for r in rows} == set(stored)
    assert all(run.status == "succeeded" for run in stored.values())
    assert all(run.config.get("app") == app for run in stored.values())  # resumable
    store.close()


def test_a_failing_run_is_a_row_and_a_non_zero_exit(
    tmp_path: Path, app: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks = write(tmp_path, '"Double 12."', '"Double 13."', '"Double 14."')
    out = tmp_path / "out.jsonl"
    code = main(["batch", str(tasks), "--app", app, "--out", str(out), "--no-progress"])
    assert code == 1
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["status"] for r in rows] == ["succeeded", "failed", "succeeded"]
    assert "unlucky number" in rows[1]["error"]
    assert "1 did not" in capsys.readouterr().out


def test_bad_lines_are_all_reported_before_anything_runs(
    tmp_path: Path, app: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks = write(tmp_path, '"Double 1."', "{not json", "[1, 2]", '{"id": 3}', '""')
    db = tmp_path / "runs.db"
    code = main(["batch", str(tasks), "--app", app, "--db", str(db)])
    err = capsys.readouterr().err
    assert code == 2
    expected = (
        "2: not JSON",
        "3: a task is a string or an object",
        '4: the object needs a non-empty string "task"',
        "5: the task is empty",
    )
    for line in expected:
        assert f"tasks.jsonl:{line}" in err
    assert not db.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jsonl", "--app", "{app}"], "does not exist"),
        (["{tasks}", "--app", "{app_file}:not_an_agent"], "is not an Agent"),
        (["{tasks}", "--app", "{app}", "-n", "0"], "--concurrency must be at least 1"),
    ],
)
def test_wrong_arguments_are_clear_errors(
    tmp_path: Path, app: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    tasks = write(tmp_path, '"Double 1."')
    values = {"app": app, "app_file": app.rsplit(":", 1)[0], "tasks": str(tasks)}
    argv = ["batch", *(a.format(**values) for a in args)]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
