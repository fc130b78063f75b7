"""StreamDetector: degenerate generations trip early, legitimate repetitive text never does.

Each scenario is a whole generation fed in small pieces, as a model streams it. A flagged
scenario names the check that must trip ("period", "line" or "ngram") and the range of
characters seen by the time it trips; an unflagged one must never trip.
"""

from __future__ import annotations

import random
import string
import time
from dataclasses import dataclass

import pytest

from agentkit.detection import DetectorConfig, StreamDetector


@dataclass(frozen=True)
class Scenario:
    name: str
    text: str
    kind: str | None = None
    """The check that must trip; None: the text must never trip."""
    chars: tuple[int, int] = (0, 0)
    """Trip once at least ``chars[0]`` and at most ``chars[1]`` characters were seen."""
    piece: int = 4
    """Characters per streamed piece (about one token)."""
    window: str | None = None
    """What the strike must show as the repeating text, where the scenario says."""

    def __str__(self) -> str:
        return self.name


def pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


# --- legitimate text -------------------------------------------------------------------

PARAGRAPH = (
    "Small language models are surprisingly capable when the task is narrow and the "
    "instructions are precise. A model with half a billion parameters can pick the right "
    "tool for a simple request, fill in its arguments from the conversation, and summarise "
    "the result in a sentence or two. Where such models struggle is with long horizons: "
    "after a dozen steps they lose track of what they have already tried, they repeat a "
    "call that failed a moment ago, or they drift into restating the question instead of "
    "answering it. The runtime around the model matters as much as the model itself. It "
    "decides what the model sees at each step, how mistakes are reported back, and when a "
    "step deserves a larger model. A good runtime keeps the prompt prefix stable so that "
    "the key-value cache can be reused, trims long tool outputs to what is useful, and "
    "notices early when the model has stopped making progress. None of this requires a "
    "bigger model; it requires paying attention to the failure modes that small models "
    "actually show, measuring them on real tasks, and treating every recovered failure as "
    "compute that did not have to be spent. In practice the savings add up quickly, "
    "because most steps of an ordinary agent are easy, and only a few of them need help."
)

NAMES = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
    "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
    "sierra", "tango",
]  # fmt: skip

PYTHON_BLOCK = (
    "Here is a script that loads every region and keeps the valid rows:\n\n```python\n"
    "import pandas as pd\n\n"
    + "".join(f'df_{n} = pd.read_csv("data/{n}.csv", sep=",", encoding="utf-8")\n' for n in NAMES)
    + "\nframes = [\n"
    + "".join(f"    df_{n}[df_{n}.valid],\n" for n in NAMES)
    + "]\nresult = pd.concat(frames)\nprint(result.describe())\n```\n\n"
    "Run it from the project root so the relative paths resolve."
)

TABLE = (
    "| # | Name | City | Score |\n|---|------|------|-------|\n"
    + "".join(
        f"| {i} | {n.title()} | {c} | {50 + 7 * i % 43} |\n"
        for i, (n, c) in enumerate(
            zip(NAMES, ["Berlin", "Lisbon", "Oslo", "Lyon", "Porto"] * 4, strict=True), 1
        )
    )
    + "\nScores are out of 100."
)

NUMBERED = "To set up the project:\n\n" + "".join(
    f"{i}. {step}\n"
    for i, step in enumerate(
        [
            "Install Python 3.11 from the official installer.",
            "Clone the repository into a folder of your choice.",
            "Create a virtual environment with python -m venv .venv.",
            "Activate it (source .venv/bin/activate).",
            "Upgrade pip to the latest release.",
            "Install the package in editable mode with its dev extras.",
            "Download the small models with make models.",
            "Check that llama.cpp found your GPU, if you have one.",
            "Run the unit tests once to warm the caches.",
            "Open the monitor in a second terminal.",
            "Start the demo agent on the sample task.",
            "Watch the tier column change when a step escalates.",
            "Read the diagnosis when a run is stopped.",
            "Adjust the detector thresholds if they are too strict.",
            "Commit your settings file next to your agent.",
        ],
        1,
    )
)

FILE_BULLETS = "I will go through the package file by file:\n" + "".join(
    f"- Read `src/pkg/module_{i}.py` and check its imports\n" for i in range(1, 16)
)

