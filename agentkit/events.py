"""Typed, versioned run events. Append-only: a new field gets a default, a changed
meaning gets a new event type, so old databases stay readable.

Everything that watches a run (the monitor, ``agentkit runs``, benchmarks, callbacks)
reads these.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

__all__ = [
    "EVENT_VERSION",
    "FINISHED_STATUSES",
    "AnswerRequested",
    "BudgetWarning",
    "ContextCondensed",
    "ControlApplied",
    "DetectorStrike",
    "Event",
    "FilterVerdict",
    "ModelCalled",
    "RunFinished",
    "RunStarted",
    "RunStatus",
    "StepFinished",
    "StepRetried",
    "StepStarted",
    "TierChosen",
    "ToolArgumentsRejected",
    "ToolCallFinished",
    "parse_event",
]

EVENT_VERSION = 1

RunStatus = Literal[
    "running",
    "paused",
    "interrupted",
    "succeeded",
    "failed",
    "stopped",
    "aborted",
    "budget_exhausted",
    "timed_out",
]
"""``interrupted``: its process died mid-run (the run can be resumed); ``timed_out``: it
reached its wall-clock limit (``max_seconds``)."""
FINISHED_STATUSES: frozenset[str] = frozenset(
    {"succeeded", "failed", "stopped", "aborted", "budget_exhausted", "timed_out"}
)


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    run_id: str
    step: int | None = None
    ts: float = Field(default_factory=time.time)
    version: int = EVENT_VERSION


class RunStarted(_Event):
    type: Literal["run_started"] = "run_started"
    name: str
    task: str
    resumed: bool = False


class StepStarted(_Event):
    type: Literal["step_started"] = "step_started"
    node: str
    kind: str


class TierChosen(_Event):
    type: Literal["tier_chosen"] = "tier_chosen"
    node: str
    tier: int
    model: str
    reason: str
    previous_tier: int | None = None

    @property
    def escalated(self) -> bool:
        return self.previous_tier is not None and self.tier > self.previous_tier


class ModelCalled(_Event):
    type: Literal["model_called"] = "model_called"
    model: str
    tier: int
    prompt_tokens: int
    cached_tokens: int
    evaluated_tokens: int
    completion_tokens: int
    seconds: float
    finish_reason: str
    content: str = ""
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    confidence: float | None = None
    tokens_saved: int = 0
    decisions: list[dict[str, Any]] = Field(default_factory=list)
    """The turn's decision points: call or answer, one more call or stop (see Decision)."""


class ToolCallFinished(_Event):
    type: Literal["tool_call"] = "tool_call"
    call_id: str
    name: str
    arguments: dict[str, Any]
    result: str
    is_error: bool = False
    seconds: float = 0.0
    replayed: bool = False
    """True when the result came from the store on resume instead of running the tool."""
    unknown: bool = False
    """True when the call was in flight when its run was interrupted, and its tool is not
    idempotent: it was not run again, and the model was told its outcome is unknown."""


class ToolArgumentsRejected(_Event):
    type: Literal["tool_arguments_rejected"] = "tool_arguments_rejected"
    name: str
    arguments: dict[str, Any]
    feedback: str
    attempt: int


class DetectorStrike(_Event):
    type: Literal["detector_strike"] = "detector_strike"
    detector: str
    message: str
    window: str
    steps: list[int]
    response: str


class AnswerRequested(_Event):
    """The turn was redone with tools off, because calling again would add nothing."""

    type: Literal["answer_requested"] = "answer_requested"
    reason: str
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    """The calls that were not run."""


class FilterVerdict(_Event):
    """A filter's verdict that was not a plain pass, and what the runtime did about it.

    Never holds the original of what a filter rewrote or redacted: ``changes`` says
    what changed in words ("2 EMAIL_ADDRESS"), not with the values.
    """

    type: Literal["filter_verdict"] = "filter_verdict"
    stage: str
    """``input`` (the task, a tool result) or ``output`` (an answer, a tool call)."""
    target: str
    """``task``, ``tool_result``, ``answer`` or ``tool_call``."""
    filter: str
    verdict: str
    """rewrite, redact, block, retry, escalate or stop; pass when a failing filter was
    let through (``fail_open``)."""
    reason: str = ""
    changes: list[str] = Field(default_factory=list)
    outcome: str = ""
    """What the runtime did: "call not executed", "turn sent back", "run stopped"..."""
    node: str | None = None
    tool: str | None = None
    call_id: str | None = None
    error: str | None = None
    """Set when the filter raised or ran past its time limit."""
    score: float | None = None
    seconds: float = 0.0


class ContextCondensed(_Event):
    type: Literal["context_condensed"] = "context_condensed"
    tokens_before: int
    tokens_after: int
    messages_condensed: int


class StepRetried(_Event):
    type: Literal["step_retried"] = "step_retried"
    node: str
    attempt: int
    error: str


class BudgetWarning(_Event):
    type: Literal["budget_warning"] = "budget_warning"
    steps_left: int


class ControlApplied(_Event):
    type: Literal["control_applied"] = "control_applied"
    command: str
    argument: str | None = None


class StepFinished(_Event):
    type: Literal["step_finished"] = "step_finished"
    node: str
    next_node: str | None


class RunFinished(_Event):
    type: Literal["run_finished"] = "run_finished"
    status: RunStatus
    answer: str | None = None
    error: str | None = None
    diagnosis: str | None = None


Event = Annotated[
    RunStarted
    | StepStarted
    | TierChosen
    | ModelCalled
    | ToolCallFinished
    | ToolArgumentsRejected
    | DetectorStrike
    | FilterVerdict
    | AnswerRequested
    | ContextCondensed
    | StepRetried
    | BudgetWarning
    | ControlApplied
    | StepFinished
    | RunFinished,
    Field(discriminator="type"),
]

_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(data: str | bytes | dict[str, Any]) -> Event:
    """Rebuild an event from its stored JSON."""
    if isinstance(data, dict):
        return _EVENT_ADAPTER.validate_python(data)
    return _EVENT_ADAPTER.validate_json(data)
