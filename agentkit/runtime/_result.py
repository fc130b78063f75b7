"""What a step did (``StepRecord``), what a run has spent (``RunTotals``), how it ended
(``RunResult``).

A step returns a ``StepRecord``; the executor adds it to the run's ``RunTotals``, the one
place totals are kept, and the store keeps a copy of them with each step's checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from ..models._messages import Usage

S = TypeVar("S", bound=BaseModel)

EXIT_CODES = {
    "succeeded": 0,
    "failed": 1,
    "budget_exhausted": 3,
    "stopped": 4,
    "aborted": 5,
    "timed_out": 6,
}


@dataclass
class StepRecord:
    """What one step did, returned by the step and recorded by the executor."""

    state: Any
    """The run's state after the step."""
    kind: str = "function"
    """"model", "tool" or "function", as the node's kind."""
    model: str | None = None
    tier: int | None = None
    usage: Usage = field(default_factory=Usage)
    model_calls: int = 0
    """Generations, counting in-step retries, extra samples and escalations."""
    compute: float = 0.0
    top_tier_compute: float = 0.0
    """Estimate: the same tokens on the ladder's largest tier."""
    top_tier_seconds: float = 0.0
    """Estimate: the same tokens' seconds on the ladder's largest tier."""
    escalations: int = 0
    strikes: int = 0
    """Strikes of the run answered in this step (several detectors firing count once)."""
    tokens_saved: int = 0
    """Generation budget left unspent because the stream detector stopped a loop."""
    content: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    tool_errors: int = 0
    stop: str | None = None
    """A diagnosis when a detector's graded response reached "stop": the run ends here."""


@dataclass
class RunTotals:
    """Everything a run has spent so far; checkpointed with each step."""

    steps: int = 0
    model_steps: int = 0
    model_calls: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    evaluated_tokens: int = 0
    completion_tokens: int = 0
    model_seconds: float = 0.0
    """Seconds spent inside model calls (prompt evaluation and generation)."""
    compute: float = 0.0
    top_tier_compute: float = 0.0
    top_tier_seconds: float = 0.0
    escalations: int = 0
    strikes: int = 0
    tokens_saved: int = 0
    tiers: dict[str, int] = field(default_factory=dict)
    """Model steps per model name."""
    tier_steps: dict[str, int] = field(default_factory=dict)
    """Model steps per tier index ("0" is the cheapest), as the monitor shows them."""

    def add(self, record: StepRecord, step: int) -> None:
        self.steps = step
        u = record.usage
        self.prompt_tokens += u.prompt_tokens
        self.cached_tokens += u.cached_tokens
        self.evaluated_tokens += u.evaluated_tokens
        self.completion_tokens += u.completion_tokens
        self.model_seconds += u.seconds
        self.model_calls += record.model_calls
        self.compute += record.compute
        self.top_tier_compute += record.top_tier_compute
        self.top_tier_seconds += record.top_tier_seconds
        self.escalations += record.escalations
        self.strikes += record.strikes
        self.tokens_saved += record.tokens_saved
        if record.kind == "tool":
            self.tool_calls += len(record.tool_calls)
        self.tool_errors += record.tool_errors
        if record.model is not None and record.tier is not None:
            self.model_steps += 1
            self.tiers[record.model] = self.tiers.get(record.model, 0) + 1
            key = str(record.tier)
            self.tier_steps[key] = self.tier_steps.get(key, 0) + 1

    @property
    def usage(self) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens,
            cached_tokens=self.cached_tokens,
            evaluated_tokens=self.evaluated_tokens,
            completion_tokens=self.completion_tokens,
            seconds=self.model_seconds,
        )

    def to_json(self) -> dict[str, Any]:
        # Written with every step: a shallow copy, not asdict's deep one (a hot spot).
        data = {name: getattr(self, name) for name in _TOTAL_FIELDS}
        data["tiers"], data["tier_steps"] = dict(self.tiers), dict(self.tier_steps)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunTotals:
        names = {f.name for f in fields(cls)}
        totals = cls(**{k: v for k, v in data.items() if k in names})
        if "tier_steps" not in data and data.get("tiers"):
            # A first-wave checkpoint keyed its tiers by index; keep them where they belong.
            totals.tier_steps, totals.tiers = dict(data["tiers"]), {}
        return totals


