"""Request and stream shapes of the two endpoints a remote tier uses.

- ``CompletionWire``: llama-server's native ``/completion``. agentkit renders the prompt
  with the model's own chat template (from ``/props``), exactly as the in-process tier
  does, and constrains the turn with the same GBNF grammar. The prompt of step n is a
  byte prefix of step n+1, so the server's slot cache evaluates only the new tokens,
  and the server reports how many it reused (``timings.cache_n``).
- ``ChatWire``: ``/v1/chat/completions``. The server renders the messages; tool calls
  are constrained by a ``structured_outputs`` grammar (vLLM) or left to the server's
  ``tools`` support and read back leniently.

Each wire builds one request body and folds the streamed events into a ``Reply``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .._errors import RemoteModelError
from ._grammar import CALL_CLOSE, CALL_OPEN, text_grammar, tool_call_grammar
from ._messages import FinishReason, Message, TokenLogprob, ToolCall, ToolSpec
from ._protocol import Sampling, ToolChoice
from ._template import ChatRenderer

__all__ = ["ChatWire", "CompletionWire", "Reply", "chat_messages"]

_FINISH: dict[str, FinishReason] = {
    "eos": "stop",
    "word": "stop",
    "limit": "length",
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
}


@dataclass
class _CallDraft:
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class Reply:
    """A streamed reply as it accumulates."""

    pieces: list[str] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish: FinishReason | None = None
    """The server's own finish reason, once it said the reply is complete."""
    prompt_tokens: int = 0
    cached_tokens: int = 0
    evaluated_tokens: int | None = None
    completion_tokens: int = 0
    calls: dict[int, _CallDraft] = field(default_factory=dict)
    """Structured tool calls of a chat reply, by index, as their deltas arrive."""

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def _grammar_for(tools: Sequence[ToolSpec], choice: ToolChoice, cache: dict[str, str]) -> str:
    key = f"{choice.mode}\n" + "\n".join(t.model_dump_json() for t in tools)
    grammar = cache.get(key)
    if grammar is None:
        if choice.mode == "none":
            grammar = text_grammar()
        else:
            grammar = tool_call_grammar(tools, allow_text=choice.mode == "auto")
        if len(cache) > 64:
            cache.clear()
        cache[key] = grammar
    return grammar


def _stream_error(event: dict[str, Any], url: str) -> None:
    """A mid-stream ``{"error": ...}`` event, raised as the server's failure."""
    error = event.get("error")
    if error is None:
        return
    message = error.get("message", error) if isinstance(error, dict) else error
    raise RemoteModelError(
        f"{url} failed mid-reply: {message}", url=url, server_message=str(message)
    )


