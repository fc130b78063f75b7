"""The agentkit demo (`make demo`): an order total worked out on a ladder of local models.

What it shows: a small model that finishes its loop, on a ``ModelLadder`` of local models,
cheapest first: Qwen2.5-Coder 0.5B, then 1.5B. The agent reads an order email and must use
the calculator for the total. Left to itself, the 0.5B writes the calculator call, gets
the total, and then calls the calculator again on its own result; agentkit does not run
that call: it switches the tools off for one turn (answer now) and the 0.5B states the
total. The 1.5B is only asked when a step goes badly (a loop that answer-now does not
end, invalid calls, an unsure answer). The live lines on stderr show each step, the tier
that took it and why, every tool call with its result, every answer-now turn and every
detector strike. The run goes to the normal run database, so `agentkit monitor` shows it.

    .venv/bin/python examples/demo.py
    .venv/bin/python examples/demo.py --model qwen2.5-coder-1.5b-instruct     # no ladder
    .venv/bin/python examples/demo.py --model smollm2-135m-instruct,qwen2.5-coder-0.5b-instruct

Takes under a minute on two CPU cores. Exit status: the run's (0 succeeded, 1 failed,
3 step budget spent, 4 stopped by the loop detectors).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from agentkit import Agent, AgentState, ConsoleProgress, Sampling, print_summary
from agentkit.tools import calculator

APP = f"{Path(__file__).resolve()}:build_agent"
# SmolLM2-135M is left out of the default ladder: given tools and a fresh task, it answers
# from memory instead of calling them, and a text answer ends the run before any signal
# could escalate it. Add it in front with --model to see that happen.
LADDER = "qwen2.5-coder-0.5b-instruct,qwen2.5-coder-1.5b-instruct"

ORDER_EMAIL = (
    "Hello, please send us 5 notebooks at 2.40 dollars each, 2 backpacks at 34.90 dollars "
    "each and 3 pencil cases at 6.25 dollars each. Thanks, Dana"
)
LINES = [(5, "2.40"), (2, "34.90"), (3, "6.25")]  # what the email says, for the check
TASK = f"What is the total cost of this order?\n\n{ORDER_EMAIL}"

# No sample numbers in the prompt: small models copy them into their calls.
SYSTEM_PROMPT = (
    "You work out order totals. Use the calculator tool for the arithmetic: one "
    "expression that multiplies each quantity by its price and adds them up. When the "
    "calculator has returned the result, reply with the final answer only: the total "
    "in dollars."
)


def expected_total() -> Fraction:
    return sum((n * Fraction(price) for n, price in LINES), Fraction(0))


def states_total(answer: str | None) -> bool:
    """Whether the answer mentions the right total (100.55 and $100.55 both count)."""
    numbers = re.findall(r"\d[\d,]*(?:\.\d+)?", answer or "")
    return any(Fraction(n.replace(",", "")) == expected_total() for n in numbers)


def build_agent(
    model: str = LADDER, *, db: str | None = None, max_steps: int = 12
) -> Agent[AgentState]:
    """The demo agent (the function `agentkit runs resume` calls)."""
    return Agent(
        model.split(","),
        tools=[calculator],
        system_prompt=SYSTEM_PROMPT,
        name="demo-order-total",
        max_steps=max_steps,
        sampling=Sampling(temperature=0.1, max_tokens=256),
        store=db,
        app=APP,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--model",
        default=LADDER,
        help="comma-separated ladder of catalog names or GGUF paths, cheapest first "
        "(default: %(default)s)",
    )
    parser.add_argument("--db", help="run database (default: the normal agentkit store)")
    parser.add_argument("--max-steps", type=int, default=12)
    parser.add_argument("--verbose", action="store_true", help="more detail per event")
    args = parser.parse_args(argv)

    agent = build_agent(args.model, db=args.db, max_steps=args.max_steps)
    tiers = args.model.split(",")
    print(f"task: {TASK}", file=sys.stderr)
    print(f"ladder: {' -> '.join(tiers)} (each loads on first use)\n", file=sys.stderr)
    result = agent.run(TASK, on_event=ConsoleProgress(verbose=args.verbose))
    verdict = "states it" if states_total(result.answer) else "does not state it"
    print(f"\nthe right total is {float(expected_total()):.2f} dollars; the answer {verdict}\n")
    print_summary(result, agent.store.path)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
