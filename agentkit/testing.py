"""Test doubles shipped with the library, so tests need no real model.

``ScriptedModel`` replays a script of turns. It fails loudly (``ScriptError``) when it is
called more often than the script allows, when a turn's expectation does not hold, and,
on ``verify()`` or leaving a ``with`` block, when turns were left unconsumed.

    model = ScriptedModel([
        call("add", a=2, b=3),
        reply("The sum is 5."),
    ])
    with model:
        Agent(model, tools=[add]).run("What is 2 + 3?")
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from ._errors import ScriptError
from .models._messages import Message, ModelResponse, TokenLogprob, ToolCall, ToolSpec, Usage
from .models._protocol import Sampling, TokenCallback, ToolChoiceLike, as_tool_choice

__all__ = ["ScriptedModel", "Turn", "call", "calls", "reply"]

Responder = Callable[[Sequence[Message], Sequence[ToolSpec]], ModelResponse]
ChoiceResponder = Callable[[Sequence[Message], Sequence[str]], Mapping[str, float]]
Expectation = Callable[[Sequence[Message], Sequence[ToolSpec]], object]


@dataclass(frozen=True)
class Turn:
    """One scripted model turn: a fixed response or a function computing one."""

    respond: ModelResponse | Responder
    expect: Expectation | None = None
    """Optional check of the request; a falsy result or an exception is a ScriptError."""
    logprob: float = -0.05
    """Log-probability reported for every generated token (confidence tests lower it)."""
    delay: float = 0.0
    """Seconds to sleep per call, for timeout and concurrency tests."""


def call(name: str, /, **arguments: Any) -> Turn:
    """A turn that calls one tool."""
    return Turn(
        ModelResponse(
            tool_calls=(ToolCall(name=name, arguments=arguments),), finish_reason="tool_calls"
        )
    )


def calls(*pairs: tuple[str, dict[str, Any]]) -> Turn:
    """A turn that calls several tools at once: ``calls(("a", {...}), ("b", {...}))``."""
    tool_calls = tuple(ToolCall(name=n, arguments=a) for n, a in pairs)
    return Turn(ModelResponse(tool_calls=tool_calls, finish_reason="tool_calls"))


def reply(text: str) -> Turn:
    """A turn that answers in plain text."""
    return Turn(ModelResponse(content=text, finish_reason="stop"))


_PIECE = re.compile(r"\s*\S+|\s+")


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4) if text else 0


@dataclass
class ScriptedModel:
    """A ChatModel that replays ``script`` in order, one turn per ``complete`` call."""

    script: Sequence[Turn | ModelResponse | str]
    name: str = "scripted"
    context_size: int = 8192
    parameters: int = 1_000_000
    requests: list[list[Message]] = field(default_factory=list, init=False)
    """Every request received, in order, for assertions in tests."""
    tool_choices: list[str] = field(default_factory=list, init=False)
    """The tool-choice mode of every request ("auto", "required", "none"), in order."""
    choices: Sequence[Mapping[str, float] | ChoiceResponder] = ()
    """What ``choice_logprobs`` answers, one entry per call: choice -> log-probability,
    or a function of (messages, choices) returning that."""
    choice_requests: list[list[Message]] = field(default_factory=list, init=False)
    """Every ``choice_logprobs`` request, in order."""
    _turns: list[Turn] = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _last_prompt: str = field(default="", init=False)
    _rendered: dict[int, tuple[Message | ToolSpec, str]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self._turns = [self._as_turn(t) for t in self.script]

    @staticmethod
    def _as_turn(item: Turn | ModelResponse | str) -> Turn:
        if isinstance(item, Turn):
            return item
        if isinstance(item, str):
            return reply(item)
        return Turn(item)

    @property
    def remaining(self) -> int:
        return len(self._turns) - len(self.requests)

    def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        sampling: Sampling | None = None,
        on_token: TokenCallback | None = None,
        cancel: threading.Event | None = None,
        tool_choice: ToolChoiceLike = "auto",
    ) -> ModelResponse:
        choice = as_tool_choice(tool_choice)
        with self._lock:
            index = len(self.requests)
            self.requests.append(list(messages))
            self.tool_choices.append(choice.mode)
            if index >= len(self._turns):
                last = messages[-1] if messages else None
                raise ScriptError(
                    f"{self.name}: unexpected call #{index + 1}; the script has only "
                    f"{len(self._turns)} turn(s). Last message: {last!r}"
                )
            turn = self._turns[index]
            prompt = "".join(self._render(messages))
            shared = _common_prefix(self._last_prompt, prompt)
            self._last_prompt = prompt
        if turn.expect is not None:
            try:
                ok = turn.expect(messages, tools)
            except Exception as exc:
                raise ScriptError(
                    f"{self.name}: turn {index + 1} expectation failed: {exc}"
                ) from exc
            if not ok:
                raise ScriptError(f"{self.name}: turn {index + 1} expectation was not met")
        started = time.perf_counter()
        if turn.delay:
            time.sleep(turn.delay)
        response = (
            turn.respond
            if isinstance(turn.respond, ModelResponse)
            else turn.respond(messages, tools)
        )
        if response.tool_calls and tools and choice.mode == "none":
            raise ScriptError(
                f"{self.name}: turn {index + 1} calls {response.tool_calls[0].name} but the "
                'request allowed only a text answer (tool_choice "none")'
            )
        return self._finish(response, prompt, shared, turn, started, on_token, cancel)

    def _finish(
        self,
        response: ModelResponse,
        prompt: str,
        shared: int,
        turn: Turn,
        started: float,
        on_token: TokenCallback | None,
        cancel: threading.Event | None,
    ) -> ModelResponse:
        content = response.content
        finish = response.finish_reason
        pieces = _PIECE.findall(content)
        emitted: list[str] = []
        for piece in pieces:
            if cancel is not None and cancel.is_set():
                finish = "cancelled"
                break
            emitted.append(piece)
            if on_token is not None and on_token(piece):
                finish = "stopped"
                break
        if finish in ("stopped", "cancelled"):
            content = "".join(emitted)
            tool_calls: tuple[ToolCall, ...] = ()
        else:
            tool_calls = response.tool_calls
        completion = len(emitted) + sum(_estimate_tokens(str(c.arguments)) + 2 for c in tool_calls)
        prompt_tokens = _estimate_tokens(prompt)
        cached = min(prompt_tokens, shared // 4)
        usage = Usage(
            prompt_tokens=prompt_tokens,
            cached_tokens=cached,
            evaluated_tokens=prompt_tokens - cached,
            completion_tokens=completion,
            seconds=time.perf_counter() - started,
        )
        logprobs = tuple(TokenLogprob(token=p, logprob=turn.logprob) for p in emitted)
        if tool_calls and not logprobs:
            logprobs = (TokenLogprob(token=tool_calls[0].name, logprob=turn.logprob),)
        return response.model_copy(
            update={
                "content": content,
                "tool_calls": tool_calls,
                "finish_reason": finish,
                "usage": usage,
                "logprobs": logprobs,
                "model": self.name,
                "raw_text": response.raw_text or content,
            }
        )

    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> int:
        parts = self._render([*messages, *tools])
        text = "".join(parts[: len(messages)])
        return _estimate_tokens(text) + sum(_estimate_tokens(p) for p in parts[len(messages) :])

    def _render(self, items: Sequence[Message | ToolSpec]) -> list[str]:
        """The text of each message or tool spec, reusing what the last call rendered.

        Prompts grow by appending, and both kinds are frozen, so nearly every item of a
        request was rendered the time before (pydantic's repr is slow).
        """
        known = self._rendered
        fresh: dict[int, tuple[Message | ToolSpec, str]] = {}
        parts = []
        for item in items:
            entry = known.get(id(item))
            if entry is None or entry[0] is not item:
                entry = (item, _text(item))
            fresh[id(item)] = entry
            parts.append(entry[1])
        self._rendered = fresh
        return parts

    def verify(self) -> None:
        """Raise ScriptError if some scripted turns (or choice scores) were never used."""
        if self.remaining > 0:
            raise ScriptError(
                f"{self.name}: {self.remaining} scripted turn(s) were never consumed "
                f"(used {len(self.requests)} of {len(self._turns)})"
            )
        if len(self.choice_requests) < len(self.choices):
            raise ScriptError(
                f"{self.name}: {len(self.choices) - len(self.choice_requests)} scripted "
                f"choice score(s) were never asked for"
            )

    def choice_logprobs(
        self, messages: Sequence[Message], choices: Sequence[str]
    ) -> dict[str, float]:
        """The next entry of ``choices``, for every choice asked (as the llama.cpp model's
        method of the same name). A choice the entry leaves out scores -inf; an entry
        that names none of the choices is a ScriptError."""
        with self._lock:
            index = len(self.choice_requests)
            self.choice_requests.append(list(messages))
            if index >= len(self.choices):
                raise ScriptError(
                    f"{self.name}: unexpected choice_logprobs call #{index + 1}; the script "
                    f"has {len(self.choices)} choice score(s)"
                )
            entry = self.choices[index]
        scores = dict(entry(messages, choices) if callable(entry) else entry)
        if not set(scores) & set(choices):
            raise ScriptError(
                f"{self.name}: choice scores #{index + 1} name {sorted(scores)}, none of the "
                f"choices asked for {list(choices)}"
            )
        return {c: float(scores.get(c, float("-inf"))) for c in choices}

    def __enter__(self) -> ScriptedModel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.verify()


def _text(item: Message | ToolSpec) -> str:
    if isinstance(item, Message):
        return f"{item.role}:{item.content}{item.tool_calls}"
    return item.model_dump_json()


def _common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix, by bisection on slice comparisons (in C)."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo] and a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo
