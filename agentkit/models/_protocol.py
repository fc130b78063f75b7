"""The interface every model tier implements, in-process or (later) remote.

A model object is shared: many runs, threads and agents call the same instance.
It holds weights and caches, never a conversation; everything a run owns travels in
the arguments of each call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

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
    ) -> ModelResponse:
        """Generate the next assistant turn.

        With tools, output is constrained so any tool call names a known tool with
        schema-valid arguments; a plain text answer stays possible.
        Setting ``cancel`` from another thread stops the generation between tokens
        (finish_reason ``"cancelled"``).
        """
        ...

    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> int:
        """Prompt tokens the messages would take, rendered exactly as ``complete`` does."""
        ...
