"""A small MCP server: a shop's price list and stock, for examples/mcp_agent.py.

What it shows: an ordinary MCP server built with the official SDK (``MCPServer``), which
knows nothing of agentkit. Its tools carry MCP annotations (read-only, idempotent) and
typed results, so a client gets both text and structured content.

    .venv/bin/python examples/mcp_server.py              # over stdio (MCPClient.stdio)
    .venv/bin/python examples/mcp_server.py --http 8765  # streamable HTTP, 127.0.0.1:8765/mcp
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

PRICES = {"pen": 1.5, "notebook": 4.25, "stapler": 12.0, "folder": 0.8}
STOCK = {"pen": 240, "notebook": 35, "stapler": 4, "folder": 0}

Item = Annotated[str, Field(description='an item of the shop, in the singular, e.g. "pen"')]


class Price(BaseModel):
    """The price of one item."""

    item: str
    dollars: float


def _known(item: str) -> str:
    key = item.strip().lower()
    key = key if key in PRICES else key.removesuffix("s")
    if key not in PRICES:
        raise ToolError(f"the shop sells no {item!r}; it sells: {', '.join(PRICES)}")
    return key


def build_server() -> MCPServer:
    """The shop server and its tools (tests add fault-injecting tools to it)."""
    server = MCPServer(
        "shop",
        instructions="Prices are in dollars per item; stock counts are items on the shelf.",
        log_level="WARNING",
    )
    looks_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @server.tool(annotations=looks_only)
    def price_of(item: Item) -> float:
        """The price in dollars of one item."""
        return PRICES[_known(item)]

    @server.tool(annotations=looks_only)
    def catalog() -> list[Price]:
        """Every item of the shop with its price."""
        return [Price(item=item, dollars=dollars) for item, dollars in PRICES.items()]

    @server.tool(annotations=looks_only)
    def stock_of(item: Item) -> int:
        """How many of an item are on the shelf."""
        return STOCK[_known(item)]

    @server.tool(annotations=ToolAnnotations(destructive_hint=False, open_world_hint=False))
    def reserve(item: Item, quantity: Annotated[int, Field(ge=1)]) -> str:
        """Put items aside for a customer (takes them off the shelf)."""
        key = _known(item)
        if STOCK[key] < quantity:
            raise ToolError(f"only {STOCK[key]} {key}(s) in stock")
        STOCK[key] -= quantity
        return f"reserved {quantity} {key}(s); {STOCK[key]} left"

    return server


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--http", type=int, metavar="PORT", help="serve streamable HTTP")
    args = parser.parse_args(argv)
    server = build_server()
    if args.http:
        server.run("streamable-http", host="127.0.0.1", port=args.http)
    else:
        server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
