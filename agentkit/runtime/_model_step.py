"""What one model step does, from choosing its tier to the record it returns.

    choose the tier (the run's tier controller)
    warn the model when few steps remain
    generate: the turn streams through the repetition detector; loops and invalid
              arguments are answered inside the step (see ``_generate``)
    review: below the top tier, the controller may redo the turn one tier up
    accept: the turn joins the conversation; a text-only reply goes to the loop detector

The step writes nothing itself: its events go to the run's recorder and what it did
comes back as a ``StepRecord``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .._errors import ConfigError
from ..detection._canonical import StepObservation
from ..events import BudgetWarning, ModelCalled
from ..ladder._ladder import as_ladder
from ..ladder._policy import decision_confidence, format_below
from ..models._markup import looks_like_markup
from ..models._messages import ModelResponse, ToolSpec, says_nothing
from ..models._protocol import Sampling
from ._answer_now import clean_answer, pointless_calls, runtime_note
from ._context import RunContext
from ._filtering import screen_output
from ._generate import (
    Generation,
    Turn,
    answer_now,
    decline,
    generate,
    read_markup,
    resampled,
    system_messages,
    text_only,
    tool_spec,
)
from ._graph import ModelNode
from ._result import StepRecord
from ._strikes import carry_out
from ._threads import in_thread

__all__ = ["run_model_step"]


async def run_model_step(ctx: RunContext, state: Any, name: str, node: ModelNode) -> StepRecord:
    configured = node.model if node.model is not None else ctx.graph.model
    if configured is None:  # build() rejects this; kept for graphs mutated afterwards
        raise ConfigError(f"model node {name!r} has no model")
    ladder = as_ladder(configured)
    turn = Turn(ctx, name, node, ladder, list(state.messages))
    tier = turn.choose(ctx.tiers.choose(ladder, step=ctx.step, node=name, hint=node.tier_hint))
    steps_left = (ctx.graph.max_steps - ctx.step) if ctx.graph.max_steps is not None else None
    # A call takes a tool step, and its results a model step to read them: with fewer than
    # two steps after this one, a call could only end the run with its budget spent, so
    # this is the model's last chance to answer. The tools stay in the prompt (its cached
    # prefix is unchanged); the turn may only answer in text.
    last_chance = steps_left is not None and steps_left <= 1
    _warn_budget(turn, steps_left, last_chance)
    specs = [tool_spec(t) for t in node.tool_list]
    final = bool(specs) and last_chance
    sampling = node.sampling
    if ctx.strikes.resample_next:
        sampling = resampled(ctx, sampling)
        ctx.strikes.resample_next = False
    gen = await _turn_with_reviews(turn, tier, specs, sampling, final)
    # Output filters, before the turn is recorded; a refused turn is redone from here.
    gen = await screen_output(
        turn, gen, lambda t: _turn_with_reviews(turn, t, specs, sampling, final)
    )
    return _accept(turn, state, gen)


async def _turn_with_reviews(
    turn: Turn, tier: int, specs: list[ToolSpec], sampling: Sampling, final: bool = False
) -> Generation:
    """Generate and get the answer out; below the top tier, let the controller redo a bad
    turn one tier up. A ``final`` turn answers in text with the tools off."""
    ctx, ladder = turn.ctx, turn.ladder
    while True:
        if final:
            gen = await generate(turn, tier, specs, sampling, text_only(turn))
        elif specs and ctx.strikes.answer_now_next:
            ctx.strikes.answer_now_next = False
            gen = await answer_now(turn, tier, specs, sampling, "a detector strike: answer now")
        else:
            gen = await generate(turn, tier, specs, sampling)
            if turn.stop is None and specs and turn.node.answer_now:
                gen = await _answer_out(turn, gen, specs, sampling)
        if turn.stop is not None or not ctx.tiers.can_escalate(ladder, gen.tier):
            return gen
        samples = await _samples(turn, gen, specs, sampling)
        reason, gen.response = ctx.tiers.review(
            ladder,
            gen.tier,
            gen.response,
            invalid_calls=len(gen.invalid),
            tools_offered=bool(specs) and not final,
            samples=samples,
        )
        if reason is None:
            return gen
        tier = turn.choose(ctx.tiers.escalate(ladder, gen.tier, reason))


async def _answer_out(
    turn: Turn, gen: Generation, specs: list[ToolSpec], sampling: Sampling
) -> Generation:
    """A turn whose calls would add nothing, or whose answer is call markup, is redone
    with the tools off; markup that holds real calls is read as those calls."""
    response = gen.response
    floor = turn.node.tool_choice.min_call_confidence
    if response.tool_calls and floor > 0 and not any(m.role == "tool" for m in turn.messages):
        confidence = decision_confidence(response)
        if confidence is not None and confidence < floor:
            why = f"not sure a tool fits: call confidence {format_below(confidence, floor)}"
            return await decline(turn, gen.tier, specs, sampling, why, response.tool_calls)
    if not response.tool_calls and looks_like_markup(response.content):
        read = read_markup(turn, gen, specs)
        if read is None:
            why = "the reply was tool-call markup, not an answer"
            return await answer_now(turn, gen.tier, specs, sampling, why)
        gen = read
    pure = {t.name for t in turn.node.tool_list if t.deterministic}
    reason = pointless_calls(gen.response, turn.messages, pure)
    if reason is None:
        return gen
    return await answer_now(turn, gen.tier, specs, sampling, reason, gen.response.tool_calls)


async def _samples(
    turn: Turn, gen: Generation, specs: list[ToolSpec], sampling: Sampling
) -> list[ModelResponse]:
    """Extra self-consistency samples of the same turn on the same tier, if the ladder
    asks for them (hotter, each with its own seed). They are requested at once, so a
    batching backend decodes them side by side on the turn's cached prompt."""
    count = turn.ladder.self_consistency
    if count <= 1 or gen.invalid:
        return []
    model = turn.ladder.model(gen.tier)
    prompt = [*system_messages(turn.node, bool(specs)), *turn.messages]
    hot = sampling.model_copy(update={"temperature": max(0.7, sampling.temperature)})
    samples = await asyncio.gather(
        *(
            in_thread(
                "model",
                model.complete,
                prompt,
                tools=specs,
                sampling=hot.model_copy(update={"seed": (sampling.seed or 0) + 101 * i}),
            )
            for i in range(1, count)
        )
    )
    for sample in samples:  # in seed order, whichever finished first
        turn.spend.add(turn.ladder, gen.tier, sample.usage)
    return list(samples)


