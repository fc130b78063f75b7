"""Tools from MCP servers: connect, list, and offer the tools you allow to an Agent.

    import sys
    from agentkit import Agent
    from agentkit.tools import calculator
    from agentkit.tools.mcp import MCPClient

    with MCPClient.stdio([sys.executable, "examples/mcp_server.py"]) as shop:
        agent = Agent(
            "qwen2.5-coder-0.5b-instruct",
            tools=[*shop.tools(allow=["price_of", "stock_of"]), calculator],
        )
        agent.run("What do 3 pens cost?")
        agent.run("How many notebooks are in stock?")  # same server, another run

``MCPClient.stdio(command)`` launches a server and talks to it over its stdin and stdout;
``MCPClient.http(url)`` connects to a streamable-HTTP server. The connection lives in
its own thread and event loop, so it is opened once and serves any number of runs (each
``Agent.run`` has an event loop of its own); ``with`` or ``async with`` closes it.

Only the tools named in ``allow`` reach the agent (``allow="*"`` takes every tool the
server lists; a name the server does not have is a ConfigError). Each is an ordinary
agentkit tool made with ``Tool.from_schema`` from the server's input schema, so calls
are grammar-constrained and validated before they are sent; the server's read-only and
idempotent hints make the tool ``idempotent``. A result's text and structured content
become the observation; the server's errors, a crashed server, a call that outlives
its timeout and a result of the wrong shape become tool errors the model sees, and the
run goes on and is recorded. A server that cannot be started or reached raises
``MCPServerError`` from ``open()``.

Uses the official ``mcp`` SDK (``pip install 'agentkit[mcp]'``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, TypeVar
from urllib.parse import urlsplit

from agentkit import AgentkitError, ConfigError, Tool, ToolError

try:
    import mcp
    from mcp import types
    from mcp.client.stdio import stdio_client
    from pydantic import ValidationError
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "agentkit.tools.mcp needs the mcp package: pip install 'agentkit[mcp]'"
    ) from exc

__all__ = ["MCPClient", "MCPResult", "MCPServerError", "MCPToolInfo"]

_STDERR_TAIL = 800
_JOIN_SECONDS = 15.0  # the SDK's own stdio shutdown waits up to about 6 s
_MAX_PAGES = 100
T = TypeVar("T")


class MCPServerError(AgentkitError):
    """An MCP server could not be started, reached or listed; ``server`` names it."""

    def __init__(self, message: str, *, server: str) -> None:
        super().__init__(message)
        self.server = server


@dataclass(frozen=True)
class MCPToolInfo:
    """One tool as the server lists it; the hints carry the MCP defaults when unset."""

    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    read_only: bool
    """readOnlyHint: the tool changes nothing (default False)."""
    destructive: bool
    """destructiveHint: a change it makes may destroy something (default True)."""
    idempotent: bool
    """idempotentHint: calling it again with the same arguments changes nothing more."""
    open_world: bool
    """openWorldHint: it reaches outside the server (the web, other systems)."""

    @classmethod
    def from_mcp(cls, tool: types.Tool) -> MCPToolInfo:
        hints = tool.annotations or types.ToolAnnotations()
        title = tool.title or hints.title
        return cls(
            name=tool.name,
            description=(tool.description or title or "").strip(),
            input_schema=dict(tool.input_schema),
            output_schema=dict(tool.output_schema) if tool.output_schema is not None else None,
            read_only=bool(hints.read_only_hint),
            destructive=hints.destructive_hint is not False and not hints.read_only_hint,
            idempotent=bool(hints.idempotent_hint) or bool(hints.read_only_hint),
            open_world=hints.open_world_hint is not False,
        )


@dataclass(frozen=True)
class MCPResult:
    """What one call returned: its text, its structured content, whether it failed."""

    text: str
    structured: Any
    is_error: bool

    @classmethod
    def from_mcp(cls, result: types.CallToolResult) -> MCPResult:
        texts: list[str] = []
        notes: list[str] = []
        for block in result.content:
            if isinstance(block, types.TextContent):
                texts.append(block.text)
            elif isinstance(block, types.EmbeddedResource):
                inner = block.resource
                if isinstance(inner, types.TextResourceContents):
                    texts.append(inner.text)
                else:
                    notes.append(f"[resource {inner.uri}, {inner.mime_type or 'binary'}]")
            elif isinstance(block, types.ResourceLink):
                notes.append(f"[resource link {block.uri}]")
            else:  # images and audio: a model that reads text only gets a note
                notes.append(f"[{block.type}, {getattr(block, 'mime_type', '')}]")
        structured = result.structured_content
        if structured is not None:
            # Servers repeat their structured content as text for older clients (a list as
            # one text block per item); once is enough.
            values, inner = [_loads(t) for t in texts], _unwrapped(structured)
            if values == inner:
                texts = []
            else:
                texts = [
                    t for t, v in zip(texts, values, strict=True) if v not in (structured, inner)
                ]
        return cls("\n".join([*texts, *notes]).strip(), structured, bool(result.is_error))

    def observation(self) -> str:
        """The text the model sees: the text blocks, then the structured content as JSON."""
        parts = [self.text] if self.text else []
        value = _unwrapped(self.structured)
        if isinstance(value, str):
            parts.append(value)
        elif value is not None:
            parts.append(json.dumps(value, ensure_ascii=False))
        return "\n".join(parts) or "(the tool returned nothing)"


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _unwrapped(structured: Any) -> Any:
    """MCPServer sends a plain return value (a number, a list) as ``{"result": value}``."""
    if isinstance(structured, dict) and list(structured) == ["result"]:
        return structured["result"]
    return structured


class MCPClient:
    """A connection to one MCP server, opened once and shared by many agent runs.

    Make one with ``MCPClient.stdio`` or ``MCPClient.http`` (or pass anything
    ``mcp.Client`` accepts, an in-process ``MCPServer`` for instance), then ``open()``
    it or use it in a ``with`` / ``async with`` block.
    """

    def __init__(
        self,
        target: Any,
        *,
        name: str,
        startup_timeout: float = 30.0,
        stderr: IO[str] | None = None,
    ) -> None:
        self.name = name
        self.startup_timeout = startup_timeout
        self._make_target: Callable[[], Any] = lambda: target
        self._stderr = stderr
        self._captured: IO[str] | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._client: mcp.Client | None = None
        self._listing: list[MCPToolInfo] = []
        self._gone: str | None = None
        self._closing = False

    @classmethod
    def stdio(
        cls,
        command: Sequence[str] | str,
        *,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        startup_timeout: float = 30.0,
        stderr: IO[str] | None = None,
    ) -> MCPClient:
        """A server launched as ``command`` (a list, or one string split on spaces).

        ``env`` is added to a minimal environment (HOME, PATH, ...), as the SDK does.
        The server's stderr is kept in a temporary file and its last lines are quoted
        when the server fails; pass ``stderr=sys.stderr`` to see it live instead.
        """
        argv = command.split() if isinstance(command, str) else list(command)
        if not argv:
            raise ConfigError("MCPClient.stdio needs a command to launch")
        params = mcp.StdioServerParameters(
            command=argv[0],
            args=argv[1:],
            env=dict(env) if env else None,
            cwd=str(cwd) if cwd is not None else None,
        )
        client = cls(
            params, name=name or _name_of(argv), startup_timeout=startup_timeout, stderr=stderr
        )
        client._make_target = client._stdio_transport(params)  # to capture its stderr
        return client

    @classmethod
    def http(cls, url: str, *, name: str | None = None, startup_timeout: float = 30.0) -> MCPClient:
        """A server reached over streamable HTTP at ``url`` (``http://127.0.0.1:8000/mcp``)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{url!r} is not an http:// or https:// URL of an MCP endpoint")
        return cls(url, name=name or parts.netloc, startup_timeout=startup_timeout)

    # -- lifecycle --------------------------------------------------------------------

    def open(self) -> MCPClient:
        """Start (or reach) the server and list its tools. Raises MCPServerError.

        Opening an open client does nothing; opening one whose server went away (it
        crashed, or was killed) connects again, launching a stdio server anew.
        """
        with self._lock:
            if self._thread is not None:
                if self._gone is None and self._thread.is_alive():
                    return self
                self._shutdown()
            self._gone, self._closing = None, False
            ready: concurrent.futures.Future[None] = concurrent.futures.Future()
            self._thread = threading.Thread(
                target=lambda: asyncio.run(self._serve(ready)),
                name=f"mcp-{self.name}",
                daemon=True,
            )
            self._thread.start()
            try:
                ready.result(timeout=self.startup_timeout)
            except concurrent.futures.TimeoutError:
                message = (
                    f"MCP server {self.name!r} did not answer within {self.startup_timeout:g} "
                    f"s of starting{self._stderr_hint()}; check that it speaks MCP on this "
                    "transport, or raise startup_timeout"
                )
                self._shutdown()
                raise MCPServerError(message, server=self.name) from None
            except Exception as exc:
                message = self._startup_failure(exc)  # before shutdown: it quotes stderr
                self._shutdown()
                raise MCPServerError(message, server=self.name) from exc
        return self

    def close(self) -> None:
        """Close the connection (and stop a stdio server). Safe to call twice."""
        with self._lock:
            self._shutdown()

    def _shutdown(self) -> None:
        thread, loop, self._thread = self._thread, self._loop, None
        self._closing = True
        if thread is None:
            return
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended on its own (a crash)
                loop.call_soon_threadsafe(self._stop_soon)
        thread.join(_JOIN_SECONDS)
        self._client = None
        if self._captured is not None:
            self._captured.close()
            self._captured = None

    def _stop_soon(self) -> None:
        if self._client is not None and self._stop is not None:
            self._stop.set()
        elif self._main is not None:
            self._main.cancel()  # still starting: stop waiting for the server

    def __enter__(self) -> MCPClient:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> MCPClient:
        return await asyncio.to_thread(self.open)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.close)

    @property
    def instructions(self) -> str | None:
        """What the server says about using it (worth adding to a system prompt)."""
        return self._client.instructions if self._client is not None else None

    # -- the connection's own thread ----------------------------------------------------

    async def _serve(self, ready: concurrent.futures.Future[None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._main = asyncio.current_task()
        self._stop = asyncio.Event()
        try:
            # cache=None: every listing asks the server, which may change its tools.
            async with mcp.Client(self._make_target(), cache=None) as client:
                self._listing = await _list_all(client)
                self._client = client
                ready.set_result(None)
                await self._stop.wait()
        except BaseException as exc:  # this thread has no one to raise to: record it
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else ConnectionAbortedError())
            elif self._gone is None and not self._closing:
                self._gone = _leaf_message(exc)
        finally:
            self._client = None
            self._closing = True  # calls still running now are cut by the loop's end

    def _stdio_transport(
        self, params: mcp.StdioServerParameters
    ) -> Callable[[], AbstractAsyncContextManager[Any]]:
        def transport() -> AbstractAsyncContextManager[Any]:
            errlog = self._stderr
            if errlog is None:
                # Appending, so reading the tail never moves where the server writes.
                self._captured = tempfile.TemporaryFile(  # noqa: SIM115 - closed by close()
                    "a+", encoding="utf-8", errors="replace"
                )
                errlog = self._captured
            return stdio_client(params, errlog=errlog)  # type: ignore[arg-type]

        return transport

    def _stderr_tail(self) -> str:
        f = self._captured
        if f is None or f.closed:
            return ""
        f.flush()
        size = os.fstat(f.fileno()).st_size
        start = max(0, size - _STDERR_TAIL)
        text = os.pread(f.fileno(), size - start, start).decode("utf-8", "replace")
        return " | ".join(line.strip() for line in text.strip().splitlines()[-6:] if line.strip())

    def _stderr_hint(self) -> str:
        tail = self._stderr_tail()
        return f" (its stderr ends: {tail})" if tail else ""

    def _startup_failure(self, exc: BaseException) -> str:
        leaf = _leaf(exc)
        if isinstance(leaf, FileNotFoundError | PermissionError):
            return (
                f"cannot start MCP server {self.name!r}: {leaf.strerror}: "
                f"{leaf.filename or 'the command'}; check the command and that it is executable"
            )
        if isinstance(leaf, mcp.MCPError) and leaf.code == types.CONNECTION_CLOSED:
            return (
                f"MCP server {self.name!r} closed the connection while starting: it exited or "
                f"does not speak MCP on stdio{self._stderr_hint()}"
            )
        return (
            f"cannot connect to MCP server {self.name!r}: {type(leaf).__name__}: {leaf}"
            f"{self._stderr_hint()}; check that it is running and the address is right"
        )

    def _submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        loop = self._loop
        if self._thread is None or loop is None or self._client is None or self._closing:
            coro.close()
            raise ToolError(self._unavailable())
        try:
            return asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError:  # the loop ended between the check and the call
            coro.close()
            raise ToolError(self._unavailable()) from None

    def _unavailable(self) -> str:
        if self._gone is not None:
            return (
                f"MCP server {self.name!r} is gone ({self._gone}); its tools cannot be used "
                "in this run"
            )
        return f"MCP client {self.name!r} is not open; open() it before running the agent"

    # -- listing and calling -------------------------------------------------------------

    def list_tools(self, *, refresh: bool = False) -> list[MCPToolInfo]:
        """The tools the server offers (as listed at start-up unless ``refresh``)."""
        if refresh:
            self._listing = self._submit(self._relist()).result(timeout=self.startup_timeout)
        elif self._client is None:
            raise MCPServerError(self._unavailable(), server=self.name)
        return list(self._listing)

    async def _relist(self) -> list[MCPToolInfo]:
        client = self._client
        if client is None:
            raise ToolError(self._unavailable())
        return await _list_all(client)

    def tools(
        self,
        allow: Sequence[str] | Literal["*"],
        *,
        prefix: str = "",
        timeout: float | None = 30.0,
        max_output_chars: int | None = None,
    ) -> list[Tool]:
        """The allowed tools as agentkit tools (``allow="*"``: every tool listed).

        ``prefix`` is put before each name the model sees (``"shop."`` makes
        ``shop.price_of``), so two servers' tools cannot clash; calls still go to the
        server under its own names. ``timeout`` bounds each call, in seconds.
        """
        by_name = {t.name: t for t in self.list_tools()}
        if isinstance(allow, str) and allow != "*":
            raise ConfigError(
                f'allow takes a list of tool names or "*", not the string {allow!r}; '
                f"write allow=[{allow!r}]"
            )
        names = list(by_name) if allow == "*" else list(dict.fromkeys(allow))
        unknown = [n for n in names if n not in by_name]
        if unknown:
            offered = ", ".join(by_name) or "none"
            raise ConfigError(
                [
                    f"MCP server {self.name!r} has no tool named {n!r}; it offers: {offered}"
                    for n in unknown
                ]
            )
        made = [self._tool(by_name[n], prefix, timeout) for n in names]
        if max_output_chars is not None:
            for t in made:
                t.max_output_chars = max_output_chars
        return made

    def _tool(self, info: MCPToolInfo, prefix: str, timeout: float | None) -> Tool:
        async def call_server(**arguments: Any) -> str:
            result = await self.acall(info.name, arguments)
            if result.is_error:
                raise ToolError(result.text or f"{info.name} failed without saying why")
            return result.observation()

        return Tool.from_schema(
            name=prefix + info.name,
            description=info.description or f"The {info.name} tool of MCP server {self.name}.",
            parameters=info.input_schema,
            fn=call_server,
            timeout=timeout,
            # Running a read-only or idempotent call again after a crash changes nothing.
            idempotent=info.idempotent,
        )

    def call(
        self, name: str, arguments: Mapping[str, Any] | None = None, *, timeout: float | None = 30.0
    ) -> MCPResult:
        """Call a tool from plain code. Failures of the call raise ToolError."""
        return self._submit(self._call(name, dict(arguments or {}), timeout)).result()

    async def acall(
        self, name: str, arguments: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> MCPResult:
        """Call a tool from any event loop (the agent's, for instance)."""
        return await asyncio.wrap_future(
            self._submit(self._call(name, dict(arguments or {}), timeout))
        )

    async def _call(self, name: str, arguments: dict[str, Any], timeout: float | None) -> MCPResult:
        client = self._client
        if client is None:
            raise ToolError(self._unavailable())
        try:
            result = await client.call_tool(name, arguments, read_timeout_seconds=timeout)
        except asyncio.CancelledError:
            if self._closing:  # the client closed under the call; say so, do not vanish
                raise ToolError(f"MCP client {self.name!r} was closed during the call") from None
            raise  # abandoned by the caller (its timeout): the SDK told the server to stop
        except mcp.MCPError as exc:
            raise await self._call_error(client, name, exc) from exc
        except (ValidationError, RuntimeError) as exc:
            if self._client is None:
                raise ToolError(self._unavailable()) from exc
            # The SDK checks results against the protocol and the tool's output schema.
            raise ToolError(
                f"MCP server {self.name!r} returned a result of the wrong shape for "
                f"{name}: {_short(str(exc))}"
            ) from exc
        parsed = MCPResult.from_mcp(result)
        if parsed.is_error and not await self._still_has(client, name):
            raise ToolError(self._no_such_tool(name))
        return parsed

    async def _call_error(self, client: mcp.Client, name: str, exc: mcp.MCPError) -> ToolError:
        if exc.code == types.CONNECTION_CLOSED and self._closing:
            return ToolError(f"MCP client {self.name!r} was closed during the call")
        if exc.code == types.CONNECTION_CLOSED:
            self._gone = self._gone or f"the connection closed{self._stderr_hint()}"
            return ToolError(self._unavailable())
        if exc.code == types.REQUEST_TIMEOUT:
            return ToolError(
                f"{name} on MCP server {self.name!r} did not answer in time; the call was cancelled"
            )
        if not await self._still_has(client, name):
            return ToolError(self._no_such_tool(name))
        return ToolError(f"MCP server {self.name!r} refused the call to {name}: {exc.message}")

    async def _still_has(self, client: mcp.Client, name: str) -> bool:
        try:
            self._listing = await _list_all(client)
        except Exception:  # the error itself is what the model must hear about
            return True
        return any(t.name == name for t in self._listing)

    def _no_such_tool(self, name: str) -> str:
        offered = ", ".join(t.name for t in self._listing) or "none"
        return (
            f"MCP server {self.name!r} has no tool named {name!r} (any more); it offers: {offered}"
        )


async def _list_all(client: mcp.Client) -> list[MCPToolInfo]:
    found: list[MCPToolInfo] = []
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        page = await client.list_tools(cursor=cursor)
        found += [MCPToolInfo.from_mcp(t) for t in page.tools]
        cursor = page.next_cursor
        if cursor is None:
            break
    return found


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    inner = getattr(exc, "exceptions", None)  # an exception group, from anyio's task groups
    if isinstance(inner, Sequence) and inner:
        for e in inner:
            yield from _leaves(e)
    else:
        yield exc


def _leaf(exc: BaseException) -> BaseException:
    leaves = list(_leaves(exc))
    return next((e for e in leaves if isinstance(e, Exception)), leaves[0])


def _leaf_message(exc: BaseException) -> str:
    leaf = _leaf(exc)
    return f"{type(leaf).__name__}: {leaf}" if str(leaf) else type(leaf).__name__


def _name_of(argv: Sequence[str]) -> str:
    script = next((a for a in argv[1:] if a.endswith(".py")), None)
    return Path(script or argv[0]).stem or "mcp"


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
