"""The monitor's view of the run store: plain data, no widgets.

Everything the screens show is computed here from run store reads (a SQLite file or a
shared PostgreSQL database), so it can be tested without a terminal. The store is polled
cheaply: ``Monitor.poll`` asks for the store's ``data_version``, which moves whenever
another connection commits (SQLite's ``PRAGMA data_version``, a read of shared memory;
on PostgreSQL the count of LISTEN/NOTIFY notifications the server pushed, read without a
query), and the screens only re-query when it moved. A run's feed is incremental: new
events are read with ``events(after=last_id)`` and steps only when the run's step
counter grew.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agentkit import END, SchemaVersionError, StoreError
from agentkit.events import (
    FINISHED_STATUSES,
    AnswerRequested,
    BudgetWarning,
    ContextCondensed,
    ControlApplied,
    DetectorStrike,
    Event,
    FilterVerdict,
    RunFinished,
    StepRetried,
    StepStarted,
    TierChosen,
    ToolArgumentsRejected,
)
from agentkit.store import RunRow, StepRow, Store, control_problem, is_store_url
from agentkit.store import open_store as open_run_store

Clock = Callable[[], float]

END_NODE = END
LIVE_STATUSES = frozenset({"running", "paused"})

STATUS_ICONS: dict[str, str] = {
    "running": "▶",
    "paused": "‖",
    "succeeded": "✓",
    "failed": "✗",
    "stopped": "■",
    "aborted": "⊘",
    "budget_exhausted": "◷",
    "timed_out": "⌛",
    "interrupted": "↯",
}
"""One glyph per status, so statuses differ even without colour."""

# -- opening the store ---------------------------------------------------------------


@dataclass(frozen=True)
class StoreProblem:
    """Why the monitor cannot show a database, in words for the person at the terminal."""

    title: str
    detail: str
    hint: str


def open_store(path: Path | str | None) -> Store | StoreProblem:
    """Open an existing run database read-write (controls are writes), never create one.

    ``path`` is a SQLite file or a ``postgresql://`` URL; None is ``$AGENTKIT_DB`` or the
    default file.
    """
    shown = "the default run database"
    if path is not None:
        shown = "a PostgreSQL database" if is_store_url(path) else str(path)
    try:
        if path is None or is_store_url(path):
            return open_run_store(path, create=False)
        return open_run_store(Path(path), create=False)
    except SchemaVersionError as exc:
        return StoreProblem(
            "Newer database schema", str(exc), "The monitor leaves the file untouched. Quit with q."
        )
    except StoreError as exc:
        text = str(exc)
        if text.startswith("no run database"):
            return StoreProblem(
                "No run database",
                text,
                "Press r to look again once an agent has started, or quit "
                "and run: agentkit monitor --db PATH",
            )
        return StoreProblem(
            "Cannot read the run database",
            text,
            f"Point the monitor at the database your agents write: "
            f"agentkit monitor --db PATH (tried {shown}).",
        )


# -- formatting ----------------------------------------------------------------------


def format_elapsed(seconds: float) -> str:
    """Short wall-clock duration: ``4.2s``, ``3m05s``, ``2h07m``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        minutes, rest = divmod(int(seconds), 60)
        return f"{minutes}m{rest:02d}s"
    hours, rest = divmod(int(seconds) // 60, 60)
    return f"{hours}h{rest:02d}m"


def format_count(n: int) -> str:
    """Token counts as people read them: ``812``, ``12.4k``, ``3.1M``."""
    if n < 10_000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.1f}k"
    return f"{n / 1_000_000:.1f}M"


def tier_mix(tiers: dict[str, int]) -> str:
    """Steps per tier, cheapest first: ``0:5 1:2``."""
    return " ".join(f"{t}:{n}" for t, n in sorted(tiers.items(), key=lambda kv: int(kv[0])))


