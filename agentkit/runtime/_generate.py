"""One model turn on one tier, with the retries that stay inside a step.

A turn streams through the repetition detector. Degenerate text that the detector cut
off is answered with the graded response (and redone, resampled or one tier up); invalid
tool arguments go back to the model with the validation message, a limited number of
times. What every call cost is added to the turn's ``Spend``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel

from ..detection._canonical import canonical_arguments
from ..detection._config import Strike
from ..detection._stream import StreamDetector
from ..events import AnswerRequested, ContextCondensed, TierChosen, ToolArgumentsRejected
from ..ladder._controller import TierChoice
from ..ladder._ladder import ModelLadder
from ..models._markup import embedded_calls, looks_like_markup
from ..models._messages import Message, ModelResponse, ToolCall, ToolSpec, Usage
from ..models._protocol import ChatModel, Sampling, ToolChoice
from ._answer_now import clean_answer, runtime_note, what_is_known
from ._condense import condense
from ._context import RunContext
from ._graph import ModelNode
from ._strikes import carry_out
from ._threads import in_thread
from ._tools import Tool, ToolArgumentsError

__all__ = [
    "Generation",
    "Spend",
    "Turn",
    "answer_now",
    "generate",
    "read_markup",
    "resampled",
    "text_only",
    "tool_spec",
]

_PROMPT_MARGIN = 16
_MAX_STREAM_RETRIES = 2


@dataclass
class Spend:
    """What the model calls of one step cost, summed."""

    usage: Usage = field(default_factory=Usage)
    calls: int = 0
    compute: float = 0.0
    top_tier_compute: float = 0.0
    top_tier_seconds: float = 0.0
    tokens_saved: int = 0
    escalations: int = 0
    strikes: int = 0

    def add(self, ladder: ModelLadder, tier: int, usage: Usage) -> None:
        cost = ladder.cost(tier, usage)
        self.usage = self.usage + usage
        self.calls += 1
        self.compute += cost.compute
        self.top_tier_compute += cost.top_tier_compute
        self.top_tier_seconds += cost.top_tier_seconds


@dataclass
class Turn:
    """A model step in progress: its run, node, ladder, conversation and spending."""

    ctx: RunContext
    name: str
    node: ModelNode
    ladder: ModelLadder
    messages: list[Message]
    spend: Spend = field(default_factory=Spend)
    stop: str | None = None
    """Set when the graded response to a strike says stop."""

    def choose(self, choice: TierChoice) -> int:
        """Record a tier decision (an event, and the escalation count); returns the tier."""
        if choice.escalated:
            self.spend.escalations += 1
        self.ctx.recorder.emit(
            TierChosen(
                run_id=self.ctx.run_id,
                step=self.ctx.step,
                node=self.name,
                tier=choice.tier,
                model=choice.model,
                reason=choice.reason,
                previous_tier=choice.previous,
            )
        )
        return choice.tier


@dataclass
class Generation:
    """A turn after its in-step retries: the response, calls still invalid, the tier."""

    response: ModelResponse
    invalid: list[tuple[ToolCall, str]]
    tier: int


async def generate(
    turn: Turn,
    tier: int,
    specs: list[ToolSpec],
    sampling: Sampling,
    choice: ToolChoice | None = None,
) -> Generation:
    """One turn on ``tier`` (or higher, if the graded response escalates it)."""
    choice = choice or turn.node.tool_choice
    ctx, ladder = turn.ctx, turn.ladder
    known = {t.name: t for t in turn.node.tool_list if any(s.name == t.name for s in specs)}
    stream_retries = argument_attempts = 0
    while True:
        response, tripped = await complete(turn, tier, specs, sampling, choice)
        if tripped:
            turn.spend.tokens_saved += max(
                0, sampling.max_tokens - response.usage.completion_tokens
            )
        if tripped and not response.tool_calls:
            action = ctx.strikes.answer(tripped, can_escalate=ctx.tiers.can_escalate(ladder, tier))
            turn.spend.strikes += 1
            turn.stop = carry_out(ctx, action, turn.messages)
            if turn.stop is not None:
                return Generation(response, [], tier)
            if stream_retries < _MAX_STREAM_RETRIES:
                stream_retries += 1
                if action.response == "resample":
                    sampling = resampled(ctx, sampling)
                    ctx.strikes.resample_next = False
                elif action.response == "escalate" and ctx.tiers.can_escalate(ladder, tier):
                    ctx.tiers.request_escalation(False)  # answered here, in the step
                    tier = turn.choose(ctx.tiers.escalate(ladder, tier, "degenerate text"))
                continue
        response = _dedupe_calls(response)
        invalid = _invalid_calls(response, known)
        if invalid and argument_attempts < turn.node.argument_retries:
            argument_attempts += 1
            _send_back(turn, response, invalid, argument_attempts)
            continue
        return Generation(response, invalid, tier)


async def complete(
    turn: Turn, tier: int, specs: list[ToolSpec], sampling: Sampling, choice: ToolChoice
) -> tuple[ModelResponse, list[Strike]]:
    """One model call through the stream detector; returns the response and its strikes."""
    ctx = turn.ctx
    model = turn.ladder.model(tier)
    prompt = _prompt(turn, model, specs, sampling)
    stream = StreamDetector(ctx.settings.detectors)
    tripped: list[Strike] = []

    ctx.partial.clear()

    def on_token(piece: str) -> bool:
        ctx.partial.append(piece)
        strike = stream.feed(piece)
        if strike is not None:
            tripped.append(dataclasses.replace(strike, steps=(ctx.step,)))
            return True
        return False

    ctx.recorder.flush()  # watchers see the step and its tier while the model works
    response = await in_thread(
        "model",
        model.complete,
        prompt,
        tools=specs,
        sampling=sampling,
        on_token=on_token,
        cancel=ctx.cancel,
        tool_choice=choice,
    )
    turn.spend.add(turn.ladder, tier, response.usage)
    return response, tripped


def text_only(turn: Turn) -> ToolChoice:
    """The node's tool choice with the tools off for one turn: they stay in the prompt (the
    cached prefix is unchanged) and the grammar allows only a plain-text answer."""
    return turn.node.tool_choice.model_copy(update={"mode": "none"})


async def answer_now(
    turn: Turn,
    tier: int,
    specs: list[ToolSpec],
    sampling: Sampling,
    reason: str,
    dropped: Sequence[ToolCall] = (),
) -> Generation:
    """Redo the turn with the tools off, after a note of what the model already has.

    The tools stay in the prompt (the cached prefix is unchanged); the grammar allows only
    a plain-text answer. An empty reply or one that is still call markup is asked once more.
    """
    ctx = turn.ctx
    ctx.recorder.emit(
        AnswerRequested(
            run_id=ctx.run_id,
            step=ctx.step,
            reason=reason,
            tool_calls=[{"name": c.name, "arguments": c.arguments} for c in dropped],
        )
    )
    known = what_is_known(turn.messages)
    turn.messages.append(
        runtime_note(
            "You already have what you need"
            + (f" ({known})" if known else "")
            + ". Do not call a tool again: reply now with your final answer."
        )
    )
    choice = text_only(turn)
    response, _ = await complete(turn, tier, specs, sampling, choice)
    said = clean_answer(response.content, turn.messages)  # the note copied back is no answer
    if not said or looks_like_markup(response.content):
        response, _ = await complete(turn, tier, specs, sampling, choice)
    return Generation(response, [], tier)


async def decline(
    turn: Turn,
    tier: int,
    specs: list[ToolSpec],
    sampling: Sampling,
    reason: str,
    dropped: Sequence[ToolCall] = (),
) -> Generation:
    """Redo the turn as a plain-text answer: no tool fits the request (the tools stay in
    the prompt, so the cached prefix is unchanged)."""
    ctx = turn.ctx
    ctx.recorder.emit(
        AnswerRequested(
            run_id=ctx.run_id,
            step=ctx.step,
            reason=reason,
            tool_calls=[{"name": c.name, "arguments": c.arguments} for c in dropped],
        )
    )
    turn.messages.append(runtime_note("Answer in plain text: none of the tools fits this request."))
    choice = text_only(turn)
    response, _ = await complete(turn, tier, specs, sampling, choice)
    return Generation(response, [], tier)


def read_markup(turn: Turn, gen: Generation, specs: list[ToolSpec]) -> Generation | None:
    """A text reply that is call markup, read as the calls it holds (None if it holds none)."""
    response = gen.response
    rest, calls = embedded_calls(response.content, [s.name for s in specs])
    if not calls:
        return None
    fixed = response.model_copy(
        update={"content": rest, "tool_calls": tuple(calls), "finish_reason": "tool_calls"}
    )
    known = {t.name: t for t in turn.node.tool_list}
    return Generation(fixed, _invalid_calls(fixed, known), gen.tier)


SEVERAL_CALLS_EXAMPLE = (
    "When a request asks for several things, make one call for each of them in the same "
    'reply. For example, for "What time is it in Rome and in Lima?" with a function '
    "get_time(city), the reply is:\n"
    '<tool_call>\n{"name": "get_time", "arguments": {"city": "Rome"}}\n</tool_call>\n'
    '<tool_call>\n{"name": "get_time", "arguments": {"city": "Lima"}}\n</tool_call>'
)
"""The example ``ToolChoice.several_example`` adds to the system prompt."""


def system_messages(node: ModelNode, tools_offered: bool) -> list[Message]:
    """The node's system prompt, with the several-calls example when it asks for one."""
    parts = [node.system_prompt] if node.system_prompt else []
    if tools_offered and node.tool_choice.several_example:
        parts.append(SEVERAL_CALLS_EXAMPLE)
    return [Message.system("\n\n".join(parts))] if parts else []