def _accept(turn: Turn, state: Any, gen: Generation) -> StepRecord:
    """The turn joins the conversation; the record of the step."""
    ctx, ladder, spend = turn.ctx, turn.ladder, turn.spend
    response, tier = gen.response, gen.tier
    update: dict[str, Any] = {"messages": turn.messages}
    # A turn the stream detector cut off for good is not part of the conversation.
    if turn.stop is None:
        turn.messages.append(response.as_message())
        if not response.tool_calls and "answer" in type(state).model_fields:
            update["answer"] = clean_answer(response.content, turn.messages) or None
    ctx.tiers.accept(ladder, tier, response, len(gen.invalid))
    ladder.record_speed(tier, spend.usage.completion_tokens, spend.usage.seconds)
    calls = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in response.tool_calls]
    ctx.recorder.emit(_called_event(turn, response, tier, calls))
    if not response.tool_calls and turn.stop is None:
        _observe_reply(turn, response)
    return StepRecord(
        state=state.model_copy(update=update),
        kind="model",
        model=ladder.tier_name(tier),
        tier=tier,
        usage=spend.usage,
        model_calls=spend.calls,
        compute=spend.compute,
        top_tier_compute=spend.top_tier_compute,
        top_tier_seconds=spend.top_tier_seconds,
        escalations=spend.escalations,
        strikes=spend.strikes,
        tokens_saved=spend.tokens_saved,
        content=response.content,
        tool_calls=calls,
        stop=turn.stop,
    )


def _called_event(
    turn: Turn, response: ModelResponse, tier: int, calls: list[dict[str, Any]]
) -> ModelCalled:
    u = turn.spend.usage
    return ModelCalled(
        run_id=turn.ctx.run_id,
        step=turn.ctx.step,
        model=turn.ladder.tier_name(tier),
        tier=tier,
        prompt_tokens=u.prompt_tokens,
        cached_tokens=u.cached_tokens,
        evaluated_tokens=u.evaluated_tokens,
        completion_tokens=u.completion_tokens,
        seconds=u.seconds,
        finish_reason=response.finish_reason,
        content=response.content,
        tool_calls=calls,
        confidence=decision_confidence(response),
        tokens_saved=turn.spend.tokens_saved,
        decisions=[d.model_dump() for d in response.decisions],
    )


def _observe_reply(turn: Turn, response: ModelResponse) -> None:
    """A reply without calls goes to the loop detector (repeated or empty replies)."""
    ctx = turn.ctx
    observation = StepObservation(
        index=ctx.step,
        tool_calls=(),
        results=(),
        content=response.content,
        is_empty=says_nothing(response.content),
    )
    action = ctx.strikes.observe(observation, can_escalate=ctx.tiers.can_escalate_now)
    if action is not None:
        turn.spend.strikes += 1
        turn.stop = carry_out(ctx, action, turn.messages)


def _warn_budget(turn: Turn, steps_left: int | None, last_chance: bool) -> None:
    """Tell the model once when few steps remain, and again on its very last step."""
    ctx = turn.ctx
    if steps_left is None or steps_left > ctx.settings.wind_down_steps:
        return
    if last_chance:
        note = (
            "This is your last step: no more tools. Give your final answer now, with what "
            "you have found so far."
        )
    elif not ctx.position.budget_warned:
        note = (
            f"Only {steps_left + 1} steps left. Finish soon: give your final answer as soon "
            "as you can."
        )
    else:
        return
    ctx.position.budget_warned = True
    turn.messages.append(runtime_note(note))
    ctx.recorder.emit(BudgetWarning(run_id=ctx.run_id, step=ctx.step, steps_left=steps_left))
