"""The Textual monitor, driven with Pilot: opening runs, following a live one, the
controls reaching the store, filter and sort, help, and databases it cannot read."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fixtures.recorded_run import LIVE_RUN, MAIN_RUN, NOW, PAUSED_RUN, load_recorded
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from agentkit.events import DetectorStrike, StepStarted, TierChosen
from agentkit.models import Usage
from agentkit.runtime import RunTotals, StepRecord
from agentkit.store import Batch, RunStore, StepRow
from agentkit.tui import MonitorApp
from agentkit.tui.app import help_sections
from agentkit.tui.charts import GraphStyles, TierChart, render_graph
from agentkit.tui.data import (
    Monitor,
    format_count,
    format_elapsed,
    select_runs,
    summarize,
    tier_mix,
)
from agentkit.tui.modals import ConfirmScreen, HelpScreen, ProblemScreen, TierScreen
from agentkit.tui.screens import RunScreen, RunsScreen, StepScreen
from agentkit.tui.widgets import RunsTable, StepsTable

SIZE = (140, 40)
GRAPH = {
    "name": "agent",
    "entry": "model",
    "nodes": {"model": "model", "tools": "tool"},
    "edges": [["model", "tools"], ["model", "__end__"], ["tools", "model"]],
}


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    return load_recorded(tmp_path / "recorded.db")


def app_on(db: Path, **kw: Any) -> MonitorApp:
    return MonitorApp(db, clock=lambda: NOW, poll_interval=0.05, **kw)


async def wait_for(
    pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def cell_texts(table: DataTable[Any], column: str) -> list[str]:
    return [str(table.get_cell(row, column)) for row in table.rows]


def rendered(app: MonitorApp, selector: str) -> str:
    """The visible text of a widget, as a person would read it."""
    widget = app.screen.query_one(selector)
    return "\n".join(strip.text for strip in widget.render_lines(widget.region.reset_offset))


async def open_run(pilot: Pilot[Any], run_id: str) -> RunScreen:
    app = pilot.app
    table = app.screen.query_one(RunsTable)
    table.move_cursor(row=table.get_row_index(run_id))
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), what="the run view")
    screen = app.screen
    assert isinstance(screen, RunScreen) and screen.run_id == run_id
    return screen


_totals: dict[str, RunTotals] = {}


def save(store: RunStore, row: StepRow) -> None:
    """Save a step with the totals the runtime would have counted for it."""
    totals = _totals.setdefault(f"{store.path}:{row.run_id}", RunTotals())
    usage = Usage(
        prompt_tokens=row.prompt_tokens,
        cached_tokens=row.cached_tokens,
        evaluated_tokens=row.evaluated_tokens,
        completion_tokens=row.completion_tokens,
        seconds=row.seconds,
    )
    kind = row.kind
    totals.add(
        StepRecord(
            state=None,
            kind=kind,
            model=row.model,
            tier=row.tier,
            usage=usage,
            tool_calls=row.tool_calls,
            compute=row.compute,
        ),
        row.idx,
    )
    store.save_step(row, totals.to_json())


def step(
    run_id: str,
    idx: int,
    *,
    node: str = "model",
    tier: int | None = 0,
    calls: list[dict[str, Any]] | None = None,
    content: str = "",
) -> StepRow:
    kind = "model" if node == "model" else "tool"
    return StepRow(
        run_id=run_id,
        idx=idx,
        node=node,
        kind=kind,
        started_at=idx,
        finished_at=idx + 0.5,
        state_json="{}",
        model="small" if tier is not None else None,
        tier=tier,
        prompt_tokens=100,
        cached_tokens=60,
        evaluated_tokens=40,
        completion_tokens=20,
        seconds=0.5,
        content=content,
        tool_calls=calls or [],
        next_node="tools" if node == "model" else "model",
    )


# -- the runs view --------------------------------------------------------------------


async def test_runs_view_lists_every_run_and_tells_statuses_apart(recorded: Path) -> None:
    app = app_on(recorded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.screen.query_one(RunsTable)
        assert table.row_count == 8
        statuses = cell_texts(table, "status")
        assert statuses[0] == "▶ running"  # newest first
        for word, icon in [
            ("running", "▶"),
            ("paused", "‖"),
            ("succeeded", "✓"),
            ("failed", "✗"),
            ("stopped", "■"),
            ("aborted", "⊘"),
            ("budget_exhausted", "◷"),
        ]:
            assert f"{icon} {word}" in statuses
        styles = {
            str(table.get_cell(r, "status")): table.get_cell(r, "status").style for r in table.rows
        }
        assert len({str(s) for s in styles.values()}) >= 6  # a colour per status
        main = table.get_row(MAIN_RUN)
        assert [str(c) for c in main[4:10]] == ["14.5s", "11", "1468", "0:5 1:1", "1", "2"]


async def test_filter_by_text_and_status(recorded: Path) -> None:
    app = app_on(recorded)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(RunsTable)
        await pilot.press("slash", *"trip")
        assert app.focused is app.screen.query_one("#filter", Input)
        assert table.row_count == 3
        await pilot.press(*" paused")
        assert [str(k.value) for k in table.rows] == [PAUSED_RUN]
        await pilot.press("enter")  # back to the list, filter kept
        assert table.has_focus and table.row_count == 1
        await pilot.press("escape")
        assert table.row_count == 8
        await pilot.press("slash", *"no such thing")
        assert table.row_count == 0
        assert "No run matches" in rendered(app, "#empty")
    # typing "p", "r", "a" and "t" into the filter steered nothing
    store = RunStore(recorded)
    assert store.pending_controls(LIVE_RUN) == store.pending_controls(PAUSED_RUN) == []
    store.close()


async def test_sort_by_keys_and_header_click(recorded: Path) -> None:
    app = app_on(recorded)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        table = screen.query_one(RunsTable)
        await pilot.press("o")  # oldest first
        assert str(next(iter(table.rows)).value) == MAIN_RUN
        await pilot.press("s")  # next column: name
        assert screen.sort_column == "name"
        names = cell_texts(table, "name")
        assert names == sorted(names)
        await pilot.press("o")
        assert cell_texts(table, "name") == sorted(names, reverse=True)
        assert "name ▼" in [str(c.label) for c in table.columns.values()]
        # clicking the "steps" header sorts by steps; clicking again flips the order
        steps_x = sum(c.get_render_width(table) for c in list(table.columns.values())[:5])
        await pilot.click(RunsTable, offset=(steps_x + 2, 0))
        assert screen.sort_column == "steps"
        steps = [int(s) for s in cell_texts(table, "steps")]
        first = steps
        await pilot.click(RunsTable, offset=(steps_x + 2, 0))
        steps = [int(s) for s in cell_texts(table, "steps")]
        assert sorted(first) in (first, first[::-1]) and steps == first[::-1]


async def test_runs_view_polls_cheaply(recorded: Path) -> None:
    app = app_on(recorded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        monitor = app.monitor
        assert monitor is not None
        calls: list[int] = []
        original = monitor.runs

        def counting(limit: int = 500) -> Any:
            calls.append(1)
            return original(limit)

        monitor.runs = counting  # type: ignore[method-assign]
        await pilot.pause(0.5)  # ten polls, nothing written
        assert calls == []
        writer = RunStore(recorded)
        writer.create_run("new000000001", name="late", task="arrives later", graph=GRAPH)
        await wait_for(pilot, lambda: bool(calls), what="a re-read after a write")
        table = app.screen.query_one(RunsTable)
        await wait_for(pilot, lambda: table.row_count == 9, what="the new run")
        assert str(table.get_cell("new000000001", "status")) == "▶ running"
        writer.close()


def test_monitor_poll_only_reports_other_writers(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.db")
    monitor = Monitor(store)
    assert monitor.poll() is True  # first look
    assert monitor.poll() is False
    other = RunStore(tmp_path / "runs.db")
    other.create_run("r1", name="n", task="t")
    assert monitor.poll() is True
    assert monitor.poll() is False
    other.close()
    store.close()


# -- the run view ---------------------------------------------------------------------


async def test_open_run_shows_timeline_graph_charts_and_alerts(recorded: Path) -> None:
    app = app_on(recorded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run(pilot, MAIN_RUN)
        steps = screen.query_one(StepsTable)
        assert steps.row_count == 11
        assert [str(c) for c in steps.get_row("1")[:6]] == ["1", "model", "0", "0/19", "6", "0.45"]
        assert str(steps.get_cell("2", "action")).startswith("weather → Oslo: 11 °C")
        assert str(steps.get_cell("8", "alert")) == "⚠ same_result"
        assert str(steps.get_cell("11", "tier")) == "▲1"
        alerts = " ".join(rendered(app, "#alerts").split())  # as read, wrapping undone
        assert "escalation tier 0→1" in alerts and "low decision confidence" in alerts
        assert "strike same_result → nudge" in alerts
        graph = rendered(app, "#graph")
        assert "● END" in graph and "tools (tool)" in graph
        tiers = rendered(app, "#tiers")
        assert "6 model steps" in tiers
        assert "max 14.2 tok/s" in rendered(app, "#speed-label")
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


async def test_step_details_show_full_text_and_events(recorded: Path) -> None:
    app = app_on(recorded)
    async with app.run_test(size=SIZE) as pilot:
        await open_run(pilot, MAIN_RUN)
        await pilot.press("end", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, StepScreen), what="details")
        text = rendered(app, "#detail")
        # the whole answer, brackets and all (never read as markup)
        assert "Plan for Monday in Oslo [rain expected]:" in text
        assert "Take a rain jacket" in text
        assert "tier_chosen" in text and "escalate: low decision confidence" in text
        await pilot.press("b")  # the tool step before: arguments and result
        text = rendered(app, "#detail")
        assert "step 10" in text and '"query": "museum Oslo open Monday"' in text
        assert "1. Munch Museum" in text and "detector_strike" in text
        await pilot.press("escape")
        assert isinstance(app.screen, RunScreen)


async def test_follows_a_run_written_live(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    writer = RunStore(db)
    writer.create_run("live1", name="agent", task="watch me", graph=GRAPH)
    save(writer, step("live1", 1, calls=[{"id": "c1", "name": "add", "arguments": {"a": 1}}]))
    app = app_on(db)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run(pilot, "live1")
        table = screen.query_one(StepsTable)
        assert table.row_count == 1
        # a step starts: it shows as running before it is saved
        writer.write(Batch(events=[StepStarted(run_id="live1", step=2, node="tools", kind="tool")]))
        await wait_for(pilot, lambda: table.row_count == 2, what="the running step")
        assert str(table.get_cell("pending-2", "action")) == "running…"
        save(
            writer,
            step(
                "live1",
                2,
                node="tools",
                tier=None,
                calls=[
                    {
                        "id": "c1",
                        "name": "add",
                        "arguments": {"a": 1},
                        "result": "2",
                        "is_error": False,
                    }
                ],
            ),
        )
        writer.write(
            Batch(
                events=[
                    DetectorStrike(
                        run_id="live1",
                        step=2,
                        detector="same_call",
                        message="same call again",
                        window="",
                        steps=[1, 2],
                        response="nudge",
                    )
                ]
            )
        )
        await wait_for(
            pilot, lambda: "2" in {str(k.value) for k in table.rows}, what="the saved step"
        )
        assert table.row_count == 2 and str(table.get_cell("2", "action")) == "add → 2"
        await wait_for(pilot, lambda: "same_call" in rendered(app, "#alerts"))
        writer.write(
            Batch(
                events=[
                    TierChosen(
                        run_id="live1",
                        step=3,
                        node="model",
                        tier=1,
                        model="big",
                        reason="escalate: a strike",
                        previous_tier=0,
                    )
                ]
            )
        )
        save(writer, step("live1", 3, tier=1, content="done"))
        await wait_for(pilot, lambda: table.row_count == 3, what="step 3")
        assert table.cursor_row == 2  # following the newest step
        assert str(table.get_cell("3", "tier")) == "▲1"
        assert "● tools" in rendered(app, "#graph")
        writer.finish_run("live1", "succeeded", answer="done")
        await wait_for(pilot, lambda: "succeeded" in rendered(app, "#summary"))
        assert "controls are off" in rendered(app, "#summary")
    writer.close()


async def test_an_event_type_from_a_newer_agentkit_does_not_break_the_view(recorded: Path) -> None:
    with sqlite3.connect(recorded) as conn:
        conn.execute(
            "INSERT INTO events(run_id, step, ts, type, data_json) VALUES "
            "(?, 3, 0, 'from_the_future', ?)",
            (MAIN_RUN, json.dumps({"run_id": MAIN_RUN, "type": "from_the_future"})),
        )
    conn.close()
    app = app_on(recorded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_run(pilot, MAIN_RUN)
        assert screen.query_one(StepsTable).row_count == 11
        # the store skips the unknown event, so the view has nothing to warn about
        assert "written by a newer agentkit" not in rendered(app, "#summary")


# -- controls -------------------------------------------------------------------------


async def test_pause_resume_abort_and_force_tier_reach_the_store(recorded: Path) -> None:
    store = RunStore(recorded)
    app = app_on(recorded)
    async with app.run_test(size=SIZE) as pilot:
        await open_run(pilot, LIVE_RUN)

        def pending() -> list[tuple[str, str | None]]:
            return [(c.command, c.argument) for c in store.pending_controls(LIVE_RUN)]

        await pilot.press("p")
        assert pending() == [("pause", None)]
        await pilot.press("r")  # allowed: a pause is on its way
        assert pending() == [("pause", None), ("resume", None)]
        await wait_for(pilot, lambda: "queued: pause, resume" in rendered(app, "#summary"))

        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")  # changed my mind
        assert isinstance(app.screen, RunScreen) and len(pending()) == 2
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        assert pending()[-1] == ("abort", None)

        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, TierScreen))
        await pilot.press("x", "enter")  # not a number: the prompt stays
        assert isinstance(app.screen, TierScreen)
        await pilot.press("backspace", "1", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen))
        assert pending()[-1] == ("force_tier", "1")

        await pilot.press("t", "escape")  # cancelled: nothing sent
        assert len(pending()) == 4
    store.close()


async def test_controls_from_the_runs_view_act_on_the_highlighted_run(recorded: Path) -> None:
    store = RunStore(recorded)
    app = app_on(recorded)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(RunsTable)
        table.move_cursor(row=table.get_row_index(PAUSED_RUN))
        await pilot.press("p")  # already paused: refused
        assert store.pending_controls(PAUSED_RUN) == []
        await pilot.press("r")
        assert [c.command for c in store.pending_controls(PAUSED_RUN)] == ["resume"]
    store.close()


async def test_controls_are_refused_on_finished_runs(
    recorded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RunStore(recorded)
    app = app_on(recorded)
    notices: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        monkeypatch.setattr(app, "notify", lambda message, **kw: notices.append(message))
        await open_run(pilot, MAIN_RUN)
        for key in "prat":
            await pilot.press(key)
        assert isinstance(app.screen, RunScreen)  # no confirmation, no tier prompt
        assert store.pending_controls(MAIN_RUN) == []
        assert len(notices) == 4
        assert all("has finished (succeeded)" in n for n in notices)
    store.close()


CHILD = """
import sys
from agentkit.runtime._agent import Agent
from agentkit.runtime._tools import tool
from agentkit.testing import ScriptedModel, Turn, call, reply

