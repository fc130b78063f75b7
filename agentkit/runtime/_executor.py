"""The executor loop: one node at a time, every step recorded, checkpoints for resume.

    while the current node is not END:
        apply controls (pause / resume / abort / force tier) from the store
        stop gracefully if the step budget is spent
        run the node (retrying transient failures); it returns a StepRecord
        add the record to the totals, write it with its checkpoint, route to the next node

Model mistakes (invalid calls, loops, tool errors) become data on the step and signals
for the next one; framework bugs raise. The executor is the one writer of the run,
through its ``Recorder``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from .._errors import AgentkitError, LeaseLostError, ResumeError, RunError, ScriptError
from ..detection._config import DetectorConfig
from ..detection._plan import ResponsePlan
from ..events import (
    FINISHED_STATUSES,
    ControlApplied,
    Event,
    RunFinished,
    RunStarted,
    StepFinished,
    StepRetried,
    StepStarted,
)
from ..ladder._controller import TierController
from ..models._markup import looks_like_markup
from ..models._messages import Message, says_nothing
from ..store._open import open_store
from ..store._protocol import Store
from ..store._rows import StepRow
from ._answer_now import clean_answer
from ._context import Position, RunContext, Settings, restore_parts
from ._filtering import screen_task, stopped
from ._graph import END, CompiledGraph, FunctionNode, ModelNode, Node, ToolNode
from ._model_step import run_model_step
from ._recorder import EventCallback, Recorder
from ._result import RunResult, RunTotals, StepRecord
from ._strikes import StrikeBook
from ._tool_step import run_tool_step
from ._tools import with_volatile_args
from ._watch import StepInterrupted, watched

__all__ = ["EventCallback", "Runner"]

S = TypeVar("S", bound=BaseModel)
_PAUSE_POLL_SECONDS = 0.2


class _Aborted(Exception):
    pass


class Runner(Generic[S]):
    """Runs a compiled graph against a store. One Runner may run many runs at once."""

    def __init__(
        self,
        graph: CompiledGraph[S],
        *,
        store: Store | None = None,
        detectors: DetectorConfig | None = None,
        responses: ResponsePlan | None = None,
        wind_down_steps: int = 2,
        app: str | None = None,
    ) -> None:
        self.graph = graph
        self.store = store if store is not None else open_store()
        tools = [t for node in graph.nodes.values() for t in getattr(node, "tool_list", ())]
        self.settings = Settings(
            detectors=with_volatile_args(detectors or DetectorConfig(), tools),
            responses=responses or ResponsePlan(),
            wind_down_steps=wind_down_steps,
        )
        self.app = app

    # -- entry points --------------------------------------------------------------

    async def arun(
        self,
        task: str,
        state: S,
        *,
        run_id: str | None = None,
        on_event: EventCallback | None = None,
    ) -> RunResult[S]:
        run_id = run_id or uuid.uuid4().hex[:12]
        ctx = self._context(run_id, on_event, Position(node=self.graph.entry))
        screened = await screen_task(ctx, task, state)  # input filters, before any record
        task, state = screened.task, screened.state
        config = {
            "initial_state": state.model_dump(mode="json"),
            "app": self.app,
            "max_steps": self.graph.max_steps,
        }
        ctx.recorder.run_started(
            RunStarted(run_id=run_id, name=self.graph.name, task=task),
            graph=self.graph.describe(),
            config=config,
        )
        screened.record(ctx)
        if screened.stop is not None:
            return stopped(ctx, state, screened.stop)
        return await self._loop(ctx, state)

    async def aresume(self, run_id: str, *, on_event: EventCallback | None = None) -> RunResult[S]:
        """Continue a stored run from its last completed step.

        Tool calls that completed before the interruption are replayed from the store,
        not executed again.
        """
        row = self.store.get_run(run_id)
        if row.status in FINISHED_STATUSES:
            raise ResumeError(f"run has already finished with status {row.status!r}", run_id=row.id)
        if row.graph.get("nodes") != self.graph.describe()["nodes"]:
            raise ResumeError(
                "the graph given does not match the one the run was started "
                "with; resume it with the same agent definition",
                run_id=row.id,
            )
        recorder = Recorder(self.store, row.id, on_event)
        recorder.claim()  # before anything is read for running: one executor per run
        state, ctx = self._restore(row.id, row.config, recorder)
        ctx.replay = recorder.completed_calls()
        ctx.unfinished = recorder.unfinished_calls()
        recorder.run_resumed(RunStarted(run_id=row.id, name=row.name, task=row.task, resumed=True))
        return await self._loop(ctx, state)

    def _restore(
        self, run_id: str, config: dict[str, Any], recorder: Recorder
    ) -> tuple[S, RunContext]:
        """The state and the run's parts as of its last checkpoint (ResumeError if the
        store holds something this graph cannot read)."""
        last = self.store.last_step(run_id)
        try:
            if last is None:
                state = self.graph.state_type.model_validate(config["initial_state"])
                return state, self._context(
                    run_id, None, Position(node=self.graph.entry), recorder=recorder
                )
            checkpoint = json.loads(last.state_json)
            state = self.graph.state_type.model_validate(checkpoint["state"])
            position, tiers, strikes, totals = restore_parts(checkpoint, self.settings)
        except (KeyError, TypeError, ValueError) as exc:  # ValidationError is a ValueError
            raise ResumeError(
                f"its stored state cannot be read as {self.graph.state_type.__name__} ({exc}); "
                "it was written by another graph or another version of this one",
                run_id=run_id,
            ) from exc
        position.node = last.next_node or END
        return state, self._context(
            run_id, None, position, tiers, strikes, totals, recorder=recorder
        )

    async def astream(self, task: str, state: S) -> AsyncIterator[Event]:
        """Run and yield each event as it happens; the last one is RunFinished."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        job = asyncio.create_task(self.arun(task, state, on_event=queue.put_nowait))
        job.add_done_callback(lambda _: queue.put_nowait(None))
        while (event := await queue.get()) is not None:
            yield event
        await job

    # -- the loop ------------------------------------------------------------------

    def _context(
        self,
        run_id: str,
        on_event: EventCallback | None,
        position: Position,
        tiers: TierController | None = None,
        strikes: StrikeBook | None = None,
        totals: RunTotals | None = None,
        *,
        recorder: Recorder | None = None,
    ) -> RunContext:
        return RunContext(
            run_id=run_id,
            graph=self.graph,
            recorder=recorder or Recorder(self.store, run_id, on_event),
            settings=self.settings,
            position=position,
            tiers=tiers or TierController(),
            strikes=strikes or StrikeBook(self.settings.responses, self.settings.detectors),
            totals=totals or RunTotals(),
        )

    async def _loop(self, ctx: RunContext, state: S) -> RunResult[S]:
        started = time.perf_counter()
        limit = self.graph.max_seconds
        deadline = time.monotonic() + limit if limit is not None else None
        pos = ctx.position
        status, diagnosis, error = "succeeded", None, None
        try:
            while pos.node != END:
                await self._apply_controls(ctx)
                if self.graph.max_steps is not None and pos.step >= self.graph.max_steps:
                    status = "budget_exhausted"
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    raise StepInterrupted("timed_out")
                pos.step += 1
                state, diagnosis = await watched(ctx, self._run_step(ctx, state), deadline)
                if diagnosis is not None:
                    status = "stopped"
                    break
        except _Aborted:
            status = "aborted"
        except StepInterrupted as exc:
            status = exc.status
            if status == "timed_out":
                error = f"the run reached its limit of {limit:g} s (max_seconds)"
        except LeaseLostError:
            raise  # the run belongs to another executor now: write nothing more
        except ScriptError:
            self._finish(ctx, "failed", None, "scripted model error", None)
            raise
        except AgentkitError as exc:
            status, error = "failed", str(exc)
        except Exception as exc:
            self._finish(ctx, "failed", None, f"{type(exc).__name__}: {exc}", None)
            raise
        answer = _answer(state, status)
        if status == "timed_out" and "".join(ctx.partial).strip():
            answer = "(partial) " + "".join(ctx.partial).strip()[:500]
        if status == "succeeded" and _ended_empty(state):
            error = "the model's final reply held no answer (empty, or punctuation alone)"
            status = "failed"
        elif status == "succeeded" and answer and looks_like_markup(answer):
            status, error = "failed", "the final answer is tool-call markup, not an answer"
        self._finish(ctx, status, answer, error, diagnosis)
        return RunResult.from_totals(
            ctx.totals,
            run_id=ctx.run_id,
            status=status,
            answer=answer,
            state=state,
            seconds=time.perf_counter() - started,
            diagnosis=diagnosis,
            error=error,
        )

    async def _run_step(self, ctx: RunContext, state: S) -> tuple[S, str | None]:
        """Run the current node; returns the new state and a diagnosis if the run stops."""
        pos = ctx.position
        node_name = pos.node
        node = self.graph.nodes[node_name]
        # Held for the step's first write, which comes before anything slow: the model
        # call, a tool call, a plain function, or the checkpoint below.
        ctx.recorder.emit(
            StepStarted(run_id=ctx.run_id, step=pos.step, node=node_name, kind=node.kind)
        )
        started = time.time()
        record = await self._with_retries(ctx, state, node_name, node)
        ctx.totals.add(record, pos.step)
        if record.stop is not None:
            # A stopped run ends there and then: its strikes go out with RunFinished, and
            # there is no checkpoint to resume from (a stopped run is not resumed).
            return record.state, record.stop
        next_node = self.graph.next_node(node_name, record.state)
        ctx.recorder.step_finished(
            _step_row(ctx, record, node_name, node.kind, started, next_node),
            ctx.totals.to_json(),
            StepFinished(run_id=ctx.run_id, step=pos.step, node=node_name, next_node=next_node),
        )
        pos.node = next_node
        return record.state, record.stop

    async def _with_retries(self, ctx: RunContext, state: S, name: str, node: Node) -> StepRecord:
        """Run a node, retrying transient failures with exponential backoff.

        The first attempt runs directly: building a tenacity retrier on every step cost
        as much as several store writes, and almost every step succeeds at once.
        """
        policy = node.retry
        try:
            return await _execute(ctx, state, name, node)
        except policy.retry_on as exc:
            if policy.attempts <= 1:
                raise
            first_error = exc

        def note(attempt: RetryCallState) -> None:
            error = attempt.outcome.exception() if attempt.outcome else None
            _note_retry(ctx, name, attempt.attempt_number + 1, error)

        _note_retry(ctx, name, 1, first_error)
        await asyncio.sleep(policy.initial_delay)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(policy.attempts - 1),
            wait=wait_exponential(multiplier=policy.initial_delay * 2, max=policy.max_delay),
            retry=retry_if_exception_type(policy.retry_on),
            before_sleep=note,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await _execute(ctx, state, name, node)
        raise AssertionError("unreachable: tenacity returns or re-raises")

    async def _apply_controls(self, ctx: RunContext) -> None:
        paused = False
        while True:
            for control in ctx.recorder.take_controls():
                ctx.recorder.emit(
                    ControlApplied(
                        run_id=ctx.run_id,
                        step=ctx.step,
                        command=control.command,
                        argument=control.argument,
                    )
                )
                if control.command == "abort":
                    raise _Aborted
                if control.command == "pause" and not paused:
                    paused = True
                    ctx.recorder.set_status("paused")
                elif control.command == "resume" and paused:
                    paused = False
                    ctx.recorder.set_status("running")
                elif control.command == "force_tier" and control.argument is not None:
                    ctx.tiers.force(int(control.argument))
            if not paused:
                return
            await asyncio.sleep(_PAUSE_POLL_SECONDS)

    def _finish(
        self,
        ctx: RunContext,
        status: str,
        answer: str | None,
        error: str | None,
        diagnosis: str | None,
    ) -> None:
        ctx.recorder.run_finished(
            RunFinished(
                run_id=ctx.run_id,
                step=ctx.step,
                status=status,  # type: ignore[arg-type]
                answer=answer,
                error=error,
                diagnosis=diagnosis,
            )
        )


