"""The task suite of the ladder benchmark: small agent chores whose outcome a program checks.

Four kinds, each with its own tools and a short system prompt:

- ``arithmetic``: word problems with the ``calculator`` tool; the expected number must
  appear in the final answer (``1,234``, ``1234.0`` and ``$1,234.00`` all count).
- ``files``: chores in a fresh temporary ``Workspace``; the checker reads the files back.
- ``extraction``: records in prose saved with a typed ``save_record`` tool; the checker
  compares the saved records with the expected ones.
- ``lookup``: questions over a small fictional knowledge base behind ``lookup(name)``;
  most need two or three chained look-ups. The expected answer must be in the final text.

Difficulty is ``easy`` (one tool call, then the answer) or ``multi`` (several dependent
calls, or a value that needs reasoning to pick or convert). Every task carries a reference
solution (its tool calls and a final answer), which the unit tests replay through the
scripted model to prove that the task is solvable and that its checker accepts it.

A run counts as solved only when it ended normally (status ``succeeded``) and the checker
accepts the outcome: a run that ran out of steps fails even if its last observation
happened to hold the answer.

The tasks were written before the benchmark's first full run and are not tuned to any
policy. The one change came after a five-task smoke run. Three knowledge-base values that
a model could guess without a look-up were renamed: a real Welsh place name echoing
"Harbor", the crown as the currency of a Nordic-sounding country, and a dish. That makes
the look-ups necessary under every configuration. Nothing changed after the full runs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, Protocol

from agentkit import Agent, ChatModel, ModelLadder, RunStore, Sampling, Tool, ToolError
from agentkit.tools import Workspace, calculator

from . import harness

__all__ = [
    "KINDS",
    "SYSTEM_PROMPTS",
    "TASKS",
    "Check",
    "Difficulty",
    "Env",
    "Kind",
    "Task",
    "answer_has_number",
    "answer_has_text",
    "as_cases",
    "build_agent",
    "numbers_in",
    "tasks",
]

Kind = Literal["arithmetic", "files", "extraction", "lookup"]
Difficulty = Literal["easy", "multi"]
KINDS: tuple[Kind, ...] = ("arithmetic", "files", "extraction", "lookup")
Call = tuple[str, dict[str, Any]]
"""A tool call of a reference solution: the tool's name and its arguments."""

SYSTEM_PROMPTS: dict[Kind, str] = {
    "arithmetic": (
        "You solve arithmetic word problems. Use the calculator tool for every "
        "calculation; do not compute in your head. When you have the result, reply with "
        "one short sentence that states the final number."
    ),
    "files": (
        "You do file chores in a workspace with the file tools. Paths are relative to the "
        "workspace. Read files before using their content, write exactly the text asked "
        "for, and when the chore is done reply with one short sentence saying what you did."
    ),
    "extraction": (
        "You turn text into records. Call save_record once for every record described in "
        "the text, copying each field from the text (numbers as numbers). When every "
        "record is saved, reply with the single word: done."
    ),
    "lookup": (
        "You answer questions with the lookup tool, which tells what a knowledge base "
        "knows about one name (a person, place, work or organisation). Look up the names "
        "in the question, then the names in the results as needed, and never guess. "
        "Answer with one short sentence."
    ),
}


@dataclass(frozen=True)
class Check:
    """A checker's verdict and what it saw."""

    ok: bool
    detail: str


@dataclass
class Env:
    """One task instance: the tools its agent gets and the checker of its outcome."""

    tools: list[Tool]
    check: Callable[[str | None], Check]
    """Judge the run from its final answer and whatever the tools changed."""


@dataclass(frozen=True)
class Task:
    id: str
    kind: Kind
    difficulty: Difficulty
    prompt: str
    setup: Callable[[Path], Env]
    """Build a fresh instance in an empty folder that the task may use."""
    solution: tuple[Call, ...]
    answer: str
    """The final answer of the reference solution."""


