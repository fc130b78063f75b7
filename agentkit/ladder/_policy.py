"""Escalation policies: what a policy sees, what it decides, and the default policy.

A policy is any object with ``choose(signals, tiers) -> TierDecision``, asked before each
model step, and ``review(review, tiers) -> str | None``, asked after each turn below the
top tier: a reason redoes that turn one tier up. ``DefaultPolicy`` escalates on trouble
and comes back down after success; a custom policy can wrap it:

    class CautiousPolicy(DefaultPolicy):
        def choose(self, s: StepSignals, tiers: int) -> TierDecision:
            if s.tool_error_streak:
                return TierDecision(tiers - 1, "any tool error: go straight to the top")
            return super().choose(s, tiers)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .._errors import ConfigError
from ..models._messages import ModelResponse, TokenLogprob

__all__ = [
    "DefaultPolicy",
    "LadderPolicy",
    "StepReview",
    "StepSignals",
    "TierDecision",
    "decision_confidence",
]


@dataclass(frozen=True)
class StepSignals:
    """What the policy knows about the run when choosing the tier of one model step."""

    step: int
    node: str
    previous_tier: int | None = None
    """Tier of the run's previous model step (None on the first)."""
    previous_step_ok: bool = True
    """The previous model step produced a usable answer or valid calls."""
    argument_failures: int = 0
    """Tool calls of the previous model step that stayed invalid after the retries."""
    detector_escalate: bool = False
    """The repetition detectors' graded response reached "escalate"."""
    confidence: float | None = None
    """Decision confidence of the previous model step, 0..1."""
    tool_error_streak: int = 0
    """Tool steps in a row in which every call failed."""
    hint: int | None = None
    """The node's ``tier_hint``."""
    forced: int | None = None
    """A tier forced by an operator control for this step."""
    escalated_from: dict[int, int] = field(default_factory=dict)
    """How often this run has escalated away from each tier so far."""
    tools_used: bool = False
    """Whether any earlier model step of the run called a tool."""
    top_reached: bool = False
    """The previous model step ran on its ladder's largest tier."""


@dataclass(frozen=True)
class StepReview:
    """A model turn as the policy sees it before the turn is accepted."""

    tier: int
    has_tool_calls: bool
    empty: bool
    truncated: bool
    """The reply was cut off at max_tokens."""
    invalid_calls: int
    """Tool calls still invalid after the in-step retries."""
    confidence: float | None
    tools_offered: bool
    tools_used_before: bool
    """Whether any earlier step of the run called a tool."""
    disagreement: str | None = None
    """Set when self-consistency samples disagreed, with the details."""
    echoes_markup: bool = False
    """The answer repeats tool-call or tool-result markup instead of answering."""


@dataclass(frozen=True)
class TierDecision:
    """The tier for one model step and why, as recorded in the run."""

    tier: int
    reason: str


class LadderPolicy(Protocol):
    """Chooses the tier of each model step and reviews each turn; see DefaultPolicy."""

    def choose(self, signals: StepSignals, tiers: int) -> TierDecision:
        """The tier for the next model step, with the reason the run records."""
        ...

    def review(self, review: StepReview, tiers: int) -> str | None:
        """Why a turn below the top tier should be redone one tier up, or None to keep it."""
        ...


