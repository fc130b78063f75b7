"""Repetition and mode-collapse detection: the settings and the findings (strikes).

Two detectors share what is defined here:

- ``StreamDetector`` (``_stream``) watches one generation as it streams and trips when
  the text degenerates into a loop, so the model step can stop it early.
- ``LoopDetector`` (``_steps``) watches whole steps and trips when the agent repeats itself
  across steps (the same call, a cycle, the same error, no progress, ...).

Both only report. What happens next is decided by a ``ResponsePlan`` (``_plan``).
Everything here is pure: no I/O, no clocks, no threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "DEFAULT_VOLATILE_FIELDS",
    "DETECTORS",
    "DetectorConfig",
    "Strike",
    "ToolDetectorOverride",
    "clip",
    "format_steps",
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
    stream_rule_min_span: int = Field(default=2000, ge=2)
    """A repetition made only of separator characters (a row of dashes, equals signs or
    box lines, repeated) trips only once it covers this many characters: rules and
    dividers repeat by nature, and a divider of a few hundred dashes is still a divider."""
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