def build_agent(
    task: Task,
    model: ChatModel | ModelLadder,
    root: Path,
    *,
    store: RunStore,
    sampling: Sampling,
    max_steps: int,
) -> tuple[Agent[Any], Env]:
    """A fresh agent for ``task`` working in ``root`` (an empty folder), and its checker."""
    env = task.setup(root)
    agent: Agent[Any] = Agent(
        model,
        tools=env.tools,
        system_prompt=SYSTEM_PROMPTS[task.kind],
        name=f"bench-{task.id}",
        max_steps=max_steps,
        sampling=sampling,
        store=store,
        app="bench.ladder",
    )
    return agent, env


# -- checkers ---------------------------------------------------------------------------

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_GROUPED = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def numbers_in(text: str) -> list[Decimal]:
    """Every number written in ``text``; thousands separators are understood."""
    found: list[Decimal] = []
    for match in _NUMBER.findall(text):
        parts = [match] if "," not in match or _GROUPED.fullmatch(match) else match.split(",")
        for part in parts:
            try:
                found.append(Decimal(part.replace(",", "")))
            except InvalidOperation:
                continue
    return found


def answer_has_number(answer: str | None, expected: Decimal) -> Check:
    """The expected number appears in the answer (to the cent for non-integers)."""
    if not answer:
        return Check(False, "no final answer")
    tolerance = Decimal(0) if expected == expected.to_integral_value() else Decimal("0.005")
    seen = numbers_in(answer)
    if any(abs(n - expected) <= tolerance for n in seen):
        return Check(True, f"found {expected}")
    shown = ", ".join(str(n) for n in seen[:6]) or "none"
    return Check(False, f"expected {expected}; numbers in the answer: {shown}")


def _squash(text: str) -> str:
    return " ".join(text.casefold().split())


def answer_has_text(answer: str | None, expected: str) -> Check:
    """The expected words appear in the answer (case and spacing ignored)."""
    if not answer:
        return Check(False, "no final answer")
    pattern = r"(?<!\w)" + re.escape(_squash(expected)) + r"(?!\w)"
    if re.search(pattern, _squash(answer)):
        return Check(True, f"found {expected!r}")
    return Check(False, f"expected {expected!r} in {answer[:120]!r}")


# -- arithmetic -------------------------------------------------------------------------


def _arithmetic(
    id: str, difficulty: Difficulty, prompt: str, expected: str, expressions: Sequence[str]
) -> Task:
    value = Decimal(expected)

    def setup(root: Path) -> Env:
        return Env([calculator], lambda answer: answer_has_number(answer, value))

    return Task(
        id,
        "arithmetic",
        difficulty,
        prompt,
        setup,
        tuple(("calculator", {"expression": e}) for e in expressions),
        f"The answer is {expected}.",
    )