HEADINGS = "# Migration plan\n\n" + "".join(
    f"## Step {i}: {title}\n\n{body}\n\n"
    for i, (title, body) in enumerate(
        [
            ("Freeze writes", "Put the service in read-only mode and announce the window."),
            ("Snapshot", "Take a consistent snapshot of the primary and verify its checksum."),
            ("Copy", "Restore the snapshot on the new cluster and replay the write-ahead log."),
            ("Verify", "Compare row counts per table and sample a thousand random rows."),
            ("Switch", "Point the connection string at the new cluster and lift the freeze."),
            ("Watch", "Keep the old primary for a week in case anything needs a rollback."),
        ],
        1,
    )
)

FRUITS = [
    "apple", "banana", "cherry", "date", "elderberry", "fig", "grape", "honeydew", "kiwi",
    "lemon", "mango", "nectarine", "orange", "papaya", "quince", "raspberry", "strawberry",
    "tangerine", "ugli", "vanilla", "watermelon", "yam", "zucchini", "apricot", "blueberry",
    "cantaloupe", "damson", "feijoa", "guava", "jackfruit", "kumquat", "lime", "lychee",
    "mulberry", "olive", "peach", "pear", "plum", "pomelo", "rhubarb",
]  # fmt: skip

JSON_ARRAY = (
    '{"name": "tag_items", "arguments": {"items": ['
    + ", ".join(f'{{"id": {i}, "name": "{f}", "tags": ["fruit"]}}' for i, f in enumerate(FRUITS))
    + "]}}"
)

JSON_SCHEMA = (
    '{\n  "type": "object",\n  "properties": {\n'
    + ",\n".join(
        f'    "{field}": {{\n      "type": "string",\n      "description": "{desc}"\n    }}'
        for field, desc in [
            ("name", "Full name of the customer"),
            ("email", "Contact address"),
            ("phone", "Phone number with country code"),
            ("street", "Street and house number"),
            ("city", "City or town"),
            ("postcode", "Postal code"),
            ("country", "ISO 3166 country code"),
            ("company", "Employer, if any"),
            ("notes", "Free-form remarks"),
            ("source", "Where the lead came from"),
        ]
    )
    + '\n  },\n  "required": ["name", "email"]\n}'
)

CODE_WITH_RULES = (
    "```python\nimport numpy as np\n\n"
    "# ----------------------------------------------------------------------------\n"
    "# Identity-like test matrix\n"
    "# ----------------------------------------------------------------------------\n"
    "MATRIX = np.array([\n" + "    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],\n" * 12 + "])\n\n"
    'print("=" * 60)\nprint(MATRIX.sum())\nprint("=" * 60)\n```\n\n---\n\nAll zeros, as expected.'
)

NUMBERS = "The first squares are " + ", ".join(str(i * i) for i in range(1, 121)) + "."

EXAMPLES = "".join(
    f"Example {i}:\n```python\nprint(square({i}))\n```\nOutput:\n```\n{i * i}\n```\n\n"
    for i in range(1, 11)
)

DATA_ROWS = "Here are the readings:\n" + "".join(
    f'{{"t": {i}, "sensor": "probe", "value": {0.5 + i / 100:.2f}}},\n' for i in range(1, 25)
)

PYTHON_VERSIONS = "Supported versions:\n" + "".join(
    f"- Programming Language :: Python :: 3.{minor}\n" for minor in range(4, 16)
)

# --- degenerate text -------------------------------------------------------------------

VARIANTS = [
    "I will call the tool.",
    "I will call the tool now.",
    "Now I will call the tool.",
]
# An irregular order, so no exact period exists and only the n-gram check can see it.
VARIED_ORDER = [0, 1, 0, 2, 2, 1, 0, 1, 2, 0, 0, 1, 2, 1, 1, 0, 2, 0, 1, 2, 2, 0, 1, 0, 2, 1]
VARIED_LOOP = "Let me think. " + " ".join(VARIANTS[i] for i in VARIED_ORDER * 2)

LOOPED_ROW = "| 1 | Alice | 30 | Berlin |\n"
LOOPED_LINE = "    print('processing item')\n"
PARA_UNIT = (
    "The file could not be read because the path does not exist, so I will try reading "
    "the same file again with the same path. "
)

NUMBERED_LOOP = "Plan:\n" + "".join(
    f"{i}. I will now read the file config.yaml.\n" for i in range(1, 41)
)
COUNTER_LOOP = "".join(f"Step {i}: read the file.\nResult: file not found.\n" for i in range(1, 30))
JSON_LOOP = '{"name": "write_files", "arguments": {"paths": [' + '"notes.txt", ' * 100
FENCE_OPENING = "```python\nimport os\n\ndef main():\n"
TABLE_HEADER = "| # | Name | Age | City |\n|---|---|---|---|\n"
INTRO = "Let me check the weather for you. "


