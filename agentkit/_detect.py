"""Repetition and mode-collapse detection: settings, strikes and the graded response.

Two detectors share what is defined here:

- ``StreamDetector`` (``_detect_stream``) watches one generation as it streams and trips
  when the text degenerates into a loop, so the executor can stop it early.
- ``LoopDetector`` (``_detect_steps``) watches whole steps and trips when the agent repeats
  itself across steps (the same call, a cycle, the same error, no progress, ...).

Both only report. What happens next is decided by a ``ResponsePlan``: nudge the model,
resample the step, escalate to a larger model, and finally stop with a ``diagnosis``.
Everything here is pure: no I/O, no clocks, no threads.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from ._detect_steps import (
        LoopDetector,
        StepObservation,
        ToolCallLike,
        canonical_arguments,
        normalise_error,
    )
    from ._detect_stream import StreamDetector

__all__ = [
    "DETECTORS",
    "DetectorConfig",
    "LoopDetector",
    "ResampleSettings",
    "Response",
    "ResponsePlan",
    "StepObservation",
    "StreamDetector",
    "Strike",
    "ToolCallLike",
    "ToolDetectorOverride",
    "canonical_arguments",
    "diagnosis",
    "normalise_error",
]

DETECTORS: tuple[str, ...] = (
    "stream_loop",
    "cycle",
    "same_error",
    "same_result",
    "same_call",
    "near_duplicate_message",
    "empty_response",
    "no_progress",
)
"""Every detector name a Strike can carry, most specific first."""

DEFAULT_VOLATILE_FIELDS = frozenset(
    {"thought", "thoughts", "reasoning", "progress", "note", "comment"}
)


class ToolDetectorOverride(BaseModel):
    """How the step detectors treat one tool, where the defaults do not fit it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    exempt: bool = False
    """Ignore this tool's calls entirely (a poll or wait tool meant to be repeated)."""
    repeat_threshold: int | None = Field(default=None, ge=2)
    """Repeats of one call (same_call, same_result) before a strike, instead of the defaults."""
    volatile_fields: frozenset[str] = frozenset()
    """Extra argument names ignored when comparing this tool's calls."""


