"""Arithmetic word problems, solved with the calculator tool.

What it shows: the ready ``Agent`` loop with one ready-made tool
(``agentkit.tools.calculator``), a short system prompt that tells a small model when to
call the tool and how to finish, a two-tier ladder (Qwen2.5-Coder 0.5B, then 1.5B for
the steps that go badly), and one stored run per problem.

    .venv/bin/python examples/calculator.py                  # three built-in problems
    .venv/bin/python examples/calculator.py "What is 17% of 2,340?"
    .venv/bin/python examples/calculator.py --model qwen2.5-coder-1.5b-instruct  # no ladder

Exit status: 0 when every problem's run succeeded, otherwise the exit code of the first
run that did not (1 failed, 3 step budget spent, 4 stopped by the loop detectors).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from agentkit import Agent, AgentState, ConsoleProgress, ResponsePlan, Sampling, print_summary
from agentkit.tools import calculator

# Recorded with every run, so `agentkit runs resume RUN_ID` can rebuild this agent.
APP = f"{Path(__file__).resolve()}:build_agent"
# The 0.5B model takes every step it can; a step where it starts repeating itself is
# redone on the 1.5B model.
DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct,qwen2.5-coder-1.5b-instruct"

SYSTEM_PROMPT = (
    "You solve arithmetic word problems. Use the calculator tool for every calculation: "
    "write the arithmetic as one expression with numbers only. When you have the result, "
    "reply with the final answer only: the number and its unit."
)

PROBLEMS = [
    "A train travels 2 hours at 84 km/h and then 3 hours at 96 km/h. "
    "How many kilometres does it travel in total?",
    "A bakery sells 145 loaves a day at 3.20 dollars each. How much money does it take "
    "in over a week of 7 days?",
    "A 1,250 dollar laptop is discounted by 18 percent. What does it cost after the discount?",
]


def build_agent(
    model: str = DEFAULT_MODEL, *, db: str | None = None, max_steps: int = 6
) -> Agent[AgentState]:
    """The calculator agent (the function `agentkit runs resume` calls)."""
    return Agent(
        model.split(","),
        tools=[calculator],
        system_prompt=SYSTEM_PROMPT,
        name="calculator",
        max_steps=max_steps,
        # Low temperature: arithmetic has one right call; 256 tokens is ample for it.
        sampling=Sampling(temperature=0.1, max_tokens=256),
        # On a ladder, a model caught repeating itself goes up a tier at once (resampling
        # a small model rarely breaks its loop); on the top tier it gets one nudge.
        responses=ResponsePlan(sequence=("escalate", "escalate", "nudge", "stop")),
        store=db,
        app=APP,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("problem", nargs="*", help="a problem to solve (default: three samples)")
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="catalog name or GGUF path; several, comma-separated, make a ladder",
    )
    parser.add_argument("--db", help="run database (default: the normal agentkit store)")
    parser.add_argument("--max-steps", type=int, default=6)
    parser.add_argument("--verbose", action="store_true", help="more detail per event")
    args = parser.parse_args(argv)

    agent = build_agent(args.model, db=args.db, max_steps=args.max_steps)
    problems = [" ".join(args.problem)] if args.problem else PROBLEMS
    exit_code = 0
    for problem in problems:
        result = agent.run(problem, on_event=ConsoleProgress(verbose=args.verbose))
        print_summary(result, agent.store.path)
        print()
        exit_code = exit_code or result.exit_code
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