async def _execute(ctx: RunContext, state: Any, name: str, node: Node) -> StepRecord:
    if isinstance(node, ModelNode):
        return await run_model_step(ctx, state, name, node)
    if isinstance(node, ToolNode):
        return await run_tool_step(ctx, state, node)
    return await _function_step(ctx, state, node)


def _note_retry(ctx: RunContext, name: str, attempt: int, error: BaseException | None) -> None:
    ctx.recorder.emit(
        StepRetried(run_id=ctx.run_id, step=ctx.step, node=name, attempt=attempt, error=repr(error))
    )
    ctx.recorder.flush()


async def _function_step(ctx: RunContext, state: BaseModel, node: FunctionNode) -> StepRecord:
    ctx.recorder.flush()  # the held StepStarted, visible while a slow function runs
    # An exception of the author's function is a bug in the program: the run is recorded
    # as failed and the exception raised (the retry policy handles transient ones).
    result = node.fn(state)
    if asyncio.iscoroutine(result):
        result = await result
    return StepRecord(state=_updated(state, result, ctx.position.node))


def _updated(state: BaseModel, result: object, name: str) -> BaseModel:
    """The state after a function node, checked against the state's own type."""
    kind = type(state)
    if result is None:
        return state
    if isinstance(result, BaseModel) and not isinstance(result, kind):
        raise RunError(
            f"node {name!r} returned a {type(result).__name__}; return a {kind.__name__}, "
            "a dict of updates, or None"
        )
    if not isinstance(result, (BaseModel, dict)):
        raise RunError(
            f"node {name!r} returned {type(result).__name__}; return the new state, a dict "
            "of updates, or None"
        )
    update = result.__dict__ if isinstance(result, BaseModel) else result
    try:
        return kind.model_validate({**state.__dict__, **update})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "(state)"
        raise RunError(
            f"node {name!r} returned an update that does not fit {kind.__name__}: "
            f"{where}: {first['msg']}"
        ) from exc


