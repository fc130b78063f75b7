"""The monitor's three views: every run, one run, one step.

Screens display what ``Monitor`` reads and post messages for everything else (opening
a run, steering it); the app does the navigating and the writing.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Sparkline, Static

from agentkit import StoreError

from .data import Monitor, RunSummary, StepView, Timeline, overview, select_runs
from .messages import ControlRequested, OpenRun, OpenStep, StoreChanged
from .widgets import (
    AlertsPanel,
    GraphPanel,
    RunsTable,
    RunSummaryPanel,
    StepsTable,
    TierChartPanel,
    step_detail,
)

SORT_ORDER = ["started", "name", "status", "elapsed", "steps", "tokens", "escalations", "alerts"]

CONTROL_BINDINGS: list[BindingType] = [
    Binding("p", "control('pause')", "Pause", tooltip="pause the run at its next step boundary"),
    Binding("r", "control('resume')", "Resume", tooltip="resume a paused run"),
    Binding("a", "control('abort')", "Abort", tooltip="abort the run (asks first)"),
    Binding(
        "t",
        "control('force_tier')",
        "Force tier",
        tooltip="run the next model step on the tier you type",
    ),
]


class RunsScreen(Screen[None]):
    """Every run in the store, filterable and sortable; Enter opens one."""

    AUTO_FOCUS = "#runs"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "slash",
            "focus_filter",
            "Filter",
            tooltip="filter by name, status or any text (enter returns to the list)",
        ),
        Binding("escape", "clear_filter", "Clear filter", tooltip="clear the filter"),
        Binding("s", "next_sort", "Sort", tooltip="sort by the next column"),
        Binding("o", "flip_order", "Order", tooltip="flip the sort order"),
        *CONTROL_BINDINGS,
    ]

    sort_column: reactive[str] = reactive("started")
    sort_reverse: reactive[bool] = reactive(True)
    filter_text: reactive[str] = reactive("")

    def __init__(self, monitor: Monitor) -> None:
        super().__init__()
        self.monitor = monitor
        self._runs: list[RunSummary] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="filter by name, status or text  ( / )", id="filter")
        yield Static(id="overview")
        yield RunsTable(id="runs")
        yield Static(id="empty")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = str(self.monitor.path)
        self.set_interval(1.0, self._tick)

    def on_screen_resume(self) -> None:
        self.reload()

    def on_store_changed(self, _: StoreChanged) -> None:
        self.reload()

    def reload(self) -> None:
        """Re-read the runs and show them."""
        try:
            self._runs = self.monitor.runs()
        except StoreError as exc:
            self.notify(str(exc), severity="error", title="run database")
            return
        self._show()

    def _show(self) -> None:
        table = self.query_one(RunsTable)
        shown = select_runs(self._runs, self.filter_text, self.sort_column, self.sort_reverse)
        table.show(shown, self.monitor.clock(), self.sort_column, self.sort_reverse)
        line = overview(self._runs)
        panel = self.query_one("#overview", Static)
        panel.display = line is not None
        if line is not None:
            panel.update(Text(line))
        empty = self.query_one("#empty", Static)
        empty.display = not shown
        if not self._runs:
            empty.update(
                Text(
                    f"No runs yet in {self.monitor.path}.\nStart an agent with "
                    "this database; it shows up here as soon as it begins."
                )
            )
        elif not shown:
            empty.update(Text(f"No run matches “{self.filter_text}”. Esc clears the filter."))

    def _tick(self) -> None:
        # Clocks of live runs move without any write to the store.
        if self.is_current:
            self._show()

    def watch_filter_text(self) -> None:
        if self.is_mounted:
            self._show()

    def watch_sort_column(self) -> None:
        if self.is_mounted:
            self._show()

    def watch_sort_reverse(self) -> None:
        if self.is_mounted:
            self._show()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.query_one(RunsTable).focus()

    @on(DataTable.RowSelected, "#runs")
    def _open(self, event: DataTable.RowSelected) -> None:
        self.post_message(OpenRun(str(event.row_key.value)))

    @on(DataTable.HeaderSelected, "#runs")
    def _header(self, event: DataTable.HeaderSelected) -> None:
        column = str(event.column_key.value)
        if column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column = column

    def selected_run(self) -> str | None:
        """The id of the highlighted run, if any."""
        return self.query_one(RunsTable).cursor_key()

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_clear_filter(self) -> None:
        self.query_one("#filter", Input).value = ""
        self.query_one(RunsTable).focus()

    def action_next_sort(self) -> None:
        at = SORT_ORDER.index(self.sort_column) if self.sort_column in SORT_ORDER else -1
        self.sort_column = SORT_ORDER[(at + 1) % len(SORT_ORDER)]

    def action_flip_order(self) -> None:
        self.sort_reverse = not self.sort_reverse

    def action_control(self, command: str) -> None:
        run_id = self.selected_run()
        if run_id is None:
            self.notify("no run selected", severity="warning")
            return
        self.post_message(ControlRequested(run_id, command))


class RunScreen(Screen[None]):
    """One run: its step timeline, graph, tier chart, speed and alerts, updated live."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,backspace", "app.pop_screen", "Back", tooltip="back to the runs"),
        Binding(
            "f",
            "toggle_follow",
            "Follow",
            tooltip="keep the newest step selected as steps arrive (on/off)",
        ),
        *CONTROL_BINDINGS,
    ]

    AUTO_FOCUS = "#steps"
    follow: reactive[bool] = reactive(True)

    def __init__(self, monitor: Monitor, run_id: str) -> None:
        super().__init__()
        self.monitor = monitor
        self.run_id = run_id
        self.timeline: Timeline | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield RunSummaryPanel(id="summary")
        with Horizontal(id="body"):
            yield StepsTable(id="steps")
            with VerticalScroll(id="side"):
                yield Static("Graph", classes="panel-title")
                yield GraphPanel(id="graph")
                yield Static("Tier per model step", classes="panel-title")
                yield TierChartPanel(id="tiers")
                yield Static("Generated tokens per second", classes="panel-title")
                yield Sparkline([], id="speed")
                yield Static(id="speed-label")
                yield Static("Alerts, newest first", classes="panel-title")
                yield AlertsPanel(id="alerts")
        yield Footer()

    def on_screen_resume(self) -> None:
        self.reload()

    def on_store_changed(self, _: StoreChanged) -> None:
        self.reload()

    def reload(self) -> None:
        """Read what is new for this run and show it."""
        try:
            timeline = self.monitor.feed(self.run_id).timeline()
        except StoreError as exc:
            self.notify(str(exc), severity="error", title="run database")
            return
        self.timeline = timeline
        run = timeline.run
        self.sub_title = f"{run.name} · {run.id}"
        self.query_one(RunSummaryPanel).show(timeline)
        self.query_one(StepsTable).show(timeline.steps, self.follow and run.live)
        self.query_one(GraphPanel).show(timeline.graph, run.current_node)
        self.query_one(TierChartPanel).show(timeline.tier_series)
        speeds = timeline.speed_series
        self.query_one("#speed", Sparkline).data = speeds
        label = (
            "no model steps yet"
            if not speeds
            else (f"last {speeds[-1]:.1f}  min {min(speeds):.1f}  max {max(speeds):.1f} tok/s")
        )
        self.query_one("#speed-label", Static).update(Text(label))
        self.query_one(AlertsPanel).show(timeline.alerts)

    @on(DataTable.RowSelected, "#steps")
    def _open_step(self, event: DataTable.RowSelected) -> None:
        key = str(event.row_key.value)
        idx = int(key.removeprefix("pending-"))
        self.post_message(OpenStep(self.run_id, idx))

    def watch_follow(self, follow: bool) -> None:
        if self.is_mounted:
            self.notify("following new steps" if follow else "stopped following")
            if follow:
                table = self.query_one(StepsTable)
                table.move_cursor(row=table.row_count - 1, animate=False)

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow

    def action_control(self, command: str) -> None:
        self.post_message(ControlRequested(self.run_id, command))