# From gemini-cli's loop-detection tests (the loops its users reported, and its filler).
GEMINI_LOOP = (
    "I will not output any text.\n  I will just end the turn.\n  I am done.\n"
    "  I will not do anything else.\n  I will wait for the user's next command.\n"
)
GEMINI_DONE = (
    "I have added all the requested logs and verified the test file. "
    "I will now mark the task as complete.\n  "
)
GEMINI_THOUGHT = "I need to check the file. The file does not exist. I will create the file. "
SENTENCE = "This is a unique sentence, id=1. "
CHUNK = (SENTENCE * 2)[:50]
_rng = random.Random(13)
_ALNUM = string.ascii_letters + string.digits


def random_text(n: int) -> str:
    return "".join(_rng.choice(_ALNUM) for _ in range(n))


RANDOM_PIECES = "".join(random_text(10) for _ in range(1000))
FAR_APART = "".join(CHUNK + random_text(2000) for _ in range(10))
SHARED_PREFIX = "".join(
    f"- projects/my-google-cloud-project-12345/locations/us-central1/services/{i}\n"
    for i in range(15)
)

# Separators (issue 13: rows of dashes tripped the detector).
RULED_REPORT = "".join(
    f"{'=' * 80}\nSection {n}: {title}\n{'=' * 80}\n{title} is done and checked.\n\n"
    for n, title in enumerate(["Build", "Tests", "Lint", "Docs", "Release", "Deploy", "Audit"], 1)
)
DASH_ROWS = "Summary\n" + ("-" * 40 + "\n") * 12 + "End of summary."
ASCII_TABLE = "+--------+-------+\n| name   | score |\n+--------+-------+\n" + "".join(
    f"| {n:<6} | {len(n) * 7:>5} |\n+--------+-------+\n" for n in NAMES
)
THEMATIC_BREAKS = "".join(
    f"{n.title()} finished its part of the work.\n\n{'---' if i % 2 else '***'}\n\n"
    for i, n in enumerate(NAMES[:10])
)
BOX_RULES = "".join(f"{'─' * 60}\n {n}\n" for n in NAMES[:12]) + "─" * 60
CSV_ROWS = "date,open,close\n" + "".join(
    f"2026-01-{d:02d},{100 + d * 1.5:.2f},{101 + d * 1.25:.2f}\n" for d in range(1, 31)
)


def end_of_line(text: str, n: int) -> int:
    """Characters up to and including the n-th newline of ``text``."""
    at = -1
    for _ in range(n):
        at = text.index("\n", at + 1)
    return at + 1


