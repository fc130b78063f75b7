"""Adaptive compute: a ladder of model tiers and the policy that picks one per step.

The cheapest tier takes every step it can. A step that is going badly (arguments that
failed validation, a detector strike, low confidence at the decision tokens, a streak
of tool errors, an explicit hint) is run on a larger tier; once it succeeds, the run
comes back down. Every choice carries a reason, which the run records.

A custom policy is any object with ``choose(signals, tiers) -> TierDecision``:

    class CautiousPolicy:
        def choose(self, s: StepSignals, tiers: int) -> TierDecision:
            if s.tool_error_streak:
                return TierDecision(tiers - 1, "any tool error: go straight to the top")
            return DefaultPolicy().choose(s, tiers)
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ._errors import ConfigError
from ._messages import ModelResponse, TokenLogprob
from ._model import ChatModel

__all__ = [
    "DefaultPolicy",
    "LadderPolicy",
    "ModelLadder",
    "StepReview",
    "StepSignals",
    "TierDecision",
    "decision_confidence",
]

ModelLoader = Callable[[str], ChatModel]

# Measured on 2 CPU cores (DESIGN.md): prompt and generated tokens per second, used to
# estimate what a step would have taken on a tier that never ran it.
_KNOWN_SPEEDS: dict[int, tuple[float, float]] = {
    135_000_000: (330.0, 105.0),
    500_000_000: (150.0, 25.0),
    1_500_000_000: (80.0, 14.0),
}


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
    hint: int | None = None
    forced: int | None = None
    escalated_from: dict[int, int] = field(default_factory=dict)
    """How often this run has escalated away from each tier so far."""


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
    """Chooses the tier of each model step; see DefaultPolicy.

    A policy may also define ``review(review: StepReview, tiers: int) -> str | None``,
    asked after each turn below the top tier: a reason redoes the turn one tier up.
    """

    def choose(self, signals: StepSignals, tiers: int) -> TierDecision: ...


@dataclass(frozen=True)
class DefaultPolicy:
    """Escalate one tier on any trouble signal; drop back to the base after success."""

    low_confidence: float = 0.35
    tool_error_streak: int = 2
    base_tier: int = 0
    expect_tool_use: bool = True
    """Escalate a run's first answer when tools were offered and none was used."""
    give_up_after: int = 2
    """After this many escalations away from a tier, later steps of the run start above
    it: a tier that keeps failing this task is not worth trying first again."""

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
        if review.confidence is not None and review.confidence < self.low_confidence:
            return f"low decision confidence {review.confidence:.2f} < {self.low_confidence:.2f}"
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
                f"low decision confidence {signals.confidence:.2f} < {self.low_confidence:.2f}"
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


@dataclass
class _Tier:
    source: ChatModel | str
    model: ChatModel | None = None
    gen_speed: float | None = None
    known_parameters: int | None = None


