"""MCP tools against real server processes, over stdio and over streamable HTTP.

The server is the example shop (examples/mcp_server.py) plus a few tools that misbehave
on purpose; this file is also that server: ``python tests/integration/test_mcp.py``
serves it over stdio, ``... --http PORT`` on 127.0.0.1. Each test starts its own server
process (the stdio ones through ``MCPClient.stdio``, the HTTP ones with a free port) and
causes each failure for real: a killed server, a call that outlives its timeout, a tool
the server no longer has, a result that breaks the tool's own output schema, servers
that cannot start. A real 0.5B model then runs a multi-step task with the tools.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from agentkit import Agent, ModelResponse, RunStore, Sampling, ToolCall, ToolError, get_model
from agentkit._errors import ModelNotFoundError
from agentkit.models._catalog import resolve_model
from agentkit.testing import ScriptedModel, Turn, call, reply
from agentkit.tools.mcp import MCPClient, MCPServerError

HERE = Path(__file__).resolve()
EXAMPLES = HERE.parents[2] / "examples"
TRANSPORTS = ["stdio", "http"]


# -- the server side (runs in the server process) ------------------------------------------


def _serve(argv: Sequence[str]) -> None:
    from mcp import types

    spec = importlib.util.spec_from_file_location("shop_server", EXAMPLES / "mcp_server.py")
    assert spec is not None and spec.loader is not None
    shop = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shop)
    server = shop.build_server()
    original = server.call_tool

    async def call_tool(name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        if name == "forecast":  # a server bug: the result breaks its own output schema
            return types.CallToolResult(
                content=[types.TextContent(type="text", text="warm")],
                structured_content={"celsius": "warm"},
            )
        return await original(name, arguments, context)

    server.call_tool = call_tool

    @server.tool()
    def pid() -> int:
        """The server's process id."""
        return os.getpid()

    @server.tool()
    async def nap(seconds: float) -> str:
        """Sleep for a while."""
        await asyncio.sleep(seconds)
        return "awake"

    @server.tool()
    def retire(name: str) -> str:
        """Take a tool off the server."""
        server.remove_tool(name)
        return f"{name} retired"

    @server.tool()
    def forecast(city: str) -> dict[str, float]:
        """Tomorrow's temperature in a city."""
        return {"celsius": 3.0}

    if len(argv) == 2 and argv[0] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(argv[1]))
    else:
        server.run()


# -- the client side -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the HTTP server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the HTTP server never listened on port {port}")


Shop = tuple[MCPClient, Callable[[], None]]


@pytest.fixture(params=TRANSPORTS)
def shop(request: pytest.FixtureRequest) -> Iterator[Shop]:
    """An open client to a fresh server process, and a function that kills the server."""
    if request.param == "stdio":
        with MCPClient.stdio([sys.executable, str(HERE)], name="shop") as client:
            server_pid = int(client.call("pid").observation())

            def kill_stdio() -> None:
                os.kill(server_pid, signal.SIGKILL)

            yield client, kill_stdio
        return
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(HERE), "--http", str(port)], stderr=subprocess.DEVNULL
    )
    try:
        _wait_for_port(port, proc)
        with MCPClient.http(f"http://127.0.0.1:{port}/mcp", name="shop") as client:

            def kill_http() -> None:
                proc.kill()
                proc.wait()

            yield client, kill_http
    finally:
        proc.kill()
        proc.wait()


def _tool_results(store: RunStore, run_id: str) -> list[dict[str, Any]]:
    return [c for s in store.steps(run_id) if s.kind == "tool" for c in s.tool_calls]


def test_tools_are_listed(shop: Shop) -> None:
    client, _ = shop
    listed = {t.name: t for t in client.list_tools()}
    assert {"price_of", "stock_of", "catalog", "reserve", "nap", "forecast"} <= set(listed)
    assert listed["price_of"].read_only and listed["price_of"].idempotent
    assert not listed["reserve"].read_only and not listed["reserve"].destructive
    assert client.instructions is not None and "dollars" in client.instructions
    tools = client.tools(allow=["price_of", "catalog"], prefix="shop.")
    assert [t.name for t in tools] == ["shop.price_of", "shop.catalog"]
    assert client.call("price_of", {"item": "notebooks"}).observation() == "4.25"
    catalog = client.call("catalog")
    assert catalog.structured["result"][0] == {"item": "pen", "dollars": 1.5}


def test_a_server_killed_mid_run_becomes_a_tool_error(shop: Shop, store: RunStore) -> None:
    client, kill = shop

    def kill_then_call(*_: Any) -> ModelResponse:
        kill()
        again = ToolCall(name="stock_of", arguments={"item": "notebook"})
        return ModelResponse(tool_calls=(again,), finish_reason="tool_calls")

    model = ScriptedModel(
        [call("stock_of", item="pen"), Turn(kill_then_call), reply("The shop went away.")]
    )
    with model:
        result = Agent(model, tools=client.tools(allow=["stock_of"]), store=store).run("pens?")
    assert result.ok and result.steps == 5
    before, after = _tool_results(store, result.run_id)
    assert before["result"] == "240" and not before["is_error"]
    assert after["is_error"]
    assert after["result"].startswith("Error: MCP server 'shop' is gone ("), after["result"]
    assert "its tools cannot be used in this run" in after["result"]
    assert store.get_run(result.run_id).status == "succeeded"


