"""Filters in a run: which filters see what, running them safely, what each verdict does.

    the task          screen_task        the executor, before the run is first recorded
    each tool call    ToolScreen.start   the tool step, before the journal and the tool
    each tool result  ToolScreen.result  the tool step, before the journal records it
    answer and calls  screen_output      the model step, before the turn is recorded

A rewrite (or redaction) replaces the subject before anything is written, so the store
(run row, events, step rows, checkpoints) only ever holds the rewritten text. A filter
that raises or runs past its time limit becomes a block (or a pass, with ``fail_open``)
and an event that says so; the run goes on. docs/filters.md tabulates the verdicts.
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .._errors import ScriptError
from ..events import FilterVerdict, RunFinished
from ..filters._base import Filter, in_worker
from ..filters._verdict import OUTPUT_TARGETS, Subject, Verdict, stage_of
from ..models._messages import Message, ModelResponse, ToolCall
from ._answer_now import runtime_note
from ._context import RunContext
from ._generate import Generation, Turn
from ._graph import CompiledGraph, ModelNode, ToolNode
from ._result import RunResult

__all__ = ["TaskScreen", "ToolScreen", "screen", "screen_output", "screen_task", "stopped"]

Redo = Callable[[int], Awaitable[Generation]]
_MAX_ERROR_CHARS = 300
_warm: weakref.WeakSet[Filter] = weakref.WeakSet()
"""Filters whose ``warm_up`` has run."""


# -- one chain of filters over one subject -----------------------------------------------


@dataclass
class Said:
    """One verdict that was not a plain pass (or a filter that failed)."""

    filter: Filter
    verdict: Verdict
    error: str | None
    seconds: float


@dataclass
class Screened:
    """A subject after its chain: the text and arguments to keep, and what was said."""

    subject: Subject
    text: str
    arguments: dict[str, Any] | None
    said: list[Said] = field(default_factory=list)

    @property
    def decisive(self) -> Said | None:
        """The verdict that ended the chain: block, retry, escalate or stop."""
        last = self.said[-1] if self.said else None
        if last is None or last.verdict.passed or last.verdict.changes_subject:
            return None
        return last


async def screen(filters: Sequence[Filter], subject: Subject) -> Screened:
    """Run the filters that apply, in order. A rewrite hands the next filter the new
    subject; the first block, retry, escalate or stop ends the chain."""
    current = subject
    said: list[Said] = []
    for f in filters:
        if not f.applies_to(subject.target):
            continue
        verdict, error, seconds = await _ask(f, current)
        if verdict.passed and error is None:
            continue
        said.append(Said(f, verdict, error, seconds))
        if verdict.text is not None or verdict.arguments is not None:
            current = _applied(current, verdict)
        if not verdict.passed and not verdict.changes_subject:
            break
    arguments = dict(current.arguments) if current.arguments is not None else None
    return Screened(subject, current.text, arguments, said)


async def _ask(f: Filter, subject: Subject) -> tuple[Verdict, str | None, float]:
    """One filter's verdict; a failure becomes a block (or a pass, if it fails open)."""
    error: str | None = None
    started = time.perf_counter()
    try:
        if f not in _warm:  # a slow first load is not a hanging filter: outside the limit
            await in_worker(f.warm_up)
            _warm.add(f)
            started = time.perf_counter()
        verdict = await asyncio.wait_for(f.check(subject), f.timeout)
        error = _problem(verdict, subject)
    except ScriptError:  # a test's scripted model was misused: the test must see it
        raise
    except (asyncio.TimeoutError, TimeoutError) as exc:
        late = f.timeout is not None and time.perf_counter() - started >= f.timeout
        error = f"ran past its time limit of {f.timeout:g} s" if late else f"timed out ({exc})"
    except Exception as exc:  # a filter's own bug must not lose the run
        error = f"raised {type(exc).__name__}: {exc}"[:_MAX_ERROR_CHARS]
    seconds = time.perf_counter() - started
    if error is None:
        return verdict, None, seconds
    if f.fail_open:
        return Verdict.ok(), error, seconds
    return Verdict.block(f"filter {f.name!r} failed and fails closed: it {error}"), error, seconds


