"""What one tool step does: run every call of the last assistant turn.

Calls run concurrently, each with its own timeout; a tool that raises or hangs becomes an
observation for the model, never a crash. Each call goes through the recorder's journal:
started before it runs, finished (durable) before the step ends, so a resumed run replays
a finished call from the store instead of running it twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from .._errors import ToolError
from ..detection._canonical import StepObservation
from ..events import ToolCallFinished
from ..models._messages import Message, ToolCall
from ..store._rows import ToolResult
from ._context import RunContext
from ._filtering import ToolScreen
from ._graph import ToolNode
from ._result import StepRecord
from ._strikes import carry_out
from ._threads import in_thread
from ._tools import Tool, ToolArgumentsError

__all__ = ["UNKNOWN_OUTCOME", "run_tool_step"]

UNKNOWN_OUTCOME = (
    "Error: the outcome of this call is unknown: the run was interrupted while it ran, so "
    "it may or may not have taken effect. Check before you repeat it."
)


async def run_tool_step(ctx: RunContext, state: Any, node: ToolNode) -> StepRecord:
    messages = list(state.messages)
    last = messages[-1] if messages else None
    calls: tuple[ToolCall, ...] = (
        last.tool_calls if last is not None and last.role == "assistant" else ()
    )
    tools = {t.name: t for t in node.tool_list}
    screen = await ToolScreen.start(ctx, node, calls)  # the node's filters, before any call runs
    calls, messages = screen.calls, screen.conversation(messages)
    results: list[tuple[str, bool]]
    if len(calls) == 1:  # the common case, without gather's task
        results = [await _run_call(ctx, tools, calls[0], screen, only=True)]
    else:
        results = await asyncio.gather(
            *(_run_call(ctx, tools, call, screen, only=False) for call in calls)
        )
    for call, (text, _) in zip(calls, results, strict=True):
        messages.append(Message.tool(call, text))
    errors = sum(1 for _, is_error in results if is_error)
    ctx.tiers.tool_results(len(calls), errors)
    stop, strikes = None, 0
    if calls:
        observation = StepObservation(
            index=ctx.step,
            tool_calls=tuple((call.name, call.arguments) for call in calls),
            results=tuple(results),
            content=last.content if last else "",
            is_empty=False,
        )
        action = ctx.strikes.observe(observation, can_escalate=ctx.tiers.can_escalate_now)
        if action is not None:
            strikes = 1
            stop = carry_out(ctx, action, messages)
    return StepRecord(
        state=state.model_copy(update={"messages": messages}),
        kind="tool",
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
        tool_errors=errors,
        strikes=strikes,
        stop=stop or screen.stop,
    )


def _finished(
    ctx: RunContext,
    call: ToolCall,
    text: str,
    is_error: bool,
    *,
    seconds: float = 0.0,
    replayed: bool = False,
    unknown: bool = False,
) -> ToolCallFinished:
    return ToolCallFinished(
        run_id=ctx.run_id,
        step=ctx.step,
        call_id=call.id,
        name=call.name,
        arguments=call.arguments,
        result=text,
        is_error=is_error,
        seconds=seconds,
        replayed=replayed,
        unknown=unknown,
    )


async def _run_call(
    ctx: RunContext, tools: dict[str, Tool], call: ToolCall, screen: ToolScreen, *, only: bool
) -> tuple[str, bool]:
    if (refused := screen.refusal(call)) is not None:
        return refused
    if call.id in ctx.replay:
        text, is_error = ctx.replay[call.id]
        ctx.recorder.emit(_finished(ctx, call, text, is_error, replayed=True))
        ctx.recorder.flush()
        return text, is_error
    if call.id in ctx.unfinished and not (call.name in tools and tools[call.name].idempotent):
        # In flight when the run was interrupted: it may have taken effect. Running it
        # again could do it twice, so only an idempotent tool is run again.
        ctx.recorder.call_finished(
            ToolResult(ctx.run_id, call.id, UNKNOWN_OUTCOME, True, 0.0),
            _finished(ctx, call, UNKNOWN_OUTCOME, True, unknown=True),
            commit=True,
        )
        return UNKNOWN_OUTCOME, True
    ctx.recorder.call_started(ctx.step, call)
    started = time.perf_counter()
    text, is_error = await _invoke(tools, call)
    seconds = time.perf_counter() - started
    text, is_error = await screen.result(call, text, is_error)  # before the journal keeps it
    ctx.recorder.call_finished(
        ToolResult(ctx.run_id, call.id, text, is_error, seconds),
        _finished(ctx, call, text, is_error, seconds=seconds),
        commit=not only,
    )
    return text, is_error


class _ToolExited(Exception):
    """A tool's code raised SystemExit or KeyboardInterrupt."""


def _no_exit(fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    # asyncio re-raises SystemExit and KeyboardInterrupt out of the event loop from any
    # task they reach: turn them into an ordinary error while still in the tool's thread.
    try:
        return fn(**kwargs)
    except (SystemExit, KeyboardInterrupt) as exc:
        raise _ToolExited(type(exc).__name__) from None


async def _call_tool(tool: Tool, arguments: dict[str, Any]) -> Any:
    """``Tool.ainvoke``, with sync functions on the runtime's tool threads."""
    if tool.is_async:
        try:
            return await tool.ainvoke(arguments)
        except (SystemExit, KeyboardInterrupt) as exc:
            raise _ToolExited(type(exc).__name__) from None
    return await in_thread("tools", _no_exit, tool.fn, tool.call_arguments(arguments))


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
    except _ToolExited as exc:
        return f"Error: {call.name} tried to end the process ({exc}); the call was stopped", True
    except Exception as exc:  # a tool's own bug or failure is an observation
        return f"Error: {call.name} failed: {_describe(exc)}", True
    try:
        return tool.render(result), False
    except Exception as exc:  # a result whose str() or JSON form raises
        return f"Error: {call.name} returned a result that cannot be shown: {_describe(exc)}", True


def _describe(exc: BaseException) -> str:
    try:
        return f"{type(exc).__name__}: {exc}"
    except Exception:  # an exception whose own str() raises
        return type(exc).__name__
