"""Adaptive compute: a ladder of model tiers, the policies that pick one per step, and
the per-run controller that asks them.

The cheapest tier takes every step it can. A step that is going badly (arguments that
failed validation, a detector strike, low confidence at the decision tokens, a streak of
tool errors, an explicit hint) is run on a larger tier; once it succeeds, the run comes
back down. Every choice carries a reason, which the run records.
"""

from ._controller import TierChoice, TierController
from ._ladder import ModelLadder, StepCost, as_ladder, compute_of
from ._policy import (
    DefaultPolicy,
    LadderPolicy,
    StepReview,
    StepSignals,
    TierDecision,
    decision_confidence,
)

__all__ = [
    "DefaultPolicy",
    "LadderPolicy",
    "ModelLadder",
    "StepCost",
    "StepReview",
    "StepSignals",
    "TierChoice",
    "TierController",
    "TierDecision",
    "as_ladder",
    "compute_of",
    "decision_confidence",
]
