"""The monitor while many runs share the models: a real ``run_many`` in another thread,
the monitor polling the same SQLite file, and the one-line overview of a batch."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Static

from agentkit import Agent, Message, ModelResponse, RunStore, ToolCall, tool
from agentkit.testing import ScriptedModel, Turn
from agentkit.tui import MonitorApp
from agentkit.tui.data import RunSummary, overview
from agentkit.tui.widgets import RunsTable

SIZE = (140, 40)


@tool
def double(x: int) -> int:
    """Double a number.

    Args:
        x: the number
    """
    return 2 * x


class Gated:
    """Each run's first model call waits until its task's gate opens."""

    def __init__(self, count: int) -> None:
        self.gates = [threading.Event() for _ in range(count)]

    def __call__(self, messages: Sequence[Message], tools: Sequence[Any]) -> ModelResponse:
        task = next(m.content for m in messages if m.role == "user") or ""
        n = int(re.findall(r"\d+", task)[0])
        if messages[-1].role == "user":
            self.gates[n].wait(60)
            call = ToolCall(name="double", arguments={"x": n})
            return ModelResponse(tool_calls=(call,), finish_reason="tool_calls")
        return ModelResponse(content=f"It is {messages[-1].content}.")


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


async def wait_for(pilot: Pilot[Any], condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        await pilot.pause(0.05)


def shown(app: MonitorApp) -> str | None:
    panel = app.screen.query_one("#overview", Static)
    return str(panel.render()) if panel.display else None


async def test_the_monitor_follows_a_batch_of_concurrent_runs(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    store = RunStore(db)
    responder = Gated(8)
    agent = Agent(ScriptedModel([Turn(responder)] * 16), tools=[double], store=store)
    results: list[Any] = []
    batch = threading.Thread(
        target=lambda: results.extend(
            agent.run_many([f"Double {n}." for n in range(8)], concurrency=8)
        )
    )
    batch.start()
    try:
        wait_until(lambda: len(store.list_runs(status="running")) == 8, "eight runs to be running")
        app = MonitorApp(db, poll_interval=0.05)
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one(RunsTable)
            await wait_for(pilot, lambda: table.row_count == 8, "eight rows")
            await wait_for(pilot, lambda: "8 runs live at once" in (shown(app) or ""), "overview")
            for gate in responder.gates[:3]:
                gate.set()
            await wait_for(
                pilot,
                lambda: "5 runs live at once · 3 ended (✓3)" in (shown(app) or ""),
                "three runs to end",
            )
            statuses = [str(table.get_cell(r, "status")) for r in table.rows]
            assert statuses.count("✓ succeeded") == 3 and statuses.count("▶ running") == 5
            for gate in responder.gates:
                gate.set()
            await wait_for(pilot, lambda: shown(app) is None, "the overview to go")
    finally:
        for gate in responder.gates:
            gate.set()
        batch.join(60)
        store.close()
    assert [r.answer for r in results] == [f"It is {2 * n}." for n in range(8)]


def _summary(status: str, prompt: int = 0, cached: int = 0) -> RunSummary:
    return RunSummary(
        id=f"{status}-{prompt}",
        name="agent",
        task="t",
        status=status,
        created_at=0.0,
        elapsed=1.0,
        steps=1,
        tokens=prompt,
        cached_tokens=cached,
        tiers="",
        escalations=0,
        alerts=0,
        current_node=None,
        answer=None,
        error=None,
        prompt_tokens=prompt,
    )


def test_the_overview_counts_live_runs_endings_and_reuse() -> None:
    assert overview([_summary("running", 100, 90), _summary("succeeded")]) is None
    line = overview(
        [
            _summary("running", 1000, 900),
            _summary("paused", 1000, 800),
            _summary("succeeded", 500, 0),
            _summary("failed"),
            _summary("succeeded", 7),
        ]
    )
    assert line == (
        "2 runs live at once · 3 ended (✗1 ✓2) · prompt tokens of the live runs 85% "
        "reused from the KV cache"
    )
