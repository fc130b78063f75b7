"""agentkit.tools: the public names, and a valid schema for every tool it can build."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import agentkit.tools
from agentkit.runtime._tools import Tool
from agentkit.tools import HttpFetch, PythonExecutor, SqliteDatabase, Workspace, calculator


def test_public_names_are_pinned() -> None:
    assert sorted(agentkit.tools.__all__) == [
        "HttpFetch", "PythonExecutor", "SqliteDatabase", "Workspace", "calculator"
    ]  # fmt: skip
    for name in agentkit.tools.__all__:
        assert getattr(agentkit.tools, name).__doc__, f"{name} has no docstring"


def test_every_tool_builds_a_schema_without_problems(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    sqlite3.connect(db).close()
    tools: list[Tool] = [
        calculator,
        *Workspace(tmp_path, allow_delete=True).tools(),
        *SqliteDatabase(db).tools(),
        *HttpFetch(allow_hosts=["example.com"]).tools(),
        *PythonExecutor(enabled=True).tools(),
    ]
    names = [t.name for t in tools]
    assert len(names) == len(set(names)) == 11
    for t in tools:
        assert t.problems == [], t.name
        spec = t.spec
        assert len(spec.description) > 30, f"{t.name}: describe when to use it"
        assert spec.parameters["type"] == "object"
        assert spec.parameters.get("additionalProperties") is False
        for arg, prop in spec.parameters.get("properties", {}).items():
            assert prop.get("description"), f"{t.name}.{arg} has no description"
        assert t.max_output_chars <= 10_000, f"{t.name}: output too large for a small model"
