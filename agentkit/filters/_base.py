"""The filter base classes: ``Filter`` (any check), ``FunctionFilter`` (a plain function)
and ``TextFilter`` (finds spans of text and redacts or refuses them).

A filter is opt-in, ordered and async. Synchronous work (a library scan, a model call)
runs on the filters' own worker threads, so a filter that hangs can be abandoned at its
time limit without stalling the run: the runtime then fails closed (or open, when the
filter says so) and records why.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar, get_args

from .._errors import ConfigError
from ._verdict import TARGETS, Action, Subject, Target, Verdict

__all__ = ["Filter", "Finding", "FunctionFilter", "TextFilter", "as_filter", "in_worker"]

T = TypeVar("T")
FilterFunction = Callable[[Subject], "Verdict | Awaitable[Verdict | None] | None"]

_pool: list[ThreadPoolExecutor] = []
_pool_lock = threading.Lock()


async def in_worker(fn: Callable[..., T], /, *args: Any) -> T:
    """Run blocking filter work on the filters' thread pool (not the model's or tools')."""
    if not _pool:
        with _pool_lock:
            if not _pool:
                _pool.append(ThreadPoolExecutor(thread_name_prefix="agentkit-filters"))
    call = functools.partial(contextvars.copy_context().run, fn, *args)
    return await asyncio.get_running_loop().run_in_executor(_pool[0], call)


class Filter:
    """A check on what goes into the model or comes out of it. Subclass and implement
    ``check``; the runtime calls it for every subject whose target is in ``targets``.

    ``timeout`` bounds one check in seconds (None: no limit). A check that raises or
    runs past it fails closed (a block) unless ``fail_open`` is set (a pass); either way
    the run records it. ``retries`` is how often in one model step this filter may send
    the turn back before the run stops.
    """

    name: str = "filter"
    default_targets: frozenset[Target] = TARGETS

    def __init__(
        self,
        *,
        name: str | None = None,
        targets: Iterable[Target] | None = None,
        timeout: float | None = 5.0,
        fail_open: bool = False,
        retries: int = 2,
    ) -> None:
        self.name = name or type(self).name
        self.targets: frozenset[Target] = (
            frozenset(targets) if targets is not None else self.default_targets
        )
        self.timeout = timeout
        self.fail_open = fail_open
        self.retries = retries
        problems = self._problems()
        if problems:
            raise ConfigError(problems)

    def _problems(self) -> list[str]:
        problems = []
        unknown = sorted(set(self.targets) - TARGETS)
        if unknown:
            problems.append(
                f"filter {self.name!r}: unknown target(s) {unknown}; use {sorted(TARGETS)}"
            )
        if not self.targets:
            problems.append(f"filter {self.name!r} has no targets; it would never run")
        if self.timeout is not None and self.timeout <= 0:
            problems.append(f"filter {self.name!r}: timeout must be positive or None")
        if self.retries < 0:
            problems.append(f"filter {self.name!r}: retries must be 0 or more")
        return problems

    def warm_up(self) -> None:
        """Load what the filter needs (a library, a model) ahead of its first check.

        The runtime calls it once per filter, on a worker thread and outside the time
        limit of a check, so a slow first load does not count as a hanging filter.
        """

    def applies_to(self, target: Target) -> bool:
        """Whether this filter checks subjects of ``target``."""
        return target in self.targets

    async def check(self, subject: Subject) -> Verdict:
        """The verdict on one subject."""
        raise NotImplementedError(f"{type(self).__name__} does not implement check()")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, targets={sorted(self.targets)})"


class FunctionFilter(Filter):
    """A filter from a function of the ``Subject`` returning a ``Verdict`` (None passes).

    A plain function runs on a worker thread (so its time limit holds); a coroutine
    function is awaited.
    """

    def __init__(self, fn: FilterFunction, **options: Any) -> None:
        if not callable(fn):
            raise ConfigError(f"a filter must be a Filter or a function, got {fn!r}")
        self.fn = fn
        options.setdefault("name", getattr(fn, "__name__", None) or "function")
        super().__init__(**options)

    async def check(self, subject: Subject) -> Verdict:
        if inspect.iscoroutinefunction(self.fn):
            result = await self.fn(subject)
        else:
            result = await in_worker(self.fn, subject)
            if inspect.isawaitable(result):
                result = await result
        return Verdict.ok() if result is None else result