class StepScreen(Screen[None]):
    """The full text of one step: reply, tool arguments and results, its events."""

    AUTO_FOCUS = "#detail-scroll"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,backspace", "app.pop_screen", "Back", tooltip="back to the run"),
        Binding("n", "move(1)", "Next step", tooltip="the next step"),
        Binding("b", "move(-1)", "Previous step", tooltip="the previous step"),
    ]

    def __init__(self, monitor: Monitor, run_id: str, idx: int) -> None:
        super().__init__()
        self.monitor = monitor
        self.run_id = run_id
        self.idx = idx
        self._steps: list[StepView] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="detail-scroll"):
            yield Static(id="detail")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()

    def on_store_changed(self, _: StoreChanged) -> None:
        self.reload()

    def reload(self) -> None:
        """Re-read the run (a running step may have finished) and show the step."""
        try:
            self._steps = self.monitor.feed(self.run_id).timeline().steps
        except StoreError as exc:
            self.notify(str(exc), severity="error", title="run database")
            return
        self._show()

    def _show(self) -> None:
        view = next((s for s in self._steps if s.idx == self.idx), None)
        self.sub_title = f"run {self.run_id} · step {self.idx}"
        detail = self.query_one("#detail", Static)
        if view is None:
            detail.update(Text(f"step {self.idx} is not recorded"))
            return
        label = self.get_component_rich_style("step-detail--label", partial=True)
        warn = self.get_component_rich_style("step-detail--warn", partial=True)
        detail.update(step_detail(view, label, warn))

    COMPONENT_CLASSES: ClassVar[set[str]] = {"step-detail--label", "step-detail--warn"}

    def action_move(self, delta: int) -> None:
        indexes = [s.idx for s in self._steps]
        if self.idx not in indexes:
            return
        at = indexes.index(self.idx) + delta
        if 0 <= at < len(indexes):
            self.idx = indexes[at]
            self._show()
            self.query_one("#detail-scroll", VerticalScroll).scroll_home(animate=False)
        else:
            self.notify("no more steps this way")