def _problem(verdict: object, subject: Subject) -> str | None:
    if not isinstance(verdict, Verdict):
        return f"returned {type(verdict).__name__}, not a Verdict"
    if not verdict.changes_subject:
        return None
    if subject.target == "tool_call":
        if verdict.arguments is None and not _json_object(verdict.text):
            return "returned a rewrite of a tool call without new arguments"
    elif verdict.text is None:
        return f"returned a {verdict.action} without the new text"
    return None


def _json_object(text: str | None) -> bool:
    try:
        return isinstance(json.loads(text or ""), dict)
    except json.JSONDecodeError:
        return False


def _applied(subject: Subject, verdict: Verdict) -> Subject:
    if subject.target != "tool_call":
        return replace(subject, text=verdict.text if verdict.text is not None else subject.text)
    if verdict.arguments is not None:
        arguments = dict(verdict.arguments)
    elif _json_object(verdict.text):
        arguments = json.loads(verdict.text or "")
    else:  # a block that kept nothing to record instead: the call stays as it was
        return subject
    return Subject.for_call(
        subject.tool or "",
        arguments,
        run_id=subject.run_id,
        step=subject.step,
        node=subject.node,
        call_id=subject.call_id,
    )


def _emit(ctx: RunContext, screened: Screened, outcome: str) -> None:
    s = screened.subject
    decisive = screened.decisive
    for said in screened.said:
        v = said.verdict
        if said is decisive:
            done = outcome
        else:
            done = "applied" if v.changes_subject else "let through: the filter fails open"
        ctx.recorder.emit(
            FilterVerdict(
                run_id=ctx.run_id,
                step=ctx.step,
                stage=stage_of(s.target),
                target=s.target,
                filter=said.filter.name,
                verdict=v.action,
                reason=v.reason,
                changes=list(v.changes),
                outcome=done,
                node=s.node or None,
                tool=s.tool,
                call_id=s.call_id,
                error=said.error,
                score=v.score,
                seconds=round(said.seconds, 6),
            )
        )


# -- the task ----------------------------------------------------------------------------


@dataclass
class TaskScreen:
    """The task after the input filters, the state that carries it, and a stop."""

    task: str
    state: Any
    screened: Screened | None = None
    outcome: str = ""
    stop: str | None = None

    def record(self, ctx: RunContext) -> None:
        """The verdicts as events: called once the run exists in the store."""
        if self.screened is not None:
            _emit(ctx, self.screened, self.outcome)


def task_filters(graph: CompiledGraph[Any]) -> list[Filter]:
    """The graph's filters and the entry node's, those that check the task."""
    entry = graph.nodes.get(graph.entry)
    own = entry.filter_list if isinstance(entry, (ModelNode, ToolNode)) else []
    return [f for f in [*graph.filters, *own] if f.applies_to("task")]


async def screen_task(ctx: RunContext, task: str, state: Any) -> TaskScreen:
    """The task through the input filters, before anything of the run is recorded."""
    filters = task_filters(ctx.graph)
    if not filters:
        return TaskScreen(task, state)
    screened = await screen(filters, Subject("task", task, run_id=ctx.run_id, node=ctx.graph.entry))
    if screened.text != task:
        state = _with_task(state, task, screened.text)
    result = TaskScreen(screened.text, state, screened)
    decisive = screened.decisive
    if decisive is None:
        return result
    v, name = decisive.verdict, decisive.filter.name
    if v.action == "escalate":
        ctx.tiers.request_escalation()
        result.outcome = "the first model step asks for a larger model"
    else:  # block, retry (there is no model turn to redo yet) or stop
        verb = "stopped the run" if v.action == "stop" else "blocked the task"
        result.stop = f"input filter {name!r} {verb}: {v.reason}"
        result.outcome = "run stopped before its first step"
    return result


def _with_task(state: Any, old: str, new: str) -> Any:
    """The state with the task's user message rewritten."""
    messages: list[Message] | None = getattr(state, "messages", None)
    if not messages:
        return state
    rewritten = [
        m.model_copy(update={"content": new}) if m.role == "user" and m.content == old else m
        for m in messages
    ]
    return state.model_copy(update={"messages": rewritten})


def stopped(ctx: RunContext, state: Any, diagnosis: str) -> RunResult[Any]:
    """A run that an input filter stopped before its first step, finished and recorded."""
    ctx.recorder.run_finished(
        RunFinished(run_id=ctx.run_id, step=0, status="stopped", diagnosis=diagnosis)
    )
    return RunResult.from_totals(
        ctx.totals,
        run_id=ctx.run_id,
        status="stopped",
        answer=None,
        state=state,
        seconds=0.0,
        diagnosis=diagnosis,
    )


