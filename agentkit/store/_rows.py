"""The rows a run store keeps, as plain frozen data shared by every store backend."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import StoreError
from ..events import Event

__all__ = [
    "CONTROL_COMMANDS",
    "URL_SCHEMES",
    "Batch",
    "Control",
    "RunRow",
    "StepRow",
    "ToolResult",
    "control_problem",
    "default_db_path",
    "default_store_spec",
    "is_store_url",
]

CONTROL_COMMANDS = frozenset({"pause", "resume", "abort", "force_tier"})


def control_problem(command: str, argument: str | None) -> str | None:
    """Why a control cannot be sent as given, or None when it can."""
    if command not in CONTROL_COMMANDS:
        return f"unknown control {command!r}; use one of {', '.join(sorted(CONTROL_COMMANDS))}"
    if command == "force_tier" and (argument is None or not argument.isdigit()):
        return "force_tier needs a tier number (0 is the cheapest), for example: force_tier 2"
    return None


URL_SCHEMES = ("postgresql://", "postgres://")
"""How a store spec names a PostgreSQL database instead of a SQLite file."""


def is_store_url(spec: str | os.PathLike[str]) -> bool:
    """Whether ``spec`` is a PostgreSQL URL (``postgresql://...``) rather than a path."""
    return isinstance(spec, str) and spec.strip().lower().startswith(URL_SCHEMES)


def default_store_spec() -> str | Path:
    """``$AGENTKIT_DB`` (a path or a ``postgresql://`` URL), else the default SQLite file
    ``$XDG_DATA_HOME/agentkit/runs.db`` (~/.local/share)."""
    env = os.environ.get("AGENTKIT_DB")
    if env and is_store_url(env):
        return env.strip()
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "agentkit" / "runs.db"


def default_db_path() -> Path:
    """The default SQLite file (see ``default_store_spec``); StoreError where
    ``$AGENTKIT_DB`` names a PostgreSQL database, which has no path."""
    spec = default_store_spec()
    if isinstance(spec, str):
        raise StoreError(
            "AGENTKIT_DB names a PostgreSQL run store, not a file; open it with "
            "agentkit.store.open_store() (or pass a path)"
        )
    return spec


@dataclass(frozen=True)
class RunRow:
    """One run as the store sees it, with running totals."""

    id: str
    name: str
    task: str
    status: str
    created_at: float
    updated_at: float
    finished_at: float | None
    answer: str | None
    error: str | None
    current_node: str | None
    steps: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    model_seconds: float
    compute: float
    tiers: dict[str, int]
    escalations: int
    alerts: int
    graph: dict[str, Any]
    config: dict[str, Any]
    totals: dict[str, Any] = field(default_factory=dict)
    """The runtime's totals as of the last step (model steps, tool calls, tiers by name, ...)."""

    @property
    def elapsed(self) -> float:
        return (self.finished_at or time.time()) - self.created_at


@dataclass(frozen=True)
class StepRow:
    """One completed step."""

    run_id: str
    idx: int
    node: str
    kind: str
    started_at: float
    finished_at: float
    state_json: str
    model: str | None = None
    tier: int | None = None
    prompt_tokens: int = 0
    cached_tokens: int = 0
    evaluated_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    compute: float = 0.0
    content: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    next_node: str | None = None


@dataclass(frozen=True)
class ToolResult:
    """A finished tool call, as ``tool_call_finished`` records it."""

    run_id: str
    call_id: str
    result: str
    is_error: bool
    seconds: float


@dataclass
class Batch:
    """Writes that ride in the transaction of another write, applied in this order."""

    results: list[ToolResult] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.results or self.events)


@dataclass(frozen=True)
class Control:
    id: int
    run_id: str
    command: str
    argument: str | None
