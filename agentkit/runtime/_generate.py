"""One model turn on one tier, with the retries that stay inside a step.

A turn streams through the repetition detector. Degenerate text that the detector cut
off is answered with the graded response (and redone, resampled or one tier up); invalid
tool arguments go back to the model with the validation message, a limited number of
times. What every call cost is added to the turn's ``Spend``.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field

from pydantic import BaseModel

from ..detection._canonical import canonical_arguments
from ..detection._config import Strike
from ..detection._stream import StreamDetector
from ..events import ContextCondensed, TierChosen, ToolArgumentsRejected
from ..ladder._controller import TierChoice
from ..ladder._ladder import ModelLadder
from ..models._messages import Message, ModelResponse, ToolCall, ToolSpec, Usage
from ..models._protocol import ChatModel, Sampling
from ._condense import condense
from ._context import RunContext
from ._graph import ModelNode
from ._strikes import carry_out
from ._threads import in_thread
from ._tools import Tool, ToolArgumentsError

__all__ = ["Generation", "Spend", "Turn", "generate", "resampled", "tool_spec"]

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


async def generate(turn: Turn, tier: int, specs: list[ToolSpec], sampling: Sampling) -> Generation:
    """One turn on ``tier`` (or higher, if the graded response escalates it)."""
    ctx, ladder = turn.ctx, turn.ladder
    known = {t.name: t for t in turn.node.tool_list if any(s.name == t.name for s in specs)}
    stream_retries = argument_attempts = 0
    while True:
        response, tripped = await complete(turn, tier, specs, sampling)
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
    turn: Turn, tier: int, specs: list[ToolSpec], sampling: Sampling
) -> tuple[ModelResponse, list[Strike]]:
    """One model call through the stream detector; returns the response and its strikes."""
    ctx = turn.ctx
    model = turn.ladder.model(tier)
    prompt = _prompt(turn, model, specs, sampling)
    stream = StreamDetector(ctx.settings.detectors)
    tripped: list[Strike] = []

    def on_token(piece: str) -> bool:
        strike = stream.feed(piece)
        if strike is not None:
            tripped.append(dataclasses.replace(strike, steps=(ctx.step,)))
            return True
        return False

    ctx.recorder.flush()  # watchers see the step and its tier while the model works
    response = await in_thread(
        "model", model.complete, prompt, tools=specs, sampling=sampling, on_token=on_token
    )
    turn.spend.add(turn.ladder, tier, response.usage)
    return response, tripped


def _prompt(
    turn: Turn, model: ChatModel, specs: list[ToolSpec], sampling: Sampling
) -> list[Message]:
    """The system prompt and the conversation, condensed if it nears the window."""
    system = [Message.system(turn.node.system_prompt)] if turn.node.system_prompt else []
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
