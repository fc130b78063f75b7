"""Extracting structured records from free text into a pydantic schema.

What it shows: a tool whose typed arguments *are* the schema. ``save_record(name, email,
company)`` uses the same annotated field types as the ``Contact`` model, so the model's
calls are decoded under a grammar built from that schema, and a value the grammar cannot
rule out (an email without "@") fails pydantic validation and goes back to the model as
a retry. The records are read back from the run's own tool calls and printed as JSON,
validated against ``Contact``.

    .venv/bin/python examples/extract_records.py                       # examples/data/contacts.txt
    .venv/bin/python examples/extract_records.py --file my_notes.txt

Exit status: the run's (0 succeeded, 1 failed, 3 step budget spent, 4 stopped by the loop
detectors).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, ValidationError

from agentkit import Agent, AgentState, ConsoleProgress, ResponsePlan, Sampling, print_summary, tool

APP = f"{Path(__file__).resolve()}:build_agent"
# The 0.5B model takes every step it can; a step where it starts repeating itself is
# redone on the 1.5B model.
DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct,qwen2.5-coder-1.5b-instruct"
DEFAULT_FILE = Path(__file__).parent / "data" / "contacts.txt"

# One definition of each field's constraints, shared by the schema and the tool.
Name = Annotated[str, Field(min_length=3)]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")]
Company = Annotated[str, Field(min_length=2)]


class Contact(BaseModel):
    """One person mentioned in the text."""

    name: Name
    email: Email
    company: Company


@tool
def save_record(name: Name, email: Email, company: Company) -> str:
    """Save one contact person found in the text. Call it once for every person.

    Args:
        name: the person's full name
        email: the person's email address, exactly as written in the text
        company: the company the person works for
    """
    # The executor validated the arguments against the signature already; the record
    # itself is read back from the run's messages, which also survive a resume.
    return f"saved {name}"


SYSTEM_PROMPT = (
    "You extract contact records from text. For every person in the text, call save_record "
    "with their full name, email address and company, copied exactly from the text. "
    "You may call save_record several times in one turn. When every person is saved, "
    "reply with the number of records saved."
)


def build_agent(
    model: str = DEFAULT_MODEL, *, db: str | None = None, max_steps: int = 8
) -> Agent[AgentState]:
    """The extraction agent (the function `agentkit runs resume` calls)."""
    return Agent(
        model.split(","),
        tools=[save_record],
        system_prompt=SYSTEM_PROMPT,
        name="extract-records",
        max_steps=max_steps,
        # Copying, not creativity: greedy sampling. Room for several calls in one turn
        # (about 50 tokens each): a turn cut off by the limit loses its calls.
        sampling=Sampling(temperature=0.0, max_tokens=512),
        # On a ladder, a model caught repeating itself goes up a tier at once (resampling
        # a small model rarely breaks its loop); on the top tier it gets one nudge.
        responses=ResponsePlan(sequence=("escalate", "escalate", "nudge", "stop")),
        store=db,
        app=APP,
    )


def saved_records(state: AgentState) -> list[Contact]:
    """The contacts of every save_record call that succeeded, in order, without repeats."""
    failed = {
        m.tool_call_id for m in state.messages if m.role == "tool" and m.content.startswith("Error")
    }
    records: dict[str, Contact] = {}
    for message in state.messages:
        for call in message.tool_calls:
            if call.name != "save_record" or call.id in failed:
                continue
            try:
                contact = Contact.model_validate(call.arguments)
            except ValidationError:  # rejected calls stay in the history; skip them
                continue
            records.setdefault(contact.email.lower(), contact)
    return list(records.values())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE, help="the text to read")
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="catalog name or GGUF path; several, comma-separated, make a ladder",
    )
    parser.add_argument("--db", help="run database (default: the normal agentkit store)")
    parser.add_argument("--max-steps", type=int, default=8)
    parser.add_argument("--verbose", action="store_true", help="more detail per event")
    args = parser.parse_args(argv)

    text = args.file.read_text(encoding="utf-8")
    agent = build_agent(args.model, db=args.db, max_steps=args.max_steps)
    task = f"Extract every contact person from this text:\n\n{text.strip()}"
    result = agent.run(task, on_event=ConsoleProgress(verbose=args.verbose))
    records = saved_records(result.state)
    print(f"\n{len(records)} record(s), validated against the Contact schema:")
    for record in records:
        print("  " + record.model_dump_json())
    print()
    print_summary(result, agent.store.path)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
