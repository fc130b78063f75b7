"""Shopping questions answered with tools from an MCP server plus an agentkit tool.

What it shows: ``agentkit.tools.mcp`` launching a local MCP server
(``examples/mcp_server.py``) over stdio, offering two of its tools to an Agent (an
allow-list: the server's ``reserve`` tool stays out), named ``shop.price_of`` and
``shop.stock_of``, next to agentkit's own calculator. One connection serves every run.

    .venv/bin/python examples/mcp_agent.py                      # two sample questions
    .venv/bin/python examples/mcp_agent.py "What do 4 staplers cost?"
    .venv/bin/python examples/mcp_agent.py --model qwen2.5-coder-1.5b-instruct

Exit status: 0 when every run succeeded, otherwise the exit code of the first run that
did not (1 failed, 3 step budget spent, 4 stopped by the loop detectors).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from agentkit import Agent, AgentState, ConsoleProgress, Sampling, print_summary
from agentkit.tools import calculator
from agentkit.tools.mcp import MCPClient

# Recorded with every run, so `agentkit runs resume RUN_ID` can rebuild this agent.
APP = f"{Path(__file__).resolve()}:build_agent"
SERVER = Path(__file__).with_name("mcp_server.py")
DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct"

SYSTEM_PROMPT = (
    "You answer questions about a shop. Look up prices with shop.price_of and stock with "
    "shop.stock_of, one item per call. Use the calculator for any arithmetic. When you "
    "have the result, reply with the final answer only, in one short sentence."
)

QUESTIONS = [
    "What do 3 pens cost?",
    "How many staplers are in stock?",
]


def open_shop() -> MCPClient:
    """Launch the example server over stdio and connect to it."""
    return MCPClient.stdio([sys.executable, str(SERVER)], name="shop").open()


def build_agent(
    model: str = DEFAULT_MODEL,
    *,
    db: str | None = None,
    max_steps: int = 8,
    shop: MCPClient | None = None,
) -> Agent[AgentState]:
    """The shop agent (the function `agentkit runs resume` calls; it opens its own shop)."""
    shop = shop or open_shop()
    return Agent(
        model.split(","),
        tools=[*shop.tools(allow=["price_of", "stock_of"], prefix="shop."), calculator],
        system_prompt=SYSTEM_PROMPT,
        name="mcp-agent",
        max_steps=max_steps,
        sampling=Sampling(temperature=0.1, max_tokens=256),
        store=db,
        app=APP,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("question", nargs="*", help="a question (default: two samples)")
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="catalog name or GGUF path; several, comma-separated, make a ladder",
    )
    parser.add_argument("--db", help="run database (default: the normal agentkit store)")
    parser.add_argument("--max-steps", type=int, default=8)
    parser.add_argument("--verbose", action="store_true", help="more detail per event")
    args = parser.parse_args(argv)

    questions = [" ".join(args.question)] if args.question else QUESTIONS
    exit_code = 0
    with open_shop() as shop:
        agent = build_agent(args.model, db=args.db, max_steps=args.max_steps, shop=shop)
        for question in questions:
            result = agent.run(question, on_event=ConsoleProgress(verbose=args.verbose))
            print_summary(result, agent.store.path)
            print()
            exit_code = exit_code or result.exit_code
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
