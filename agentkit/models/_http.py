"""HTTP for remote tiers: one client per server, JSON calls and server-sent event streams.

Every httpx failure is translated here, once, into an agentkit error that says which URL
failed, how, and what to do (see ``_errors``). Requests that produced nothing yet
(refused connections, a server still loading its model) are retried with exponential
backoff; a stream that has started is never sent again, because what it produced may
already have been shown or acted on.

The API key is read from the environment variable the config names, at the moment a
request is sent: it is never an argument, an attribute, a log line or part of a message.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from .._errors import (
    ConfigError,
    ContextOverflowError,
    MalformedResponseError,
    ModelNotFoundError,
    RemoteModelError,
    ServerUnreachableError,
    StreamCutError,
)

__all__ = ["HttpClient", "RemoteConfig", "split_base_url"]

Constraint = Literal["auto", "llama-server", "vllm", "tools"]

# Statuses that say "not now" rather than "no": worth another try after a pause.
_TRANSIENT_STATUS = frozenset({408, 429, 502, 503, 504})


class RemoteConfig(BaseModel):
    """How a remote tier talks to its server. Unknown options are an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key_env: str | None = None
    """Name of the environment variable that holds the API key; None sends no key."""
    constraint: Constraint = "auto"
    """How tool calls are constrained: ``llama-server`` (a GBNF grammar on /completion),
    ``vllm`` (``structured_outputs`` grammar), ``tools`` (the plain OpenAI ``tools``
    field, parsed leniently), or ``auto`` (ask the server what it is)."""
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=300.0, gt=0)
    """Seconds the server may stay silent (prompt evaluation included) before giving up."""
    retries: int = Field(default=3, ge=0)
    """Further attempts for a request that produced no output (refused, 502/503/504)."""
    backoff: float = Field(default=0.5, ge=0)
    """Seconds before the first retry; doubled for each further one (at most 10 s)."""
    logprobs: bool = True
    """Ask for the log-probability of each generated token (decision confidence)."""
    context_size: int | None = Field(default=None, ge=64)
    """Context window to assume when the server does not report one."""


def split_base_url(base_url: str) -> tuple[str, str]:
    """(OpenAI base such as ``http://h:8080/v1``, server root such as ``http://h:8080``)."""
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"{base_url!r} is not a server URL; write it as http://host:port/v1 "
            "(optionally followed by #model-name)"
        )
    path = parts.path.rstrip("/")
    root_path = path[: -len("/v1")] if path.endswith("/v1") else path
    base_path = path if path.endswith("/v1") else path + "/v1"
    origin = f"{parts.scheme}://{parts.netloc}"
    return origin + base_path, origin + root_path


class _Transient(Exception):
    """A failure worth retrying; carries the agentkit error to raise if retries run out."""

    def __init__(self, error: RemoteModelError) -> None:
        super().__init__(str(error))
        self.error = error


