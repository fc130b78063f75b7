"""Running agent suites under model configurations, and reading why runs failed.

A *case* is one task with its tools, its system prompt and a checker of the outcome; a
*configuration* is the model side: always the small model, always the large one, the
ladder over both, or (for question-answer suites) one plain completion of the small
model with no tools at all. Every run is written to one run store, and why a run failed
is read back from its stored events (``cause``), so the error analysis is what the store
says, not what the harness remembers.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentkit import (
    Agent,
    ChatModel,
    Event,
    Message,
    ModelLadder,
    RunStore,
    Sampling,
    Tool,
)
from agentkit.events import (
    DetectorStrike,
    ModelCalled,
    TierChosen,
    ToolCallFinished,
)
from agentkit.ladder import LadderPolicy, compute_of

if TYPE_CHECKING:  # not imported at run time: the harness also measures older commits
    from agentkit import ToolChoice

SMALL = "qwen2.5-coder-0.5b-instruct"
LARGE = "qwen2.5-coder-1.5b-instruct"
CONFIGS = ("plain", "small", "large", "ladder")
LABELS = {
    "plain": "one plain completion, 0.5B, no tools",
    "small": "always 0.5B (agentkit)",
    "large": "always 1.5B (agentkit)",
    "ladder": "ladder 0.5B -> 1.5B (agentkit)",
}


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str


@dataclass(frozen=True)
class Case:
    """One task of a suite, ready to run in a fresh folder."""

    id: str
    suite: str
    split: str
    """``train`` (what calibration may see) or ``test`` (held out)."""
    kind: str
    prompt: str
    system_prompt: str
    setup: Callable[[Path], tuple[list[Tool], Callable[[str | None], Check]]]
    """Tools for a fresh instance in an empty folder, and the checker of its answer."""
    plain_prompt: str | None = None
    """The system prompt of the tool-less baseline, where the suite has one."""
    max_steps: int = 20
    max_tokens: int = 512


@dataclass
class Row:
    """One case under one configuration."""

    case: str
    suite: str
    split: str
    kind: str
    config: str
    solved: bool
    status: str
    detail: str
    answer: str | None
    seconds: float
    steps: int = 0
    model_steps: int = 0
    model_calls: int = 0
    tool_calls: int = 0
    compute: float = 0.0
    compute_by_model: dict[str, float] = field(default_factory=dict)
    top_tier_estimate: float = 0.0
    evaluated_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    escalations: int = 0
    strikes: int = 0
    answer_requests: int = 0
    cause: str | None = None
    run_id: str | None = None
    escalation_reasons: list[str] = field(default_factory=list)
    confidences: list[float | None] = field(default_factory=list)
    """Decision confidence of each model call, in order (the last one is the answer's)."""
    last_prompt_tokens: int = 0
    """Prompt tokens of the last model call: what escalating the answer would evaluate."""


@dataclass
class Setup:
    """The shared models and settings of one benchmark run."""

    models: dict[str, ChatModel]
    store: RunStore
    sampling: Sampling = field(default_factory=lambda: Sampling(temperature=0.0, max_tokens=512))
    policy: LadderPolicy | None = None
    tool_choice: ToolChoice | None = None


def _model_for(config: str, setup: Setup) -> ChatModel | ModelLadder:
    if config == "small":
        return setup.models[SMALL]
    if config == "large":
        return setup.models[LARGE]
    tiers = [setup.models[SMALL], setup.models[LARGE]]
    return ModelLadder(tiers, policy=setup.policy) if setup.policy else ModelLadder(tiers)


def run_case(case: Case, config: str, setup: Setup) -> Row:
    """Run one case under one configuration; never raises for a failing run."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{case.id}-") as folder:
        tools, check = case.setup(Path(folder))
        if config == "plain":
            return _plain(case, tools, check, setup)
        # tool_choice only when set: the harness also measures commits from before it.
        extra: dict[str, Any] = {"tool_choice": setup.tool_choice} if setup.tool_choice else {}
        agent: Agent[Any] = Agent(
            _model_for(config, setup),
            tools=tools,
            system_prompt=case.system_prompt,
            name=f"bench-{case.suite}-{case.id}",
            max_steps=case.max_steps,
            sampling=setup.sampling.model_copy(update={"max_tokens": case.max_tokens}),
            store=setup.store,
            **extra,
        )
        started = time.perf_counter()
        try:
            result = agent.run(case.prompt)
        except Exception as exc:  # a runtime bug: record it and go on with the suite
            return Row(
                case.id,
                case.suite,
                case.split,
                case.kind,
                config,
                False,
                "crashed",
                f"{type(exc).__name__}: {exc}",
                None,
                time.perf_counter() - started,
                cause="runtime error",
            )
        verdict = check(result.answer)
    events = [e for _, e in setup.store.events(result.run_id)]
    row = Row(
        case=case.id,
        suite=case.suite,
        split=case.split,
        kind=case.kind,
        config=config,
        solved=result.ok and verdict.ok,
        status=result.status,
        detail=verdict.detail if result.ok else (result.error or result.diagnosis or ""),
        answer=(result.answer or "")[:240] or None,
        seconds=round(result.seconds, 3),
        steps=result.steps,
        model_steps=result.model_steps,
        model_calls=result.model_calls,
        tool_calls=result.tool_calls,
        compute=result.compute,
        compute_by_model=_compute_by_model(events, setup.models),
        top_tier_estimate=result.top_tier_compute,
        evaluated_tokens=result.usage.evaluated_tokens,
        cached_tokens=result.usage.cached_tokens,
        completion_tokens=result.usage.completion_tokens,
        escalations=result.escalations,
        strikes=result.strikes,
        answer_requests=sum(e.type == "answer_requested" for e in events),
        run_id=result.run_id,
        escalation_reasons=[
            f"{e.previous_tier}->{e.tier}: {e.reason}"
            for e in events
            if isinstance(e, TierChosen) and e.escalated
        ],
    )
    called = [e for e in events if isinstance(e, ModelCalled)]
    row.confidences = [round(e.confidence, 4) if e.confidence is not None else None for e in called]
    row.last_prompt_tokens = called[-1].prompt_tokens if called else 0
    row.cause = cause(row, events)
    return row


def _compute_by_model(events: Sequence[Event], models: dict[str, ChatModel]) -> dict[str, float]:
    by: Counter[str] = Counter()
    params = {m.name: m.parameters for m in models.values()}
    for e in events:
        if isinstance(e, ModelCalled):
            by[e.model] += (e.evaluated_tokens + e.completion_tokens) * params.get(e.model, 0) / 1e9
    return {k: round(v, 3) for k, v in by.items()}


def _plain(
    case: Case, tools: list[Tool], check: Callable[[str | None], Check], setup: Setup
) -> Row:
    """One completion of the small model with no tools: the baseline of QA suites."""
    model = setup.models[SMALL]
    system = case.plain_prompt or case.system_prompt
    started = time.perf_counter()
    sampling = setup.sampling.model_copy(update={"max_tokens": case.max_tokens})
    response = model.complete(
        [Message.system(system), Message.user(case.prompt)], sampling=sampling
    )
    verdict = check(response.content)
    u = response.usage
    return Row(
        case.id,
        case.suite,
        case.split,
        case.kind,
        "plain",
        verdict.ok,
        "succeeded" if response.content.strip() else "failed",
        verdict.detail,
        response.content[:240] or None,
        round(time.perf_counter() - started, 3),
        steps=1,
        model_steps=1,
        model_calls=1,
        compute=compute_of(u, model.parameters),
        compute_by_model={model.name: round(compute_of(u, model.parameters), 3)},
        evaluated_tokens=u.evaluated_tokens,
        cached_tokens=u.cached_tokens,
        completion_tokens=u.completion_tokens,
        cause=None if verdict.ok else "wrong answer (no tools)",
    )


# -- why a run failed, from its stored events -----------------------------------------------

CAUSES = (
    "runtime error",
    "final answer is tool markup",
    "model error or empty reply",
    "stopped by the loop detectors",
    "step budget spent",
    "runtime note copied into the answer",
    "answered without calling a tool",
    "tool errors, then a wrong answer",
    "answer is not the last tool result",
    "wrong tool inputs (answer is the last result)",
    "wrong answer (no tools)",
)
_NOTE_WORDS = re.compile(r"\[agentkit\]|Do not call a tool again|steps left|your final answer now")


def cause(row: Row, events: Sequence[Event]) -> str | None:
    """Why a run did not solve its case, one of ``CAUSES`` (None when it did)."""
    if row.solved:
        return None
    if row.status == "crashed":
        return CAUSES[0]
    if row.status == "failed":
        return CAUSES[1] if "markup" in row.detail else CAUSES[2]
    if row.status == "stopped":
        detectors = Counter(e.detector for e in events if isinstance(e, DetectorStrike))
        top = detectors.most_common(1)[0][0] if detectors else "?"
        return f"{CAUSES[3]} ({top})"
    if row.status == "budget_exhausted":
        return CAUSES[4]
    if row.answer and _NOTE_WORDS.search(row.answer):
        return CAUSES[5]
    results = [e for e in events if isinstance(e, ToolCallFinished)]
    if not results:
        return CAUSES[6]
    ok_results = [e.result for e in results if not e.is_error]
    if not ok_results:
        return CAUSES[7]
    last = " ".join(ok_results[-1].split())
    if last and row.answer and last in " ".join(row.answer.split()):
        return CAUSES[9]
    return CAUSES[8]


# -- summaries --------------------------------------------------------------------------------


def totals(rows: Sequence[Row]) -> dict[str, Any]:
    """Solved, cost and cost per solved task over some rows."""
    n, solved = len(rows), sum(r.solved for r in rows)
    compute = sum(r.compute for r in rows)
    seconds = sum(r.seconds for r in rows)
    finished = sum(r.status == "succeeded" for r in rows)
    return {
        "cases": n,
        "solved": solved,
        "solved_rate": solved / n if n else 0.0,
        "finished_with_answer": finished,
        "finished_rate": finished / n if n else 0.0,
        "compute": round(compute, 3),
        "seconds": round(seconds, 2),
        "compute_per_solved": round(compute / solved, 3) if solved else None,
        "seconds_per_solved": round(seconds / solved, 2) if solved else None,
        "escalations": sum(r.escalations for r in rows),
        "answer_requests": sum(r.answer_requests for r in rows),
        "model_calls": sum(r.model_calls for r in rows),
        "statuses": dict(Counter(r.status for r in rows)),
        "causes": dict(Counter(r.cause for r in rows if r.cause).most_common()),
    }
