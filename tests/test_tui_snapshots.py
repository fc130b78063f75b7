"""What the monitor shows, as SVG snapshots of the recorded runs (pytest-textual-snapshot).

The clock is pinned and the database path is relative, so nothing on screen depends on
when or where the tests run. After a deliberate change to the looks, review and accept
the new pictures with ``pytest tests/test_tui_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fixtures.recorded_run import LIVE_RUN, MAIN_RUN, NOW, load_recorded
from textual.pilot import Pilot

from agentkit.tui import MonitorApp
from agentkit.tui.widgets import RunsTable

SIZE = (140, 40)
SnapCompare = Callable[..., bool]


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MonitorApp:
    monkeypatch.chdir(tmp_path)
    load_recorded(Path("runs.db"))
    return MonitorApp(Path("runs.db"), clock=lambda: NOW, poll_interval=0.5)


def open_run(run_id: str) -> Callable[[Pilot[Any]], Any]:
    async def run_before(pilot: Pilot[Any]) -> None:
        table = pilot.app.screen.query_one(RunsTable)
        table.move_cursor(row=table.get_row_index(run_id))
        await pilot.press("enter")
        await pilot.pause()

    return run_before


def test_runs_view(app: MonitorApp, snap_compare: SnapCompare) -> None:
    assert snap_compare(app, terminal_size=SIZE)


def test_runs_view_filtered(app: MonitorApp, snap_compare: SnapCompare) -> None:
    assert snap_compare(app, terminal_size=SIZE, press=["slash", *"trip"])


def test_run_view_finished(app: MonitorApp, snap_compare: SnapCompare) -> None:
    assert snap_compare(app, terminal_size=SIZE, run_before=open_run(MAIN_RUN))


def test_run_view_live(app: MonitorApp, snap_compare: SnapCompare) -> None:
    assert snap_compare(app, terminal_size=SIZE, run_before=open_run(LIVE_RUN))


def test_step_details(app: MonitorApp, snap_compare: SnapCompare) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await open_run(MAIN_RUN)(pilot)
        await pilot.press("end", "enter")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_help_screen(app: MonitorApp, snap_compare: SnapCompare) -> None:
    assert snap_compare(app, terminal_size=SIZE, press=["question_mark"])


def test_problem_screen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, snap_compare: SnapCompare
) -> None:
    monkeypatch.chdir(tmp_path)
    app = MonitorApp(Path("missing.db"), clock=lambda: NOW)
    assert snap_compare(app, terminal_size=(100, 20))