def one_line(text: str, limit: int) -> str:
    """Whitespace folded to single spaces, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: max(0, limit - 1)] + "…"


def format_arguments(arguments: dict[str, Any]) -> str:
    """``city='Oslo', days=3``: short, Python-like, for one-line previews."""
    return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in arguments.items())


def status_label(status: str) -> str:
    """Icon and word: ``✓ succeeded``."""
    return f"{STATUS_ICONS.get(status, '?')} {status}"


# -- the runs list -------------------------------------------------------------------


@dataclass(frozen=True)
class RunSummary:
    """One row of the runs view."""

    id: str
    name: str
    task: str
    status: str
    created_at: float
    elapsed: float
    steps: int
    tokens: int
    cached_tokens: int
    tiers: str
    escalations: int
    alerts: int
    current_node: str | None
    answer: str | None
    error: str | None
    prompt_tokens: int = 0

    @property
    def live(self) -> bool:
        """Still going: running or paused."""
        return self.status in LIVE_STATUSES

    def matches(self, words: Sequence[str]) -> bool:
        """Every word (lower case) occurs in the id, name, status, task, answer or error."""
        haystack = " ".join(
            [self.id, self.name, self.status, self.task, self.answer or "", self.error or ""]
        ).lower()
        return all(w in haystack for w in words)


def summarize(run: RunRow, now: float) -> RunSummary:
    """The runs-view row of a run; ``now`` is the clock for runs still going."""
    end = (
        run.finished_at
        if run.finished_at is not None
        else (now if run.status in LIVE_STATUSES else run.updated_at)
    )
    return RunSummary(
        id=run.id,
        name=run.name,
        task=run.task,
        status=run.status,
        created_at=run.created_at,
        elapsed=end - run.created_at,
        steps=run.steps,
        tokens=run.prompt_tokens + run.completion_tokens,
        cached_tokens=run.cached_tokens,
        tiers=tier_mix(run.tiers),
        escalations=run.escalations,
        alerts=run.alerts,
        current_node=run.current_node,
        answer=run.answer,
        error=run.error,
        prompt_tokens=run.prompt_tokens,
    )


def overview(runs: Sequence[RunSummary]) -> str | None:
    """One line on runs that share the models at once (a batch, ``run_many``): how many
    are going, how the others ended, and how much of their prompts came from the KV
    cache. None unless at least two runs are live."""
    live = [r for r in runs if r.live]
    if len(live) < 2:
        return None
    ended: dict[str, int] = {}
    for r in runs:
        if not r.live:
            ended[r.status] = ended.get(r.status, 0) + 1
    parts = [f"{len(live)} runs live at once"]
    if ended:
        counts = " ".join(f"{STATUS_ICONS.get(k, '?')}{n}" for k, n in sorted(ended.items()))
        parts.append(f"{sum(ended.values())} ended ({counts})")
    prompt = sum(r.prompt_tokens for r in live)
    if prompt:
        reused = sum(r.cached_tokens for r in live) / prompt
        parts.append(f"prompt tokens of the live runs {reused:.0%} reused from the KV cache")
    return " · ".join(parts)


SORT_KEYS: dict[str, Callable[[RunSummary], Any]] = {
    "started": lambda r: r.created_at,
    "run": lambda r: r.id,
    "name": lambda r: (r.name.lower(), r.created_at),
    "status": lambda r: (r.status, r.created_at),
    "elapsed": lambda r: r.elapsed,
    "steps": lambda r: r.steps,
    "tokens": lambda r: r.tokens,
    "tiers": lambda r: r.tiers,
    "escalations": lambda r: r.escalations,
    "alerts": lambda r: r.alerts,
    "task": lambda r: r.task.lower(),
}
"""Column key of the runs table -> sort key of a RunSummary."""


def select_runs(
    runs: Iterable[RunSummary], query: str, sort: str, reverse: bool
) -> list[RunSummary]:
    """Filter by every word of ``query`` and sort by column ``sort``."""
    words = query.lower().split()
    chosen = [r for r in runs if r.matches(words)]
    return sorted(chosen, key=SORT_KEYS.get(sort, SORT_KEYS["started"]), reverse=reverse)


# -- one run: steps, events and what they mean ----------------------------------------


@dataclass(frozen=True)
class Alert:
    """Something in a run worth a look: an escalation, a detector strike, a control."""

    step: int | None
    kind: str
    """escalation, strike, filter, rejected, retry, control, budget, condensed, failure"""
    title: str
    detail: str = ""


@dataclass(frozen=True)
class StepView:
    """One line of the step timeline, with the events recorded for that step."""

    idx: int
    node: str
    kind: str
    tier: int | None
    model: str | None
    reused: int
    evaluated: int
    completion: int
    seconds: float
    action: str
    """The tool calls made, their results, or the reply, on one line."""
    is_error: bool
    escalated: bool
    strikes: tuple[str, ...]
    events: tuple[Event, ...]
    row: StepRow | None
    """The stored step; None while the step is still running."""

    @property
    def pending(self) -> bool:
        """The step is running now and has no stored row yet."""
        return self.row is None

    @property
    def tokens_per_second(self) -> float | None:
        """Generation speed of a finished model step."""
        if self.kind != "model" or self.seconds <= 0 or self.completion <= 0:
            return None
        return self.completion / self.seconds


@dataclass(frozen=True)
class Timeline:
    """Everything the run view shows, computed from one feed."""

    run: RunSummary
    graph: dict[str, Any]
    steps: list[StepView]
    alerts: list[Alert]
    pending_controls: list[str] = field(default_factory=list)
    """Controls sent to the run that it has not applied yet (``pause``, ``force_tier 1``)."""
    warning: str | None = None

    @property
    def tier_series(self) -> list[tuple[int, bool]]:
        """(tier, escalated) of every model step, in order."""
        return [(s.tier, s.escalated) for s in self.steps if s.tier is not None]

    @property
    def speed_series(self) -> list[float]:
        """Generated tokens per second of every finished model step."""
        return [v for s in self.steps if (v := s.tokens_per_second) is not None]


def describe_event(event: Event) -> Alert | None:
    """The alert an event raises, if any (most events are routine)."""
    step = event.step
    if isinstance(event, TierChosen) and event.escalated:
        return Alert(
            step,
            "escalation",
            f"tier {event.previous_tier}→{event.tier}",
            f"{event.model}: {event.reason}",
        )
    if isinstance(event, DetectorStrike):
        return Alert(step, "strike", f"{event.detector} → {event.response}", event.message)
    if isinstance(event, AnswerRequested):
        dropped = ", ".join(str(c.get("name")) for c in event.tool_calls)
        title = "tools off for one turn" + (f" (not run: {dropped})" if dropped else "")
        return Alert(step, "answer now", title, event.reason)
    if isinstance(event, FilterVerdict):
        what = event.target.replace("_", " ") + (f" of {event.tool}" if event.tool else "")
        error = f"filter error: {event.error}" if event.error else ""
        detail = "; ".join(x for x in (event.reason, event.outcome, error) if x)
        return Alert(step, "filter", f"{event.filter} → {event.verdict} {what}", detail)
    if isinstance(event, ToolArgumentsRejected):
        return Alert(
            step, "rejected", f"{event.name} arguments (try {event.attempt})", event.feedback
        )
    if isinstance(event, StepRetried):
        return Alert(step, "retry", f"{event.node} (attempt {event.attempt})", event.error)
    if isinstance(event, ControlApplied):
        arg = f" {event.argument}" if event.argument else ""
        return Alert(step, "control", f"operator: {event.command}{arg}")
    if isinstance(event, BudgetWarning):
        return Alert(step, "budget", f"{event.steps_left} steps left")
    if isinstance(event, ContextCondensed):
        return Alert(step, "condensed", f"{event.tokens_before}→{event.tokens_after} tokens")
    if isinstance(event, RunFinished) and (event.diagnosis or event.error):
        return Alert(step, "failure", event.status, event.diagnosis or event.error or "")
    return None


def describe_action(row: StepRow, limit: int = 240) -> tuple[str, bool]:
    """One-line summary of what a step did, and whether it ended in an error."""
    if row.kind == "tool":
        parts = []
        failed = False
        for call in row.tool_calls:
            mark = "✗ " if call.get("is_error") else ""
            failed = failed or bool(call.get("is_error"))
            result = one_line(str(call.get("result", "")), limit)
            parts.append(f"{mark}{call.get('name')} → {result}")
        return one_line("; ".join(parts) or "(no calls)", limit), failed
    if row.tool_calls:
        calls = "; ".join(
            f"{c.get('name')}({format_arguments(c.get('arguments') or {})})" for c in row.tool_calls
        )
        return one_line("call " + calls, limit), False
    if row.kind == "model":
        return one_line(
            f"“{row.content.strip()}”" if row.content.strip() else "(empty reply)", limit
        ), not row.content.strip()
    return one_line(row.content or f"({row.kind})", limit), False


class RunFeed:
    """The steps and events of one run, read incrementally."""

    def __init__(self, store: Store, run_id: str, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self.run: RunRow = store.get_run(run_id)
        self.steps: list[StepRow] = []
        self.events: list[tuple[int, Event]] = []
        self.warning: str | None = None
        self.pending_controls: list[str] = []
        self._loaded = False

    @property
    def run_id(self) -> str:
        """The full id of the run."""
        return self.run.id

    def refresh(self) -> None:
        """Read what is new since the last call: the run row, new events, new steps."""
        self.run = self._store.get_run(self.run.id)
        after = self.events[-1][0] if self.events else 0
        try:
            self.events.extend(self._store.events(self.run.id, after=after))
        except ValidationError:
            # A newer agentkit wrote an event type this one does not know.
            self.warning = (
                "some events could not be read (written by a newer agentkit?); "
                "steps are still shown"
            )
        last = self.steps[-1].idx if self.steps else 0
        if not self._loaded or self.run.steps != last:
            self.steps = self._store.steps(self.run.id)
            self._loaded = True
        self.pending_controls = (
            [
                c.command + (f" {c.argument}" if c.argument else "")
                for c in self._store.pending_controls(self.run.id)
            ]
            if self.run.status in LIVE_STATUSES
            else []
        )

    def timeline(self) -> Timeline:
        """The run view's data, computed from what was read."""
        by_step: dict[int | None, list[Event]] = {}
        for _, event in self.events:
            by_step.setdefault(event.step, []).append(event)
        views = [self._view(row, by_step.get(row.idx, [])) for row in self.steps]
        pending = self._pending(by_step)
        if pending is not None:
            views.append(pending)
        alerts = [a for _, e in self.events if (a := describe_event(e)) is not None]
        return Timeline(
            run=summarize(self.run, self._clock()),
            graph=self.run.graph,
            steps=views,
            alerts=alerts,
            pending_controls=list(self.pending_controls),
            warning=self.warning,
        )

    @staticmethod
    def _view(row: StepRow, events: list[Event]) -> StepView:
        action, is_error = describe_action(row)
        chosen = [e for e in events if isinstance(e, TierChosen)]
        return StepView(
            idx=row.idx,
            node=row.node,
            kind=row.kind,
            tier=row.tier,
            model=row.model,
            reused=row.cached_tokens,
            evaluated=row.evaluated_tokens,
            completion=row.completion_tokens,
            seconds=row.seconds,
            action=action,
            is_error=is_error,
            escalated=any(e.escalated for e in chosen),
            strikes=_strikes(events),
            events=tuple(events),
            row=row,
        )

    def _pending(self, by_step: dict[int | None, list[Event]]) -> StepView | None:
        """The step a live run is executing now, known only from its events."""
        if self.run.status not in LIVE_STATUSES:
            return None
        last = self.steps[-1].idx if self.steps else 0
        started = [e for e in by_step.get(last + 1, []) if isinstance(e, StepStarted)]
        if not started:
            return None
        events = by_step[last + 1]
        chosen = [e for e in events if isinstance(e, TierChosen)]
        return StepView(
            idx=last + 1,
            node=started[-1].node,
            kind=started[-1].kind,
            tier=chosen[-1].tier if chosen else None,
            model=chosen[-1].model if chosen else None,
            reused=0,
            evaluated=0,
            completion=0,
            seconds=0.0,
            action="running…",
            is_error=False,
            escalated=any(e.escalated for e in chosen),
            strikes=_strikes(events),
            events=tuple(events),
            row=None,
        )