def _prompt(
    turn: Turn, model: ChatModel, specs: list[ToolSpec], sampling: Sampling
) -> list[Message]:
    """The system prompt and the conversation, condensed if it nears the window."""
    system = system_messages(turn.node, bool(specs))
    budget = model.context_size - sampling.max_tokens - _PROMPT_MARGIN
    messages = [*system, *turn.messages]
    condensed = condense(messages, lambda ms: model.count_tokens(ms, specs), budget)
    if condensed is None:
        return messages
    turn.messages[:] = condensed.messages[len(system) :]
    turn.ctx.recorder.emit(
        ContextCondensed(
            run_id=turn.ctx.run_id,
            step=turn.ctx.step,
            tokens_before=condensed.tokens_before,
            tokens_after=condensed.tokens_after,
            messages_condensed=condensed.folded,
        )
    )
    return condensed.messages


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
    turn: Turn, response: ModelResponse, invalid: list[tuple[ToolCall, str]], attempt: int
) -> None:
    """Show the model its invalid calls and why, so the next attempt can fix them."""
    turn.messages.append(response.as_message())
    bad = {call.id: feedback for call, feedback in invalid}
    for call in response.tool_calls:
        if call.id in bad:
            text = f"Error: invalid call, not executed: {bad[call.id]}. Fix it and call again."
            turn.ctx.recorder.emit(
                ToolArgumentsRejected(
                    run_id=turn.ctx.run_id,
                    step=turn.ctx.step,
                    name=call.name,
                    arguments=call.arguments,
                    feedback=bad[call.id],
                    attempt=attempt,
                )
            )
        else:
            text = "Not executed: another call in the same turn was invalid. Call it again."
        turn.messages.append(Message.tool(call, text))


def resampled(ctx: RunContext, sampling: Sampling) -> Sampling:
    """Different sampling for a retry: hotter, wider, another seed."""
    plan = ctx.settings.responses.resample
    ctx.strikes.resamples += 1
    attempt = ctx.strikes.resamples
    return sampling.model_copy(
        update={
            "temperature": max(plan.temperature, sampling.temperature),
            "top_k": max(sampling.top_k, plan.top_k),
            "top_p": plan.top_p,
            "repeat_penalty": max(sampling.repeat_penalty, plan.repeat_penalty),
            "seed": plan.seed(sampling.seed or 0, attempt),
        }
    )


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


def tool_spec(tool: Tool) -> ToolSpec:
    """``tool.spec``, cached: generating a JSON schema took longer than a whole step."""
    if tool.problems or tool.args_model is None:
        return tool.spec  # raises ConfigError with the problems
    return _cached_spec(_SpecKey(tool.name, tool.description, tool.args_model, tool))