ARITHMETIC: list[Task] = [
    _arithmetic(
        "a01",
        "easy",
        "A box holds 24 pencils. How many pencils are in 37 boxes?",
        "888",
        ["24 * 37"],
    ),
    _arithmetic(
        "a02",
        "easy",
        "A train travels 345 km in 3 hours. What is its average speed in km per hour?",
        "115",
        ["345 / 3"],
    ),
    _arithmetic(
        "a03",
        "easy",
        "Maria had 1,250 dollars and spent 478 dollars on a bike. How many dollars does "
        "she have left?",
        "772",
        ["1250 - 478"],
    ),
    _arithmetic(
        "a04",
        "easy",
        "A rope 96 meters long is cut into 8 equal pieces. How long is each piece, in meters?",
        "12",
        ["96 / 8"],
    ),
    _arithmetic("a05", "easy", "What is 15% of 640?", "96", ["640 * 15 / 100"]),
    _arithmetic(
        "a06",
        "easy",
        "A rectangle is 23 cm long and 17 cm wide. What is its area in square centimeters?",
        "391",
        ["23 * 17"],
    ),
    _arithmetic(
        "a07",
        "multi",
        "Notebooks cost 3.75 dollars each. Tom buys 12 notebooks and pays with a 100 "
        "dollar bill. How much change does he get, in dollars?",
        "55",
        ["3.75 * 12", "100 - 45"],
    ),
    _arithmetic(
        "a08",
        "multi",
        "A farm has 14 rows of apple trees with 26 trees in each row. Each tree gives 38 kg "
        "of apples. How many kilograms of apples does the farm produce?",
        "13832",
        ["14 * 26", "364 * 38"],
    ),
    _arithmetic(
        "a09",
        "multi",
        "A concert hall has 1,200 seats. 85% of the seats were sold, at 42 dollars each. "
        "What was the total ticket revenue in dollars?",
        "42840",
        ["1200 * 0.85", "1020 * 42"],
    ),
    _arithmetic(
        "a10",
        "multi",
        "Anna earns 18.50 dollars per hour. She works 8 hours a day for 5 days, then pays "
        "15% tax on what she earned. How many dollars does she keep after tax?",
        "629",
        ["18.5 * 8 * 5", "740 * 0.85"],
    ),
    _arithmetic(
        "a11",
        "multi",
        "At 6 am the temperature was -7 degrees. It rose by 4 degrees every hour. What was "
        "the temperature at 11 am?",
        "13",
        ["11 - 6", "-7 + 4 * 5"],
    ),
    _arithmetic(
        "a12",
        "multi",
        "A car uses 6.5 liters of fuel per 100 km, and fuel costs 1.80 dollars per liter. "
        "How many dollars does the fuel for a 420 km trip cost?",
        "49.14",
        ["6.5 * 420 / 100", "27.3 * 1.8"],
    ),
]


# -- files ------------------------------------------------------------------------------


class FileExpectation(Protocol):
    def matches(self, content: str) -> bool: ...

    def describe(self) -> str: ...


def _clean(text: str) -> str:
    """Text with trailing spaces on each line and surrounding blank lines removed."""
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()).strip()


@dataclass(frozen=True)
class Exact:
    text: str

    def matches(self, content: str) -> bool:
        return _clean(content) == _clean(self.text)

    def describe(self) -> str:
        return repr(self.text)


@dataclass(frozen=True)
class OneOf:
    texts: tuple[str, ...]

    def matches(self, content: str) -> bool:
        return _clean(content) in {_clean(t) for t in self.texts}

    def describe(self) -> str:
        return " or ".join(repr(t) for t in self.texts)


@dataclass(frozen=True)
class SameLines:
    """The same non-empty lines in any order."""

    lines: tuple[str, ...]

    def matches(self, content: str) -> bool:
        got = sorted(ln.strip() for ln in content.splitlines() if ln.strip())
        return got == sorted(self.lines)

    def describe(self) -> str:
        return f"the lines {sorted(self.lines)} in any order"


@dataclass(frozen=True)
class OnlyNumber:
    """Exactly one number, this one (words around it are fine)."""

    value: int

    def matches(self, content: str) -> bool:
        return numbers_in(content) == [Decimal(self.value)]

    def describe(self) -> str:
        return f"the number {self.value}"


def _file_chore(
    id: str,
    difficulty: Difficulty,
    prompt: str,
    *,
    seed: Mapping[str, str] | None = None,
    expect: Mapping[str, FileExpectation],
    solution: Sequence[Call],
    answer: str = "Done.",
) -> Task:
    seeded = dict(seed or {})

    def setup(root: Path) -> Env:
        for rel, text in seeded.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        workspace = Workspace(root)

        def check(answer: str | None) -> Check:
            for rel, text in seeded.items():
                if rel not in expect and _read(root / rel) != text:
                    return Check(False, f"{rel} was changed or removed")
            for rel, wanted in expect.items():
                got = _read(root / rel)
                if got is None:
                    return Check(False, f"{rel} does not exist")
                if not wanted.matches(got):
                    return Check(False, f"{rel} holds {got[:80]!r}; wanted {wanted.describe()}")
            return Check(True, "files as expected")

        return Env(workspace.tools(), check)

    return Task(id, "files", difficulty, prompt, setup, tuple(solution), answer)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


