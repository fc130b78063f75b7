"""A run's strikes: the loop detector's history, the strike count and what is owed.

The detectors find repetition; ``respond`` (pure, in ``agentkit.detection``) turns the
strikes of one step into one graded response; the step carries it out with ``carry_out``.
Whatever the response leaves for a later step (a resample, a larger model) is held here
or handed to the tier controller, its owner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..detection._canonical import StepObservation
from ..detection._config import DetectorConfig, Strike
from ..detection._plan import Action, ResponsePlan, respond
from ..detection._steps import LoopDetector
from ..events import DetectorStrike
from ..models._messages import Message
from ._answer_now import runtime_note

if TYPE_CHECKING:
    from ._context import RunContext

__all__ = ["StrikeBook", "carry_out"]


@dataclass
class StrikeBook:
    """Counts a run's strikes and remembers what the graded response still owes."""

    plan: ResponsePlan
    detectors: DetectorConfig
    count: int = 0
    resample_next: bool = False
    answer_now_next: bool = False
    """The next model step answers with tools off (the response "answer_now")."""
    resamples: int = 0
    """Resampled generations so far: each gets its own seed."""
    log: list[dict[str, Any]] = field(default_factory=list)
    """Every strike of the run as data (detector, steps, response), checkpointed."""
    history: list[Strike] = field(default_factory=list)
    """The strikes seen by this process, for the diagnosis of a stop."""
    loop: LoopDetector = field(init=False)

    def __post_init__(self) -> None:
        self.loop = LoopDetector(self.detectors)

    def answer(self, strikes: list[Strike], *, can_escalate: bool) -> Action:
        """The one response to the strikes of one step; counts as one strike of the run."""
        action = respond(
            self.plan,
            strikes,
            earlier=self.history,
            strikes_so_far=self.count,
            can_escalate=can_escalate,
        )
        self.count = action.strike_number
        self.history.extend(strikes)
        for strike in strikes:
            self.log.append(
                {
                    "detector": strike.detector,
                    "steps": list(strike.steps),
                    "response": action.response,
                }
            )
        return action

    def observe(self, observation: StepObservation, *, can_escalate: bool) -> Action | None:
        """Feed a finished step to the loop detector; the response to its strikes, if any."""
        strikes = self.loop.observe(observation)
        return self.answer(strikes, can_escalate=can_escalate) if strikes else None

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "resample_next": self.resample_next,
            "answer_now_next": self.answer_now_next,
            "resamples": self.resamples,
            "log": self.log,
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.count = int(data.get("count", data.get("strikes", 0)))
        self.resample_next = bool(data.get("resample_next", False))
        self.answer_now_next = bool(data.get("answer_now_next", False))
        self.resamples = int(data.get("resamples", 0))
        self.log = list(data.get("log", data.get("strike_log", [])))


def carry_out(ctx: RunContext, action: Action, messages: list[Message]) -> str | None:
    """Record the strikes and do what the response says; returns a diagnosis on "stop".

    A nudge is a note to the model; "answer now" switches the tools off for the next model
    turn; a resample changes the sampling of the next model step; an escalation asks the
    tier controller for a larger model on the next step.
    """
    for strike in action.strikes:
        ctx.recorder.emit(
            DetectorStrike(
                run_id=ctx.run_id,
                step=ctx.step,
                detector=strike.detector,
                message=strike.message,
                window=strike.window,
                steps=list(strike.steps),
                response=action.response,
            )
        )
    if action.response == "stop":
        return action.diagnosis
    if action.response == "nudge":
        messages.append(runtime_note(action.nudge))
    elif action.response == "answer_now":
        ctx.strikes.answer_now_next = True
    elif action.response == "resample":
        ctx.strikes.resample_next = True
    elif action.response == "escalate":
        ctx.tiers.request_escalation()
    return None