def as_filter(item: Filter | FilterFunction) -> Filter:
    """A Filter as is; a function wrapped in a FunctionFilter."""
    if isinstance(item, Filter):
        return item
    return FunctionFilter(item)


def as_filters(items: Sequence[Filter | FilterFunction] | None) -> list[Filter]:
    """``as_filter`` over a sequence (None is no filters)."""
    if items is None:
        return []
    if isinstance(items, (Filter, str)) or callable(items):
        raise ConfigError("filters= takes a list of filters, e.g. filters=[PIIFilter()]")
    return [as_filter(f) for f in items]


@dataclass(frozen=True)
class Finding:
    """A span of text a ``TextFilter`` found, with what it is (``EMAIL_ADDRESS``...)."""

    start: int
    end: int
    label: str
    score: float = 1.0


class TextFilter(Filter):
    """A filter that finds spans in text (``find``) and acts on them.

    ``on_match="redact"`` replaces each span by ``placeholder`` (``<LABEL>`` by default);
    any other action (block, retry, escalate, stop) is the verdict, carrying the
    redacted text as what may be recorded. Tool calls are checked string by string in
    their arguments, so a redaction keeps them valid JSON of the same shape.
    """

    def __init__(
        self, *, on_match: Action = "redact", placeholder: str = "<{label}>", **options: Any
    ) -> None:
        if on_match not in get_args(Action) or on_match == "pass":
            raise ConfigError(
                f"on_match={on_match!r} is not a verdict; use redact, block, retry, "
                "escalate or stop"
            )
        self.on_match: Action = on_match
        self.placeholder = placeholder
        super().__init__(**options)

    def find(self, text: str) -> list[Finding]:
        """Every span worth acting on (runs on a worker thread)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement find()")

    async def check(self, subject: Subject) -> Verdict:
        return await in_worker(self.check_now, subject)

    def check_now(self, subject: Subject) -> Verdict:
        """``check``, synchronously (the benchmarks time this)."""
        found: Counter[str] = Counter()
        if subject.target == "tool_call" and subject.arguments is not None:
            arguments = _walk(subject.arguments, lambda s: self._redact(s, found))
            text = None
        else:
            text, arguments = self._redact(subject.text, found), None
        if not found:
            return Verdict.ok()
        changes = tuple(f"{n} {label}" for label, n in sorted(found.items()))
        reason = f"found {', '.join(changes)}"
        if self.on_match in ("redact", "rewrite"):
            return Verdict(self.on_match, reason, text, arguments, changes)
        return Verdict(self.on_match, reason, text, arguments, changes, score=1.0)

    def _redact(self, text: str, found: Counter[str]) -> str:
        spans = _merge(self.find(text)) if text else []
        if not spans:
            return text
        parts, last = [], 0
        for span in spans:
            parts += [text[last : span.start], self.placeholder.format(label=span.label)]
            found[span.label] += 1
            last = span.end
        parts.append(text[last:])
        return "".join(parts)


def _merge(findings: list[Finding]) -> list[Finding]:
    """Overlapping spans become one, labelled by the longest."""
    merged: list[Finding] = []
    for f in sorted(findings, key=lambda f: (f.start, -(f.end - f.start))):
        if f.end <= f.start:
            continue
        if merged and f.start < merged[-1].end:
            last = merged[-1]
            longer = last if last.end - last.start >= f.end - f.start else f
            merged[-1] = Finding(last.start, max(last.end, f.end), longer.label, longer.score)
        else:
            merged.append(f)
    return merged


def _walk(value: Any, fn: Callable[[str], str]) -> Any:
    """``value`` with ``fn`` applied to every string in it (keys stay as they are)."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, Mapping):
        return {k: _walk(v, fn) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_walk(v, fn) for v in value]
    return value
