"""A model tier behind an OpenAI-compatible HTTP server (llama-server, vLLM, others).

``RemoteModel`` implements ``ChatModel`` over HTTP. Like a loaded GGUF it is shared by
every run and thread and holds no conversation: each ``complete`` sends the whole
conversation and streams the reply back. What the server is (and so how tool calls are
constrained) is asked once, on first use (``_server.probe_server``); see ``_wire`` for
the two request shapes. Tiers are written ``"http://host:port/v1#model"`` in a ladder.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Sequence
from typing import Literal
from urllib.parse import urlsplit

import httpx

from .._errors import ConfigError, RemoteModelError, StreamCutError
from ._catalog import list_models
from ._http import HttpClient, RemoteConfig
from ._messages import FinishReason, Message, ModelResponse, ToolCall, ToolSpec, Usage
from ._protocol import Sampling, TokenCallback, ToolChoiceLike, as_tool_choice
from ._server import ServedModel, ServerInfo, match_model, probe_server, turn_openers
from ._template import ChatRenderer, parse_tool_calls
from ._wire import ChatWire, CompletionWire, Reply

__all__ = ["RemoteModel", "is_remote_spec", "parse_remote_spec", "spec_parameters"]

_log = logging.getLogger("agentkit.remote")
_DEFAULT_CONTEXT = 4096
_SIZE_IN_NAME = re.compile(r"(?<![A-Za-z0-9.])(\d+(?:\.\d+)?)\s*([BM])(?![A-Za-z])", re.IGNORECASE)


def is_remote_spec(spec: str) -> bool:
    """Whether a tier spec names a server (``http://...`` or ``https://...``)."""
    return spec.strip().lower().startswith(("http://", "https://"))


def parse_remote_spec(spec: str) -> tuple[str, str | None]:
    """``"http://host:port/v1#model"`` as (base URL, model name or None)."""
    url, _, model = spec.strip().partition("#")
    return url, (model.strip() or None)


def spec_parameters(model: str | None) -> int:
    """Parameters a model name implies: its catalog entry, or a size in the name
    (``Qwen2.5-7B-Instruct`` is 7e9); 0 when neither says."""
    if not model:
        return 0
    for entry in list_models():
        if entry.name == model.lower():
            return int(entry.parameters)
    found = _SIZE_IN_NAME.findall(model.rsplit("/", 1)[-1])
    if found:
        number, unit = found[-1]
        return int(float(number) * (1e9 if unit.upper() == "B" else 1e6))
    return 0


class RemoteModel:
    """A chat model served over HTTP by an OpenAI-compatible server. Thread-safe.

    ``parameters`` (the unit of the compute figure in cost accounting) is the count you
    declare; without one, what llama-server reports, the catalog entry of the model's
    name, or a size written in the name (``...-7B-...``), in that order.
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        parameters: int | None = None,
        config: RemoteConfig | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """A tier on the server at ``base_url`` (``http://host:port/v1``). Nothing is sent
        until the first call; ``transport`` replaces the network (tests)."""
        if parameters is not None and parameters <= 0:
            raise ConfigError(f"parameters must be a positive count, not {parameters}")
        self.config = config or RemoteConfig()
        self._transport = transport
        self._http = HttpClient(base_url, self.config, transport=transport)
        self._wanted = model
        self._declared = parameters
        host = urlsplit(self._http.base_url).netloc
        self._name = f"{model or 'model'}@{host}"
        self._lock = threading.Lock()
        self._info: ServerInfo | None = None
        self._served: ServedModel | None = None
        self._wire: CompletionWire | ChatWire | None = None
        self._counts: dict[str, int] = {}
        self.memory_bytes = 0
        """Local memory the tier holds (none: the weights live on the server)."""

    @classmethod
    def from_spec(cls, spec: str, config: RemoteConfig | None = None) -> RemoteModel:
        """A tier from ``"http://host:port/v1#model"`` (the model part may be left out
        when the server serves one model)."""
        url, model = parse_remote_spec(spec)
        return cls(url, model, config=config)

    def __repr__(self) -> str:
        return f"RemoteModel({self._http.base_url!r}, {self._wanted!r})"

    # -- ChatModel -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        """``model@host:port``: the model's name and where it is served."""
        return self._name

    @property
    def base_url(self) -> str:
        """The server's OpenAI base URL (``http://host:port/v1``)."""
        return self._http.base_url

    @property
    def context_size(self) -> int:
        """Tokens one request may use: what the server reports, else the config's guess."""
        info = self.server()
        return info.context_size or self.config.context_size or _DEFAULT_CONTEXT

    @property
    def parameters(self) -> int:
        """The declared parameter count (see the class docstring for the fallbacks)."""
        if self._declared is not None:
            return self._declared
        self.server()
        served = self._served
        count = (served.parameters if served else None) or spec_parameters(
            self._wanted or (served.id if served else None)
        )
        if not count:
            raise ConfigError(
                f"the parameter count of {self._name} is unknown (the server does not say "
                "and the name does not tell); pass RemoteModel(..., parameters=N) so cost "
                "accounting can weigh this tier"
            )
        self._declared = count
        return count

    def server(self) -> ServerInfo:
        """What the server is and serves (asked once, on first use)."""
        info = self._info
        if info is None:
            with self._lock:
                if self._info is None:
                    self._connect()
                info = self._info
        assert info is not None  # set by _connect or it raised
        return info

    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> int:
        """Prompt tokens, from the server's tokenizer (an estimate for plain OpenAI servers)."""
        wire = self._ready()
        if isinstance(wire, CompletionWire):
            prompt = wire.prompt(messages, tools)
            if prompt not in self._counts:
                body = {"content": prompt, "add_special": self.server().adds_bos}
                answer = self._http.post(self._http.url("/tokenize", root=True), body)
                if len(self._counts) > 8:
                    self._counts.clear()
                self._counts[prompt] = len(answer.get("tokens") or ())
            return self._counts[prompt]
        # No tokenizer over HTTP here: about 3.5 characters per token, rounded up.
        size = len(json.dumps([m.model_dump() for m in messages]))
        size += len(json.dumps([t.openai_format() for t in tools])) if tools else 0
        return int(size / 3.5) + 8 * len(messages)

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
        """Generate the next assistant turn on the server (see ``ChatModel.complete``).

        ``tool_choice`` modes are honoured through the grammar; the thresholds of
        ``ToolChoice`` need the model's token distribution, which a server does not
        expose, so a remote turn takes the grammar-constrained model's own choice.
        """
        wire = self._ready()
        sampling = sampling or Sampling()
        choice = as_tool_choice(tool_choice)
        if cancel is not None and cancel.is_set():
            return ModelResponse(finish_reason="cancelled", model=self._name)
        body = wire.body(messages, tools, sampling, choice)
        started = time.perf_counter()
        try:
            reply, finish = self._stream(wire, body, on_token, cancel)
        except RemoteModelError as exc:
            if not (exc.status == 400 and "logprobs" in body and "logprob" in str(exc)):
                raise
            # Some servers refuse logprobs in some modes (llama-server: with tools while
            # streaming). Nothing was generated, so ask again without, and from now on.
            _log.info("%s refuses logprobs here (%s); going on without", self._name, exc)
            wire.logprobs = False
            body = wire.body(messages, tools, sampling, choice)
            reply, finish = self._stream(wire, body, on_token, cancel)
        usage = Usage(
            prompt_tokens=reply.prompt_tokens,
            cached_tokens=min(reply.cached_tokens, reply.prompt_tokens),
            evaluated_tokens=(
                reply.evaluated_tokens
                if reply.evaluated_tokens is not None
                else max(reply.prompt_tokens - reply.cached_tokens, 0)
            ),
            completion_tokens=reply.completion_tokens or len(reply.logprobs),
            seconds=time.perf_counter() - started,
        )
        return self._response(wire, reply, finish, tools, usage)

    def close(self) -> None:
        """Close the connections to the server (the tier can be used again afterwards)."""
        self._http.close()
        self._http = HttpClient(self._http.base_url, self.config, transport=self._transport)

    # -- internals -----------------------------------------------------------------------

    def _ready(self) -> CompletionWire | ChatWire:
        self.server()
        assert self._wire is not None
        return self._wire

    def _connect(self) -> None:
        """Probe the server, check the model name, and pick the wire (under the lock)."""
        info = probe_server(self._http)
        served = match_model(info, self._wanted)
        constraint = self.config.constraint
        if constraint == "auto":
            constraint = info.kind if info.kind != "openai" else "tools"
        if constraint == "llama-server" and info.kind != "llama-server":
            raise ConfigError(
                f"{info.base_url} is not llama-server (it looks like {info.kind}); use "
                "RemoteConfig(constraint='auto') or the constraint this server offers"
            )
        model_id = served.id if served else (self._wanted or "")
        if constraint == "llama-server":
            self._wire = self._completion_wire(info)
        else:
            mode: Literal["vllm", "tools"] = "vllm" if constraint == "vllm" else "tools"
            url = self._http.url("/chat/completions")
            self._wire = ChatWire(url, model_id, mode, logprobs=self.config.logprobs)
        if self._wanted is None and served is not None:
            self._name = f"{_short(served.id)}@{urlsplit(info.base_url).netloc}"
        self._served = served
        self._info = info

    def _completion_wire(self, info: ServerInfo) -> CompletionWire:
        renderer = ChatRenderer(
            info.chat_template, bos_token=info.bos_token, eos_token=info.eos_token
        )
        banned: list[int] = []
        for marker in turn_openers(lambda text: renderer.render([Message.user(text)])):
            answer = self._http.post(
                self._http.url("/tokenize", root=True), {"content": marker, "parse_special": True}
            )
            tokens = answer.get("tokens") or []
            if len(tokens) == 1:  # a real special token, not a string of ordinary ones
                banned.append(int(tokens[0]))
        return CompletionWire(
            self._http.url("/completion", root=True),
            renderer,
            strip_bos=info.bos_token if info.adds_bos else "",
            banned=tuple(banned),
            logprobs=self.config.logprobs,
        )

    def _stream(
        self,
        wire: CompletionWire | ChatWire,
        body: dict[str, object],
        on_token: TokenCallback | None,
        cancel: threading.Event | None,
    ) -> tuple[Reply, FinishReason]:
        """Send the request and fold its events; stops early on ``on_token`` or ``cancel``."""
        reply = Reply()
        url = wire.url
        try:
            with self._http.events(url, body) as events:
                for event in events:
                    piece = wire.feed(event, reply)
                    if piece and on_token is not None and on_token(piece):
                        return reply, "stopped"  # leaving closes the stream: the server stops
                    if reply.finish is not None and isinstance(wire, CompletionWire):
                        return reply, reply.finish  # the final event; chat usage comes later
                    if cancel is not None and cancel.is_set():
                        return reply, "cancelled"
        except StreamCutError as exc:
            raise StreamCutError(str(exc), url=url, partial_text=reply.text) from exc
        if cancel is not None and cancel.is_set():
            return reply, "cancelled"
        if reply.finish is not None:
            return reply, reply.finish
        if isinstance(wire, ChatWire) and (reply.pieces or reply.calls):
            return reply, "stop"  # "[DONE]" without a finish_reason: some servers do that
        raise StreamCutError(
            f"the stream from {url} ended before the reply was complete "
            f"({len(reply.text)} characters arrived); the server may have been stopped",
            url=url,
            partial_text=reply.text,
        )

    def _response(
        self,
        wire: CompletionWire | ChatWire,
        reply: Reply,
        finish: FinishReason,
        tools: Sequence[ToolSpec],
        usage: Usage,
    ) -> ModelResponse:
        text = reply.text
        calls: list[ToolCall] = []
        content = text.strip()
        if isinstance(wire, ChatWire) and not wire.constrained:
            calls, broken = wire.calls(reply)
            content = "\n".join([content, *broken]).strip()
        # As in process: a cancelled turn's calls are not run; a turn cut by the caller
        # or the token limit keeps the calls it completed.
        if tools and finish != "cancelled":
            content, parsed = parse_tool_calls(
                content, [t.name for t in tools], cut_off=finish in ("length", "stopped")
            )
            calls += parsed
        if finish == "cancelled":
            calls = []
        if calls and finish == "stop":
            finish = "tool_calls"
        if finish == "tool_calls" and not calls:
            finish = "stop"
        return ModelResponse(
            content=content,
            tool_calls=tuple(calls),
            finish_reason=finish,
            usage=usage,
            logprobs=tuple(reply.logprobs),
            model=self._name,
            raw_text=text,
        )


def _short(model_id: str) -> str:
    name = model_id.replace("\\", "/").rsplit("/", 1)[-1]
    return name[: -len(".gguf")] if name.lower().endswith(".gguf") else name