_LIST = "milk\neggs\nbread\napples\ncoffee\nrice\nsoap\n"
_LOGS = {
    "logs/app1.log": "INFO started\nINFO request served\n",
    "logs/app2.log": "INFO started\nERROR disk full\nINFO retry\n",
    "logs/app3.log": "INFO started\nWARN slow response\n",
}

FILES: list[Task] = [
    _file_chore(
        "f01",
        "easy",
        "Create the file notes/todo.txt containing exactly: buy milk",
        expect={"notes/todo.txt": Exact("buy milk")},
        solution=[("write_file", {"path": "notes/todo.txt", "content": "buy milk"})],
    ),
    _file_chore(
        "f02",
        "easy",
        "Write the text 'Meeting moved to Friday' into a new file called memo.txt.",
        expect={"memo.txt": Exact("Meeting moved to Friday")},
        solution=[("write_file", {"path": "memo.txt", "content": "Meeting moved to Friday"})],
    ),
    _file_chore(
        "f03",
        "easy",
        "Create a file named greeting.txt whose only content is the word hello.",
        expect={"greeting.txt": Exact("hello")},
        solution=[("write_file", {"path": "greeting.txt", "content": "hello"})],
    ),
    _file_chore(
        "f04",
        "multi",
        "Copy the first line of a.txt into a new file b.txt.",
        seed={"a.txt": "alpha one\nbeta two\ngamma three\n"},
        expect={"b.txt": Exact("alpha one")},
        solution=[
            ("read_file", {"path": "a.txt"}),
            ("write_file", {"path": "b.txt", "content": "alpha one\n"}),
        ],
    ),
    _file_chore(
        "f05",
        "multi",
        "Count the .csv files in the data folder and write the count to count.txt.",
        seed={
            "data/sales.csv": "month,total\njan,10\n",
            "data/users.csv": "id,name\n1,ann\n",
            "data/costs.csv": "item,cost\npaper,3\n",
            "data/notes.txt": "csv files hold the raw numbers\n",
            "data/readme.md": "# data\n",
        },
        expect={"count.txt": OnlyNumber(3)},
        solution=[
            ("list_files", {"path": "data"}),
            ("write_file", {"path": "count.txt", "content": "3"}),
        ],
    ),
    _file_chore(
        "f06",
        "multi",
        "Read config.ini and write the port number of the server to port.txt.",
        seed={"config.ini": "[server]\nhost = example.org\nport = 8125\n\n[cache]\nsize = 64\n"},
        expect={"port.txt": OnlyNumber(8125)},
        solution=[
            ("read_file", {"path": "config.ini"}),
            ("write_file", {"path": "port.txt", "content": "8125"}),
        ],
    ),
    _file_chore(
        "f07",
        "multi",
        "One of the log files in the logs folder contains the word ERROR. Write the name "
        "of that file to error_file.txt.",
        seed=_LOGS,
        expect={"error_file.txt": OneOf(("app2.log", "logs/app2.log"))},
        solution=[
            ("search_files", {"query": "ERROR", "path": "logs"}),
            ("write_file", {"path": "error_file.txt", "content": "app2.log"}),
        ],
    ),
    _file_chore(
        "f08",
        "multi",
        "Read name.txt and write its content in upper case to upper.txt.",
        seed={"name.txt": "ada lovelace\n"},
        expect={"upper.txt": Exact("ADA LOVELACE")},
        solution=[
            ("read_file", {"path": "name.txt"}),
            ("write_file", {"path": "upper.txt", "content": "ADA LOVELACE"}),
        ],
    ),
    _file_chore(
        "f09",
        "multi",
        "Write the number of lines in list.txt to lines.txt.",
        seed={"list.txt": _LIST},
        expect={"lines.txt": OnlyNumber(7)},
        solution=[
            ("read_file", {"path": "list.txt"}),
            ("write_file", {"path": "lines.txt", "content": "7"}),
        ],
    ),
    _file_chore(
        "f10",
        "multi",
        "Create combined.txt containing the content of first.txt followed by the content "
        "of second.txt, each on its own line.",
        seed={"first.txt": "red\n", "second.txt": "blue\n"},
        expect={"combined.txt": Exact("red\nblue")},
        solution=[
            ("read_file", {"path": "first.txt"}),
            ("read_file", {"path": "second.txt"}),
            ("write_file", {"path": "combined.txt", "content": "red\nblue\n"}),
        ],
    ),
    _file_chore(
        "f11",
        "multi",
        "List the files in the docs folder and write their names, one per line, to index.txt.",
        seed={
            "docs/intro.md": "# Intro\n",
            "docs/setup.md": "# Setup\n",
            "docs/faq.md": "# FAQ\n",
        },
        expect={"index.txt": SameLines(("intro.md", "setup.md", "faq.md"))},
        solution=[
            ("list_files", {"path": "docs"}),
            ("write_file", {"path": "index.txt", "content": "faq.md\nintro.md\nsetup.md\n"}),
        ],
    ),
]


