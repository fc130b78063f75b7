"""The interface every model tier implements, in-process or (later) remote.

A model object is shared: many runs, threads and agents call the same instance.
It holds weights and caches, never a conversation; everything a run owns travels in
the arguments of each call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from ._messages import Message, ModelResponse, ToolSpec


class Sampling(BaseModel):
    """Sampling settings for one generation. Unknown fields are an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = Field(default=0.2, ge=0.0, le=5.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    top_k: int = Field(default=40, ge=0)
    min_p: float = Field(default=0.05, ge=0.0, le=1.0)
    repeat_penalty: float = Field(default=1.0, gt=0.0)
    max_tokens: int = Field(default=512, ge=1)
    seed: int | None = None


class ToolChoice(BaseModel):
    """How a tool-enabled turn decides between calling and answering. Unknown fields are
    an error.

    ``mode``: ``"auto"`` lets the turn call tools or answer in text; ``"required"`` makes it
    call at least one tool; ``"none"`` keeps the tools in the prompt (so the cached prefix
    stays the same) but allows only a plain-text answer. In ``"auto"`` the backend decides
    at two points from the model's own probabilities (see ``Decision``): at the start,
    call when the probability of calling is at least ``call_threshold``; after each
    complete call, make another when the probability of going on is at least
    ``more_calls_threshold``. 0.5 follows the model's more likely choice; thresholds are
    fitted on recorded runs (``bench/calibrate.py``).

    With ``plan`` the model is first asked how many calls its reply needs (``plan_question``,
    answered with one digit and read from the digits' probabilities, a few dozen prompt
    tokens on a cached prefix): no call when the probability of 0 is at least
    ``no_call_threshold``, else at least N calls when the probability of two or more is at
    least ``several_threshold``. ``"first"`` asks only before the conversation's first call.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["auto", "required", "none"] = "auto"
    call_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    more_calls_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    plan: Literal["never", "first", "always"] = "never"
    plan_question: str = (
        "How many function calls does your reply to the request above need? Answer with "
        "one digit: 0 if none of the functions fits the request or no call is needed, 1 for "
        "one call, 2 or more if the request asks for several things that each need a call."
    )
    no_call_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    several_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    min_call_confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    """A conversation's first call whose decision confidence (the probabilities of the
    tokens that choose the tool and its argument values) is below this is not made: the
    turn is redone as a plain-text answer. Small models call the nearest tool for requests
    no tool fits, with made-up arguments they are unsure of."""
    several_example: bool = False
    """Show the model, in the system prompt, an example of one reply making several calls
    (small models otherwise make exactly one call when a request needs several)."""

    def asks_plan(self, first_turn: bool) -> bool:
        """Whether to ask the plan question before this turn."""
        return self.mode == "auto" and (
            self.plan == "always" or (self.plan == "first" and first_turn)
        )


ToolChoiceLike = ToolChoice | Literal["auto", "required", "none"]


def as_tool_choice(choice: ToolChoiceLike | None) -> ToolChoice:
    """A ``ToolChoice`` from the object or its mode's name."""
    if choice is None:
        return ToolChoice()
    return choice if isinstance(choice, ToolChoice) else ToolChoice(mode=choice)


TokenCallback = Callable[[str], bool | None]
"""Called with each generated piece of text as it arrives; returning True stops the
generation early (finish_reason ``"stopped"``). The streaming repetition detector
plugs in here."""


@runtime_checkable
class ChatModel(Protocol):
    """A chat model that can call tools."""

    @property
    def name(self) -> str:
        """A short stable name (catalog name or file stem), used in events and costs."""
        ...

    @property
    def context_size(self) -> int:
        """Tokens the context window holds (prompt plus generation)."""
        ...

    @property
    def parameters(self) -> int:
        """Approximate parameter count; the unit of the compute figure in cost accounting."""
        ...

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
        """Generate the next assistant turn.

        With tools, output is constrained so any tool call names a known tool with
        schema-valid arguments; a plain text answer stays possible (``tool_choice``).
        Setting ``cancel`` from another thread stops the generation between tokens
        (finish_reason ``"cancelled"``).
        """
        ...

    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> int:
        """Prompt tokens the messages would take, rendered exactly as ``complete`` does."""
        ...
