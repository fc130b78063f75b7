"""Typed messages between the monitor's screens and the app.

Screens only display and ask; the app navigates, talks to the store and reports back.
"""

from __future__ import annotations

from textual.message import Message


class StoreChanged(Message):
    """Another process committed to the run store; views should re-read what they show."""

    def can_replace(self, message: Message) -> bool:
        # One pending refresh is enough however many commits came in meanwhile.
        return isinstance(message, StoreChanged)


class OpenRun(Message):
    """Show the run view of a run."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id


class OpenStep(Message):
    """Show every detail of one step of a run."""

    def __init__(self, run_id: str, idx: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.idx = idx


class ControlRequested(Message):
    """The person asked to steer a run: pause, resume, abort or force_tier."""

    def __init__(self, run_id: str, command: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.command = command