@dataclass
class CompletionWire:
    """llama-server's ``/completion`` with an agentkit-rendered prompt and a GBNF grammar."""

    url: str
    renderer: ChatRenderer
    strip_bos: str = ""
    """BOS text to drop from the front of a prompt, because the server adds BOS itself."""
    banned: tuple[int, ...] = ()
    """Turn-opening control tokens (see ``_server.turn_openers``)."""
    logprobs: bool = True
    constrained: bool = True
    _grammars: dict[str, str] = field(default_factory=dict)

    def prompt(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> str:
        text = self.renderer.render(messages, tools)
        if self.strip_bos and text.startswith(self.strip_bos):
            text = text[len(self.strip_bos) :]
        return text

    def body(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        sampling: Sampling,
        choice: ToolChoice,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "prompt": self.prompt(messages, tools),
            "stream": True,
            "n_predict": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_k": sampling.top_k,
            "top_p": sampling.top_p,
            "min_p": sampling.min_p,
            "repeat_penalty": sampling.repeat_penalty,
            "repeat_last_n": 64,
            "seed": sampling.seed if sampling.seed is not None else -1,
            # The in-process tier's sampler chain, in its order (the server's default
            # adds DRY, typical-p and XTC, which change what a turn looks like).
            "samplers": ["penalties", "top_k", "top_p", "min_p", "temperature"],
            "cache_prompt": True,
            # Usage arrives with every event, so a reply stopped early still has it.
            "timings_per_token": True,
            "n_probs": 1 if self.logprobs else 0,
        }
        if self.banned:
            body["logit_bias"] = [[token, False] for token in self.banned]
        if tools:
            body["grammar"] = _grammar_for(tools, choice, self._grammars)
            # Call tags are control tokens in some vocabularies; without this the
            # server would send them as empty text and the calls could not be read.
            body["preserved_tokens"] = [CALL_OPEN, CALL_CLOSE]
        return body

    def feed(self, event: dict[str, Any], reply: Reply) -> str:
        """Fold one event into ``reply``; returns its new text."""
        _stream_error(event, self.url)
        for prob in event.get("completion_probabilities") or ():
            if isinstance(prob, dict) and "logprob" in prob:
                reply.logprobs.append(
                    TokenLogprob(token=str(prob.get("token", "")), logprob=float(prob["logprob"]))
                )
        reply.completion_tokens = max(
            reply.completion_tokens, int(event.get("tokens_predicted") or 0)
        )
        reply.prompt_tokens = max(reply.prompt_tokens, int(event.get("tokens_evaluated") or 0))
        timings = event.get("timings")
        if isinstance(timings, dict) and "cache_n" in timings:
            reply.cached_tokens = int(timings["cache_n"])
            reply.evaluated_tokens = int(timings.get("prompt_n", 0))
        if event.get("stop"):
            reply.finish = _FINISH.get(str(event.get("stop_type")), "stop")
        piece = str(event.get("content") or "")
        if piece:
            reply.pieces.append(piece)
        return piece


def chat_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Messages in the OpenAI chat shape.

    An assistant turn that only called tools gets ``content: ""``, never null: servers
    (llama-cpp-python's among them) reject a null content in the follow-up request.
    """
    out: list[dict[str, Any]] = []
    for m in messages:
        item: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.tool_calls:
            item["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                }
                for c in m.tool_calls
            ]
        if m.role == "tool":
            item["tool_call_id"] = m.tool_call_id or ""
        out.append(item)
    return out


@dataclass
class ChatWire:
    """``/v1/chat/completions``: vLLM's grammar, or the plain ``tools`` field."""

    url: str
    model: str
    mode: Literal["vllm", "tools"]
    logprobs: bool = True
    _grammars: dict[str, str] = field(default_factory=dict)

    @property
    def constrained(self) -> bool:
        """Whether the reply text carries calls in the grammar's format."""
        return self.mode == "vllm"

    def body(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        sampling: Sampling,
        choice: ToolChoice,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": chat_messages(messages),
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
        }
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if self.logprobs:
            body["logprobs"] = True
        if tools:
            body["tools"] = [t.openai_format() for t in tools]
        if self.mode == "vllm":
            body.update(
                top_k=sampling.top_k,
                min_p=sampling.min_p,
                repetition_penalty=sampling.repeat_penalty,
            )
            if tools:
                # The template shows the tools; the grammar, not vLLM's tool parser,
                # shapes the reply, so the server is told not to parse calls itself.
                body["tool_choice"] = "none"
                body["structured_outputs"] = {
                    "grammar": _grammar_for(tools, choice, self._grammars)
                }
        elif tools:
            body["tool_choice"] = choice.mode
        return body

    def feed(self, event: dict[str, Any], reply: Reply) -> str:
        """Fold one chunk into ``reply``; returns its new text (content and arguments)."""
        _stream_error(event, self.url)
        usage = event.get("usage")
        if isinstance(usage, dict):
            _chat_usage(usage, event, reply)
        new = []
        for choice in event.get("choices") or ():
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                reply.pieces.append(str(content))
                new.append(str(content))
            for call in delta.get("tool_calls") or ():
                new.append(_add_call_delta(reply, call))
            logprobs = choice.get("logprobs")
            if isinstance(logprobs, dict):
                for item in logprobs.get("content") or ():
                    reply.logprobs.append(
                        TokenLogprob(
                            token=str(item.get("token", "")), logprob=float(item["logprob"])
                        )
                    )
            if choice.get("finish_reason"):
                reply.finish = _FINISH.get(str(choice["finish_reason"]), "stop")
        return "".join(new)

    def calls(self, reply: Reply) -> tuple[list[ToolCall], list[str]]:
        """Structured calls, and the raw text of those whose arguments are not JSON."""
        calls, broken = [], []
        for draft in (reply.calls[i] for i in sorted(reply.calls)):
            try:
                arguments = json.loads(draft.arguments or "{}")
            except ValueError:
                arguments = None
            if isinstance(arguments, dict) and draft.name:
                calls.append(ToolCall(name=draft.name, arguments=arguments, **_id(draft)))
            else:
                broken.append(
                    f'{CALL_OPEN}\n{{"name": {json.dumps(draft.name)}, '
                    f'"arguments": {draft.arguments}}}\n{CALL_CLOSE}'
                )
        return calls, broken


def _id(draft: _CallDraft) -> dict[str, str]:
    return {"id": draft.id} if draft.id else {}


def _add_call_delta(reply: Reply, call: dict[str, Any]) -> str:
    draft = reply.calls.setdefault(int(call.get("index", len(reply.calls))), _CallDraft())
    draft.id = draft.id or str(call.get("id") or "")
    function = call.get("function") or {}
    draft.name += str(function.get("name") or "")
    piece = str(function.get("arguments") or "")
    draft.arguments += piece
    return piece


def _chat_usage(usage: dict[str, Any], event: dict[str, Any], reply: Reply) -> None:
    reply.prompt_tokens = int(usage.get("prompt_tokens") or 0)
    reply.completion_tokens = int(usage.get("completion_tokens") or 0)
    details = usage.get("prompt_tokens_details")
    if isinstance(details, dict) and details.get("cached_tokens") is not None:
        reply.cached_tokens = int(details["cached_tokens"])
    timings = event.get("timings")  # llama-server adds its own figures
    if isinstance(timings, dict) and "cache_n" in timings:
        reply.cached_tokens = int(timings["cache_n"])
        reply.evaluated_tokens = int(timings.get("prompt_n", 0))