# -- the model's turn: its answer or its calls -------------------------------------------


async def screen_output(turn: Turn, gen: Generation, redo: Redo) -> Generation:
    """The turn through the output filters: rewrites applied, a refused turn redone (with
    feedback, or one tier up) as often as the filter allows, then the run stopped."""
    ctx = turn.ctx
    filters = [
        f for f in [*ctx.graph.filters, *turn.node.filter_list] if f.targets & OUTPUT_TARGETS
    ]
    if not filters:
        return gen
    tries: Counter[str] = Counter()
    while True:
        gen.response, screened = await _screen_response(turn, filters, gen.response)
        refused = _first_refusal(screened)
        if refused is None or turn.stop is not None:
            for s in screened:
                _emit(ctx, s, "")
            return gen
        tier = _decide(turn, gen, screened, refused, tries)
        if tier is None:
            return gen
        gen = await redo(tier)


async def _screen_response(
    turn: Turn, filters: list[Filter], response: ModelResponse
) -> tuple[ModelResponse, list[Screened]]:
    """Each call (or else the answer) through the chain; the response as rewritten."""
    ctx = turn.ctx
    where: dict[str, Any] = {"run_id": ctx.run_id, "step": ctx.step, "node": turn.name}
    if response.tool_calls:
        screened, calls = [], []
        for call in response.tool_calls:
            s = await screen(
                filters, Subject.for_call(call.name, call.arguments, call_id=call.id, **where)
            )
            screened.append(s)
            calls.append(_with_arguments(call, s.arguments))
        return response.model_copy(update={"tool_calls": tuple(calls)}), screened
    if not response.content.strip():
        return response, []
    s = await screen(filters, Subject("answer", response.content, **where))
    if s.text != response.content:
        response = response.model_copy(update={"content": s.text, "raw_text": s.text})
    return response, [s]


def _with_arguments(call: ToolCall, arguments: dict[str, Any] | None) -> ToolCall:
    if arguments is None or arguments == call.arguments:
        return call
    return call.model_copy(update={"arguments": arguments})


def _first_refusal(screened: list[Screened]) -> tuple[Subject, Said] | None:
    for s in screened:
        if (said := s.decisive) is not None:
            return s.subject, said
    return None


def _decide(
    turn: Turn,
    gen: Generation,
    screened: list[Screened],
    refused: tuple[Subject, Said],
    tries: Counter[str],
) -> int | None:
    """What a refused turn leads to: the tier to redo it on, or None when the run stops."""
    ctx = turn.ctx
    subject, said = refused
    f, v = said.filter, said.verdict
    what = "answer" if subject.target == "answer" else f"call to {subject.tool}"
    if v.action == "stop" or tries[f.name] >= f.retries:
        why = (
            "stopped the run"
            if v.action == "stop"
            else f"refused the {what} {tries[f.name] + 1} times"
        )
        turn.stop = f"output filter {f.name!r} {why}: {v.reason}"
        if subject.target == "answer" and v.text is None:
            withheld = f"[answer withheld by filter {f.name}]"
            gen.response = gen.response.model_copy(
                update={"content": withheld, "raw_text": withheld}
            )
        _emit_all(ctx, screened, "run stopped")
        return None
    tries[f.name] += 1
    if v.action == "escalate" and ctx.tiers.can_escalate(turn.ladder, gen.tier):
        _emit_all(ctx, screened, "turn redone one tier up")
        return turn.choose(
            ctx.tiers.escalate(turn.ladder, gen.tier, f"filter {f.name}: {v.reason}")
        )
    _emit_all(ctx, screened, "turn sent back to the model with the reason")
    _send_back(turn, gen.response, screened)
    return gen.tier


def _emit_all(ctx: RunContext, screened: list[Screened], outcome: str) -> None:
    for s in screened:
        _emit(ctx, s, outcome)