# -- extraction -------------------------------------------------------------------------

Record = dict[str, Any]
Schema = Literal["contact", "order", "meeting"]


def _norm_text(value: Any) -> str:
    return " ".join(str(value).casefold().split())


def _strip_prefix(value: str, *prefixes: str) -> str:
    for prefix in prefixes:
        if value.startswith(prefix):
            value = value[len(prefix) :]
    return value


def _norm_title(value: Any) -> str:
    text = _strip_prefix(_norm_text(value), "the ")
    return text.removesuffix(" meeting")


def _norm_room(value: Any) -> str:
    return _strip_prefix(_norm_text(value), "the ", "room ")


def _norm_product(value: Any) -> str:
    # The text names a product in the plural ("10 desk lamps") and the singular ("per
    # lamp"); either form is a faithful copy, so a plain trailing "s" is ignored.
    return _norm_text(value).removesuffix("s")


_NORMALISE: dict[str, Callable[[Any], Any]] = {
    "name": _norm_text,
    "city": _norm_text,
    "order_id": _norm_text,
    "product": _norm_product,
    "title": _norm_title,
    "date": _norm_text,
    "room": _norm_room,
}
_KEY_FIELD: dict[Schema, str] = {"contact": "name", "order": "order_id", "meeting": "title"}


def _same_record(got: Record, wanted: Record) -> bool:
    if set(got) != set(wanted):
        return False
    for name, value in wanted.items():
        if isinstance(value, float):
            if not isinstance(got[name], int | float) or abs(got[name] - value) > 0.001:
                return False
        elif name in _NORMALISE:
            if _NORMALISE[name](got[name]) != _NORMALISE[name](value):
                return False
        elif got[name] != value:
            return False
    return True


class RecordTable:
    """Saved records, keyed by the schema's first field: saving again replaces."""

    def __init__(self, schema: Schema) -> None:
        self.key = _KEY_FIELD[schema]
        self.rows: dict[str, Record] = {}

    def save(self, record: Record) -> str:
        key = _NORMALISE[self.key](record[self.key])
        replaced = key in self.rows
        self.rows[key] = record
        return f"{'replaced' if replaced else 'saved'} record {record[self.key]!r}"

    def check(self, expected: Sequence[Record]) -> Check:
        unmatched = list(self.rows.values())
        for wanted in expected:
            match = next((r for r in unmatched if _same_record(r, wanted)), None)
            if match is None:
                return Check(False, f"missing {wanted}; saved {list(self.rows.values())}")
            unmatched.remove(match)
        if unmatched:
            return Check(False, f"unexpected records {unmatched}")
        return Check(True, f"{len(expected)} record(s) as expected")