@dataclass
class ModelLadder:
    """Model tiers, cheapest first. Tiers given by name load lazily on first use and
    stay loaded while they fit ``memory_budget_bytes``; beyond it the least recently used
    other tier is closed."""

    tiers: Sequence[ChatModel | str]
    policy: LadderPolicy = field(default_factory=DefaultPolicy)
    loader: ModelLoader | None = None
    memory_budget_bytes: int | None = None
    self_consistency: int = 1
    """Sample this many cheap answers for a step and escalate when they disagree."""
    _tiers: list[_Tier] = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _used: list[int] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ConfigError("a ModelLadder needs at least one tier")
        if self.self_consistency < 1:
            raise ConfigError("self_consistency must be at least 1")
        self._tiers = [_Tier(t, None if isinstance(t, str) else t) for t in self.tiers]
        if any(isinstance(t, str) for t in self.tiers) and self.loader is None:
            from ._llama import get_model

            self.loader = get_model

    def __len__(self) -> int:
        return len(self._tiers)

    def tier_name(self, index: int) -> str:
        t = self._tiers[index]
        return t.model.name if t.model is not None else str(t.source)

    def model(self, index: int) -> ChatModel:
        """The model of a tier, loading it (and evicting others over budget) if needed."""
        with self._lock:
            tier = self._tiers[index]
            if tier.model is None:
                if self.loader is None:
                    raise ConfigError(
                        f"tier {index} is named {tier.source!r} but the ladder has no loader"
                    )
                self._evict_for(index)
                tier.model = self.loader(str(tier.source))
            if index in self._used:
                self._used.remove(index)
            self._used.append(index)
            return tier.model

    def _evict_for(self, index: int) -> None:
        if self.memory_budget_bytes is None:
            return
        while (
            self._loaded_bytes() > 0
            and self._loaded_bytes() + self._size(index) > self.memory_budget_bytes
        ):
            victims = [
                i
                for i in self._used
                if i != index
                and self._tiers[i].model is not None
                and isinstance(self._tiers[i].source, str)
            ]
            if not victims:
                return
            victim = self._tiers[victims[0]]
            close = getattr(victim.model, "close", None)
            if callable(close):
                close()
            victim.model = None
            self._used.remove(victims[0])

    def _size(self, index: int) -> int:
        """Bytes a tier holds (loaded) or will hold (its file size, else a guess from the
        tiers already loaded)."""
        t = self._tiers[index]
        model = t.model
        if model is not None:
            return int(getattr(model, "memory_bytes", model.parameters))
        size = _file_size_of(str(t.source))
        if size:
            return size
        loaded = [self._size(i) for i, other in enumerate(self._tiers) if other.model]
        return max(loaded, default=0)

    def _loaded_bytes(self) -> int:
        return sum(self._size(i) for i, t in enumerate(self._tiers) if t.model is not None)

    def tier_parameters(self, index: int) -> int:
        """Parameter count of a tier without loading it (catalog or GGUF header)."""
        t = self._tiers[index]
        if t.model is not None:
            return t.model.parameters
        if t.known_parameters is None:
            t.known_parameters = _parameters_of(str(t.source))
        return t.known_parameters

    def record_speed(self, index: int, evaluated: int, completion: int, seconds: float) -> None:
        """Keep a running estimate of a tier's speeds from real calls."""
        if seconds <= 0 or completion <= 0:
            return
        t = self._tiers[index]
        gen = completion / seconds
        t.gen_speed = gen if t.gen_speed is None else 0.7 * t.gen_speed + 0.3 * gen

    def estimated_seconds(self, index: int, evaluated: int, completion: int) -> float:
        """Seconds the given tokens would take on a tier (measured or catalog speeds)."""
        t = self._tiers[index]
        params = self.tier_parameters(index)
        prompt_speed, gen_speed = _nearest_speeds(params)
        gen_speed = t.gen_speed or gen_speed
        return evaluated / prompt_speed + completion / gen_speed


def _nearest_speeds(parameters: int) -> tuple[float, float]:
    if parameters <= 0:
        return _KNOWN_SPEEDS[500_000_000]
    best = min(_KNOWN_SPEEDS, key=lambda p: abs(math.log(p) - math.log(parameters)))
    prompt, gen = _KNOWN_SPEEDS[best]
    # Scale inversely with size beyond the measured range (a 7B model is ~5x slower
    # than a 1.5B one on the same cores).
    factor = best / parameters
    return prompt * factor, gen * factor


def _file_size_of(name_or_path: str) -> int:
    from ._catalog import list_models

    for entry in list_models():
        if entry.name == name_or_path:
            return int(entry.size_bytes)
    try:
        return os.path.getsize(name_or_path)
    except OSError:
        return 0


def _parameters_of(name_or_path: str) -> int:
    from ._catalog import list_models

    for entry in list_models():
        if entry.name == name_or_path:
            return int(entry.parameters)
    try:
        from ._gguf import inspect_gguf

        return inspect_gguf(name_or_path).parameter_count
    except Exception:  # an unreadable path is reported when the tier loads
        return 0


def as_ladder(model: ChatModel | ModelLadder) -> ModelLadder:
    return model if isinstance(model, ModelLadder) else ModelLadder([model])
