"""What the runtime does about repetition: the graded response to a detector's strikes.

Pure: a ``ResponsePlan`` and the strikes a step earned go in, an ``Action`` comes out,
and the step carries it out. No I/O, no clocks, no model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ._config import Strike, format_steps

__all__ = ["Action", "ResampleSettings", "Response", "ResponsePlan", "diagnosis", "respond"]


Response = Literal["answer_now", "nudge", "resample", "escalate", "stop"]
"""The graded responses: ask for the answer with tools off for one turn, nudge the model
with a note, resample the next turn hotter, escalate it to a larger model, stop the run."""


class ResampleSettings(BaseModel):
    """Sampling the executor switches to when it resamples a step that looped."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = Field(default=0.9, ge=0.0)
    top_k: int = Field(default=60, ge=0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    repeat_penalty: float = Field(default=1.15, ge=1.0)
    seed_step: int = Field(default=7919, ge=1)
    """Added to the seed per resample, so each retry samples a different continuation."""

    def seed(self, base_seed: int, attempt: int) -> int:
        """The seed for resample number ``attempt`` (1, 2, ...) of a step seeded ``base_seed``."""
        return (base_seed + attempt * self.seed_step) % 2**31


class ResponsePlan(BaseModel):
    """What to do about the n-th strike of a run: by default ask for the answer with tools
    off, then resample, then escalate, then stop."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sequence: tuple[Response, ...] = ("answer_now", "resample", "escalate", "stop")
    """Response to the 1st, 2nd, ... strike; the last one repeats for any later strike."""
    resample: ResampleSettings = Field(default_factory=ResampleSettings)

    @field_validator("sequence")
    @classmethod
    def _not_empty(cls, value: tuple[Response, ...]) -> tuple[Response, ...]:
        if not value:
            raise ValueError('sequence is empty; give at least one response, e.g. ("stop",)')
        return value

    def next_response(self, strikes_so_far: int, can_escalate: bool) -> Response:
        """Response to a strike, ``strikes_so_far`` counting it (1 for a run's first strike).

        Where no larger model exists (``can_escalate`` false) "escalate" is skipped and the
        later entries move up; a plan made only of "escalate" then stops.
        """
        if strikes_so_far < 1:
            raise ValueError(
                f"strikes_so_far is {strikes_so_far}; count the strike being answered, "
                "so the first strike of a run is 1"
            )
        steps = [r for r in self.sequence if can_escalate or r != "escalate"]
        if not steps:
            return "stop"
        return steps[min(strikes_so_far, len(steps)) - 1]


def diagnosis(strikes: Sequence[Strike]) -> str:
    """A human-readable account of the strikes: which detectors, what repeated, and where."""
    if not strikes:
        return "No repetition was detected."
    counts = Counter(s.detector for s in strikes)
    tally = ", ".join(f"{name} x{n}" for name, n in counts.most_common())
    times = "once" if len(strikes) == 1 else f"{len(strikes)} times"
    lines = [f"Repetition detected {times} ({tally})."]
    for number, strike in enumerate(strikes, 1):
        where = f" at {format_steps(strike.steps)}" if strike.steps else ""
        lines.append(f"{number}. {strike.detector}{where}: {strike.summary or strike.message}")
        if strike.window:
            lines.append(f"   repeating: {strike.window}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Action:
    """The one graded response to the strikes a step earned, for the step to carry out."""

    response: Response
    strikes: tuple[Strike, ...]
    """The strikes answered (several detectors often fire on one repetition)."""
    strike_number: int
    """Which strike of the run this is (1 for the first)."""
    nudge: str = ""
    """For ``nudge``: the text shown to the model."""
    diagnosis: str = ""
    """For ``stop``: the account of every strike of the run."""


def respond(
    plan: ResponsePlan,
    strikes: Sequence[Strike],
    *,
    earlier: Sequence[Strike] = (),
    strikes_so_far: int = 0,
    can_escalate: bool,
) -> Action:
    """The response to the strikes of one step.

    They count as one strike of the run (``strikes_so_far + 1``), so one bad step cannot
    use up the whole plan at once. ``earlier`` are the run's previous strikes, which a
    stop's diagnosis also tells.
    """
    if not strikes:
        raise ValueError("respond() needs at least one strike")
    number = strikes_so_far + 1
    response = plan.next_response(number, can_escalate)
    nudge = " ".join(dict.fromkeys(s.message for s in strikes)) if response == "nudge" else ""
    told = diagnosis([*earlier, *strikes]) if response == "stop" else ""
    return Action(response, tuple(strikes), number, nudge=nudge, diagnosis=told)