def _save_tool(schema: Schema, table: RecordTable) -> Tool:
    if schema == "contact":

        def save_contact(name: str, age: int, city: str) -> str:
            """Save one contact record.

            Args:
                name: the person's full name
                age: the person's age in years
                city: the city where the person lives now
            """
            return table.save({"name": name, "age": age, "city": city})

        return Tool(save_contact, name="save_record")
    if schema == "order":

        def save_order(order_id: str, product: str, quantity: int, unit_price: float) -> str:
            """Save one order record.

            Args:
                order_id: the order's identifier, for example "B-220"
                product: what was ordered, as named in the text
                quantity: how many units were ordered
                unit_price: the price actually charged per unit
            """
            return table.save(
                {
                    "order_id": order_id,
                    "product": product,
                    "quantity": quantity,
                    "unit_price": unit_price,
                }
            )

        return Tool(save_order, name="save_record")

    def save_meeting(title: str, date: str, room: str) -> str:
        """Save one meeting record.

        Args:
            title: the meeting's name, for example "Sales kickoff"
            date: the date written as YYYY-MM-DD
            room: the room or place where it happens
        """
        return table.save({"title": title, "date": date, "room": room})

    return Tool(save_meeting, name="save_record")


def _extraction(
    id: str, difficulty: Difficulty, schema: Schema, prompt: str, records: Sequence[Record]
) -> Task:
    expected = [dict(r) for r in records]

    def setup(root: Path) -> Env:
        table = RecordTable(schema)
        return Env([_save_tool(schema, table)], lambda answer: table.check(expected))

    solution = tuple(("save_record", dict(r)) for r in expected)
    return Task(id, "extraction", difficulty, prompt, setup, solution, "done")


EXTRACTION: list[Task] = [
    _extraction(
        "e01",
        "easy",
        "contact",
        "Save this contact: Lena Park is 34 years old and lives in Oslo.",
        [{"name": "Lena Park", "age": 34, "city": "Oslo"}],
    ),
    _extraction(
        "e02",
        "easy",
        "contact",
        "New member: Jonas Weber, 52, lives in Graz.",
        [{"name": "Jonas Weber", "age": 52, "city": "Graz"}],
    ),
    _extraction(
        "e03",
        "easy",
        "order",
        "Order A-1043: 3 units of USB cable at 4.99 each.",
        [{"order_id": "A-1043", "product": "USB cable", "quantity": 3, "unit_price": 4.99}],
    ),
    _extraction(
        "e04",
        "easy",
        "meeting",
        "Budget review on 2024-03-18 in room B12.",
        [{"title": "Budget review", "date": "2024-03-18", "room": "B12"}],
    ),
    _extraction(
        "e05",
        "multi",
        "contact",
        "Two new contacts: Omar Haddad (41) lives in Tunis, and his colleague Mei Lin, 29, "
        "is based in Taipei.",
        [
            {"name": "Omar Haddad", "age": 41, "city": "Tunis"},
            {"name": "Mei Lin", "age": 29, "city": "Taipei"},
        ],
    ),
    _extraction(
        "e06",
        "multi",
        "order",
        "Yesterday we received order Z-77 for 10 desk lamps at 23.50 per lamp, and order "
        "Z-78 for 2 office chairs at 149.00 each.",
        [
            {"order_id": "Z-77", "product": "desk lamp", "quantity": 10, "unit_price": 23.5},
            {"order_id": "Z-78", "product": "office chair", "quantity": 2, "unit_price": 149.0},
        ],
    ),
    _extraction(
        "e07",
        "multi",
        "meeting",
        "The design sync will take place on March 5, 2024 in room A3.",
        [{"title": "Design sync", "date": "2024-03-05", "room": "A3"}],
    ),
    _extraction(
        "e08",
        "multi",
        "contact",
        "Attendees: Sara Conti, 38, Milan; Piotr Nowak, 45, Gdansk; Aiko Sato, 27, Osaka.",
        [
            {"name": "Sara Conti", "age": 38, "city": "Milan"},
            {"name": "Piotr Nowak", "age": 45, "city": "Gdansk"},
            {"name": "Aiko Sato", "age": 27, "city": "Osaka"},
        ],
    ),
    _extraction(
        "e09",
        "multi",
        "contact",
        "Customer note: Ravi Kumar, who is 63, moved from Delhi to Pune last year.",
        [{"name": "Ravi Kumar", "age": 63, "city": "Pune"}],
    ),
    _extraction(
        "e10",
        "multi",
        "order",
        "Invoice for order Q-5120: 6 packs of printer paper. The list price is 7.25 per "
        "pack, but the customer paid 6.50 per pack after a discount.",
        [{"order_id": "Q-5120", "product": "printer paper", "quantity": 6, "unit_price": 6.5}],
    ),
    _extraction(
        "e11",
        "multi",
        "meeting",
        "Next week the hiring panel meets on 2024-06-11 in room C4, and the quarterly "
        "all-hands is on 2024-06-14 in the Atrium.",
        [
            {"title": "Hiring panel", "date": "2024-06-11", "room": "C4"},
            {"title": "Quarterly all-hands", "date": "2024-06-14", "room": "Atrium"},
        ],
    ),
]


