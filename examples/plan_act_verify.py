"""A custom graph: plan, act with tools, verify, and loop back when the check fails.

What it shows: building your own loop from ``Graph`` nodes instead of the ready
``Agent``. The graph is

    plan (model, no tools) -> handoff (function) -> act (model + calculator)
    act -> tools -> act            while the model calls tools
    act -> verify (function)       when it answers
    verify -> act | END            back with feedback when the check fails

``verify`` is plain Python: it accepts an answer only when the answer contains a number
that one of the calculator calls actually returned, so a small model that skips the tool
or miscopies the result is sent back once more with a concrete note. The state is a
subclass of ``AgentState`` with typed fields of its own (the plan, the verdict).

    .venv/bin/python examples/plan_act_verify.py
    .venv/bin/python examples/plan_act_verify.py "A tank holds 1,200 litres ..."

Exit status: the run's (0 succeeded, 1 failed, 3 step budget spent, 4 stopped by the loop
detectors).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentkit import (
    END,
    AgentState,
    ConsoleProgress,
    FunctionNode,
    Graph,
    Message,
    ModelLadder,
    ModelNode,
    ResponsePlan,
    Runner,
    RunStore,
    Sampling,
    ToolNode,
    print_summary,
)
from agentkit.tools import calculator

APP = f"{Path(__file__).resolve()}:build_runner"
# The 0.5B model takes every step it can; a step where it starts repeating itself is
# redone on the 1.5B model.
DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct,qwen2.5-coder-1.5b-instruct"
MAX_CHECKS = 2  # answers verify looks at before it lets the run end anyway

TASK = (
    "A school orders 28 boxes of pencils with 12 pencils in each box, and 15 boxes of "
    "pens with 10 pens in each box. How many pencils and pens does it order in total?"
)

PLAN_PROMPT = (
    "You plan how to solve a word problem. Write a numbered plan of at most three steps. "
    "Each step is one line: what it works out, then the arithmetic expression for it, "
    "using the numbers of the problem. Do not work out any results."
)
ACT_PROMPT = (
    "You solve a word problem by following the plan. Use the calculator tool for the "
    "calculations: one expression with numbers only. When the calculator has returned "
    "the result, reply with the final answer only: the number and its unit."
)


class PlanState(AgentState):
    """The conversation plus what the custom nodes keep."""

    plan: str = ""
    checks: int = 0
    verified: bool = False


def handoff(state: PlanState) -> dict[str, Any]:
    """Keep the plan and turn the conversation over to the acting model."""
    plan = state.messages[-1].content.strip()
    note = Message.user("Now carry out the plan with the calculator tool.")
    # The plan node's text landed in `answer` (a model turn without calls); it is not one.
    return {"plan": plan, "answer": None, "messages": [*state.messages, note]}


def _numbers(text: str) -> set[float]:
    return {float(n.replace(",", "")) for n in re.findall(r"-?\d[\d,]*(?:\.\d+)?", text)}


def verify(state: PlanState) -> dict[str, Any]:
    """Accept the answer only if it states a number the calculator returned."""
    results: set[float] = set()
    for m in state.messages:
        if m.role == "tool" and m.name == "calculator" and not m.content.startswith("Error"):
            results |= _numbers(m.content)
    answer = state.answer or ""
    checks = state.checks + 1
    if results & _numbers(answer):
        return {"verified": True, "checks": checks}
    if checks >= MAX_CHECKS:
        # Give up checking but keep the answer; the summary shows it was not verified.
        return {"verified": False, "checks": checks}
    if results:
        why = (
            f"Your answer does not contain the calculator's result "
            f"({', '.join(f'{r:g}' for r in sorted(results))}). "
        )
    else:
        why = "You did not use the calculator. "
    note = Message.user(why + "Use the calculator, then reply with its final result only.")
    return {"checks": checks, "answer": None, "messages": [*state.messages, note]}


def after_act(state: PlanState) -> str:
    last = state.messages[-1]
    return "tools" if last.tool_calls else "verify"


def after_verify(state: PlanState) -> str:
    return END if state.verified or state.checks >= MAX_CHECKS else "act"


def build_graph(model: str = DEFAULT_MODEL, *, max_steps: int = 14) -> Graph[PlanState]:
    """The plan-act-verify graph over one model or a comma-separated ladder."""
    ladder = ModelLadder(model.split(","))
    graph: Graph[PlanState] = Graph(
        PlanState, name="plan-act-verify", model=ladder, max_steps=max_steps
    )
    # Planning is the hard part: it starts on the ladder's second tier (tier_hint), needs
    # no tools and few tokens. Acting on the plan is left to the cheapest tier.
    graph.add_node(
        "plan",
        ModelNode(system_prompt=PLAN_PROMPT, sampling=Sampling(max_tokens=160), tier_hint=1),
    )
    graph.add_node("handoff", FunctionNode(handoff))
    graph.add_node(
        "act",
        ModelNode(
            tools=[calculator],
            system_prompt=ACT_PROMPT,
            sampling=Sampling(temperature=0.1, max_tokens=256),
        ),
    )
    graph.add_node("tools", ToolNode(tools=[calculator]))
    graph.add_node("verify", FunctionNode(verify))
    graph.add_edge("plan", "handoff")
    graph.add_edge("handoff", "act")
    graph.add_conditional_edges("act", after_act, ["tools", "verify"])
    graph.add_edge("tools", "act")
    graph.add_conditional_edges("verify", after_verify, ["act", END])
    return graph


def build_runner(
    model: str = DEFAULT_MODEL, *, db: str | None = None, max_steps: int = 14
) -> Runner[PlanState]:
    """A runner for the graph, recording into ``db`` (or the default store)."""
    return Runner(
        build_graph(model, max_steps=max_steps).build(),
        store=RunStore(db),
        # On a ladder, a model caught repeating itself goes up a tier at once (resampling
        # a small model rarely breaks its loop); on the top tier it gets one nudge.
        responses=ResponsePlan(sequence=("escalate", "escalate", "nudge", "stop")),
        app=APP,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("task", nargs="*", help="a word problem (default: a sample)")
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="catalog name or GGUF path; several, comma-separated, make a ladder",
    )
    parser.add_argument("--db", help="run database (default: the normal agentkit store)")
    parser.add_argument("--max-steps", type=int, default=14)
    parser.add_argument("--verbose", action="store_true", help="more detail per event")
    args = parser.parse_args(argv)

    runner = build_runner(args.model, db=args.db, max_steps=args.max_steps)
    task = " ".join(args.task) or TASK
    state = PlanState(messages=[Message.user(task)])
    result = asyncio.run(runner.arun(task, state, on_event=ConsoleProgress(verbose=args.verbose)))
    print(f"\nplan:\n{result.state.plan or '(none)'}")
    verdict = "yes" if result.state.verified else "no"
    print(f"verified: {verdict} after {result.state.checks} check(s)\n")
    print_summary(result, runner.store.path)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
