"""Answering questions over a folder of local documents.

What it shows: a read-only ``Workspace`` over ``examples/data/docs`` (a small staff
handbook) whose ``list_files`` and ``read_file`` tools, plus a narrowed ``search_files``
(one argument, always case-insensitive), let the agent find the passage that answers a
question instead of answering from memory. The workspace refuses writes and paths
outside the folder whatever the model asks for.

    .venv/bin/python examples/doc_qa.py                       # three sample questions
    .venv/bin/python examples/doc_qa.py "Where do bicycles go?"
    .venv/bin/python examples/doc_qa.py --docs path/to/your/notes "What did we decide?"

Exit status: 0 when every question's run succeeded, otherwise the exit code of the first
run that did not (1 failed, 3 step budget spent, 4 stopped by the loop detectors).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from agentkit import Agent, AgentState, ConsoleProgress, ResponsePlan, Sampling, print_summary, tool
from agentkit.tools import Workspace

APP = f"{Path(__file__).resolve()}:build_agent"
# The 0.5B model takes every step it can; a step where it starts repeating itself is
# redone on the 1.5B model.
DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct,qwen2.5-coder-1.5b-instruct"
DEFAULT_DOCS = Path(__file__).parent / "data" / "docs"

# No sample answer in the prompt: small models copy it instead of searching.
SYSTEM_PROMPT = (
    "You answer questions about a folder of documents, using only what the documents say; "
    "you know nothing about them yourself. Always start by calling search_files with one "
    "important word from the question. If the matching lines do not answer the question, "
    "call read_file on the file that matched. Then reply with a short answer, followed by "
    "the name of the file it came from in brackets."
)

QUESTIONS = [
    "How many paid vacation days does an employee get per year?",
    "Up to how many euros per day are meals on business trips reimbursed?",
    "What is the name of the Wi-Fi network for guests?",
]


def build_agent(
    model: str = DEFAULT_MODEL,
    *,
    db: str | None = None,
    max_steps: int = 8,
    docs: Path = DEFAULT_DOCS,
) -> Agent[AgentState]:
    """The question-answering agent (the function `agentkit runs resume` calls)."""
    # Short reads: a small model's context fills fast, and these documents are short.
    workspace = Workspace(docs, read_only=True, max_read_chars=2000, max_results=20)

    @tool(idempotent=True)
    def search_files(query: str) -> str:
        """Find the lines of the documents that contain a word, in upper or lower case.
        Each hit is shown as file:line: text.

        Args:
            query: one word to look for, for example "holiday"
        """
        # The Workspace's own search_files, narrowed: small models leave its ignore_case
        # option at false and then miss "Meals" when they search for "meal".
        return workspace.search_files(query, ignore_case=True)

    by_name = {t.name: t for t in workspace.tools()}
    return Agent(
        model.split(","),
        # search_files first: small models lean towards the first tool they are shown.
        tools=[search_files, by_name["read_file"], by_name["list_files"]],
        system_prompt=SYSTEM_PROMPT,
        name="doc-qa",
        max_steps=max_steps,
        sampling=Sampling(temperature=0.1, max_tokens=256),
        # On a ladder, a model caught repeating itself goes up a tier at once (resampling
        # a small model rarely breaks its loop); on the top tier it gets one nudge.
        responses=ResponsePlan(sequence=("escalate", "escalate", "nudge", "stop")),
        store=db,
        app=APP,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("question", nargs="*", help="a question (default: three samples)")
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS, help="the folder to search")
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="catalog name or GGUF path; several, comma-separated, make a ladder",
    )
    parser.add_argument("--db", help="run database (default: the normal agentkit store)")
    parser.add_argument("--max-steps", type=int, default=8)
    parser.add_argument("--verbose", action="store_true", help="more detail per event")
    args = parser.parse_args(argv)

    agent = build_agent(args.model, db=args.db, max_steps=args.max_steps, docs=args.docs)
    questions = [" ".join(args.question)] if args.question else QUESTIONS
    exit_code = 0
    for question in questions:
        result = agent.run(question, on_event=ConsoleProgress(verbose=args.verbose))
        print_summary(result, agent.store.path)
        print()
        exit_code = exit_code or result.exit_code
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
