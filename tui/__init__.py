"""The Textual monitor: watch and steer agent runs live (``agentkit monitor``).

    from agentkit.tui import run_monitor
    run_monitor(Path("runs.db"))   # returns the exit status

It reads the same SQLite run store the runtime writes, so it follows runs of other
processes live and steers them (pause, resume, abort, force a tier) through the store.
"""

from __future__ import annotations

from .app import MonitorApp, run_monitor

__all__ = ["MonitorApp", "run_monitor"]