_TOTAL_FIELDS = tuple(f.name for f in fields(RunTotals))


@dataclass(frozen=True)
class RunResult(Generic[S]):
    """How a run ended. ``answer`` holds a partial result when the budget ran out."""

    run_id: str
    status: str
    answer: str | None
    state: S = field(repr=False)
    steps: int
    """Every step: model, tool and function steps."""
    usage: Usage
    compute: float
    """Billions of parameters times tokens evaluated or generated, summed over steps.
    Prompt tokens reused from the KV cache are not compute."""
    top_tier_compute: float
    """Estimate: the same tokens had every model step run on the ladder's largest tier.
    A real always-largest run usually takes other (often fewer) steps; the benchmarks
    compare against measured runs."""
    top_tier_seconds: float
    """Estimate: model seconds of the same tokens on the largest tier."""
    escalations: int
    tiers: dict[str, int]
    """Model steps per model name."""
    strikes: int
    tokens_saved: int
    seconds: float
    model_steps: int = 0
    model_calls: int = 0
    """Generations, counting in-step retries, samples and escalations."""
    tool_calls: int = 0
    tool_errors: int = 0
    diagnosis: str | None = None
    error: str | None = None

    @classmethod
    def from_totals(
        cls,
        totals: RunTotals,
        *,
        run_id: str,
        status: str,
        answer: str | None,
        state: S,
        seconds: float,
        diagnosis: str | None = None,
        error: str | None = None,
    ) -> RunResult[S]:
        return cls(
            run_id=run_id,
            status=status,
            answer=answer,
            state=state,
            steps=totals.steps,
            usage=totals.usage,
            compute=totals.compute,
            top_tier_compute=totals.top_tier_compute,
            top_tier_seconds=totals.top_tier_seconds,
            escalations=totals.escalations,
            tiers=dict(totals.tiers),
            strikes=totals.strikes,
            tokens_saved=totals.tokens_saved,
            seconds=seconds,
            model_steps=totals.model_steps,
            model_calls=totals.model_calls,
            tool_calls=totals.tool_calls,
            tool_errors=totals.tool_errors,
            diagnosis=diagnosis,
            error=error,
        )

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    @property
    def exit_code(self) -> int:
        """0 on success; non-zero for every other ending (for CLIs and scripts)."""
        return EXIT_CODES.get(self.status, 1)

    @property
    def compute_ratio(self) -> float | None:
        """Compute spent relative to the estimate for the largest tier (see top_tier_compute)."""
        return self.compute / self.top_tier_compute if self.top_tier_compute else None

    def summary(self) -> str:
        u = self.usage
        lines = [
            f"run {self.run_id}: {self.status} after {self.steps} steps in {self.seconds:.1f} s",
            f"answer: {self.answer if self.answer is not None else '(none)'}",
            f"steps: {self.model_steps} model ({self.model_calls} model calls), "
            f"{self.tool_calls} tool calls ({self.tool_errors} errors)",
            f"tokens: {u.prompt_tokens} prompt ({u.cached_tokens} reused from cache, "
            f"{u.evaluated_tokens} evaluated), {u.completion_tokens} generated",
            f"models used: {_tiers(self.tiers)}; escalations: {self.escalations}; "
            f"detector strikes: {self.strikes}",
        ]
        if self.top_tier_compute:
            lines.append(
                f"compute: {self.compute:.3f} B-params x tokens (estimate for the same "
                f"tokens on the largest tier: {self.top_tier_compute:.3f})"
            )
        if self.diagnosis:
            lines.append(f"diagnosis: {self.diagnosis}")
        if self.error:
            lines.append(f"error: {self.error}")
        return "\n".join(lines)


def _tiers(tiers: dict[str, int]) -> str:
    return ", ".join(f"{k} x{v}" for k, v in tiers.items()) or "none"
