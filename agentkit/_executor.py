"""The executor loop: one node at a time, every step recorded, checkpoints for resume.

    while the current node is not END:
        apply controls (pause / resume / abort / force tier) from the store
        stop gracefully if the step budget is spent
        run the node (retrying transient failures), record the step and its checkpoint
        route to the next node

Model mistakes (invalid calls, loops, tool errors) become data on the step and
signals for the next one; framework bugs raise.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

from pydantic import BaseModel
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from ._detect import DetectorConfig, ResponsePlan
from ._detect_steps import LoopDetector
from ._errors import AgentkitError, ResumeError, RunStopped, ScriptError
from ._events import Event, RunFinished, RunStarted, StepFinished, StepRetried, StepStarted
from ._graph import END, CompiledGraph, FunctionNode, ModelNode, Node, ToolNode
from ._messages import Message, Usage
from ._run import RunCounters, RunResult
from ._steps import StepContext, StepOutcome, run_model_step, run_tool_step
from ._store import RunStore, StepRow

S = TypeVar("S", bound=BaseModel)
EventCallback = Callable[[Event], None]
_PAUSE_POLL_SECONDS = 0.2


class _Aborted(Exception):
    pass


class Runner(Generic[S]):
    """Runs a compiled graph against a store. One Runner may run many runs at once."""

    def __init__(
        self,
        graph: CompiledGraph[S],
        *,
        store: RunStore | None = None,
        detectors: DetectorConfig | None = None,
        responses: ResponsePlan | None = None,
        wind_down_steps: int = 2,
        app: str | None = None,
    ) -> None:
        self.graph = graph
        self.store = store if store is not None else RunStore()
        self.detectors = detectors or DetectorConfig()
        self.responses = responses or ResponsePlan()
        self.wind_down_steps = wind_down_steps
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
        config = {
            "initial_state": state.model_dump(mode="json"),
            "app": self.app,
            "max_steps": self.graph.max_steps,
        }
        self.store.create_run(
            run_id, name=self.graph.name, task=task, graph=self.graph.describe(), config=config
        )
        ctx = self._context(run_id, state, RunCounters(node=self.graph.entry), on_event)
        ctx.emit(RunStarted(run_id=run_id, name=self.graph.name, task=task))
        return await self._loop(ctx)

    async def aresume(self, run_id: str, *, on_event: EventCallback | None = None) -> RunResult[S]:
        """Continue a stored run from its last completed step.

        Tool calls that completed before the interruption are replayed from the store,
        not executed again.
        """
        row = self.store.get_run(run_id)
        if row.status in ("succeeded", "failed", "aborted", "stopped", "budget_exhausted"):
            raise ResumeError(f"run has already finished with status {row.status!r}", run_id=row.id)
        if row.graph.get("nodes") != self.graph.describe()["nodes"]:
            raise ResumeError(
                "the graph given does not match the one the run was started "
                "with; resume it with the same agent definition",
                run_id=row.id,
            )
        last = self.store.last_step(row.id)
        if last is None:
            state = self.graph.state_type.model_validate(row.config["initial_state"])
            counters = RunCounters(node=self.graph.entry)
        else:
            checkpoint = json.loads(last.state_json)
            state = self.graph.state_type.model_validate(checkpoint["state"])
            counters = RunCounters.from_json(checkpoint["counters"])
            counters.node = last.next_node or END
        self.store.set_status(row.id, "running")
        ctx = self._context(row.id, state, counters, on_event)
        ctx.replay = self.store.completed_tool_calls(row.id)
        ctx.emit(RunStarted(run_id=row.id, name=row.name, task=row.task, resumed=True))
        return await self._loop(ctx)

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
        self, run_id: str, state: S, counters: RunCounters, on_event: EventCallback | None
    ) -> StepContext:
        return StepContext(
            run_id=run_id,
            graph=self.graph,
            store=self.store,
            state=state,
            counters=counters,
            loop_detector=LoopDetector(self.detectors),
            detectors=self.detectors,
            responses=self.responses,
            wind_down_steps=self.wind_down_steps,
            on_event=on_event,
        )

    async def _loop(self, ctx: StepContext) -> RunResult[S]:
        started = time.perf_counter()
        c = ctx.counters
        status, diagnosis, error = "succeeded", None, None
        try:
            while c.node != END:
                await self._apply_controls(ctx)
                if self.graph.max_steps is not None and c.step >= self.graph.max_steps:
                    status = "budget_exhausted"
                    break
                c.step += 1
                await self._run_step(ctx)
        except RunStopped as exc:
            status, diagnosis = "stopped", exc.diagnosis
        except _Aborted:
            status = "aborted"
        except ScriptError:
            self._finish(ctx, "failed", None, "scripted model error", None)
            raise
        except AgentkitError as exc:
            status, error = "failed", str(exc)
        except Exception as exc:
            self._finish(ctx, "failed", None, f"{type(exc).__name__}: {exc}", None)
            raise
        answer = _answer(ctx.state, status)
        if status == "succeeded" and _ended_empty(ctx.state):
            status, error = "failed", "the model's final reply was empty"
        self._finish(ctx, status, answer, error, diagnosis)
        return RunResult(
            run_id=ctx.run_id,
            status=status,
            answer=answer,
            state=ctx.state,
            steps=c.step,
            usage=Usage(
                prompt_tokens=c.prompt_tokens,
                cached_tokens=c.cached_tokens,
                evaluated_tokens=c.evaluated_tokens,
                completion_tokens=c.completion_tokens,
                seconds=c.model_seconds,
            ),
            compute=c.compute,
            top_tier_compute=c.top_tier_compute,
            top_tier_seconds=c.top_tier_seconds,
            escalations=c.escalations,
            tiers=dict(c.tiers),
            strikes=c.strikes,
            tokens_saved=c.tokens_saved,
            seconds=time.perf_counter() - started,
            diagnosis=diagnosis,
            error=error,
        )

    async def _run_step(self, ctx: StepContext) -> None:
        c = ctx.counters
        node_name = c.node
        node = self.graph.nodes[node_name]
        # Deferred to the step's first write, which comes before anything slow: the
        # model call, a tool call, a plain function, or the checkpoint below.
        ctx.defer(StepStarted(run_id=ctx.run_id, step=c.step, node=node_name, kind=node.kind))
        started = time.time()
        outcome = await self._with_retries(ctx, node_name, node)
        next_node = self.graph.next_node(node_name, ctx.state)
        batch = ctx.take_pending()
        batch.events.append(
            StepFinished(run_id=ctx.run_id, step=c.step, node=node_name, next_node=next_node)
        )
        self.store.save_step(
            StepRow(
                run_id=ctx.run_id,
                idx=c.step,
                node=node_name,
                kind=node.kind,
                started_at=started,
                finished_at=time.time(),
                state_json=_checkpoint_json(ctx.state, c, next_node),
                model=outcome.model,
                tier=outcome.tier,
                prompt_tokens=outcome.usage.prompt_tokens,
                cached_tokens=outcome.usage.cached_tokens,
                evaluated_tokens=outcome.usage.evaluated_tokens,
                completion_tokens=outcome.usage.completion_tokens,
                seconds=outcome.seconds,
                compute=outcome.compute,
                content=outcome.content,
                tool_calls=outcome.tool_calls,
                next_node=next_node,
            ),
            batch=batch,
        )
        ctx.notify(batch)
        c.node = next_node

    async def _with_retries(self, ctx: StepContext, name: str, node: Node) -> StepOutcome:
        """Run a node, retrying transient failures with exponential backoff.

        The first attempt runs directly: building a tenacity retrier on every step cost
        as much as several store writes, and almost every step succeeds at once.
        """
        policy = node.retry
        try:
            return await self._execute(ctx, name, node)
        except policy.retry_on as exc:
            if policy.attempts <= 1:
                raise
            first_error = exc

        def note(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            self._note_retry(ctx, name, state.attempt_number + 1, error)

        self._note_retry(ctx, name, 1, first_error)
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
                return await self._execute(ctx, name, node)
        raise AssertionError("unreachable: tenacity returns or re-raises")

    @staticmethod
    def _note_retry(ctx: StepContext, name: str, attempt: int, error: BaseException | None) -> None:
        ctx.emit(
            StepRetried(
                run_id=ctx.run_id,
                step=ctx.counters.step,
                node=name,
                attempt=attempt,
                error=repr(error),
            )
        )

    async def _execute(self, ctx: StepContext, name: str, node: Node) -> StepOutcome:
        if isinstance(node, ModelNode):
            return await run_model_step(ctx, name, node)
        if isinstance(node, ToolNode):
            return await run_tool_step(ctx, node)
        return await _function_step(ctx, node)

    async def _apply_controls(self, ctx: StepContext) -> None:
        from ._events import ControlApplied

        paused = False
        while True:
            for control in self.store.take_controls(ctx.run_id):
                ctx.emit(
                    ControlApplied(
                        run_id=ctx.run_id,
                        step=ctx.counters.step,
                        command=control.command,
                        argument=control.argument,
                    )
                )
                if control.command == "abort":
                    raise _Aborted
                if control.command == "pause" and not paused:
                    paused = True
                    self.store.set_status(ctx.run_id, "paused")
                elif control.command == "resume" and paused:
                    paused = False
                    self.store.set_status(ctx.run_id, "running")
                elif control.command == "force_tier" and control.argument is not None:
                    ctx.counters.forced_tier = int(control.argument)
            if not paused:
                return
            await asyncio.sleep(_PAUSE_POLL_SECONDS)

    def _finish(
        self,
        ctx: StepContext,
        status: str,
        answer: str | None,
        error: str | None,
        diagnosis: str | None,
    ) -> None:
        finished = RunFinished(
            run_id=ctx.run_id,
            step=ctx.counters.step,
            status=status,  # type: ignore[arg-type]
            answer=answer,
            error=error,
            diagnosis=diagnosis,
        )
        batch = ctx.take_pending()
        batch.events.append(finished)
        self.store.finish_run(
            ctx.run_id, status, answer=answer, error=error or diagnosis, batch=batch
        )
        ctx.notify(batch)


async def _function_step(ctx: StepContext, node: FunctionNode) -> StepOutcome:
    ctx.flush()  # the deferred StepStarted, visible while a slow function runs
    result = node.fn(ctx.state)
    if asyncio.iscoroutine(result):
        result = await result
    if isinstance(result, BaseModel):
        ctx.state = result
    elif isinstance(result, dict):
        ctx.state = ctx.state.model_copy(update=result)
    elif result is not None:
        raise TypeError(
            f"node function returned {type(result).__name__}; return the new "
            "state, a dict of updates, or None"
        )
    return StepOutcome()


_COUNTER_FIELDS = tuple(f.name for f in dataclasses.fields(RunCounters))


def _checkpoint_json(state: BaseModel, counters: RunCounters, next_node: str) -> str:
    """The step's checkpoint: the state, and the counters with the node to run next.

    The state grows every step, so pydantic writes it straight to JSON, and the
    counters skip ``asdict``'s deep copy: both showed up as hot spots.
    """
    data = {name: getattr(counters, name) for name in _COUNTER_FIELDS}
    data["node"] = next_node
    return f'{{"state": {state.model_dump_json()}, "counters": {json.dumps(data)}}}'


def _ended_empty(state: BaseModel) -> bool:
    """A conversation whose last word is an empty assistant reply has no answer."""
    messages: list[Message] = getattr(state, "messages", [])
    if not messages or messages[-1].role != "assistant":
        return False
    last = messages[-1]
    return not last.content.strip() and not last.tool_calls


def _answer(state: BaseModel, status: str) -> str | None:
    """The final answer, or the best partial result when the run did not finish."""
    answer = getattr(state, "answer", None)
    if isinstance(answer, str) and answer:
        return answer
    messages: list[Message] = getattr(state, "messages", [])
    for m in reversed(messages):
        if m.role == "assistant" and m.content.strip() and not m.tool_calls:
            return m.content.strip()
    if status != "succeeded" and messages:
        last = messages[-1]
        if last.content:
            return f"(partial) last observation: {last.content[:500]}"
    return None