@dataclass(frozen=True)
class DefaultPolicy:
    """Escalate one tier on any trouble signal; drop back to the base after success."""

    low_confidence: float = 0.35
    """Escalate a turn whose decision confidence is below this."""
    answer_confidence: float | None = None
    """Escalate a final answer (a turn without calls) whose confidence is below this;
    None uses ``low_confidence`` for answers too."""
    tool_error_streak: int = 2
    base_tier: int = 0
    expect_tool_use: bool = True
    """Escalate a run's first answer when tools were offered and none was used."""
    give_up_after: int = 2
    """After this many escalations away from a tier, later steps of the run start above
    it: a tier that keeps failing this task is not worth trying first again."""

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], section: str = "policy") -> DefaultPolicy:
        """A policy saved by ``to_file`` (``bench/calibrate.py`` fits one on recorded runs).

        The file may hold other sections; the policy's is ``section`` (or the whole file).
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read a ladder policy from {path}: {exc}") from exc
        fields_ = data.get(section, data) if isinstance(data, dict) else None
        known = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(fields_, dict) or set(fields_) - known:
            unknown = sorted(set(fields_) - known) if isinstance(fields_, dict) else []
            raise ConfigError(
                f"{path} is not a ladder policy"
                + (f": unknown fields {unknown}; known: {sorted(known)}" if unknown else "")
            )
        return cls(**fields_)

    def to_file(self, path: str | os.PathLike[str], **extra: object) -> None:
        """Save the thresholds (and ``extra`` sections, such as how they were fitted)."""
        payload = {"policy": dataclasses.asdict(self), **extra}
        Path(path).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")

    def review(self, review: StepReview, tiers: int) -> str | None:
        """Why this turn should be redone one tier up, or None to accept it."""
        if review.tier >= tiers - 1:
            return None
        if review.disagreement:
            return review.disagreement
        if review.invalid_calls:
            return f"{review.invalid_calls} tool call(s) stayed invalid after retries"
        if review.truncated:
            return "the reply was cut off at the token limit"
        if review.empty:
            return "the reply was empty"
        if review.echoes_markup and not review.has_tool_calls:
            return "the answer repeats tool markup instead of answering"
        if (
            not review.has_tool_calls
            and self.expect_tool_use
            and review.tools_offered
            and not review.tools_used_before
        ):
            return "answered without using any of the tools offered"
        limit = self.low_confidence
        if not review.has_tool_calls and self.answer_confidence is not None:
            limit = self.answer_confidence
        if review.confidence is not None and review.confidence < limit:
            what = "answer" if not review.has_tool_calls else "decision"
            return f"low {what} confidence {format_below(review.confidence, limit)}"
        return None

    def choose(self, signals: StepSignals, tiers: int) -> TierDecision:
        top = tiers - 1
        if signals.forced is not None:
            tier = max(0, min(top, signals.forced))
            return TierDecision(tier, f"forced to tier {tier} by an operator control")
        previous = signals.previous_tier if signals.previous_tier is not None else self.base_tier
        reasons: list[str] = []
        if signals.argument_failures:
            reasons.append(f"{signals.argument_failures} tool call(s) stayed invalid after retries")
        if signals.detector_escalate:
            reasons.append("the repetition detector asked for a larger model")
        if signals.confidence is not None and signals.confidence < self.low_confidence:
            reasons.append(
                f"low decision confidence {format_below(signals.confidence, self.low_confidence)}"
            )
        if signals.tool_error_streak >= self.tool_error_streak:
            reasons.append(f"{signals.tool_error_streak} tool errors in a row")
        if not signals.previous_step_ok and not reasons:
            reasons.append("the previous model step failed")
        floor = self.base_tier
        while floor < top and signals.escalated_from.get(floor, 0) >= self.give_up_after:
            floor += 1
        gave_up = floor > self.base_tier
        if signals.hint is not None:
            floor = max(floor, min(top, signals.hint))
        if reasons:
            if previous >= top:
                return TierDecision(top, "; ".join(reasons) + " (already on the top tier)")
            return TierDecision(max(previous + 1, floor), "escalate: " + "; ".join(reasons))
        if signals.hint is not None:
            return TierDecision(floor, f"node hint asks for tier {floor}")
        if previous > floor:
            note = f" (tiers below {floor} failed repeatedly in this run)" if gave_up else ""
            return TierDecision(floor, f"hard step on tier {previous} succeeded; back down{note}")
        if gave_up:
            return TierDecision(floor, f"tiers below {floor} failed repeatedly in this run")
        return TierDecision(floor, "default: cheapest tier")


def format_below(value: float, limit: float) -> str:
    """``value < limit`` with enough digits that the two differ on the page."""
    for digits in range(2, 7):
        a, b = f"{value:.{digits}f}", f"{limit:.{digits}f}"
        if a != b:
            return f"{a} < {b}"
    return f"{value!r} < {limit!r}"


def decision_confidence(response: ModelResponse) -> float | None:
    """Confidence 0..1 from the log-probabilities of the tokens that carry the decision.

    Tokens of fixed syntax (tags, braces, the words "name"/"arguments") say little about
    the decision, so only tokens with letters or digits outside that syntax count; the
    result is the geometric mean probability of the weakest third of them, so one shaky
    choice of tool or value pulls it down.
    """
    tokens: Sequence[TokenLogprob] = response.logprobs
    if not tokens:
        return None
    decision = [
        t.logprob
        for t in tokens
        if any(c.isalnum() for c in t.token)
        and t.token.strip().strip('"<>/_{}:,') not in _SYNTAX_WORDS
    ]
    if not decision:
        decision = [t.logprob for t in tokens]
    decision.sort()
    weakest = decision[: max(1, len(decision) // 3)]
    return math.exp(sum(weakest) / len(weakest))


_SYNTAX_WORDS = frozenset({"tool", "call", "tool_call", "name", "arguments", "json"})
