"""The tier controller: the one place that decides which tier takes a model step.

One controller per run. It owns the escalation signals (what the previous steps did) and
asks the ladder's policy at the three moments a tier can change:

- ``choose``: before a model step;
- ``review``: after a turn below the top tier, before it is accepted (a final answer
  ends the run, so waiting for the next step would be too late);
- ``escalate``: when a turn is redone one tier up, after a bad review or when the stream
  detector asked for a larger model.

The model step reports back with ``accept`` and the tool step with ``tool_results``;
the detectors' graded response reaches it through ``request_escalation``, an operator
through ``force``. Its state is the ``StepSignals`` the policy sees next, kept between
steps (with the per-step fields blank) and checkpointed with every step.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from ..detection._canonical import canonical_arguments
from ..models._messages import ModelResponse, says_nothing
from ._ladder import ModelLadder
from ._policy import StepReview, StepSignals, decision_confidence

__all__ = ["TierChoice", "TierController"]

_KEPT = tuple(f.name for f in fields(StepSignals) if f.name not in ("step", "node", "hint"))
"""The signals kept between steps (the others belong to one step)."""
_MARKUP = re.compile(r"</?tool_(?:call|response)>|^\s*\{\s*\"name\"\s*:")


@dataclass(frozen=True)
class TierChoice:
    """A tier decision with its reason, as the run records it."""

    tier: int
    model: str
    reason: str
    previous: int | None

    @property
    def escalated(self) -> bool:
        return self.previous is not None and self.tier > self.previous


class TierController:
    """Chooses, reviews and escalates the tiers of one run's model steps."""

    def __init__(self, signals: StepSignals | None = None) -> None:
        self.signals = signals or StepSignals(step=0, node="")

    def choose(
        self, ladder: ModelLadder, *, step: int, node: str, hint: int | None = None
    ) -> TierChoice:
        """The tier of the next model step; consumes a forced tier and an escalation request."""
        signals = replace(self.signals, step=step, node=node, hint=hint)
        decision = ladder.policy.choose(signals, len(ladder))
        tier = max(0, min(len(ladder) - 1, decision.tier))
        previous = signals.previous_tier
        if signals.forced is not None or signals.detector_escalate:
            self._update(forced=None, detector_escalate=False)
        choice = TierChoice(tier, ladder.tier_name(tier), decision.reason, previous)
        if choice.escalated and previous is not None:
            self._left(previous)
        return choice

    def review(
        self,
        ladder: ModelLadder,
        tier: int,
        response: ModelResponse,
        *,
        invalid_calls: int,
        tools_offered: bool,
        samples: Sequence[ModelResponse] = (),
    ) -> tuple[str | None, ModelResponse]:
        """Why this turn should be redone one tier up (None to accept it), and the turn.

        ``samples`` are extra self-consistency samples of the same turn: the majority's
        answer is kept, and no majority at all is a reason to escalate.
        """
        disagreement = None
        if samples:
            response, disagreement = _majority([response, *samples])
        review = StepReview(
            tier=tier,
            has_tool_calls=bool(response.tool_calls),
            empty=says_nothing(response.content) and not response.tool_calls,
            truncated=response.finish_reason == "length",
            invalid_calls=invalid_calls,
            confidence=decision_confidence(response),
            tools_offered=tools_offered,
            tools_used_before=self.signals.tools_used,
            disagreement=disagreement,
            echoes_markup=_MARKUP.search(response.content) is not None,
        )
        judge = getattr(ladder.policy, "review", None)
        if not callable(judge):  # a policy written before review() was part of the protocol
            return disagreement, response
        verdict: str | None = judge(review, len(ladder))
        return verdict, response

    def escalate(self, ladder: ModelLadder, tier: int, why: str) -> TierChoice:
        """Redo the current turn one tier up."""
        new = min(tier + 1, len(ladder) - 1)
        self._left(tier)
        return TierChoice(new, ladder.tier_name(new), f"escalate within the step: {why}", tier)

    def can_escalate(self, ladder: ModelLadder, tier: int) -> bool:
        return tier < len(ladder) - 1

    def accept(
        self, ladder: ModelLadder, tier: int, response: ModelResponse, invalid_calls: int
    ) -> None:
        """The model step's turn, as it was accepted."""
        self._update(
            argument_failures=invalid_calls,
            previous_step_ok=not invalid_calls
            and bool(response.content.strip() or response.tool_calls),
            confidence=decision_confidence(response),
            previous_tier=tier,
            top_reached=tier >= len(ladder) - 1,
            tools_used=self.signals.tools_used or bool(response.tool_calls),
        )

    def tool_results(self, calls: int, errors: int) -> None:
        """A tool step's outcome: a step where every call failed extends the error streak."""
        if calls:
            streak = self.signals.tool_error_streak + 1 if errors == calls else 0
            if streak != self.signals.tool_error_streak:
                self._update(tool_error_streak=streak)

    def request_escalation(self, wanted: bool = True) -> None:
        """The detectors' graded response asks for a larger model on the next step
        (``wanted=False`` withdraws the request, once a step answered it itself)."""
        self._update(detector_escalate=wanted)

    def force(self, tier: int) -> None:
        """An operator control: the next model step runs on this tier."""
        self._update(forced=tier)

    @property
    def can_escalate_now(self) -> bool:
        """Whether the latest model step left a larger tier to go to."""
        return self.signals.previous_tier is not None and not self.signals.top_reached

    def to_json(self) -> dict[str, Any]:
        # Written with every step: a shallow copy, not asdict's deep one (a hot spot).
        data = {name: getattr(self.signals, name) for name in _KEPT}
        data["escalated_from"] = dict(self.signals.escalated_from)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TierController:
        known = {k: v for k, v in data.items() if k in _KEPT}
        if "forced_tier" in data:  # a first-wave checkpoint
            known["forced"] = data["forced_tier"]
        known["escalated_from"] = {int(k): v for k, v in data.get("escalated_from", {}).items()}
        return cls(StepSignals(step=0, node="", **known))

    def _update(self, **changes: Any) -> None:
        self.signals = replace(self.signals, **changes)

    def _left(self, tier: int) -> None:
        left = dict(self.signals.escalated_from)
        left[tier] = left.get(tier, 0) + 1
        self._update(escalated_from=left)


def signature(response: ModelResponse) -> str:
    """What two samples must share to count as the same decision."""
    if response.tool_calls:
        return "|".join(
            sorted(f"{c.name}:{canonical_arguments(c.arguments)}" for c in response.tool_calls)
        )
    numbers = re.findall(r"-?\d+(?:[.,]\d+)*", response.content)
    return "text:" + (
        " ".join(n.replace(",", "") for n in numbers)
        or " ".join(response.content.lower().split())[:200]
    )


def _majority(samples: Sequence[ModelResponse]) -> tuple[ModelResponse, str | None]:
    votes = Counter(signature(r) for r in samples)
    best, count = votes.most_common(1)[0]
    if count * 2 <= len(samples):
        reason = f"self-consistency: the {len(samples)} samples disagree (at most {count} alike)"
        return samples[0], reason
    return next(r for r in samples if signature(r) == best), None
