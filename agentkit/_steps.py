"""What one model step and one tool step do.

Model step: the ladder's policy picks a tier; the prompt is condensed if it nears the
window; the generation streams through the repetition detector; invalid tool calls go
back to the model with the validation message a limited number of times.

Tool step: every call on the last assistant message runs concurrently, each with its
own timeout; a tool that raises or hangs becomes an observation, never a crash; each
finished call is durable in the store before the step ends (a lone call's result
commits with the step's checkpoint), so a resumed run replays it instead of running
it twice.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from ._context import condense
from ._detect import DetectorConfig, ResponsePlan, Strike, diagnosis
from ._detect_steps import LoopDetector, StepObservation, canonical_arguments
from ._detect_stream import StreamDetector
from ._errors import ConfigError, RunStopped, ToolError
from ._events import (
    BudgetWarning,
    ContextCondensed,
    DetectorStrike,
    Event,
    ModelCalled,
    TierChosen,
    ToolArgumentsRejected,
    ToolCallFinished,
)
from ._graph import CompiledGraph, ModelNode, ToolNode
from ._ladder import ModelLadder, StepReview, StepSignals, as_ladder, decision_confidence
from ._messages import Message, ModelResponse, ToolCall, ToolSpec, Usage
from ._model import ChatModel, Sampling
from ._run import RunCounters
from ._store import Batch, RunStore, ToolResult
from ._tools import Tool, ToolArgumentsError

T = TypeVar("T")
_PROMPT_MARGIN = 16
_MAX_STREAM_RETRIES = 2


@dataclass
class StepContext:
    """Everything a step may read or change for one run."""

    run_id: str
    graph: CompiledGraph[Any]
    store: RunStore
    state: Any
    counters: RunCounters
    loop_detector: LoopDetector
    detectors: DetectorConfig
    responses: ResponsePlan
    wind_down_steps: int
    on_event: Callable[[Event], None] | None = None
    replay: dict[str, tuple[str, bool]] = field(default_factory=dict)
    strikes: list[Strike] = field(default_factory=list)
    can_escalate: bool = False
    """Whether the ladder of the latest model step has a tier above the one used."""
    pending: Batch = field(default_factory=Batch)
    """Deferred writes, made in the transaction of the next write (see ``defer``)."""

    def emit(self, event: Event) -> None:
        """Record an event now, after any deferred writes, and pass it to the callback."""
        self.pending.events.append(event)
        self.flush()

    def defer(self, event: Event) -> None:
        """Record an event with the next write instead of in a transaction of its own.

        Only for events that a write follows before anything slow happens (a model
        call, a tool call, the step's checkpoint), so watchers see them just as soon.
        """
        self.pending.events.append(event)

    def flush(self) -> None:
        if self.pending:
            batch = self.take_pending()
            self.store.write(batch)
            self.notify(batch)

    def take_pending(self) -> Batch:
        """Hand the deferred writes to a store write; ``notify`` them once it commits."""
        batch, self.pending = self.pending, Batch()
        return batch

    def notify(self, batch: Batch) -> None:
        if self.on_event is not None:
            for event in batch.events:
                self.on_event(event)


@dataclass
class StepOutcome:
    """What the store records about a step beyond the new state."""

    model: str | None = None
    tier: int | None = None
    usage: Usage = field(default_factory=Usage)
    seconds: float = 0.0
    compute: float = 0.0
    content: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


# -- threads -------------------------------------------------------------------------

_pools: dict[str, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


async def _in_thread(pool: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``asyncio.to_thread`` on one of the runtime's thread pools, which outlive loops.

    ``Agent.run`` starts a new event loop, and so a new default executor, for every
    run: starting and joining its threads cost more than a step of the executor.
    Model calls and tool calls get separate pools, so tools that hang past their
    timeout (a thread cannot be killed) never hold up the model.
    """
    executor = _pools.get(pool)
    if executor is None:
        with _pools_lock:
            executor = _pools.get(pool)
            if executor is None:
                executor = _pools[pool] = ThreadPoolExecutor(thread_name_prefix=f"agentkit-{pool}")
    context = contextvars.copy_context()
    call = functools.partial(context.run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(executor, call)


# -- model step ----------------------------------------------------------------------


@dataclass
class _Generation:
    """One model turn after its in-step retries, and what it cost."""

    response: ModelResponse
    invalid: list[tuple[ToolCall, str]]
    tier: int
    usage: Usage = field(default_factory=Usage)
    compute: float = 0.0
    saved: int = 0


async def run_model_step(ctx: StepContext, name: str, node: ModelNode) -> StepOutcome:
    c = ctx.counters
    configured = node.model if node.model is not None else ctx.graph.model
    if configured is None:  # build() rejects this; kept for graphs mutated afterwards
        raise ConfigError(f"model node {name!r} has no model")
    ladder = as_ladder(configured)
    tier = _choose_tier(ctx, name, node, ladder)
    steps_left = (ctx.graph.max_steps - c.step) if ctx.graph.max_steps is not None else None
    _warn_budget(ctx, steps_left)
    tools = [] if steps_left == 0 else node.tool_list
    specs = [_spec(t) for t in tools]
    sampling = _resampled(ctx, node.sampling) if c.resample_next else node.sampling
    c.resample_next = False
    started = time.perf_counter()
    total = Usage()
    compute = 0.0
    saved = 0
    while True:
        gen = await _generate(ctx, name, node, ladder, tier, specs, sampling)
        tier = gen.tier
        total, compute, saved = total + gen.usage, compute + gen.compute, saved + gen.saved
        if tier >= len(ladder) - 1:
            break
        # A step going badly is redone on a larger tier before its result is accepted:
        # a final answer ends the run, so waiting for the next step would be too late.
        reason, extra, extra_compute = await _review(ctx, node, ladder, gen, specs, sampling)
        total, compute = total + extra, compute + extra_compute
        if reason is None:
            break
        tier = _escalate_now(ctx, name, ladder, tier, reason)
    model = ladder.model(tier)
    response, invalid = gen.response, gen.invalid
    ctx.state.messages.append(response.as_message())
    c.argument_failures = len(invalid)
    c.previous_step_ok = not invalid and bool(response.content.strip() or response.tool_calls)
    c.confidence = decision_confidence(response)
    c.previous_tier = tier
    ctx.can_escalate = tier < len(ladder) - 1
    c.tiers[str(tier)] = c.tiers.get(str(tier), 0) + 1
    c.add_usage(total)
    c.compute += compute
    c.tokens_saved += saved
    if response.tool_calls:
        c.tools_used = True
    ladder.record_speed(tier, total.evaluated_tokens, total.completion_tokens, total.seconds)
    if not response.tool_calls and "answer" in type(ctx.state).model_fields:
        ctx.state.answer = response.content.strip() or None
    calls = [
        {"id": tc.id, "name": tc.name, "arguments": tc.arguments} for tc in response.tool_calls
    ]
    # Deferred: written with the step's checkpoint, which follows at once.
    ctx.defer(
        ModelCalled(
            run_id=ctx.run_id,
            step=c.step,
            model=model.name,
            tier=tier,
            prompt_tokens=total.prompt_tokens,
            cached_tokens=total.cached_tokens,
            evaluated_tokens=total.evaluated_tokens,
            completion_tokens=total.completion_tokens,
            seconds=total.seconds,
            finish_reason=response.finish_reason,
            content=response.content,
            tool_calls=calls,
            confidence=c.confidence,
            tokens_saved=saved,
        )
    )
    if not response.tool_calls:
        _observe(
            ctx,
            StepObservation(
                index=c.step,
                tool_calls=(),
                results=(),
                content=response.content,
                is_empty=not response.content.strip(),
            ),
        )
    return StepOutcome(
        model=model.name,
        tier=tier,
        usage=total,
        seconds=time.perf_counter() - started,
        compute=compute,
        content=response.content,
        tool_calls=calls,
    )


async def _generate(
    ctx: StepContext,
    name: str,
    node: ModelNode,
    ladder: ModelLadder,
    tier: int,
    specs: list[ToolSpec],
    sampling: Sampling,
) -> _Generation:
    """One turn on one tier, with the retries that stay inside a step: degenerate text
    cut off by the stream detector, and invalid tool arguments sent back to the model."""
    c = ctx.counters
    known = {t.name: t for t in node.tool_list if any(s.name == t.name for s in specs)}
    gen_usage = Usage()
    compute = 0.0
    saved = 0
    stream_retries = argument_attempts = 0
    while True:
        model = ladder.model(tier)
        messages = _prompt(ctx, node, model, specs, sampling)
        stream = StreamDetector(ctx.detectors)
        tripped: list[Strike] = []

        def on_token(
            piece: str, stream: StreamDetector = stream, tripped: list[Strike] = tripped
        ) -> bool:
            strike = stream.feed(piece)
            if strike is not None:
                tripped.append(dataclasses.replace(strike, steps=(c.step,)))
                return True
            return False

        ctx.flush()
        response = await _in_thread(
            "model", model.complete, messages, tools=specs, sampling=sampling, on_token=on_token
        )
        gen_usage = gen_usage + response.usage
        compute += _compute(response.usage, model.parameters)
        _account_top_tier(ctx, ladder, response.usage)
        if tripped:
            saved += max(0, sampling.max_tokens - response.usage.completion_tokens)
        if tripped and not response.tool_calls:
            action = respond_to_strikes(ctx, tripped, can_escalate=tier < len(ladder) - 1)
            if stream_retries < _MAX_STREAM_RETRIES:
                stream_retries += 1
                if action == "resample":
                    sampling = _resampled(ctx, sampling)
                    c.resample_next = False
                elif action == "escalate" and tier < len(ladder) - 1:
                    tier = _escalate_now(ctx, name, ladder, tier, "degenerate text")
                continue
        response = _dedupe_calls(response)
        invalid = _invalid_calls(response, known)
        if invalid and argument_attempts < node.argument_retries:
            argument_attempts += 1
            _send_back(ctx, response, invalid, argument_attempts)
            continue
        return _Generation(response, invalid, tier, gen_usage, compute, saved)


async def _review(
    ctx: StepContext,
    node: ModelNode,
    ladder: ModelLadder,
    gen: _Generation,
    specs: list[ToolSpec],
    sampling: Sampling,
) -> tuple[str | None, Usage, float]:
    """Ask the policy whether this turn should be redone one tier up, and why.

    With ``self_consistency`` above 1, more samples are drawn on the same tier first;
    when no majority agrees with each other the step escalates. Returns the reason (or
    None), and the usage and compute of the extra samples.
    """
    response = gen.response
    extra = Usage()
    extra_compute = 0.0
    disagreement: str | None = None
    if ladder.self_consistency > 1 and not gen.invalid:
        model = ladder.model(gen.tier)
        samples = [response]
        hot = sampling.model_copy(update={"temperature": max(0.7, sampling.temperature)})
        for i in range(1, ladder.self_consistency):
            seeded = hot.model_copy(update={"seed": (sampling.seed or 0) + 101 * i})
            messages = _prompt(ctx, node, model, specs, seeded)
            sample = await _in_thread(
                "model", model.complete, messages, tools=specs, sampling=seeded
            )
            extra = extra + sample.usage
            extra_compute += _compute(sample.usage, model.parameters)
            _account_top_tier(ctx, ladder, sample.usage)
            samples.append(sample)
        votes = Counter(_signature(r) for r in samples)
        best, count = votes.most_common(1)[0]
        if count * 2 <= len(samples):
            disagreement = (
                f"self-consistency: the {len(samples)} samples disagree (at most {count} alike)"
            )
        else:
            gen.response = next(r for r in samples if _signature(r) == best)
    review = StepReview(
        tier=gen.tier,
        has_tool_calls=bool(gen.response.tool_calls),
        empty=not gen.response.content.strip() and not gen.response.tool_calls,
        truncated=gen.response.finish_reason == "length",
        invalid_calls=len(gen.invalid),
        confidence=decision_confidence(gen.response),
        tools_offered=bool(specs),
        tools_used_before=ctx.counters.tools_used,
        disagreement=disagreement,
        echoes_markup=_MARKUP.search(gen.response.content) is not None,
    )
    judge = getattr(ladder.policy, "review", None)
    if callable(judge):
        verdict: str | None = judge(review, len(ladder))
    else:
        verdict = disagreement
    return verdict, extra, extra_compute


_MARKUP = re.compile(r"</?tool_(?:call|response)>|^\s*\{\s*\"name\"\s*:")


def _signature(response: ModelResponse) -> str:
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


def _dedupe_calls(response: ModelResponse) -> ModelResponse:
    """Drop exact repeats of a call within one turn (small models fill every slot)."""
    seen: set[str] = set()
    kept: list[ToolCall] = []
    for call in response.tool_calls:
        key = f"{call.name}:{canonical_arguments(call.arguments)}"
        if key not in seen:
            seen.add(key)
            kept.append(call)
    if len(kept) == len(response.tool_calls):
        return response
    return response.model_copy(update={"tool_calls": tuple(kept)})


@dataclass(frozen=True)
class _SpecKey:
    """What a tool's spec is made from: equal keys give equal specs."""

    name: str
    description: str
    args_model: type[BaseModel]
    tool: Tool = field(compare=False, hash=False)


@functools.lru_cache(maxsize=256)
def _cached_spec(key: _SpecKey) -> ToolSpec:
    return key.tool.spec


def _spec(tool: Tool) -> ToolSpec:
    """``tool.spec``, cached: generating a JSON schema took longer than a whole step."""
    if tool.problems or tool.args_model is None:
        return tool.spec  # raises ConfigError with the problems
    return _cached_spec(_SpecKey(tool.name, tool.description, tool.args_model, tool))


def _choose_tier(ctx: StepContext, name: str, node: ModelNode, ladder: ModelLadder) -> int:
    c = ctx.counters
    signals = StepSignals(
        step=c.step,
        node=name,
        previous_tier=c.previous_tier,
        previous_step_ok=c.previous_step_ok,
        argument_failures=c.argument_failures,
        detector_escalate=c.detector_escalate,
        confidence=c.confidence,
        tool_error_streak=c.tool_error_streak,
        hint=node.tier_hint,
        forced=c.forced_tier,
        escalated_from={int(k): v for k, v in c.escalated_from.items()},
    )
    decision = ladder.policy.choose(signals, len(ladder))
    tier = max(0, min(len(ladder) - 1, decision.tier))
    c.forced_tier = None
    c.detector_escalate = False
    event = TierChosen(
        run_id=ctx.run_id,
        step=c.step,
        node=name,
        tier=tier,
        model=ladder.tier_name(tier),
        reason=decision.reason,
        previous_tier=c.previous_tier,
    )
    if event.escalated and c.previous_tier is not None:
        c.escalations += 1
        _note_escalation(c, c.previous_tier)
    ctx.emit(event)
    return tier


def _note_escalation(c: RunCounters, from_tier: int) -> None:
    c.escalated_from[str(from_tier)] = c.escalated_from.get(str(from_tier), 0) + 1


def _escalate_now(ctx: StepContext, name: str, ladder: ModelLadder, tier: int, why: str) -> int:
    new = tier + 1
    ctx.counters.escalations += 1
    _note_escalation(ctx.counters, tier)
    ctx.emit(
        TierChosen(
            run_id=ctx.run_id,
            step=ctx.counters.step,
            node=name,
            tier=new,
            model=ladder.tier_name(new),
            reason=f"escalate within the step: {why}",
            previous_tier=tier,
        )
    )
    return new


def _warn_budget(ctx: StepContext, steps_left: int | None) -> None:
    """Tell the model once when few steps remain, and again on its very last step."""
    c = ctx.counters
    if steps_left is None or steps_left > ctx.wind_down_steps:
        return
    if steps_left == 0:
        note = (
            "[agentkit] This is your last step: no more tools. Give your final answer "
            "now, with what you have found so far."
        )
    elif not c.budget_warned:
        note = (
            f"[agentkit] Only {steps_left + 1} steps left. Finish soon: give your final "
            "answer as soon as you can."
        )
    else:
        return
    c.budget_warned = True
    ctx.state.messages.append(Message.user(note))
    ctx.emit(BudgetWarning(run_id=ctx.run_id, step=c.step, steps_left=steps_left))


def _prompt(
    ctx: StepContext, node: ModelNode, model: ChatModel, specs: list[Any], sampling: Sampling
) -> list[Message]:
    system = [Message.system(node.system_prompt)] if node.system_prompt else []
    budget = model.context_size - sampling.max_tokens - _PROMPT_MARGIN
    messages = [*system, *ctx.state.messages]
    condensed = condense(messages, lambda ms: model.count_tokens(ms, specs), budget)
    if condensed is None:
        return messages
    ctx.state.messages = condensed.messages[len(system) :]
    ctx.emit(
        ContextCondensed(
            run_id=ctx.run_id,
            step=ctx.counters.step,
            tokens_before=condensed.tokens_before,
            tokens_after=condensed.tokens_after,
            messages_condensed=condensed.folded,
        )
    )
    return condensed.messages


def _invalid_calls(response: ModelResponse, known: dict[str, Tool]) -> list[tuple[ToolCall, str]]:
    invalid: list[tuple[ToolCall, str]] = []
    for call in response.tool_calls:
        tool = known.get(call.name)
        if tool is None:
            names = ", ".join(sorted(known)) or "none"
            invalid.append((call, f"there is no tool named {call.name!r}; available: {names}"))
            continue
        try:
            tool.validate(call.arguments)
        except ToolArgumentsError as exc:
            invalid.append((call, exc.feedback))
    return invalid


def _send_back(
    ctx: StepContext, response: ModelResponse, invalid: list[tuple[ToolCall, str]], attempt: int
) -> None:
    """Show the model its invalid calls and why, so the next attempt can fix them."""
    ctx.state.messages.append(response.as_message())
    bad = {call.id: feedback for call, feedback in invalid}
    for call in response.tool_calls:
        if call.id in bad:
            text = f"Error: invalid call, not executed: {bad[call.id]}. Fix it and call again."
            ctx.emit(
                ToolArgumentsRejected(
                    run_id=ctx.run_id,
                    step=ctx.counters.step,
                    name=call.name,
                    arguments=call.arguments,
                    feedback=bad[call.id],
                    attempt=attempt,
                )
            )
        else:
            text = "Not executed: another call in the same turn was invalid. Call it again."
        ctx.state.messages.append(Message.tool(call, text))


def _resampled(ctx: StepContext, sampling: Sampling) -> Sampling:
    """Different sampling for a retry: hotter, wider, another seed."""
    plan = ctx.responses.resample
    ctx.counters.resamples += 1
    return sampling.model_copy(
        update={
            "temperature": max(plan.temperature, sampling.temperature),
            "top_k": max(sampling.top_k, plan.top_k),
            "top_p": plan.top_p,
            "repeat_penalty": max(sampling.repeat_penalty, plan.repeat_penalty),
            "seed": plan.seed(sampling.seed or 0, ctx.counters.resamples),
        }
    )


def _compute(usage: Usage, parameters: int) -> float:
    """Billions of parameters times the tokens that went through the model."""
    return (usage.evaluated_tokens + usage.completion_tokens) * parameters / 1e9


def _account_top_tier(ctx: StepContext, ladder: ModelLadder, usage: Usage) -> None:
    top = len(ladder) - 1
    params = ladder.tier_parameters(top)
    ctx.counters.top_tier_compute += _compute(usage, params)
    ctx.counters.top_tier_seconds += ladder.estimated_seconds(
        top, usage.evaluated_tokens, usage.completion_tokens
    )


# -- tool step -----------------------------------------------------------------------


async def run_tool_step(ctx: StepContext, node: ToolNode) -> StepOutcome:
    c = ctx.counters
    last = ctx.state.messages[-1] if ctx.state.messages else None
    calls: tuple[ToolCall, ...] = (
        last.tool_calls if last is not None and last.role == "assistant" else ()
    )
    tools = {t.name: t for t in node.tool_list}
    started = time.perf_counter()
    results: list[tuple[str, bool]]
    if len(calls) == 1:  # the common case, without gather's task
        results = [await _run_call(ctx, tools, calls[0], only=True)]
    else:
        results = await asyncio.gather(*(_run_call(ctx, tools, call, only=False) for call in calls))
    for call, (text, _) in zip(calls, results, strict=True):
        ctx.state.messages.append(Message.tool(call, text))
    if calls:
        errors = sum(1 for _, is_error in results if is_error)
        c.tool_error_streak = c.tool_error_streak + 1 if errors == len(calls) else 0
        _observe(
            ctx,
            StepObservation(
                index=c.step,
                tool_calls=tuple((call.name, call.arguments) for call in calls),
                results=tuple(results),
                content=last.content if last else "",
                is_empty=False,
            ),
        )
    return StepOutcome(
        seconds=time.perf_counter() - started,
        tool_calls=[
            {
                "id": call.id,
                "name": call.name,
                "arguments": call.arguments,
                "result": text,
                "is_error": is_error,
            }
            for call, (text, is_error) in zip(calls, results, strict=True)
        ],
    )


def _call_finished(
    ctx: StepContext,
    call: ToolCall,
    text: str,
    is_error: bool,
    *,
    seconds: float = 0.0,
    replayed: bool = False,
) -> ToolCallFinished:
    return ToolCallFinished(
        run_id=ctx.run_id,
        step=ctx.counters.step,
        call_id=call.id,
        name=call.name,
        arguments=call.arguments,
        result=text,
        is_error=is_error,
        seconds=seconds,
        replayed=replayed,
    )


async def _run_call(
    ctx: StepContext, tools: dict[str, Tool], call: ToolCall, *, only: bool
) -> tuple[str, bool]:
    step = ctx.counters.step
    if call.id in ctx.replay:
        text, is_error = ctx.replay[call.id]
        ctx.emit(_call_finished(ctx, call, text, is_error, replayed=True))
        return text, is_error
    batch = ctx.take_pending()
    ctx.store.tool_call_started(ctx.run_id, step, call.id, call.name, call.arguments, batch=batch)
    ctx.notify(batch)
    started = time.perf_counter()
    text, is_error = await _invoke(tools, call)
    seconds = time.perf_counter() - started
    ctx.pending.results.append(ToolResult(ctx.run_id, call.id, text, is_error, seconds))
    ctx.defer(_call_finished(ctx, call, text, is_error, seconds=seconds))
    if not only:
        # Other calls of the step may run on for a long time: commit this one now.
        # A lone call commits with the step's checkpoint, which follows at once.
        ctx.flush()
    return text, is_error


async def _call_tool(tool: Tool, arguments: dict[str, Any]) -> Any:
    """``Tool.ainvoke``, with sync functions on the runtime's tool threads."""
    if tool.is_async:
        return await tool.ainvoke(arguments)
    parsed = tool.validate(arguments)
    return await _in_thread(
        "tools", tool.fn, **{k: getattr(parsed, k) for k in type(parsed).model_fields}
    )


async def _invoke(tools: dict[str, Tool], call: ToolCall) -> tuple[str, bool]:
    tool = tools.get(call.name)
    if tool is None:
        return (
            f"Error: there is no tool named {call.name!r}; available: "
            f"{', '.join(sorted(tools)) or 'none'}"
        ), True
    try:
        result = await asyncio.wait_for(_call_tool(tool, call.arguments), tool.timeout)
    except ToolArgumentsError as exc:
        return f"Error: invalid arguments: {exc.feedback}", True
    except ToolError as exc:
        return f"Error: {exc}", True
    except asyncio.TimeoutError:
        return (
            f"Error: {call.name} did not finish within {tool.timeout:g} s and was "
            "abandoned; try a smaller request or another approach"
        ), True
    except Exception as exc:  # a tool's own bug or failure is an observation
        return f"Error: {call.name} failed: {type(exc).__name__}: {exc}", True
    return tool.render(result), False


# -- detectors ------------------------------------------------------------------------


def _observe(ctx: StepContext, observation: StepObservation) -> None:
    strikes = ctx.loop_detector.observe(observation)
    if strikes:
        respond_to_strikes(ctx, strikes, can_escalate=ctx.can_escalate)


def respond_to_strikes(ctx: StepContext, strikes: list[Strike], *, can_escalate: bool) -> str:
    """Apply one graded response to the strikes a step earned, and record each strike.

    Several detectors often fire on the same repetition; they count as one strike of
    the run, so one bad step cannot use up the whole plan at once.
    """
    c = ctx.counters
    c.strikes += 1
    ctx.strikes.extend(strikes)
    action = ctx.responses.next_response(c.strikes, can_escalate)
    for strike in strikes:
        ctx.emit(
            DetectorStrike(
                run_id=ctx.run_id,
                step=c.step,
                detector=strike.detector,
                message=strike.message,
                window=strike.window,
                steps=list(strike.steps),
                response=action,
            )
        )
        c.strike_log.append(
            {"detector": strike.detector, "steps": list(strike.steps), "response": action}
        )
    if action == "stop":
        raise RunStopped(diagnosis(ctx.strikes), run_id=ctx.run_id, step=c.step)
    if action == "nudge":
        text = " ".join(dict.fromkeys(s.message for s in strikes))
        ctx.state.messages.append(Message.user(f"[agentkit] {text}"))
    elif action == "resample":
        c.resample_next = True
    elif action == "escalate":
        c.detector_escalate = True
    return action