def _strikes(events: Sequence[Event]) -> tuple[str, ...]:
    """Detector strikes and filter verdicts of a step, by who raised them."""
    return tuple(
        e.detector if isinstance(e, DetectorStrike) else f"filter {e.filter}"
        for e in events
        if isinstance(e, (DetectorStrike, FilterVerdict))
    )


# -- controls ------------------------------------------------------------------------


@dataclass(frozen=True)
class ControlResult:
    """What became of a control request: sent to the store, or refused and why."""

    sent: bool
    message: str


@dataclass
class Monitor:
    """The monitor's handle on a run store: change polling, runs, feeds and controls."""

    store: Store
    clock: Clock = time.time
    _version: int | None = field(default=None, init=False)
    _feeds: dict[str, RunFeed] = field(default_factory=dict, init=False)

    @property
    def path(self) -> str:
        """Where the database is: a file, or a URL without its password."""
        return self.store.location

    def poll(self) -> bool:
        """True when another process committed something since the last poll (StoreError
        when the store cannot be reached)."""
        version = self.store.data_version()
        changed = version != self._version
        self._version = version
        return changed

    def runs(self, limit: int = 500) -> list[RunSummary]:
        """The newest ``limit`` runs, summarized."""
        now = self.clock()
        return [summarize(r, now) for r in self.store.list_runs(limit=limit)]

    def feed(self, run_id: str) -> RunFeed:
        """The (cached) incremental feed of one run, refreshed."""
        feed = self._feeds.get(run_id)
        if feed is None:
            feed = self._feeds[run_id] = RunFeed(self.store, run_id, self.clock)
        feed.refresh()
        return feed

    def refusal(self, run_id: str, command: str) -> str | None:
        """Why ``command`` cannot be sent to the run now, or None when it can."""
        run = self.store.get_run(run_id)
        if run.status in FINISHED_STATUSES or run.status not in LIVE_STATUSES:
            return f"run {run.id} has finished ({run.status}); controls only steer live runs"
        pending = [c.command for c in self.store.pending_controls(run.id)]
        if command == "pause" and run.status == "paused" and "resume" not in pending:
            return f"run {run.id} is already paused; r resumes it"
        if command == "resume" and run.status != "paused" and "pause" not in pending:
            return f"run {run.id} is not paused"
        return None

    def control(self, run_id: str, command: str, argument: str | None = None) -> ControlResult:
        """Queue a control for a live run through the store, or say why not."""
        refused = self.refusal(run_id, command)
        if refused is not None:
            return ControlResult(False, refused)
        problem = control_problem(command, argument)
        if problem is not None:
            return ControlResult(False, problem)
        run_id = self.store.get_run(run_id).id
        self.store.send_control(run_id, command, argument)
        what = {
            "pause": "pause",
            "resume": "resume",
            "abort": "abort",
            "force_tier": f"tier {argument} for the next model step",
        }.get(command, command)
        return ControlResult(
            True, f"sent {what} to run {run_id}; it applies at the next step boundary"
        )

    def close(self) -> None:
        """Close the store's connections."""
        self.store.close()
