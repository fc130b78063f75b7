"""Notice when an agent repeats itself across steps.

``LoopDetector.observe`` is given one ``StepObservation`` per model step (its tool calls,
their results, its text) and returns the strikes that step earned. It keeps only the last
``window_steps`` steps (plus a bounded set of digests for ``no_progress``).

What counts as a repeat is decided on canonical calls: argument keys sorted, single-line
strings trimmed and whitespace-collapsed, 1 == 1.0 == "1", volatile fields ("thought",
"progress", ..., and each tool's declared ``volatile_args``) dropped. Results are part of
most comparisons, which is what keeps legitimate repetition quiet: polling a job whose
status changes, re-reading a file after writing it, or the same tool over many files
never look like a loop. Results are compared without what would change between two runs
of the very same call anyway (clock times, uuids, labelled ids, timings), so a call
whose answer only carries a new timestamp is not news. Repeats of a call are counted
only since the run last learned something else (a new action or result from another
call), so a wait between two polls that bring news is not a repeated wait.

Errors: the same tool failing with the same error (ids, times and timings aside) counts
across calls; an error that differs in a line or column number is another error. One
identical call failing again and again counts even when its message carries a counter
("attempt 3 of 5"), because every number but a position is ignored between runs of it.
A reply repeated is counted only since the last tool result that brought something new.

Each step yields at most one strike per repeated call, the most specific one:
cycle > same_error > same_result > same_call; then near_duplicate_message and
empty_response; no_progress only when nothing more specific fired.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, replace

from ..models._messages import ToolCall
from ._canonical import (
    StepObservation,
    ToolCallLike,
    canonical_arguments,
    normalise_error,
    normalise_result,
    normalise_same_call_error,
)
from ._config import DETECTORS, DetectorConfig, Strike, clip

__all__ = [
    "LoopDetector",
    "StepObservation",
    "ToolCallLike",
    "canonical_arguments",
    "normalise_error",
]

_MAX_SEEN = 4096
"""Digests remembered for no_progress; older ones are forgotten first."""
_SHINGLE = 5
_TEXT_CAP = 2000
"""Characters of a reply compared for near-duplicates (enough to tell replies apart)."""


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=16).hexdigest()


@dataclass(frozen=True)
class _Call:
    name: str
    key: str
    """Canonical ``name(arguments)``."""
    result: str | None
    """Digest of the whitespace-normalised result; None where the call produced none."""
    result_text: str
    error: str | None
    """Digest of the normalised error text, for results marked as errors."""
    same_call_error: str | None = None
    """Digest of the error with every number but positions blanked, for comparing runs of
    this very call (a retry counter in the message does not make it a new error)."""

    @property
    def marks(self) -> tuple[str, ...]:
        """What this call can teach the run: its action and its result."""
        action = "k" + _digest(self.key)
        return (action,) if self.result is None else (action, "r" + self.result)


@dataclass(frozen=True)
class _Step:
    index: int
    calls: tuple[_Call, ...]
    signature: tuple[tuple[str, str | None], ...]
    """What a cycle compares: every call with its result, or the reply text."""
    text: str
    shingles: frozenset[str] | None
    """Set for text-only replies long enough to compare."""
    empty: bool
    exempt_involved: bool
    new_marks: frozenset[str] = frozenset()
    """Actions and results this step was the first to bring."""

    @property
    def marks(self) -> tuple[str, ...]:
        # Only calls and their results count as learning: a model that says something
        # new between two identical calls has not found anything out.
        return tuple(mark for call in self.calls for mark in call.marks)

    def learned_besides(self, key: str) -> bool:
        """Whether this step brought anything new other than through calls of ``key``."""
        own = {mark for call in self.calls if call.key == key for mark in call.marks}
        return bool(self.new_marks - own)


class LoopDetector:
    """Watches a run step by step and reports repetition as Strikes.

    Several strikes can come back for one step (for different calls); count a non-empty
    list as one strike when choosing a response with ``ResponsePlan``.
    """

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        self.reset()

    def reset(self) -> None:
        """Forget the history, as at the start of a run."""
        self._history: deque[_Step] = deque(maxlen=self.config.window_steps)
        self._seen: dict[str, None] = {}
        self._stale: deque[int] = deque(maxlen=self.config.no_progress_steps)
        self._stale_count = 0
        self._empty: deque[int] = deque(maxlen=self.config.empty_threshold)
        self._empty_count = 0

    def observe(self, obs: StepObservation) -> list[Strike]:
        """Record one step; the strikes it earned, most specific first (often none)."""
        step = self._digest_step(obs)
        if step is None:
            return []  # only exempt tools were called: nothing to judge
        step = replace(step, new_marks=self._remember(step.marks))
        self._history.append(step)
        # Text-only replies neither show nor break progress: identical verdicts from a
        # model node in a batch are fine, and near_duplicate_message covers chatter.
        stalled = (bool(step.calls) and not step.new_marks) or step.empty
        if stalled:
            self._stale.append(step.index)
            self._stale_count += 1
        elif step.calls:
            self._stale.clear()
            self._stale_count = 0

        enabled = set(DETECTORS) - self.config.disabled
        strikes: list[Strike] = []
        covered: set[str] = set()
        cycle = self._cycle() if "cycle" in enabled else None
        if cycle is not None:
            strike, keys = cycle
            strikes.append(strike)
            covered |= keys
        per_call = [
            check
            for name, check in (
                ("same_error", self._same_error),
                ("same_result", self._same_result),
                ("same_call", self._same_call),
            )
            if name in enabled
        ]
        for call in step.calls:
            if call.key in covered:
                continue
            for check in per_call:
                found = check(call)
                if found is not None:
                    strikes.append(found)
                    covered.add(call.key)
                    break
        # The empty-reply streak is counted even when its detector is disabled.
        empty = self._empty_reply(step)
        if "empty_response" in enabled and empty is not None:
            strikes.append(empty)
        if "near_duplicate_message" in enabled:
            near = self._near_duplicate(step)
            if near is not None:
                strikes.append(near)
        if not strikes and stalled and "no_progress" in enabled:
            stale = self._no_progress()
            if stale is not None:
                strikes.append(stale)
        return strikes

    # --- digesting a step ---

    def _digest_step(self, obs: StepObservation) -> _Step | None:
        c = self.config
        calls: list[_Call] = []
        exempt_involved = False
        for i, raw in enumerate(obs.tool_calls):
            name, arguments = (
                (raw.name, raw.arguments) if isinstance(raw, ToolCall) else (raw[0], raw[1])
            )
            override = c.override(name)
            if override is not None and override.exempt:
                exempt_involved = True
                continue
            volatile = c.volatile_fields | (override.volatile_fields if override else frozenset())
            key = f"{name}({canonical_arguments(arguments, volatile)})"
            text, is_error = obs.results[i] if i < len(obs.results) else (None, False)
            failed = bool(is_error and text)
            calls.append(
                _Call(
                    name=name,
                    key=key,
                    result=None if text is None else _digest(normalise_result(text)),
                    result_text=text or "",
                    error=_digest(normalise_error(text or "")) if failed else None,
                    same_call_error=(
                        _digest(normalise_same_call_error(text or "")) if failed else None
                    ),
                )
            )
        if exempt_involved and not calls:
            return None
        content = obs.content.strip()
        empty = obs.is_empty or (not obs.tool_calls and not content)
        if calls:
            signature = tuple((call.key, call.result) for call in calls)
        elif empty:
            signature = (("empty", None),)
        else:
            signature = (("text", _digest(" ".join(content.lower().split()))),)
        return _Step(
            index=obs.index,
            calls=tuple(calls),
            signature=signature,
            text=content,
            shingles=self._shingles(content) if not calls and not empty else None,
            empty=empty,
            exempt_involved=exempt_involved,
        )

    def _shingles(self, content: str) -> frozenset[str] | None:
        text = " ".join(content.lower().split())[:_TEXT_CAP]
        if len(text) < self.config.near_duplicate_min_chars:
            return None
        return frozenset(text[i : i + _SHINGLE] for i in range(len(text) - _SHINGLE + 1))

    def _remember(self, marks: tuple[str, ...]) -> frozenset[str]:
        """Record marks as seen; those that were new to this run."""
        new = set()
        for mark in marks:
            if mark not in self._seen:
                new.add(mark)
                self._seen[mark] = None
                if len(self._seen) > _MAX_SEEN:
                    del self._seen[next(iter(self._seen))]
        return frozenset(new)

    # --- detectors ---

    def _threshold(self, name: str, default: int) -> int:
        override = self.config.override(name)
        if override is not None and override.repeat_threshold is not None:
            return override.repeat_threshold
        return default

    def _streak(self, key: str) -> list[tuple[int, str | None]]:
        """``(step, result)`` of each call of ``key`` since the run last learned something
        else: a poll between waits that brings news each time keeps the waits apart."""
        found: list[tuple[int, str | None]] = []
        for step in reversed(self._history):
            if step.learned_besides(key):
                break
            found.extend((step.index, o.result) for o in step.calls if o.key == key)
        return found[::-1]

    def _same_result(self, call: _Call) -> Strike | None:
        if call.result is None:
            return None
        steps = [i for i, result in self._streak(call.key) if result == call.result]
        if len(steps) < self._threshold(call.name, self.config.same_result_threshold):
            return None
        n = len(steps)
        return Strike(
            detector="same_result",
            message=(
                f"You have called {call.name} with the same arguments {n} times and got the "
                "same result each time; try something different or give your final answer."
            ),
            window=f"{clip(call.key, 100)} -> {clip(call.result_text, 80)}",
            steps=tuple(steps),
            detail={"tool": call.name, "count": n},
            summary=f"{call.name} was called {n} times with the same arguments and "
            "returned the same result",
        )

    def _same_call(self, call: _Call) -> Strike | None:
        matches = self._streak(call.key)
        if len(matches) < self._threshold(call.name, self.config.same_call_threshold):
            return None
        results = [r for _, r in matches]
        if None not in results and len(set(results)) == len(results):
            return None  # a new result every time: polling that makes progress
        n = len(matches)
        return Strike(
            detector="same_call",
            message=(
                f"You have called {call.name} with the same arguments {n} times without "
                "learning anything new; try something different or give your final answer."
            ),
            window=clip(call.key, 120),
            steps=tuple(i for i, _ in matches),
            detail={"tool": call.name, "count": n, "distinct_results": len(set(results))},
            summary=f"{call.name} was called {n} times with the same arguments "
            "without a new result each time",
        )

    def _same_error(self, call: _Call) -> Strike | None:
        if call.error is None:
            return None
        steps = [
            s.index
            for s in self._history
            for o in s.calls
            if (o.name == call.name and o.error == call.error)
            or (o.key == call.key and o.same_call_error == call.same_call_error)
        ]
        n = len(steps)
        if n < self.config.same_error_threshold:
            return None
        error = clip(normalise_error(call.result_text), 100)
        return Strike(
            detector="same_error",
            message=(
                f"{call.name} has failed {n} times with the same error ({error}). Do not "
                "retry it unchanged: fix the cause, try another approach, or give your "
                "final answer."
            ),
            window=f"{call.name}: {error}",
            steps=tuple(steps),
            detail={"tool": call.name, "count": n},
            summary=f"{call.name} failed {n} times with the same error",
        )

    def _cycle(self) -> tuple[Strike, set[str]] | None:
        c = self.config
        history = list(self._history)
        for period in c.cycle_periods:
            length = period * c.cycle_repeats + 1
            if len(history) < length:
                continue
            run = history[-length:]
            if any(s.exempt_involved for s in run):
                continue  # a cycle through an exempt tool is repetition the user allowed
            if any(run[i].signature != run[i - period].signature for i in range(period, length)):
                continue
            unit = run[-period:]
            if len({s.signature for s in unit}) == 1:
                continue  # period 1 is not a cycle; the same_* detectors cover it
            order = run[:period]
            shown = " -> ".join(_describe(s) for s in order)
            turns = length / period
            return (
                Strike(
                    detector="cycle",
                    message=(
                        f"You are going round in a cycle ({clip(shown, 160)}) and getting the "
                        "same results each time; break the cycle: try something different "
                        "or give your final answer."
                    ),
                    window=clip(shown, 200),
                    steps=tuple(s.index for s in run),
                    detail={"period": period, "turns": turns},
                    summary=f"the same {period} steps repeated in a cycle "
                    f"({turns:g} turns) with the same results",
                ),
                {call.key for s in unit for call in s.calls},
            )
        return None

    def _near_duplicate(self, step: _Step) -> Strike | None:
        if step.shingles is None:
            return None
        c = self.config
        similar: list[int] = []
        for s in list(self._history)[-2::-1]:
            if s.calls and s.new_marks:
                break  # a tool brought news since: the same words may be the right ones
            if s.shingles is not None and (
                _jaccard(s.shingles, step.shingles) >= c.near_duplicate_similarity
            ):
                similar.insert(0, s.index)
        n = len(similar) + 1
        if n < c.near_duplicate_threshold:
            return None
        return Strike(
            detector="near_duplicate_message",
            message=(
                f"You have written nearly the same reply {n} times; do not repeat yourself. "
                "Call a tool, say something new, or give your final answer."
            ),
            window=clip(step.text, 120),
            steps=(*similar, step.index),
            detail={"count": n},
            summary=f"the model wrote nearly the same reply {n} times",
        )

    def _empty_reply(self, step: _Step) -> Strike | None:
        if not step.empty:
            self._empty.clear()
            self._empty_count = 0
            return None
        self._empty.append(step.index)
        self._empty_count += 1
        n = self._empty_count
        if n < self.config.empty_threshold:
            return None
        noun = "reply was" if n == 1 else f"{n} replies were"
        return Strike(
            detector="empty_response",
            message=f"Your last {noun} empty; reply with a tool call or your final answer.",
            window="(empty reply)",
            steps=tuple(self._empty),
            detail={"count": n},
            summary=f"{n} empty replies in a row",
        )

    def _no_progress(self) -> Strike | None:
        n = self._stale_count
        if n < self.config.no_progress_steps:
            return None
        stale = set(self._stale)
        recent = [s for s in self._history if s.index in stale]
        shown = " | ".join(_describe(s) for s in recent[-3:])
        return Strike(
            detector="no_progress",
            message=(
                f"Your last {n} steps produced nothing new; try a different approach or "
                "give your final answer."
            ),
            window=clip(shown, 200),
            steps=tuple(self._stale),
            detail={"count": n},
            summary=f"{n} steps in a row brought no new call, result or reply",
        )


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _describe(step: _Step) -> str:
    if step.calls:
        return " + ".join(clip(call.key, 80) for call in step.calls)
    if step.empty:
        return "(empty reply)"
    return f'reply "{clip(step.text, 60)}"'