# Exact repetition trips once it covers stream_min_span (160) characters and a check runs
# (every 16 characters, rounded up to a whole piece): hence buckets of +160 to +200.
SCENARIOS = [
    # -- flagged --
    Scenario(
        "token loop 'the the the'",
        "The answer is the " + "the " * 200,
        "period",
        (160, 200),
        window="the ",
    ),
    Scenario(
        "sentence loop",
        INTRO + "I will call the tool. " * 40,
        "period",
        # The intro ends in ". " like the unit, so the repetition reaches 2 characters back.
        (len(INTRO) + 158, len(INTRO) + 200),
        window="I will call the tool. ",
    ),
    # "Plan:" and 9 repeats fill the 10-line window with 2 distinct lines: trips at line 10.
    Scenario(
        "numbered line loop",
        NUMBERED_LOOP,
        "line",
        (end_of_line(NUMBERED_LOOP, 10), end_of_line(NUMBERED_LOOP, 10) + 3),
        window="9. I will now read the file config.yaml.",
    ),
    # Lines that differ only by their counter: the 20-line numbered window, 10 turns.
    Scenario(
        "step counter loop over two lines",
        COUNTER_LOOP,
        "line",
        (end_of_line(COUNTER_LOOP, 20), end_of_line(COUNTER_LOOP, 20) + 3),
    ),
    Scenario(
        "JSON array item repeated",
        JSON_LOOP,
        "period",
        (48 + 160, 48 + 200),
        window='"notes.txt", ',
    ),
    Scenario(
        "newline flood",
        "The result is:" + "\n" * 400,
        "period",
        (14 + 160, 14 + 200),
        window="\\n",
    ),
    Scenario("dot flood", "Thinking" + "." * 500, "period", (8 + 160, 8 + 200), piece=1),
    # Three phrasings in an irregular order: the 60-word n-gram window, about 245 characters.
    Scenario("varied phrase loop", VARIED_LOOP, "ngram", (240, 280)),
    # A 122-character unit must repeat stream_min_repeats (4) times.
    Scenario(
        "paragraph repeated",
        "Okay. " + PARA_UNIT * 8,
        "period",
        (6 + 4 * len(PARA_UNIT), 6 + 4 * len(PARA_UNIT) + 40),
        piece=7,
    ),
    Scenario(
        "loop after a long legitimate paragraph",
        PARAGRAPH + " " + "Sorry, I cannot help with that. " * 30,
        "period",
        (len(PARAGRAPH) + 1 + 160, len(PARAGRAPH) + 1 + 200),
    ),
    # Inside a fence only the 30-line window trips: "def main():" and 29 repeats.
    Scenario(
        "same line 30 times inside a code fence",
        FENCE_OPENING + LOOPED_LINE * 60 + "```\n",
        "line",
        (
            len(FENCE_OPENING) + 29 * len(LOOPED_LINE),
            len(FENCE_OPENING) + 29 * len(LOOPED_LINE) + 3,
        ),
    ),
    # Table rows the same: the header and 29 repeats fill the 30-line window (the rule
    # row has no letters or digits and is not counted).
    Scenario(
        "markdown table row repeated",
        TABLE_HEADER + LOOPED_ROW * 60,
        "line",
        (len(TABLE_HEADER) + 29 * len(LOOPED_ROW), len(TABLE_HEADER) + 29 * len(LOOPED_ROW) + 3),
        window=LOOPED_ROW.strip(),
    ),
    # gemini-cli's reported loops: five lines, a long sentence, a short phrase, a thought.
    Scenario(
        "gemini: five-line loop",
        GEMINI_LOOP * 30,
        "period",
        (4 * len(GEMINI_LOOP), 4 * len(GEMINI_LOOP) + 40),
    ),
    Scenario(
        "gemini: task-complete loop",
        GEMINI_DONE * 30,
        "period",
        (4 * len(GEMINI_DONE), 4 * len(GEMINI_DONE) + 40),
    ),
    Scenario("gemini: alternating short phrases", "Thinking... Done. " * 100, "period", (160, 200)),
    Scenario(
        "gemini: repeated thought process",
        GEMINI_THOUGHT * 30,
        "period",
        (4 * len(GEMINI_THOUGHT), 4 * len(GEMINI_THOUGHT) + 40),
    ),
    Scenario(
        "gemini: loop after a closed code block",
        "```\nsome code\n```\n" + SENTENCE * 30,
        "period",
        (18 + 160, 18 + 200),
        window=SENTENCE,
    ),
    # A separator that never ends is still a loop, only judged with a longer span.
    Scenario("a flood of dashes", "-" * 5000, "period", (2000, 2040), window="-"),
    Scenario("a flood of box-drawing rules", "═" * 3000, "period", (2000, 2040)),
    # -- not flagged --
    Scenario("long normal paragraph", PARAGRAPH),
    Scenario("python block with similar lines", PYTHON_BLOCK),
    Scenario("markdown table of 20 rows", TABLE),
    Scenario("numbered list of 15 items", NUMBERED),
    Scenario("bullet list over 15 files", FILE_BULLETS),
    Scenario("document with repeated headings", HEADINGS),
    Scenario("JSON array of 40 distinct items", JSON_ARRAY),
    Scenario("pretty JSON schema with repeated lines", JSON_SCHEMA),
    Scenario("code with rules and a block of zero rows", CODE_WITH_RULES),
    Scenario("comma-separated numbers", NUMBERS),
    Scenario("examples with repeated 'Output:' lines", EXAMPLES),
    Scenario("JSON data rows differing by numbers", DATA_ROWS),
    Scenario("python versions differing by numbers", PYTHON_VERSIONS),
    Scenario("paragraph fed in one-character pieces", PARAGRAPH, piece=1),
    # gemini-cli's must-not-flag cases.
    Scenario("gemini: a divider of 750 dashes", "-" * 50 * 15, piece=50),
    Scenario("gemini: random content", RANDOM_PIECES, piece=10),
    Scenario("gemini: repetitions far apart", FAR_APART, piece=50),
    Scenario("gemini: repetition inside a code block", "```\n" + CHUNK * 10 + "\n```", piece=50),
    Scenario(
        "gemini: long code block with repeating tokens",
        "```\n" + "for (let i = 0; i < 10; i++) { console.log(i); }" * 20 + "\n```",
        piece=49,
    ),
    Scenario("gemini: list with a long shared prefix", SHARED_PREFIX),
    # Separators, tables and data (issue 13 and our own).
    Scenario("report with rules around each section", RULED_REPORT),
    Scenario("a row of dashes repeated twelve times", DASH_ROWS),
    Scenario("ASCII table with a border after every row", ASCII_TABLE),
    Scenario("paragraphs between thematic breaks", THEMATIC_BREAKS),
    Scenario("box-drawing rules between names", BOX_RULES),
    Scenario("CSV rows of numbers", CSV_ROWS),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_scenario(scenario: Scenario) -> None:
    detector = StreamDetector(DetectorConfig())
    strikes = []
    for index, piece in enumerate(pieces(scenario.text, scenario.piece), 1):
        strike = detector.feed(piece)
        if strike is not None:
            strikes.append((index, strike))
    if scenario.kind is None:
        assert strikes == [], f"tripped on legitimate text: {strikes[0][1].detail}"
        assert detector.strike is None
        return
    assert len(strikes) == 1, "a detector trips once per generation"
    index, strike = strikes[0]
    assert strike.detector == "stream_loop"
    assert strike.detail["kind"] == scenario.kind
    low, high = scenario.chars
    assert low <= strike.detail["chars"] <= high, strike.detail
    assert strike.detail["pieces"] == index
    assert detector.strike is strike and detector.tripped
    assert strike.window and len(strike.window) <= 120
    if scenario.window is not None:
        assert strike.window == scenario.window
    assert "repeating" in strike.message


def test_scenario_balance() -> None:
    flagged = sum(1 for s in SCENARIOS if s.kind is not None)
    assert flagged >= 10 and len(SCENARIOS) - flagged >= 10
    # As many texts that must stream through as texts that must be stopped.
    assert len(SCENARIOS) - flagged >= flagged and len(SCENARIOS) >= 40


def test_strike_records_where_it_tripped() -> None:
    detector = StreamDetector()
    text = "Sure. " + "go " * 200
    for piece in pieces(text, 3):
        if detector.feed(piece):
            break
    strike = detector.strike
    assert strike is not None
    assert strike.detail["chars"] == detector.chars_seen
    assert strike.detail["pieces"] == detector.pieces_seen
    assert strike.detail["period"] == 3
    assert strike.window == "go "
    assert str(detector.chars_seen) in strike.summary


def test_after_tripping_feed_returns_none() -> None:
    detector = StreamDetector()
    tripped = [detector.feed(p) for p in pieces("a" * 400, 4)]
    assert sum(1 for s in tripped if s is not None) == 1
    assert detector.feed("aaaa") is None


def test_reset_starts_a_new_generation() -> None:
    detector = StreamDetector()
    for piece in pieces("the " * 100, 4):
        detector.feed(piece)
    assert detector.tripped
    detector.reset()
    assert not detector.tripped and detector.chars_seen == 0 and detector.pieces_seen == 0
    for piece in pieces(PARAGRAPH, 4):
        assert detector.feed(piece) is None


def test_fence_state_resets() -> None:
    # A fence left open by the previous generation must not relax the next one's checks.
    detector = StreamDetector()
    detector.feed("```python\nx = 1\n")
    detector.reset()
    strike = None
    for piece in pieces("the " * 60, 4):
        strike = strike or detector.feed(piece)
    assert strike is not None and not strike.detail["structured"]


def test_loop_inside_fence_reports_code() -> None:
    detector = StreamDetector()
    strike = None
    for piece in pieces("```\n" + LOOPED_LINE * 40, 5):
        strike = strike or detector.feed(piece)
    assert strike is not None and strike.detail["structured"]
    assert "inside code" in strike.summary


def test_disabled_stream_detector_never_trips() -> None:
    detector = StreamDetector(DetectorConfig(disabled=frozenset({"stream_loop"})))
    assert all(detector.feed(p) is None for p in pieces("the " * 300, 4))


def test_thresholds_are_configurable() -> None:
    strict = StreamDetector(DetectorConfig(stream_min_span=40, stream_check_every=4))
    strike = None
    for piece in pieces("ok " + "no " * 30, 3):
        strike = strike or strict.feed(piece)
    assert strike is not None and strike.detail["chars"] <= 50


def test_long_generation_stays_cheap() -> None:
    # Not a benchmark: a generous bound that an O(n) per piece implementation would miss.
    detector = StreamDetector()
    text = (PARAGRAPH + "\n" + PYTHON_BLOCK + "\n" + TABLE + "\n") * 40
    chunks = pieces(text, 4)
    started = time.perf_counter()
    for piece in chunks:
        assert detector.feed(piece) is None
    per_char = (time.perf_counter() - started) / len(text)
    assert per_char < 20e-6, f"{per_char * 1e6:.1f} µs per character"