class DetectorConfig(BaseModel):
    """Every threshold of the repetition detectors. Unknown options are an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    disabled: frozenset[str] = frozenset()
    """Detector names (see ``DETECTORS``) that never report."""

    # --- inside one generation (StreamDetector) ---
    stream_check_every: int = Field(default=16, ge=1)
    """Characters between two looks for a repeating tail (keeps the cost per piece low)."""
    stream_max_period: int = Field(default=200, ge=1)
    """Longest repeating unit, in characters, that the tail check looks for."""
    stream_min_repeats: int = Field(default=4, ge=2)
    """A repeating unit must occur at least this many times in a row ..."""
    stream_min_span: int = Field(default=160, ge=2)
    """... and the repetition must cover at least this many characters."""
    stream_fenced_min_repeats: int = Field(default=30, ge=2)
    """The same inside ``` fences and markdown tables, where repetition is normal."""
    stream_fenced_min_span: int = Field(default=600, ge=2)
    stream_line_window: int = Field(default=10, ge=2)
    """Recent prose lines compared; tripped when they hold too few distinct lines."""
    stream_numbered_line_window: int = Field(default=20, ge=2)
    """Recent prose lines compared once their counters are blanked ("Step 4: ..."), a
    longer window because lists of versions or parts legitimately differ only so."""
    stream_fenced_line_window: int = Field(default=30, ge=2)
    """Recent code or table lines compared, same rule."""
    stream_line_max_distinct: int = Field(default=2, ge=1)
    """A full line window with at most this many distinct lines is a loop."""
    stream_word_window: int = Field(default=60, ge=8)
    """Recent prose words whose n-grams are compared."""
    stream_ngram: int = Field(default=3, ge=1)
    stream_max_ngram_ratio: float = Field(default=0.25, gt=0.0, lt=1.0)
    """Distinct n-grams / all n-grams in the word window at or below which prose is a loop."""

    # --- across steps (LoopDetector) ---
    window_steps: int = Field(default=16, ge=2)
    """Steps of history the step detectors look back over."""
    same_call_threshold: int = Field(default=4, ge=2)
    """The same call this many times in the window, without a new result each time."""
    same_result_threshold: int = Field(default=3, ge=2)
    """The same call with the same result this many times in the window."""
    same_error_threshold: int = Field(default=3, ge=2)
    """The same error from the same tool this many times in the window."""
    cycle_periods: tuple[int, ...] = (2, 3)
    """Cycle lengths looked for (A-B-A-B is 2, A-B-C-A-B-C is 3)."""
    cycle_repeats: int = Field(default=2, ge=1)
    """Full turns of a cycle before it trips, at the first step of the next turn."""
    near_duplicate_threshold: int = Field(default=3, ge=2)
    """Text-only replies this similar to each other, counting the latest."""
    near_duplicate_similarity: float = Field(default=0.9, gt=0.0, le=1.0)
    """Jaccard similarity of character 5-gram shingles that counts as the same reply."""
    near_duplicate_min_chars: int = Field(default=24, ge=1)
    """Shorter replies ("Done.", "No issues found.") are never compared."""
    no_progress_steps: int = Field(default=5, ge=2)
    """Consecutive steps with no new action, result or reply."""
    empty_threshold: int = Field(default=2, ge=1)
    """Consecutive empty replies."""
    volatile_fields: frozenset[str] = DEFAULT_VOLATILE_FIELDS
    """Argument names ignored when comparing calls (free-text thoughts, progress notes)."""
    tool_overrides: dict[str, ToolDetectorOverride] = Field(default_factory=dict)

    @field_validator("disabled")
    @classmethod
    def _known_detectors(cls, value: frozenset[str]) -> frozenset[str]:
        unknown = sorted(value - set(DETECTORS))
        if unknown:
            raise ValueError(f"unknown detector name(s) {unknown}; known: {', '.join(DETECTORS)}")
        return value

    @field_validator("cycle_periods")
    @classmethod
    def _periods(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(p < 2 for p in value):
            raise ValueError("cycle periods must be 2 or more (period 1 is same_call)")
        return tuple(sorted(set(value)))

    @model_validator(mode="after")
    def _fits_window(self) -> DetectorConfig:
        # A threshold larger than the history it is counted over could never trip;
        # say so at build time rather than silently never detecting anything.
        needs = {
            "same_call_threshold": self.same_call_threshold,
            "same_result_threshold": self.same_result_threshold,
            "same_error_threshold": self.same_error_threshold,
            "near_duplicate_threshold": self.near_duplicate_threshold,
        }
        if self.cycle_periods:
            needs["cycle_periods x cycle_repeats + 1"] = (
                max(self.cycle_periods) * self.cycle_repeats + 1
            )
        for tool, override in self.tool_overrides.items():
            if override.repeat_threshold is not None:
                needs[f"tool_overrides[{tool!r}].repeat_threshold"] = override.repeat_threshold
        too_big = [f"{name} = {n}" for name, n in needs.items() if n > self.window_steps]
        if too_big:
            raise ValueError(
                f"window_steps = {self.window_steps} is smaller than {', '.join(too_big)}; "
                "raise window_steps or lower the threshold"
            )
        return self

    def override(self, tool: str) -> ToolDetectorOverride | None:
        """The override for ``tool``, if one is configured."""
        return self.tool_overrides.get(tool)


@dataclass(frozen=True)
class Strike:
    """One detector finding: what repeated, where, and what to tell the model."""

    detector: str
    """One of ``DETECTORS``."""
    message: str
    """A short nudge addressed to the model."""
    window: str = ""
    """The repeating content, truncated."""
    steps: tuple[int, ...] = ()
    """Indices of the steps involved (empty for a stream strike until the caller sets it)."""
    detail: dict[str, Any] = field(default_factory=dict)
    """Numbers behind the finding (counts, period, characters seen, ...)."""
    summary: str = ""
    """The same finding told to a person, used by ``diagnosis``."""


Response = Literal["nudge", "resample", "escalate", "stop"]


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
    """What to do about the n-th strike of a run: nudge, resample, escalate, then stop."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sequence: tuple[Response, ...] = ("nudge", "resample", "escalate", "stop")
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


def format_steps(steps: Sequence[int]) -> str:
    """``(3, 4, 5, 9)`` -> ``"steps 3-5, 9"``; runs of consecutive steps are joined."""
    ordered = sorted(set(steps))
    if not ordered:
        return "no steps"
    parts: list[str] = []
    start = prev = ordered[0]
    for n in [*ordered[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    noun = "step" if len(ordered) == 1 else "steps"
    return f"{noun} {', '.join(parts)}"


def clip(text: str, limit: int = 120) -> str:
    """One line of at most ``limit`` characters, for windows and messages."""
    flat = text.replace("\n", "\\n").replace("\t", "\\t")
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


_STEP_NAMES = frozenset(
    {"LoopDetector", "StepObservation", "ToolCallLike", "canonical_arguments", "normalise_error"}
)


def __getattr__(name: str) -> Any:
    """Hand out the detectors, which live in ``_detect_stream`` and ``_detect_steps``.

    Those modules import the types defined here, so importing them at the top of this
    module would be circular; they are loaded on first use instead (PEP 562), and
    ``from agentkit._detect import LoopDetector`` works whatever was imported first.
    """
    if name in _STEP_NAMES:
        from . import _detect_steps

        return getattr(_detect_steps, name)
    if name == "StreamDetector":
        from . import _detect_stream

        return _detect_stream.StreamDetector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
