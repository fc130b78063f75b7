"""Per-run state that is not the user's: counters, signals and the run's result.

Everything here is plain data so it can be checkpointed with each step and a killed
run resumes with the same counters.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from ._messages import Usage

S = TypeVar("S", bound=BaseModel)

EXIT_CODES = {
    "succeeded": 0,
    "failed": 1,
    "budget_exhausted": 3,
    "stopped": 4,
    "aborted": 5,
}


@dataclass
class RunCounters:
    """Checkpointed alongside the state after every step."""

    step: int = 0
    node: str = ""
    previous_tier: int | None = None
    previous_step_ok: bool = True
    argument_failures: int = 0
    detector_escalate: bool = False
    confidence: float | None = None
    tool_error_streak: int = 0
    forced_tier: int | None = None
    strikes: int = 0
    resample_next: bool = False
    tools_used: bool = False
    escalated_from: dict[str, int] = field(default_factory=dict)
    resamples: int = 0
    budget_warned: bool = False
    escalations: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    evaluated_tokens: int = 0
    completion_tokens: int = 0
    model_seconds: float = 0.0
    tokens_saved: int = 0
    compute: float = 0.0
    top_tier_compute: float = 0.0
    top_tier_seconds: float = 0.0
    tiers: dict[str, int] = field(default_factory=dict)
    strike_log: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunCounters:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def add_usage(self, usage: Usage) -> None:
        self.prompt_tokens += usage.prompt_tokens
        self.cached_tokens += usage.cached_tokens
        self.evaluated_tokens += usage.evaluated_tokens
        self.completion_tokens += usage.completion_tokens
        self.model_seconds += usage.seconds


@dataclass(frozen=True)
class RunResult(Generic[S]):
    """How a run ended. ``answer`` holds a partial result when the budget ran out."""

    run_id: str
    status: str
    answer: str | None
    state: S = field(repr=False)
    steps: int
    usage: Usage
    compute: float
    """Billions of parameters times tokens evaluated or generated, summed over steps."""
    top_tier_compute: float
    """The same figure had every model step run on the ladder's largest tier."""
    top_tier_seconds: float
    """Estimated model seconds had every model step run on the largest tier."""
    escalations: int
    tiers: dict[str, int]
    strikes: int
    tokens_saved: int
    seconds: float
    diagnosis: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    @property
    def exit_code(self) -> int:
        """0 on success; non-zero for every other ending (for CLIs and scripts)."""
        return EXIT_CODES.get(self.status, 1)

    @property
    def compute_ratio(self) -> float | None:
        """Compute spent relative to always using the largest tier."""
        return self.compute / self.top_tier_compute if self.top_tier_compute else None

    def summary(self) -> str:
        u = self.usage
        lines = [
            f"run {self.run_id}: {self.status} after {self.steps} steps in {self.seconds:.1f} s",
            f"answer: {self.answer if self.answer is not None else '(none)'}",
            f"tokens: {u.prompt_tokens} prompt ({u.cached_tokens} reused from cache), "
            f"{u.completion_tokens} generated",
            f"tiers used: {_tiers(self.tiers)}; escalations: {self.escalations}; "
            f"detector strikes: {self.strikes}",
        ]
        if self.compute_ratio is not None:
            lines.append(
                f"compute: {self.compute:.3f} (largest tier alone: "
                f"{self.top_tier_compute:.3f}, ratio {self.compute_ratio:.0%})"
            )
        if self.diagnosis:
            lines.append(f"diagnosis: {self.diagnosis}")
        if self.error:
            lines.append(f"error: {self.error}")
        return "\n".join(lines)


def _tiers(tiers: dict[str, int]) -> str:
    return ", ".join(f"tier {k} x{v}" for k, v in sorted(tiers.items())) or "none"
