"""The data that crosses the model boundary: messages, tool calls, responses, usage."""

from __future__ import annotations

import re
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .._errors import ConfigError

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "stopped", "cancelled"]


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:12]


class ToolCall(BaseModel):
    """One call of a tool by name with JSON arguments."""

    model_config = ConfigDict(frozen=True)

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    id: str = Field(default_factory=new_call_id)


class Message(BaseModel):
    """One chat message. ``tool`` messages answer the call named by ``tool_call_id``."""

    model_config = ConfigDict(frozen=True)

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    raw: str | None = None
    """For an assistant turn with calls: the text exactly as the model wrote it. The chat
    template would re-render the calls in its own format (``<tool_call>`` tags), while a
    small model often writes them bare or fenced; rendering the turn as written keeps the
    next prompt equal to what the model already has in its KV cache. Used only while it
    still parses to exactly these calls (see ``models._template``)."""

    @classmethod
    def system(cls, content: str) -> Message:
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str) -> Message:
        return cls(role="user", content=content)

    @classmethod
    def assistant(cls, content: str = "", tool_calls: tuple[ToolCall, ...] = ()) -> Message:
        return cls(role="assistant", content=content, tool_calls=tool_calls)

    @classmethod
    def tool(cls, call: ToolCall, content: str) -> Message:
        return cls(role="tool", content=content, tool_call_id=call.id, name=call.name)


# One rule for every tool name (decorated functions, JSON-schema tools, MCP tools, specs):
# what the common function-calling APIs accept, dots included ("math.factorial").
TOOL_NAME_RULE = "1 to 64 letters, digits, '_', '-' or '.', not starting with '-' or '.'"
_TOOL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}")


def says_nothing(text: str) -> bool:
    """Whether a reply holds no answer: blank, or ASCII punctuation alone (``>``, ``...``).

    A small model cut short after a call marker leaves such a stub as its whole reply;
    taken as an answer it would end a run "successfully" with nothing in it. Any letter,
    digit or non-ASCII symbol (an emoji, a currency sign) counts as saying something.
    """
    stripped = text.strip()
    return all(ch.isascii() and not ch.isalnum() for ch in stripped)


def tool_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a tool, or None when it can."""
    if _TOOL_NAME.fullmatch(name):
        return None
    return f"tool name {name!r} is not allowed: use {TOOL_NAME_RULE} (for example 'math.factorial')"


class ToolSpec(BaseModel):
    """What a model is told about a tool: its name, description and JSON schema."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        problem = tool_name_problem(name)
        if problem is not None:
            raise ConfigError(problem)  # not a ValueError: pydantic lets it through as is
        return name

    def openai_format(self) -> dict[str, Any]:
        """The ``{"type": "function", "function": {...}}`` shape chat templates expect."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


class TokenLogprob(BaseModel):
    """A generated token and its log-probability under the model (before constraints)."""

    model_config = ConfigDict(frozen=True)

    token: str
    logprob: float


class Usage(BaseModel):
    """What one model call consumed.

    ``prompt_tokens == cached_tokens + evaluated_tokens``: cached tokens were reused
    from the KV cache of the previous call, evaluated ones went through the model.
    """

    model_config = ConfigDict(frozen=True)

    prompt_tokens: int = 0
    cached_tokens: int = 0
    evaluated_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            evaluated_tokens=self.evaluated_tokens + other.evaluated_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            seconds=self.seconds + other.seconds,
        )


class Decision(BaseModel):
    """A choice the backend made at a decision point of a tool-enabled turn.

    ``plan``: before the turn, the model was asked how many calls its reply needs;
    ``call``: at the start of the turn, call a tool or answer in text; ``more_calls``: after
    a complete call, make another call or end the turn. ``probability`` is the model's own
    probability of the first option (some call; calling; another call), from the token
    distribution (with the grammar applied where there is one); ``taken`` says which way
    the turn went, and ``calls`` how many calls a plan asked for.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["plan", "call", "more_calls"]
    probability: float
    taken: bool
    calls: int | None = None
    several: float | None = None
    """For a plan: the probability that the reply needs two calls or more."""


class ModelResponse(BaseModel):
    """What a model step produced: text, tool calls, or both."""

    model_config = ConfigDict(frozen=True)

    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: FinishReason = "stop"
    usage: Usage = Field(default_factory=Usage)
    logprobs: tuple[TokenLogprob, ...] = ()
    model: str = ""
    raw_text: str = ""
    """The text exactly as generated, before tool-call parsing."""
    decisions: tuple[Decision, ...] = ()
    """The turn's decision points (call or answer; one more call or stop), in order."""

    def as_message(self) -> Message:
        raw = self.raw_text if self.tool_calls and self.raw_text.strip() else None
        return Message(role="assistant", content=self.content, tool_calls=self.tool_calls, raw=raw)
