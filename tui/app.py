"""``MonitorApp``: the Textual app behind ``agentkit monitor``.

The app owns the store handle and the poll timer, navigates between the views, and
turns control requests into ``RunStore.send_control`` calls (asking first where a
mistake would hurt). The views only show what ``Monitor`` reads.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen, Screen

from agentkit import StoreError

from .data import Clock, Monitor, StoreProblem, open_store, tier_mix
from .messages import ControlRequested, OpenRun, OpenStep, StoreChanged
from .modals import ConfirmScreen, HelpScreen, HelpSection, ProblemScreen, TierScreen
from .screens import RunScreen, RunsScreen, StepScreen
from .widgets import RunsTable, StepsTable, _FittedTable

_KEY_NAMES = {"slash": "/", "question_mark": "?", "escape": "esc"}


class MonitorApp(App[int]):
    """Watch and steer agent runs in a run store, live.

    ``clock`` gives the time used for the elapsed time of runs still going (tests pin
    it); ``poll_interval`` is how often the store is asked whether anything changed.
    """

    CSS_PATH = "monitor.tcss"
    TITLE = "agentkit monitor"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", tooltip="this list of keys"),
        Binding("q", "quit", "Quit", tooltip="leave the monitor (ctrl+q works too)"),
    ]

    def __init__(
        self, db_path: Path | None = None, *, clock: Clock = time.time, poll_interval: float = 0.5
    ) -> None:
        super().__init__()
        self.db_path = db_path
        self.clock = clock
        self.poll_interval = poll_interval
        self.monitor: Monitor | None = None
        self.problem: StoreProblem | None = None
        self._poll_error: str | None = None

    def on_mount(self) -> None:
        self.action_reconnect()
        self.set_interval(self.poll_interval, self.poll)

    def on_unmount(self) -> None:
        if self.monitor is not None:
            self.monitor.close()

    # -- the store ---------------------------------------------------------------------

    def action_reconnect(self) -> None:
        """Open the database; show why not when it cannot be read."""
        opened = open_store(self.db_path)
        on_problem = isinstance(self.screen, ProblemScreen)
        if isinstance(opened, StoreProblem):
            self.problem = opened
            screen: Screen[None] = ProblemScreen(opened)
            if on_problem:
                self.notify(opened.detail, title="still cannot read the database", severity="error")
        else:
            if self.monitor is not None:
                self.monitor.close()
            self.monitor = Monitor(opened, self.clock)
            self.problem = None
            screen = RunsScreen(self.monitor)
        if on_problem:
            self.switch_screen(screen)
        else:
            self.push_screen(screen)

    def poll(self) -> None:
        """Tell the visible views to re-read when another process wrote to the store."""
        if self.monitor is None:
            return
        try:
            changed = self.monitor.poll()
        except StoreError as exc:
            if str(exc) != self._poll_error:
                self._poll_error = str(exc)
                self.notify(str(exc), title="run database", severity="error")
            return
        self._poll_error = None
        if changed:
            self._refresh_views()

    def _refresh_views(self) -> None:
        for screen in reversed(self.screen_stack):
            screen.post_message(StoreChanged())
            if not isinstance(screen, ModalScreen):
                break

    # -- navigation --------------------------------------------------------------------

    def on_open_run(self, message: OpenRun) -> None:
        if self.monitor is not None:
            self.push_screen(RunScreen(self.monitor, message.run_id))

    def on_open_step(self, message: OpenStep) -> None:
        if self.monitor is not None:
            self.push_screen(StepScreen(self.monitor, message.run_id, message.idx))

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(help_sections()))

    async def action_quit(self) -> None:
        # Leaving while the database could not be read is a failure, as in the CLI.
        code = 2 if self.problem is not None else 0
        self.exit(code, return_code=code)

    # -- controls ----------------------------------------------------------------------

    def on_control_requested(self, message: ControlRequested) -> None:
        monitor = self.monitor
        if monitor is None:
            return
        run_id, command = message.run_id, message.command
        try:
            refusal = monitor.refusal(run_id, command)
            tiers = tier_mix(monitor.store.get_run(run_id).tiers)
        except StoreError as exc:
            self.notify(str(exc), severity="error")
            return
        if refusal is not None:
            self.notify(refusal, title="control refused", severity="warning")
        elif command == "abort":
            question = (
                f"Abort run {run_id}? It stops at its next step boundary and cannot be resumed."
            )

            def confirmed(yes: bool | None) -> None:
                if yes:
                    self._send(run_id, "abort")

            self.push_screen(ConfirmScreen(question, "Abort"), confirmed)
        elif command == "force_tier":

            def chosen(tier: int | None) -> None:
                if tier is not None:
                    self._send(run_id, "force_tier", str(tier))

            self.push_screen(TierScreen(run_id, tiers), chosen)
        else:
            self._send(run_id, command)

    def _send(self, run_id: str, command: str, argument: str | None = None) -> None:
        if self.monitor is None:
            return
        try:
            result = self.monitor.control(run_id, command, argument)
        except StoreError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(
            result.message,
            severity="information" if result.sent else "warning",
            title="control sent" if result.sent else "control refused",
        )
        # Our own writes do not move data_version; refresh so the queued control shows.
        self._refresh_views()


def _key_label(key: str) -> str:
    return " / ".join(_KEY_NAMES.get(k, k) for k in key.split(","))


def _keys(bindings: Sequence[BindingType]) -> list[tuple[str, str]]:
    return [
        (_key_label(b.key), b.tooltip or b.description) for b in bindings if isinstance(b, Binding)
    ]


def help_sections() -> list[HelpSection]:
    """Every key, read from the views' bindings so the list cannot drift from them."""
    return [
        ("Everywhere", _keys(MonitorApp.BINDINGS)),
        (
            "Runs view",
            [
                ("↑ ↓ pgup pgdn", "move between runs"),
                *_keys(_FittedTable.BINDINGS),
                *_keys(RunsTable.BINDINGS),
                ("click a header", "sort by that column; again flips the order"),
                *_keys(RunsScreen.BINDINGS),
            ],
        ),
        (
            "Run view",
            [
                ("↑ ↓ pgup pgdn", "move between steps"),
                *_keys(_FittedTable.BINDINGS),
                *_keys(StepsTable.BINDINGS),
                *_keys(RunScreen.BINDINGS),
            ],
        ),
        ("Step details", [("↑ ↓ pgup pgdn", "scroll"), *_keys(StepScreen.BINDINGS)]),
        ("Abort confirmation", _keys(ConfirmScreen.BINDINGS)),
        (
            "Force tier prompt",
            [("0-9, enter", "type the tier, send it"), *_keys(TierScreen.BINDINGS)],
        ),
        ("Database problem", _keys(ProblemScreen.BINDINGS)),
    ]


def run_monitor(db_path: Path | None = None) -> int:
    """Run the monitor on ``db_path`` (default: the user's run store); the exit status."""
    result = MonitorApp(db_path).run()
    return result if result is not None else 0
