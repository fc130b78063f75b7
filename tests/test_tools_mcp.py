"""MCP tools through the Agent loop, against the example shop server run in-process by
the real MCP SDK (its in-memory transport): listing and the allow-list, annotations,
results as observations, client-side validation, and every failure a call can meet.
tests/integration/test_mcp.py does the same against server processes over stdio and HTTP.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import types
from mcp.server.mcpserver import MCPServer

from agentkit import Agent, ConfigError, RunStore, ToolError
from agentkit.testing import ScriptedModel, call, calls, reply
from agentkit.tools import calculator
from agentkit.tools.mcp import MCPClient, MCPResult, MCPServerError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_shop() -> Any:
    spec = importlib.util.spec_from_file_location("shop_server", EXAMPLES / "mcp_server.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Faults:
    """Tools that misbehave on purpose, added to the shop server, and what it saw."""

    def __init__(self, server: MCPServer) -> None:
        self.calls: list[str] = []
        self.cancelled = threading.Event()
        original = server.call_tool

        async def counting_call_tool(
            name: str, arguments: dict[str, Any], context: Any = None
        ) -> Any:
            self.calls.append(name)
            if name == "forecast":  # a server bug: the result breaks its own output schema
                return types.CallToolResult(
                    content=[types.TextContent(type="text", text="warm")],
                    structured_content={"city": "Oslo", "celsius": "warm"},
                )
            return await original(name, arguments, context)

        server.call_tool = counting_call_tool  # type: ignore[method-assign]

        @server.tool()
        async def nap(seconds: float) -> str:
            """Sleep for a while."""
            try:
                await asyncio.sleep(seconds)
            except BaseException:
                self.cancelled.set()
                raise
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


@pytest.fixture
def shop() -> Iterator[tuple[MCPClient, Faults]]:
    server = load_shop().build_server()
    faults = Faults(server)
    with MCPClient(server, name="shop") as client:
        yield client, faults


def test_listing_carries_the_annotations(shop: tuple[MCPClient, Faults]) -> None:
    client, _ = shop
    listed = {t.name: t for t in client.list_tools()}
    assert {"price_of", "stock_of", "reserve", "nap", "retire", "forecast"} <= set(listed)
    price = listed["price_of"]
    assert price.read_only and price.idempotent and not price.destructive
    assert not price.open_world and price.output_schema is not None
    reserve = listed["reserve"]
    assert not reserve.read_only and not reserve.destructive and not reserve.idempotent
    nap = listed["nap"]  # no annotations: MCP's defaults (may destroy, reaches out)
    assert nap.destructive and nap.open_world and not nap.idempotent
    assert client.instructions is not None and "dollars" in client.instructions


def test_only_the_allowed_tools_are_offered(shop: tuple[MCPClient, Faults]) -> None:
    client, _ = shop
    tools = client.tools(allow=["price_of", "stock_of", "price_of"], prefix="shop.")
    assert [t.name for t in tools] == ["shop.price_of", "shop.stock_of"]
    assert all(t.idempotent and t.problems == [] for t in tools)
    assert tools[0].spec.parameters["properties"]["item"]["type"] == "string"
    everything = client.tools(allow="*")
    assert {t.name for t in everything} == {t.name for t in client.list_tools()}
    reserve = next(t for t in everything if t.name == "reserve")
    assert not reserve.idempotent


def test_allowing_a_tool_the_server_lacks_is_a_config_error(
    shop: tuple[MCPClient, Faults],
) -> None:
    client, _ = shop
    with pytest.raises(ConfigError) as info:
        client.tools(allow=["price_of", "refund", "delete_all"])
    assert len(info.value.problems) == 2
    assert "has no tool named 'refund'; it offers: price_of, catalog," in info.value.problems[0]
    with pytest.raises(ConfigError, match=r"write allow=\['price_of'\]"):
        client.tools(allow="price_of")  # type: ignore[arg-type]


def test_an_agent_uses_mcp_tools_and_an_agentkit_tool(
    shop: tuple[MCPClient, Faults], store: RunStore
) -> None:
    client, faults = shop
    model = ScriptedModel(
        [
            calls(("shop.price_of", {"item": "pens"}), ("shop.stock_of", {"item": "pen"})),
            call("shop.catalog"),
            call("calculator", expression="3 * 1.5"),
            reply("3 pens cost 4.5 dollars; 240 are in stock."),
        ]
    )
    tools = [*client.tools(allow=["price_of", "stock_of", "catalog"], prefix="shop."), calculator]
    with model:
        result = Agent(model, tools=tools, store=store).run("3 pens?")
    assert result.ok
    first, second, third = (s.tool_calls for s in store.steps(result.run_id) if s.kind == "tool")
    assert [c["result"] for c in first] == ["1.5", "240"]
    # A list comes back as structured content (and once more as text, one block per item,
    # which the observation does not repeat).
    assert second[0]["result"].startswith('[{"item": "pen", "dollars": 1.5}, {"item": "notebook"')
    assert third[0]["result"] == "4.5"
    assert faults.calls == ["price_of", "stock_of", "catalog"]  # under the server's own names


def test_invalid_arguments_are_caught_before_the_server_sees_them(
    shop: tuple[MCPClient, Faults], store: RunStore
) -> None:
    client, faults = shop
    model = ScriptedModel([call("reserve", item="pen", quantity=0), reply("ok")])
    with model:
        result = Agent(model, tools=client.tools(allow=["reserve"]), store=store).run("?")
    assert "quantity: 0 is less than the minimum of 1" in model.requests[1][-1].content
    assert faults.calls == []
    assert result.ok


def test_server_errors_become_tool_errors(shop: tuple[MCPClient, Faults], store: RunStore) -> None:
    client, _ = shop
    model = ScriptedModel([call("price_of", item="banana"), reply("not sold")])
    with model:
        result = Agent(model, tools=client.tools(allow=["price_of"]), store=store).run("?")
    observation = store.steps(result.run_id)[1].tool_calls[0]
    assert observation["is_error"]
    assert observation["result"].startswith("Error: ")
    assert "the shop sells no 'banana'; it sells: pen, notebook" in observation["result"]


def test_a_tool_the_server_dropped_is_named_as_such(
    shop: tuple[MCPClient, Faults], store: RunStore
) -> None:
    client, _ = shop
    tools = client.tools(allow=["retire", "stock_of"])
    model = ScriptedModel(
        [call("retire", name="stock_of"), call("stock_of", item="pen"), reply("gone")]
    )
    with model:
        result = Agent(model, tools=tools, store=store).run("?")
    late = [s for s in store.steps(result.run_id) if s.kind == "tool"][1].tool_calls[0]
    assert late["is_error"]
    assert (
        "no tool named 'stock_of' (any more); it offers: price_of, catalog, reserve"
        in (late["result"])
    )


def test_a_result_of_the_wrong_shape_is_a_tool_error(shop: tuple[MCPClient, Faults]) -> None:
    client, faults = shop
    (forecast,) = client.tools(allow=["forecast"])
    with pytest.raises(ToolError, match="returned a result of the wrong shape for forecast"):
        asyncio.run(forecast.ainvoke({"city": "Oslo"}))
    assert faults.calls == ["forecast"]


def test_a_hung_call_times_out_and_the_server_is_told(
    shop: tuple[MCPClient, Faults], store: RunStore
) -> None:
    client, faults = shop
    tools = client.tools(allow=["nap", "stock_of"], timeout=0.3)
    model = ScriptedModel([call("nap", seconds=60), call("stock_of", item="pen"), reply("ok")])
    with model:
        result = Agent(model, tools=tools, store=store).run("?")
    nap_call, stock_call = (s.tool_calls[0] for s in store.steps(result.run_id) if s.kind == "tool")
    assert nap_call["is_error"] and "did not finish within 0.3 s" in nap_call["result"]
    assert stock_call["result"] == "240"  # the session is still good
    assert faults.cancelled.wait(10), "the server never heard that the call was abandoned"


def test_one_client_serves_many_runs_and_async_use(shop: tuple[MCPClient, Faults]) -> None:
    client, _ = shop
    tools = client.tools(allow=["stock_of"])
    for item, count in (("pen", "240"), ("notebook", "35")):
        model = ScriptedModel([call("stock_of", item=item), reply(count)])
        with model:
            assert Agent(model, tools=tools).run(item).ok
        assert model.requests[1][-1].content == count

    async def inside_a_loop() -> str:
        server = load_shop().build_server()
        async with MCPClient(server, name="shop2") as other:
            model = ScriptedModel([call("stock_of", item="stapler"), reply("4")])
            result = await Agent(model, tools=other.tools(allow=["stock_of"])).arun("?")
            return model.requests[1][-1].content if result.ok else result.summary()

    assert asyncio.run(inside_a_loop()) == "4"


def test_a_closed_client_gives_a_clear_error(store: RunStore) -> None:
    client = MCPClient(load_shop().build_server(), name="shop")
    with client:
        tools = client.tools(allow=["stock_of"])
    model = ScriptedModel([call("stock_of", item="pen"), reply("no shop")])
    with model:
        result = Agent(model, tools=tools, store=store).run("?")
    observation = store.steps(result.run_id)[1].tool_calls[0]["result"]
    assert "MCP client 'shop' is not open; open() it" in observation
    with pytest.raises(MCPServerError, match="is not open"):
        client.list_tools()
    client.close()  # closing twice is fine


def test_results_become_observations() -> None:
    result = types.CallToolResult(
        content=[
            types.TextContent(type="text", text="Two files."),
            types.TextContent(type="text", text='{"files": ["a.txt", "b.txt"]}'),
            types.ImageContent(type="image", data="aGk=", mime_type="image/png"),
            types.EmbeddedResource(
                type="resource",
                resource=types.TextResourceContents(uri="file:///a.txt", text="hello"),
            ),
            types.ResourceLink(type="resource_link", name="b", uri="file:///b.txt"),
        ],
        structured_content={"files": ["a.txt", "b.txt"]},
    )
    parsed = MCPResult.from_mcp(result)
    assert parsed.observation() == (
        "Two files.\nhello\n[image, image/png]\n[resource link file:///b.txt]\n"
        '{"files": ["a.txt", "b.txt"]}'
    )
    wrapped = MCPResult.from_mcp(
        types.CallToolResult(
            content=[types.TextContent(type="text", text="7")], structured_content={"result": 7}
        )
    )
    assert wrapped.observation() == "7"
    empty = MCPResult.from_mcp(types.CallToolResult(content=[]))
    assert empty.observation() == "(the tool returned nothing)" and not empty.is_error


def test_bad_connection_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="needs a command"):
        MCPClient.stdio([])
    with pytest.raises(ConfigError, match="not an http:// or https:// URL"):
        MCPClient.http("localhost:8000/mcp")
