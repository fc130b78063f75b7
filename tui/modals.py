"""Small screens over the views: help, the abort confirmation, the tier prompt, and the
message shown when the database cannot be read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Header, Input, Static

from .data import StoreProblem

HelpSection = tuple[str, Sequence[tuple[str, str]]]


class HelpScreen(ModalScreen[None]):
    """Every key of every view, listed from the views' own bindings."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "Close"),
    ]

    def __init__(self, sections: Sequence[HelpSection]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(Text("Keys", style="bold"), classes="modal-title")
            yield Static(self._table(), id="help-keys")
            yield Static(Text("Esc, ? or q closes this help.", style="dim"))

    def _table(self) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for title, keys in self.sections:
            table.add_row(Text(title, style="underline"), "")
            for key, description in keys:
                table.add_row(Text(key), Text(description))
            table.add_row("", "")
        return table


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; y or Enter says yes, n or Esc says no."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, yes: str) -> None:
        super().__init__()
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text(self.question), classes="modal-title")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", variant="error", id="yes")
                yield Button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class TierScreen(ModalScreen[int | None]):
    """Asks which tier the next model step of a run should use."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, run_id: str, tiers_seen: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.tiers_seen = tiers_seen

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(
                Text(f"Force a tier for the next model step of run {self.run_id}"),
                classes="modal-title",
            )
            seen = (
                f"steps per tier so far: {self.tiers_seen}"
                if self.tiers_seen
                else "no model steps yet"
            )
            yield Static(Text(f"0 is the cheapest tier; {seen}.", style="dim"))
            yield Input(placeholder="tier number", type="integer", id="tier")
            yield Static(Text("Enter sends it, Esc cancels.", style="dim"))

    def on_mount(self) -> None:
        self.query_one("#tier", Input).focus()

    @on(Input.Submitted, "#tier")
    def _submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if not value.isdigit():
            self.notify("type a tier number: 0, 1, 2 …", severity="warning")
            return
        self.dismiss(int(value))

    def action_cancel(self) -> None:
        self.dismiss(None)


class ProblemScreen(Screen[None]):
    """Why the run database cannot be shown, and what to do about it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "app.quit", "Quit"),
        Binding("r", "app.reconnect", "Try again"),
    ]

    def __init__(self, problem: StoreProblem) -> None:
        super().__init__()
        self.problem = problem

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="problem"):
            yield Static(Text(self.problem.title), classes="modal-title", id="problem-title")
            yield Static(Text(self.problem.detail), id="problem-detail")
            yield Static(Text(self.problem.hint), id="problem-hint")
        yield Footer()