# -- lookup -----------------------------------------------------------------------------

KNOWLEDGE: dict[str, str] = {
    "The Silent Harbor": "The Silent Harbor is a novel written by Mira Castell, published in 1998.",
    "Mira Castell": "Mira Castell is a novelist. She was born in the city of Tavrin.",
    "Tavrin": "Tavrin is a port city in the country of Calverra.",
    "Calverra": "Calverra is a country. Its capital is Selmouth.",
    "Selmouth": "Selmouth is the capital city of Calverra.",
    "Orrin Vale": "Orrin Vale is an engineer. He works for the company Lumacore.",
    "Lumacore": "Lumacore is a battery maker headquartered in the city of Teskar.",
    "Teskar": "Teskar is a city in the country of Norvania.",
    "Norvania": "Norvania is a country. Its capital is Brask and its currency is the drem.",
    "Brask": "Brask is the capital city of Norvania.",
    "Project Halcyon": "Project Halcyon is a research project led by Orrin Vale.",
    "Ilse Maren": "Ilse Maren is a composer. Her best-known work is the opera Glass Winter.",
    "Glass Winter": "Glass Winter is an opera by Ilse Maren, first performed at the "
    "Kestrel Theatre.",
    "Kestrel Theatre": "The Kestrel Theatre is a theatre in the city of Tavrin.",
    "Tomas Ryle": "Tomas Ryle is a chef who runs the restaurant Saltgrass.",
    "Saltgrass": "Saltgrass is a restaurant in Teskar. Its signature dish is nettle dumplings.",
}


def _entity_key(name: str) -> str:
    text = _norm_text(name).strip(" .,;:!?'\"")
    return _strip_prefix(text, "the ")


_INDEX = {_entity_key(k): v for k, v in KNOWLEDGE.items()}


def _lookup_tool() -> Tool:
    def lookup(name: str) -> str:
        """Look up what the knowledge base knows about one name.

        Args:
            name: one name, exactly as written in the question or in an earlier result
        """
        found = _INDEX.get(_entity_key(name))
        if found is None:
            raise ToolError(
                f"no entry for {name!r}; look up a single name (a person, place, work or "
                "organisation) exactly as written in the question or in an earlier result"
            )
        return found

    return Tool(lookup, idempotent=True)


def _lookup(
    id: str, difficulty: Difficulty, question: str, names: Sequence[str], expected: str
) -> Task:
    def setup(root: Path) -> Env:
        return Env([_lookup_tool()], lambda answer: answer_has_text(answer, expected))

    solution = tuple(("lookup", {"name": n}) for n in names)
    return Task(id, "lookup", difficulty, question, setup, solution, f"It is {expected}.")


