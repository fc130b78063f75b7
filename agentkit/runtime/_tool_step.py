"""What one tool step does: run every call of the last assistant turn.

Calls run concurrently, each with its own timeout; a tool that raises or hangs becomes an
observation for the model, never a crash. Each call goes through the recorder's journal:
started before it runs, finished (durable) before the step ends, so a resumed run replays
a finished call from the store instead of running it twice.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .._errors import ToolError
from ..detection._canonical import StepObservation
from ..events import ToolCallFinished
from ..models._messages import Message, ToolCall
from ..store._rows import ToolResult
from ._context import RunContext
from ._graph import ToolNode
from ._result import StepRecord
from ._strikes import carry_out
from ._threads import in_thread
from ._tools import Tool, ToolArgumentsError

__all__ = ["run_tool_step"]


async def run_tool_step(ctx: RunContext, state: Any, node: ToolNode) -> StepRecord:
    messages = list(state.messages)
    last = messages[-1] if messages else None
    calls: tuple[ToolCall, ...] = (
        last.tool_calls if last is not None and last.role == "assistant" else ()
    )
    tools = {t.name: t for t in node.tool_list}
    results: list[tuple[str, bool]]
    if len(calls) == 1:  # the common case, without gather's task
        results = [await _run_call(ctx, tools, calls[0], only=True)]
    else:
        results = await asyncio.gather(*(_run_call(ctx, tools, call, only=False) for call in calls))
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
        stop=stop,
    )


def _finished(
    ctx: RunContext,
    call: ToolCall,
    text: str,
    is_error: bool,
    *,
    seconds: float = 0.0,
    replayed: bool = False,
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
    )


async def _run_call(
    ctx: RunContext, tools: dict[str, Tool], call: ToolCall, *, only: bool
) -> tuple[str, bool]:
    if call.id in ctx.replay:
        text, is_error = ctx.replay[call.id]
        ctx.recorder.emit(_finished(ctx, call, text, is_error, replayed=True))
        ctx.recorder.flush()
        return text, is_error
    ctx.recorder.call_started(ctx.step, call)
    started = time.perf_counter()
    text, is_error = await _invoke(tools, call)
    seconds = time.perf_counter() - started
    ctx.recorder.call_finished(
        ToolResult(ctx.run_id, call.id, text, is_error, seconds),
        _finished(ctx, call, text, is_error, seconds=seconds),
        commit=not only,
    )
    return text, is_error


async def _call_tool(tool: Tool, arguments: dict[str, Any]) -> Any:
    """``Tool.ainvoke``, with sync functions on the runtime's tool threads."""
    if tool.is_async:
        return await tool.ainvoke(arguments)
    parsed = tool.validate(arguments)
    return await in_thread(
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