class HttpClient:
    """JSON requests and SSE streams to one server, with errors translated and retries."""

    def __init__(
        self, base_url: str, config: RemoteConfig, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.base_url, self.root_url = split_base_url(base_url)
        self.config = config
        if config.api_key_env is not None and not os.environ.get(config.api_key_env):
            raise ConfigError(
                f"the API key for {self.base_url} is read from ${config.api_key_env}, "
                "which is not set; export it, or pass RemoteConfig(api_key_env=None) for a "
                "server without keys"
            )
        timeout = httpx.Timeout(config.read_timeout, connect=config.connect_timeout)
        self._client = httpx.Client(timeout=timeout, transport=transport)

    def close(self) -> None:
        self._client.close()

    def url(self, path: str, *, root: bool = False) -> str:
        """``path`` under the OpenAI base (``/v1``) or, with ``root``, the server root."""
        return (self.root_url if root else self.base_url) + path

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        env = self.config.api_key_env
        key = os.environ.get(env) if env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    # -- plain JSON --------------------------------------------------------------------

    def get(self, url: str) -> Any:
        """GET a JSON document (retried while nothing came back)."""
        return self._retry(lambda: self._json_once("GET", url, None))

    def post(self, url: str, body: Mapping[str, Any]) -> Any:
        """POST JSON and return the decoded JSON answer (retried while nothing came back)."""
        return self._retry(lambda: self._json_once("POST", url, body))

    def _json_once(self, method: str, url: str, body: Mapping[str, Any] | None) -> Any:
        try:
            response = self._client.request(method, url, json=body, headers=self._headers())
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, url) from exc
        if response.status_code >= 400:
            raise self._status_error(response.status_code, response.text, url)
        return _decode(response.text, url)

    # -- server-sent events ------------------------------------------------------------

    @contextmanager
    def events(self, url: str, body: Mapping[str, Any]) -> Iterator[Iterator[dict[str, Any]]]:
        """POST a streaming request and yield its events, each decoded from a ``data:`` line.

        Only opening the stream is retried. Leaving the ``with`` block early closes the
        connection, which is how a generation is stopped: the server notices the closed
        socket and stops decoding.
        """
        response = self._retry(lambda: self._open(url, body))
        try:
            yield _sse(response, url)
        finally:
            response.close()

    def _open(self, url: str, body: Mapping[str, Any]) -> httpx.Response:
        headers = {**self._headers(), "Accept": "text/event-stream"}
        request = self._client.build_request("POST", url, json=body, headers=headers)
        try:
            response = self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, url) from exc
        if response.status_code >= 400:
            try:
                text = response.read().decode("utf-8", errors="replace")
            except httpx.HTTPError:
                text = ""
            finally:
                response.close()
            raise self._status_error(response.status_code, text, url)
        return response

    # -- retries and errors ------------------------------------------------------------

    def _retry(self, attempt: Any) -> Any:
        # The first try runs bare: building a retrier costs more than a local request.
        try:
            return attempt()
        except _Transient as exc:
            if self.config.retries == 0:
                raise exc.error from exc.__cause__
        retrying = Retrying(
            stop=stop_after_attempt(self.config.retries),
            wait=wait_exponential(multiplier=self.config.backoff, max=10.0),
            retry=retry_if_exception_type(_Transient),
            reraise=True,
        )
        try:
            for step in retrying:
                with step:
                    return attempt()
        except _Transient as exc:
            raise exc.error from exc.__cause__
        raise AssertionError("unreachable: tenacity returns or re-raises")

    def _transport_error(self, exc: httpx.HTTPError, url: str) -> Exception:
        where = urlsplit(url).netloc
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return _Transient(
                ServerUnreachableError(
                    f"could not connect to {where} ({url}): {exc or type(exc).__name__}. "
                    "Is the server running, and is the host and port right?",
                    url=url,
                )
            )
        if isinstance(exc, httpx.TimeoutException):
            return ServerUnreachableError(
                f"{where} did not answer within {self.config.read_timeout:g} s ({url}); "
                "the server may be overloaded, or raise RemoteConfig(read_timeout=...)",
                url=url,
            )
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
            # The server closed the connection before answering: nothing was produced.
            return _Transient(
                ServerUnreachableError(
                    f"{where} closed the connection without answering ({url}): {exc}",
                    url=url,
                )
            )
        return RemoteModelError(f"request to {url} failed: {exc}", url=url)

    def _status_error(self, status: int, text: str, url: str) -> Exception:
        said, payload = _server_message(text)
        where = urlsplit(url).netloc
        if payload.get("type") == "exceed_context_size_error":
            prompt, ctx = int(payload.get("n_prompt_tokens", 0)), int(payload.get("n_ctx", 0))
            return ContextOverflowError(
                f"{where}: the prompt takes {prompt} tokens but a server slot holds {ctx} "
                f"({said}). Shorten the conversation, or start the server with a larger "
                "context per slot (llama-server -c N with fewer --parallel slots)",
                prompt_tokens=prompt,
                context_size=ctx,
            )
        if status == 404 and "model" in said.lower():
            return ModelNotFoundError(f"{where} does not serve that model: {said}")
        hint = {
            401: f"check the key in ${self.config.api_key_env or '(no key variable set)'}",
            403: f"check the key in ${self.config.api_key_env or '(no key variable set)'}",
            404: "this server does not offer that endpoint; check the URL (…/v1) and "
            "RemoteConfig(constraint=...)",
        }.get(status, "the server's log says more" if status >= 500 else "the request was refused")
        error = RemoteModelError(
            f"{where} answered HTTP {status} to {url}: {said or '(no message)'}; {hint}",
            url=url,
            status=status,
            server_message=said or None,
        )
        return _Transient(error) if status in _TRANSIENT_STATUS else error


def _server_message(text: str) -> tuple[str, dict[str, Any]]:
    """The message in an error body (OpenAI, llama-server and FastAPI shapes), and its dict."""
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()[:500], {}
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            message = error.get("message") or error.get("detail") or json.dumps(error)
            return str(message)[:500], error
        return str(body.get("detail") or body.get("message") or error)[:500], body
    return text.strip()[:500], {}


def _decode(text: str, url: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise MalformedResponseError(
            f"{url} answered with something that is not JSON ({text[:120]!r}); is this an "
            "OpenAI-compatible server, and is the URL right?",
            url=url,
        ) from exc


def _sse(response: httpx.Response, url: str) -> Iterator[dict[str, Any]]:
    """The JSON events of a stream; StreamCutError when the connection drops mid-way."""
    try:
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue  # blank separators, ": ping" comments, "event:" names
            data = line[5:].strip()
            if data == "[DONE]":
                return
            event = _decode(data, url)
            if not isinstance(event, dict):
                raise MalformedResponseError(f"{url} streamed a non-object event: {data[:120]}")
            yield event
    except httpx.TimeoutException as exc:
        raise StreamCutError(
            f"{url} went silent mid-reply for longer than the read timeout; the reply was "
            "cut (raise RemoteConfig(read_timeout=...) for a slow server)",
            url=url,
        ) from exc
    except httpx.HTTPError as exc:
        raise StreamCutError(
            f"the stream from {url} was cut mid-reply ({type(exc).__name__}: {exc}); the "
            "server may have crashed or been stopped",
            url=url,
        ) from exc