@tool
def add(a: int, b: int) -> int:
    \"\"\"Add two integers.\"\"\"
    return a + b

# Slow enough that the monitor starts and pauses it long before it could finish.
turns = [Turn(call("add", a=i, b=1).respond, delay=1.5) for i in range(8)]
model = ScriptedModel([*turns, reply("done")])
result = Agent(model, tools=[add], store=sys.argv[1], name="slow").run("count", run_id="child")
sys.exit(result.exit_code)
"""


async def test_steers_a_run_in_another_process(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    store = RunStore(db)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 20
        while not any(r.id == "child" for r in store.list_runs()):
            assert child.poll() is None and time.monotonic() < deadline, "child never started"
            time.sleep(0.05)
        app = app_on(db)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.screen.query_one(RunsTable).row_count == 1)
            await open_run(pilot, "child")
            await pilot.press("p")
            await wait_for(
                pilot,
                lambda: "paused" in rendered(app, "#summary"),
                10,
                f"the child to pause: {rendered(app, '#summary')[:300]!r}",
            )
            held = store.get_run("child").steps
            await pilot.pause(0.8)
            assert store.get_run("child").steps == held  # really paused
            await pilot.press("r")
            await wait_for(
                pilot, lambda: "succeeded" in rendered(app, "#summary"), 40, "the child to finish"
            )
        assert child.wait(timeout=10) == 0
        applied = [
            getattr(e, "command", None)
            for _, e in store.events("child")
            if e.type == "control_applied"
        ]
        assert applied == ["pause", "resume"]
    finally:
        if child.poll() is None:
            child.kill()
        store.close()


# -- help -----------------------------------------------------------------------------


async def test_help_lists_every_key(recorded: Path) -> None:
    app = app_on(recorded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        listed = {key for _, keys in help_sections() for key, _ in keys}
        for key in [
            "/",
            "s",
            "o",
            "p",
            "r",
            "a",
            "t",
            "f",
            "n",
            "b",
            "enter",
            "?",
            "q",
            "esc / backspace",
            "y",
            "n / esc",
        ]:
            assert key in listed
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


# -- databases it cannot show ---------------------------------------------------------


async def problem_text(db: Path) -> tuple[str, int | None]:
    app = app_on(db)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ProblemScreen)
        text = "\n".join(rendered(app, f"#problem-{part}") for part in ("title", "detail", "hint"))
        await pilot.press("q")
    assert app.return_code == app.return_value
    return text, app.return_value


async def test_missing_database(tmp_path: Path) -> None:
    text, code = await problem_text(tmp_path / "nowhere.db")
    assert "No run database" in text and "--db PATH" in text and code == 2


async def test_missing_database_then_retry(tmp_path: Path) -> None:
    db = tmp_path / "later.db"
    app = app_on(db)
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, ProblemScreen)
        RunStore(db).close()
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        assert "No runs yet" in rendered(app, "#empty")


async def test_newer_schema(tmp_path: Path) -> None:
    db = tmp_path / "future.db"
    RunStore(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    conn.close()
    text, _ = await problem_text(db)
    assert "Newer database schema" in text and "schema 99" in text and "upgrade agentkit" in text


async def test_not_a_database(tmp_path: Path) -> None:
    db = tmp_path / "notes.db"
    db.write_text("these are my notes, not a database\n" * 50)
    text, _ = await problem_text(db)
    assert "Cannot read the run database" in text and "not a readable SQLite" in text


async def test_sqlite_file_of_another_program(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    text, _ = await problem_text(db)
    assert "not an agentkit run database" in text


async def test_empty_database(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    RunStore(db).close()
    app = app_on(db)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
        assert "No runs yet" in rendered(app, "#empty")
        await pilot.press("q")
    assert app.return_value == 0


# -- the data layer and charts --------------------------------------------------------


def test_formatting() -> None:
    assert format_elapsed(4.24) == "4.2s"
    assert format_elapsed(185) == "3m05s"
    assert format_elapsed(7620) == "2h07m"
    assert format_count(812) == "812" and format_count(12_400) == "12.4k"
    assert tier_mix({"1": 2, "0": 5, "10": 1}) == "0:5 1:2 10:1"


def test_select_runs_filters_every_word_and_sorts(recorded: Path) -> None:
    store = RunStore(recorded)
    runs = [summarize(r, NOW) for r in store.list_runs()]
    assert [r.id for r in select_runs(runs, "TRIP running", "started", True)] == [LIVE_RUN]
    assert len(select_runs(runs, "weather", "started", True)) == 5  # name or task
    assert len(select_runs(runs, "bergen", "started", True)) == 2
    by_steps = select_runs(runs, "", "steps", False)
    assert [r.steps for r in by_steps] == sorted(r.steps for r in runs)
    store.close()


def test_feed_reads_only_new_events(recorded: Path) -> None:
    store = RunStore(recorded)
    seen: list[int] = []
    original = store.events

    def spy(run_id: str, *, after: int = 0) -> Any:
        seen.append(after)
        return original(run_id, after=after)

    store.events = spy  # type: ignore[method-assign]
    monitor = Monitor(store, clock=lambda: NOW)
    first = monitor.feed(LIVE_RUN)
    last_id = first.events[-1][0]
    monitor.feed(LIVE_RUN)
    assert seen == [0, last_id]
    timeline = first.timeline()
    assert timeline.steps[-1].pending and timeline.steps[-1].escalated
    store.close()


def test_graph_and_tier_chart_text() -> None:
    plain = GraphStyles(
        current=_style("reverse"), entry=_style(""), kind=_style(""), edge=_style("")
    )
    text = render_graph(GRAPH, "tools", plain).plain
    assert text.splitlines() == [
        "  model (model) → tools, END  ← start",
        "● tools (tool)  → model",
        "  END",
    ]
    assert render_graph({}, None, plain).plain == "(no graph recorded)"
    chart = TierChart(
        [(0, False), (1, True), (0, False)], bar=_style(""), escalated=_style(""), axis=_style("")
    ).render(40)
    assert chart.plain.splitlines()[:2] == ["1 │    ██    ", "0 │ ██ ██ ██ "]
    many = TierChart(
        [(0, False)] * 100, bar=_style(""), escalated=_style(""), axis=_style("")
    ).render(20)
    assert "last 16 shown" in many.plain


def _style(text: str) -> Any:
    from rich.style import Style

    return Style.parse(text) if text else Style()


def test_recorded_fixture_is_what_the_tests_expect(recorded: Path) -> None:
    store = RunStore(recorded, create=False)
    statuses = {r.id: r.status for r in store.list_runs()}
    assert statuses[MAIN_RUN] == "succeeded" and statuses[LIVE_RUN] == "running"
    assert json.loads(json.dumps(store.get_run(MAIN_RUN).graph))["entry"] == "model"
    store.close()
