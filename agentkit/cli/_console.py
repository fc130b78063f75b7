"""Live progress of a run on the terminal: ``agent.run(task, on_event=ConsoleProgress())``.

One compact line per interesting event goes to stderr while the run works, so stdout
stays free for the answer and the summary (``print_summary``), which scripts may pipe.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

from ..events import (
    AnswerRequested,
    BudgetWarning,
    ContextCondensed,
    ControlApplied,
    DetectorStrike,
    Event,
    FilterVerdict,
    ModelCalled,
    RunFinished,
    RunStarted,
    StepFinished,
    StepRetried,
    StepStarted,
    TierChosen,
    ToolArgumentsRejected,
    ToolCallFinished,
)
from ..runtime._result import RunResult

__all__ = ["ConsoleProgress", "print_summary"]

_INDENT = "        "


class ConsoleProgress:
    """An ``on_event`` callback printing one short line per interesting event.

    ``verbose`` adds the reason for every tier choice, each step's routing and the
    model's text in full width; ``width`` bounds the length of arguments and results.
    """

    def __init__(
        self, *, verbose: bool = False, stream: TextIO | None = None, width: int = 72
    ) -> None:
        self.verbose = verbose
        self.width = width
        self._stream = stream
        # A model step's header waits for its tier, so both fit on one line.
        self._pending_step: StepStarted | None = None

    def __call__(self, event: Event) -> None:
        line = self._line(event)
        if line is not None:
            out = self._stream if self._stream is not None else sys.stderr
            print(line, file=out, flush=True)

    def _line(self, event: Event) -> str | None:
        if isinstance(event, StepStarted):
            if event.kind == "model":
                self._pending_step = event
                return None
            return f"step {event.step:>3}  {event.node}"
        if isinstance(event, TierChosen):
            return self._tier(event)
        if isinstance(event, ModelCalled):
            return self._model(event)
        if isinstance(event, ToolCallFinished):
            mark = "!" if event.is_error else " "
            replayed = " (replayed)" if event.replayed else ""
            return (
                f"{_INDENT}{mark}{self._call(event.name, event.arguments)} -> "
                f"{self._short(event.result)}{replayed}"
            )
        if isinstance(event, ToolArgumentsRejected):
            return (
                f"{_INDENT}!{self._call(event.name, event.arguments)} rejected "
                f"(try {event.attempt}): {self._short(event.feedback)}"
            )
        if isinstance(event, DetectorStrike):
            return (
                f"{_INDENT}! detector {event.detector}: {self._short(event.message)} "
                f"-> {event.response}"
            )
        if isinstance(event, AnswerRequested):
            dropped = ", ".join(self._call(c["name"], c["arguments"]) for c in event.tool_calls)
            return (
                f"{_INDENT}! answer now, tools off for this turn: {self._short(event.reason)}"
                + (f" (not run: {dropped})" if dropped else "")
            )
        if isinstance(event, ContextCondensed):
            return (
                f"{_INDENT}condensed the context: {event.tokens_before} -> "
                f"{event.tokens_after} tokens ({event.messages_condensed} messages folded)"
            )
        return self._other(event)

    def _other(self, event: Event) -> str | None:
        if isinstance(event, RunStarted):
            how = "resumed" if event.resumed else "started"
            return f"run {event.run_id} {how} ({event.name}): {self._short(event.task)}"
        if isinstance(event, StepRetried):
            return (
                f"{_INDENT}! retrying {event.node} (attempt {event.attempt}): "
                f"{self._short(event.error)}"
            )
        if isinstance(event, BudgetWarning):
            return f"{_INDENT}step budget: {event.steps_left} step(s) left"
        if isinstance(event, ControlApplied):
            argument = f" {event.argument}" if event.argument else ""
            return f"{_INDENT}control: {event.command}{argument}"
        if isinstance(event, StepFinished):
            return f"{_INDENT}-> {event.next_node}" if self.verbose else None
        if isinstance(event, RunFinished):
            return self._finished(event)
        if isinstance(event, FilterVerdict):
            what = event.target.replace("_", " ") + (f" of {event.tool}" if event.tool else "")
            done = f" -> {event.outcome}" if event.outcome else ""
            return f"{_INDENT}! filter {event.filter}: {event.verdict} {what}{done}"
        return None

    def _tier(self, event: TierChosen) -> str:
        pending, self._pending_step = self._pending_step, None
        if pending is not None and pending.step == event.step:
            head = f"step {event.step:>3}  {event.node}  tier {event.tier} {event.model}"
        else:  # a second choice inside one step: escalated mid-generation
            head = f"{_INDENT}tier {event.tier} {event.model}"
        if event.escalated:
            return f"{head}  ^ {event.reason}"
        if event.previous_tier is not None and event.tier < event.previous_tier:
            return f"{head}  v {event.reason}"
        return f"{head}  ({event.reason})" if self.verbose else head

    def _model(self, event: ModelCalled) -> str:
        reused = f", {event.cached_tokens} reused" if event.cached_tokens else ""
        cost = (
            f"[{event.evaluated_tokens} evaluated{reused}, "
            f"{event.completion_tokens} generated, {event.seconds:.1f} s]"
        )
        if event.tool_calls:
            names = ", ".join(str(c.get("name")) for c in event.tool_calls)
            what = f"calls {names}"
        elif event.content.strip():
            what = f"says: {self._short(event.content)}"
        else:
            what = "says nothing"
        if event.finish_reason not in ("stop", "tool_calls"):
            what += f" (finish: {event.finish_reason})"
        return f"{_INDENT}{what}  {cost}"

    def _finished(self, event: RunFinished) -> str:
        line = f"run {event.run_id} {event.status} after {event.step or 0} steps"
        if event.diagnosis:
            # The full diagnosis is in the summary; live, its first line says enough.
            diagnosis = event.diagnosis if self.verbose else event.diagnosis.splitlines()[0]
            line += f"\n{_INDENT}diagnosis: {diagnosis}"
        if event.error:
            line += f"\n{_INDENT}error: {event.error}"
        return line

    def _call(self, name: str, arguments: dict[str, Any]) -> str:
        args = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in arguments.items())
        return f"{name}({self._short(args)})"

    def _short(self, text: str) -> str:
        flat = " ".join(text.split())
        if self.verbose or len(flat) <= self.width:
            return flat
        return flat[: self.width - 3] + "..."


def print_summary(
    result: RunResult[Any],
    store_path: str | os.PathLike[str],
    *,
    file: TextIO | None = None,
) -> None:
    """The short account of a finished run, ending with how to open it in the monitor."""
    out = file if file is not None else sys.stdout
    u = result.usage
    lines = [
        f"run {result.run_id}: {result.status}",
        f"answer:      {result.answer if result.answer is not None else '(none)'}",
        f"steps:       {result.steps} ({result.model_steps} model, {result.tool_calls} tool calls)",
        f"tokens:      {u.cached_tokens} reused from cache, {u.evaluated_tokens} evaluated, "
        f"{u.completion_tokens} generated",
        f"models:      {_tiers(result.tiers)}; escalations: {result.escalations}",
        f"compute:     {result.compute:,.1f} B-params x tokens (evaluated + generated)",
        f"seconds:     {result.seconds:.1f}",
    ]
    if result.compute_ratio is not None and result.compute_ratio < 0.995:
        # Labelled as the estimate it is: the largest model alone would take other steps.
        lines.append(
            f"estimate:    the same tokens on the largest tier alone: "
            f"{result.top_tier_compute:,.1f} (not a measured run)"
        )
    if result.diagnosis:
        lines.append(f"diagnosis:   {result.diagnosis}")
    if result.error:
        lines.append(f"error:       {result.error}")
    lines.append(f"Open the monitor on this run:  agentkit monitor --db {os.fspath(store_path)}")
    print("\n".join(lines), file=out, flush=True)


def _tiers(tiers: dict[str, int]) -> str:
    return ", ".join(f"{k} x{v}" for k, v in tiers.items()) or "none"