def _send_back(turn: Turn, response: ModelResponse, screened: list[Screened]) -> None:
    """The refused turn joins the conversation with why, so the next try can do better."""
    turn.messages.append(response.as_message())
    if not response.tool_calls:
        said = screened[0].decisive
        why = said.verdict.message if said is not None else "it was refused"
        name = said.filter.name if said is not None else "a filter"
        turn.messages.append(
            runtime_note(f"Your reply was not accepted (filter {name}): {why}. Reply again.")
        )
        return
    refused = {s.subject.call_id: s.decisive for s in screened if s.decisive is not None}
    for call in response.tool_calls:
        said = refused.get(call.id)
        if said is not None:
            text = (
                f"Error: not executed: filter {said.filter.name} refused this call: "
                f"{said.verdict.message}. Change the call, or answer without it."
            )
        else:
            text = "Error: not executed: another call of the turn was refused. Call it again."
        turn.messages.append(Message.tool(call, text))


# -- the tool step: calls before they run, results before the model sees them ------------


class ToolScreen:
    """The filters of one tool step. The tool node's own filters check each call before
    it runs; the graph's and the node's filters check each result."""

    def __init__(self, ctx: RunContext, node: ToolNode, calls: tuple[ToolCall, ...]) -> None:
        self.ctx = ctx
        self.node = node
        self.original = calls
        self.calls = calls
        """The calls to run, with rewritten arguments."""
        self.stop: str | None = None
        self._refused: dict[str, tuple[str, bool]] = {}
        self._results = [
            f for f in [*ctx.graph.filters, *node.filter_list] if f.applies_to("tool_result")
        ]

    @classmethod
    async def start(
        cls, ctx: RunContext, node: ToolNode, calls: tuple[ToolCall, ...]
    ) -> ToolScreen:
        """Check every call before any runs."""
        screen_ = cls(ctx, node, calls)
        filters = [f for f in node.filter_list if f.applies_to("tool_call")]
        if filters and calls:
            screen_.calls = tuple([await screen_._call(filters, c) for c in calls])
        return screen_

    def _where(self, call: ToolCall) -> dict[str, Any]:
        ctx = self.ctx
        return {
            "run_id": ctx.run_id,
            "step": ctx.step,
            "node": ctx.position.node,
            "call_id": call.id,
        }

    async def _call(self, filters: list[Filter], call: ToolCall) -> ToolCall:
        s = await screen(filters, Subject.for_call(call.name, call.arguments, **self._where(call)))
        said = s.decisive
        outcome = ""
        if said is not None:
            v, name = said.verdict, said.filter.name
            if v.action == "stop":
                self.stop = f"filter {name!r} stopped the run at a call to {call.name}: {v.reason}"
                outcome = "run stopped; no call of the step executed"
            else:
                if v.action == "escalate":
                    self.ctx.tiers.request_escalation()
                self._refused[call.id] = (
                    f"Error: not executed: filter {name} refused this call: {v.message}",
                    True,
                )
                outcome = "call not executed; the model is told why" + (
                    " and the next model step goes to a larger model"
                    if v.action == "escalate"
                    else ""
                )
        _emit(self.ctx, s, outcome)
        return _with_arguments(call, s.arguments)

    def refusal(self, call: ToolCall) -> tuple[str, bool] | None:
        """The observation for a call that must not run, or None to run it."""
        if self.stop is not None:
            return f"Error: not executed: the run was stopped ({self.stop})", True
        return self._refused.get(call.id)

    def conversation(self, messages: list[Message]) -> list[Message]:
        """The conversation with the calling turn's arguments as they were rewritten."""
        if self.calls == self.original or not messages:
            return messages
        return [*messages[:-1], messages[-1].model_copy(update={"tool_calls": self.calls})]

    async def result(self, call: ToolCall, text: str, is_error: bool) -> tuple[str, bool]:
        """A tool's result after the input filters: what the model (and the store) gets."""
        if not self._results:
            return text, is_error
        subject = Subject("tool_result", text, tool=call.name, **self._where(call))
        s = await screen(self._results, subject)
        said = s.decisive
        if said is None:
            _emit(self.ctx, s, "")
            return s.text, is_error
        v, name = said.verdict, said.filter.name
        if v.action == "escalate":
            self.ctx.tiers.request_escalation()
            _emit(self.ctx, s, "result delivered; the next model step goes to a larger model")
            return s.text, is_error
        if v.action == "stop":
            self.stop = (
                f"input filter {name!r} stopped the run at a result of {call.name}: {v.reason}"
            )
        _emit(
            self.ctx, s, "result withheld from the model" + ("; run stopped" if self.stop else "")
        )
        return f"Error: the tool result was withheld by filter {name}: {v.message}", True