LOOKUP: list[Task] = [
    _lookup("l01", "easy", "Who wrote The Silent Harbor?", ["The Silent Harbor"], "Mira Castell"),
    _lookup("l02", "easy", "Which company does Orrin Vale work for?", ["Orrin Vale"], "Lumacore"),
    _lookup("l03", "easy", "What is the capital of Calverra?", ["Calverra"], "Selmouth"),
    _lookup(
        "l04", "easy", "What is the signature dish of Saltgrass?", ["Saltgrass"], "nettle dumplings"
    ),
    _lookup(
        "l05",
        "multi",
        "In which city was the author of The Silent Harbor born?",
        ["The Silent Harbor", "Mira Castell"],
        "Tavrin",
    ),
    _lookup(
        "l06",
        "multi",
        "In which city is the company that Orrin Vale works for headquartered?",
        ["Orrin Vale", "Lumacore"],
        "Teskar",
    ),
    _lookup(
        "l07",
        "multi",
        "Which company does the leader of Project Halcyon work for?",
        ["Project Halcyon", "Orrin Vale"],
        "Lumacore",
    ),
    _lookup(
        "l08",
        "multi",
        "In which city was the opera Glass Winter first performed?",
        ["Glass Winter", "Kestrel Theatre"],
        "Tavrin",
    ),
    _lookup(
        "l09",
        "multi",
        "What is the currency of the country that Teskar is in?",
        ["Teskar", "Norvania"],
        "drem",
    ),
    _lookup(
        "l10",
        "multi",
        "What is the signature dish of the restaurant that Tomas Ryle runs?",
        ["Tomas Ryle", "Saltgrass"],
        "nettle dumplings",
    ),
    _lookup(
        "l11",
        "multi",
        "What is the capital of the country where Mira Castell was born?",
        ["Mira Castell", "Tavrin", "Calverra"],
        "Selmouth",
    ),
]

TASKS: tuple[Task, ...] = (*ARITHMETIC, *FILES, *EXTRACTION, *LOOKUP)


def tasks(
    kinds: Sequence[str] | None = None,
    *,
    limit: int | None = None,
    ids: Sequence[str] | None = None,
) -> list[Task]:
    """The suite in order, filtered by kind and id; ``limit`` keeps the first N per kind."""
    chosen: list[Task] = []
    per_kind: dict[str, int] = {}
    for task in TASKS:
        if kinds and task.kind not in kinds:
            continue
        if ids and task.id not in ids:
            continue
        if limit is not None and per_kind.get(task.kind, 0) >= limit:
            continue
        per_kind[task.kind] = per_kind.get(task.kind, 0) + 1
        chosen.append(task)
    return chosen


TRAIN_PER_KIND = 4
"""Chores of each kind in the training split; the rest are held out."""


TRAIN_IDS = frozenset(
    i
    for kind in KINDS
    for i in sorted(
        (t.id for t in TASKS if t.kind == kind),
        key=lambda i: hashlib.sha256(i.encode()).hexdigest(),
    )[:TRAIN_PER_KIND]
)
"""Per kind, the ``TRAIN_PER_KIND`` ids first in hash order: the hash fixes the split
before any run, so it cannot follow the results."""


def split_of(task_id: str) -> str:
    """``train`` or ``test``."""
    return "train" if task_id in TRAIN_IDS else "test"


def as_cases(split: str = "test", limit: int | None = None) -> list[harness.Case]:
    """The split's chores as harness cases; ``limit`` keeps the first N per kind."""
    out = []
    for task in tasks(limit=limit, ids=[t.id for t in TASKS if split_of(t.id) == split]):

        def setup(
            root: Path, task: Task = task
        ) -> tuple[list[Tool], Callable[[str | None], harness.Check]]:
            env = task.setup(root)

            def check(answer: str | None) -> harness.Check:
                verdict = env.check(answer)
                return harness.Check(verdict.ok, verdict.detail)

            return env.tools, check

        out.append(
            harness.Case(
                id=task.id,
                suite="tasks",
                split=split,
                kind=task.kind,
                prompt=task.prompt,
                system_prompt=SYSTEM_PROMPTS[task.kind],
                setup=setup,
                max_steps=8,
                max_tokens=192,
            )
        )
    return out