def test_a_killed_stdio_server_is_launched_again_by_open() -> None:
    with MCPClient.stdio([sys.executable, str(HERE)], name="shop") as client:
        first = int(client.call("pid").observation())
        os.kill(first, signal.SIGKILL)
        with pytest.raises(ToolError, match="MCP server 'shop' is gone"):
            client.call("stock_of", {"item": "pen"})
        client.open()
        second = int(client.call("pid").observation())
        assert second != first
        assert client.call("stock_of", {"item": "pen"}).observation() == "240"


def test_a_hung_call_times_out_and_the_session_survives(shop: Shop, store: RunStore) -> None:
    client, _ = shop
    tools = client.tools(allow=["nap", "stock_of"], timeout=1.0)
    model = ScriptedModel([call("nap", seconds=120), call("stock_of", item="pen"), reply("ok")])
    with model:
        result = Agent(model, tools=tools, store=store).run("?")
    napped, stock = _tool_results(store, result.run_id)
    assert napped["is_error"] and "nap did not finish within 1 s" in napped["result"]
    assert stock["result"] == "240"


def test_a_tool_the_server_no_longer_has(shop: Shop, store: RunStore) -> None:
    client, _ = shop
    with pytest.raises(Exception, match="has no tool named 'refund'"):
        client.tools(allow=["refund"])
    tools = client.tools(allow=["retire", "stock_of"])
    model = ScriptedModel(
        [call("retire", name="stock_of"), call("stock_of", item="pen"), reply("gone")]
    )
    with model:
        result = Agent(model, tools=tools, store=store).run("?")
    late = _tool_results(store, result.run_id)[1]
    assert late["is_error"]
    assert "MCP server 'shop' has no tool named 'stock_of' (any more)" in late["result"]


def test_a_result_of_the_wrong_shape(shop: Shop, store: RunStore) -> None:
    client, _ = shop
    model = ScriptedModel([call("forecast", city="Oslo"), reply("no forecast")])
    with model:
        result = Agent(model, tools=client.tools(allow=["forecast"]), store=store).run("?")
    (observation,) = _tool_results(store, result.run_id)
    assert observation["is_error"]
    assert "returned a result of the wrong shape for forecast" in observation["result"]
    assert "celsius" in observation["result"]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["/no/such/server"], "cannot start MCP server 'server': No such file or directory"),
        (
            [sys.executable, "-c", "import sys; print('no config file', file=sys.stderr)"],
            "closed the connection while starting: it exited or does not speak MCP on stdio "
            "(its stderr ends: no config file)",
        ),
        ([sys.executable, "-c", "import time; time.sleep(60)"], "did not answer within 3 s"),
    ],
)
def test_a_server_that_cannot_start(command: list[str], expected: str) -> None:
    client = MCPClient.stdio(command, startup_timeout=3)
    with pytest.raises(MCPServerError) as info:
        client.open()
    assert expected in str(info.value)
    client.close()


def test_an_http_server_that_is_not_there() -> None:
    port = _free_port()
    with pytest.raises(MCPServerError, match=f"cannot connect to MCP server '127.0.0.1:{port}'"):
        MCPClient.http(f"http://127.0.0.1:{port}/mcp").open()


# -- a real model ----------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_real_model_runs_a_multi_step_task_with_mcp_tools(transport: str, tmp_path: Path) -> None:
    try:
        resolve_model("qwen2.5-coder-0.5b-instruct", pull=False)
    except ModelNotFoundError as exc:
        pytest.skip(str(exc))
    store = RunStore(tmp_path / "runs.db")
    port = _free_port()
    proc = None
    if transport == "http":
        proc = subprocess.Popen(
            [sys.executable, str(HERE), "--http", str(port)], stderr=subprocess.DEVNULL
        )
        _wait_for_port(port, proc)
        client = MCPClient.http(f"http://127.0.0.1:{port}/mcp", name="shop")
    else:
        client = MCPClient.stdio([sys.executable, str(EXAMPLES / "mcp_server.py")], name="shop")
    try:
        with client:
            agent = Agent(
                get_model("qwen2.5-coder-0.5b-instruct"),
                tools=client.tools(allow=["price_of", "stock_of"], prefix="shop."),
                store=store,
                max_steps=6,
                system_prompt=(
                    "You answer questions about a shop with its tools: shop.price_of for "
                    "prices, shop.stock_of for stock. Then reply with the answer only."
                ),
                sampling=Sampling(temperature=0.0, seed=0, max_tokens=96),
            )
            result = agent.run("How many staplers are in stock, and what does one cost?")
            calls_made = _tool_results(store, result.run_id)
            # Each observation is what the server answers to the same call made directly.
            direct = {
                c["id"]: client.call(c["name"].removeprefix("shop."), c["arguments"])
                for c in calls_made
                if not c["is_error"]
            }
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
    assert result.status in ("succeeded", "budget_exhausted", "stopped"), result.summary()
    steps = store.steps(result.run_id)
    assert len(steps) == result.steps >= 3
    assert direct, f"the model made no successful call: {calls_made}"
    for c in calls_made:
        assert c["name"] in ("shop.price_of", "shop.stock_of"), c
        if c["id"] in direct:
            assert c["result"] == direct[c["id"]].observation(), c


if __name__ == "__main__":
    _serve(sys.argv[1:])