def _step_row(
    ctx: RunContext, record: StepRecord, node: str, kind: str, started: float, next_node: str
) -> StepRow:
    u = record.usage
    return StepRow(
        run_id=ctx.run_id,
        idx=ctx.step,
        node=node,
        kind=kind,
        started_at=started,
        finished_at=time.time(),
        state_json=ctx.checkpoint_json(record.state, next_node),
        model=record.model,
        tier=record.tier,
        prompt_tokens=u.prompt_tokens,
        cached_tokens=u.cached_tokens,
        evaluated_tokens=u.evaluated_tokens,
        completion_tokens=u.completion_tokens,
        seconds=time.time() - started,
        compute=record.compute,
        content=record.content,
        tool_calls=record.tool_calls,
        next_node=next_node,
    )


def _ended_empty(state: BaseModel) -> bool:
    """A conversation whose last word is an empty assistant reply has no answer."""
    messages: list[Message] = getattr(state, "messages", [])
    if not messages or messages[-1].role != "assistant":
        return False
    last = messages[-1]
    # A reply that only repeats the runtime's own notes to the model says nothing either.
    return says_nothing(clean_answer(last.content, messages)) and not last.tool_calls


def _answer(state: BaseModel, status: str) -> str | None:
    """The final answer, or the best partial result when the run did not finish."""
    answer = getattr(state, "answer", None)
    if isinstance(answer, str) and answer:
        return answer
    messages: list[Message] = getattr(state, "messages", [])
    for m in reversed(messages):
        if (
            m.role == "assistant"
            and not m.tool_calls
            and (text := clean_answer(m.content, messages))
        ):
            return text
    if status != "succeeded" and messages:
        last = messages[-1]
        if last.content:
            return f"(partial) last observation: {last.content[:500]}"
    return None
