"""LoopDetector, canonical arguments, the response plan and the diagnosis.

Each scenario is a run written as a list of steps. A flagged scenario names the detector
whose strike must come first and the step at which it must come, with no strike before;
an unflagged one must never strike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import ValidationError

from agentkit.detection import (
    DetectorConfig,
    LoopDetector,
    ResampleSettings,
    ResponsePlan,
    StepObservation,
    Strike,
    ToolDetectorOverride,
    canonical_arguments,
    diagnosis,
    normalise_error,
)
from agentkit.detection._canonical import normalise_result, normalise_same_call_error
from agentkit.models._messages import ToolCall

# --- a small language for runs ---------------------------------------------------------


@dataclass(frozen=True)
class C:
    """One tool call and what it returned (None: it produced no result)."""

    tool: str
    args: dict[str, Any] = field(default_factory=dict)
    result: str | None = "ok"
    error: bool = False


EMPTY = "<empty>"
Step = C | tuple[C, ...] | str | StepObservation
"""A call, several calls in one step, a text-only reply, EMPTY, or a whole observation."""


def observations(steps: tuple[Step, ...]) -> list[StepObservation]:
    out = []
    for index, step in enumerate(steps, 1):
        if isinstance(step, StepObservation):
            out.append(step)
        elif step == EMPTY:
            out.append(StepObservation(index=index, is_empty=True))
        elif isinstance(step, str):
            out.append(StepObservation(index=index, content=step))
        else:
            calls = step if isinstance(step, tuple) else (step,)
            out.append(
                StepObservation(
                    index=index,
                    tool_calls=tuple((c.tool, c.args) for c in calls),
                    results=tuple((c.result, c.error) for c in calls if c.result is not None),
                )
            )
    return out


def run(steps: tuple[Step, ...], config: DetectorConfig | None = None) -> list[list[Strike]]:
    detector = LoopDetector(config or DetectorConfig())
    return [detector.observe(obs) for obs in observations(steps)]


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: tuple[Step, ...]
    detector: str | None = None
    """The detector of the first strike; None: no strike at all."""
    at: int = 0
    """The step (1-based) at which the first strike comes."""
    config: DetectorConfig = field(default_factory=DetectorConfig)

    def __str__(self) -> str:
        return self.name


def read(path: str, result: str) -> C:
    return C("read_file", {"path": path}, result)


def write(path: str, content: str) -> C:
    return C("write_file", {"path": path, "content": content}, f"wrote {len(content)} bytes")


LONG_REPLY = (
    "To answer this I first need the current exchange rate, then I will multiply the "
    "amount by it and round the result to two decimals before replying to you."
)

# From OpenHands' stuck-detector tests: a cell that fails with a syntax error.
SNIPPET = "edit_file_by_replace('book_store.py', to_replace=\"def total(basket):\")"
SYNTAX_ERROR = (
    '  Cell In[1], line {line}\n    to_replace="def largest(min_factor):\n            ^\n'
    "SyntaxError: invalid syntax. Perhaps you forgot a comma?"
)
MONOLOGUE = "I'm doing well, thanks for asking. How can I help you today?"
STATUS_LINE = "Loaded the next part of the data; continuing with the import now."

# --- scenarios -------------------------------------------------------------------------

FLAGGED = [
    Scenario("same read three times", (read("a.txt", "hello"),) * 3, "same_result", 3),
    Scenario(
        "same call with cosmetic argument differences",
        (
            C("read_file", {"path": "a.txt", "thought": "first look"}, "hello"),
            C("read_file", {"thought": "look again", "path": "  a.txt "}, "hello"),
            C("read_file", {"note": "once more", "path": "a.txt"}, "hello"),
        ),
        "same_result",
        3,
    ),
    Scenario(
        "number formats agree",
        (
            C("add", {"a": 1, "b": 2.0}, "3"),
            C("add", {"b": "2", "a": 1.0}, "3"),
            C("add", {"a": "1", "b": 2}, "3"),
        ),
        "same_result",
        3,
    ),
    Scenario(
        "same call without results",
        (C("start_job", {"id": 4}, None),) * 4,
        "same_call",
        4,
    ),
    Scenario(
        "same call whose results partly repeat",
        tuple(C("search", {"q": "llama grammar"}, r) for r in ("a", "b", "a", "c")),
        "same_call",
        4,
    ),
    Scenario(
        "two-step cycle",
        (read("a.txt", "v1"), write("a.txt", "v1")) * 2 + (read("a.txt", "v1"),),
        "cycle",
        5,
    ),
    Scenario(
        "three-step cycle",
        (
            C("list_dir", {"path": "."}, "a.py b.py"),
            read("a.py", "import b"),
            C("run_tests", {}, "1 failed"),
        )
        * 2
        + (C("list_dir", {"path": "."}, "a.py b.py"),),
        "cycle",
        7,
    ),
    Scenario(
        "same error with changing addresses and pids",
        tuple(
            C("run_tests", {}, f"Error: segfault at 0x7f3a{n}c00 (pid 48{n}11)", error=True)
            for n in (12, 57, 93)
        ),
        "same_error",
        3,
    ),
    Scenario(
        "same validation error with different arguments",
        tuple(
            C("add", {"a": n}, "Error: invalid arguments: b: Field required", error=True)
            for n in (1, 2, 3)
        ),
        "same_error",
        3,
    ),
    Scenario(
        "identical replies",
        ("I need to use the calculator tool to compute this.",) * 3,
        "near_duplicate_message",
        3,
    ),
    Scenario(
        "near-identical replies",
        (
            LONG_REPLY,
            LONG_REPLY.replace("then I will", "then I'll"),
            LONG_REPLY.replace("replying to you.", "replying to you!"),
        ),
        "near_duplicate_message",
        3,
    ),
    Scenario(
        "empty replies",
        (read("a.txt", "hello"), EMPTY, EMPTY),
        "empty_response",
        3,
    ),
    Scenario(
        "no progress over five stale steps",
        tuple(read(p, p.upper()) for p in "abcde") + tuple(read(p, p.upper()) for p in "caebd"),
        "no_progress",
        10,
    ),
    Scenario(
        "per-tool threshold lowered",
        (C("deploy", {"env": "prod"}, "deployed"),) * 2,
        "same_result",
        2,
        DetectorConfig(tool_overrides={"deploy": ToolDetectorOverride(repeat_threshold=2)}),
    ),
    Scenario(
        "identical calls in one turn",
        ((read("a.txt", "hello"),) * 3,),
        "same_result",
        1,
    ),
    Scenario(
        "polling with an unchanged status",
        (C("check_job", {"id": 7}, "running"),) * 3,
        "same_result",
        3,
    ),
    Scenario(
        "per-tool volatile field",
        tuple(C("log", {"level": "info", "ts": t}, "logged") for t in (1, 2, 3)),
        "same_result",
        3,
        DetectorConfig(
            tool_overrides={"log": ToolDetectorOverride(volatile_fields=frozenset({"ts"}))}
        ),
    ),
    Scenario(
        "same call with new chatter in between",
        (
            read("a.txt", "x"),
            "Let me look at the file again.",
            read("a.txt", "x"),
            "Hmm, I should check it once more to be sure.",
            read("a.txt", "x"),
        ),
        "same_result",
        5,
    ),
    # -- from public stuck-detector suites and issue 13 (the source is named in each) --
    Scenario(
        # OpenHands, repeating action-error: one command, errors not all the same text.
        "same command failing with varying errors",
        tuple(
            C("run", {"cmd": "invalid_command"}, e, error=True)
            for e in (
                "Command not found",
                "Command still not found or another error",
                "Different error",
                "Command not found",
            )
        ),
        "same_call",
        4,
    ),
    Scenario(
        # OpenHands, a syntax error at the same line of the same cell each time.
        "same code, same syntax error at the same line",
        tuple(
            C("run_python", {"code": SNIPPET}, SYNTAX_ERROR.format(line=42), error=True)
            for _ in range(4)
        ),
        "same_error",
        3,
    ),
    Scenario(
        # Issue 13: the same call whose error carries a retry counter.
        "same call, error with an attempt counter",
        tuple(
            C(
                "fetch",
                {"url": "https://api.example/x"},
                f"Error: rate limited (attempt {n} of 9)",
                error=True,
            )
            for n in (1, 2, 3)
        ),
        "same_error",
        3,
    ),
    Scenario(
        # Issue 13: the same call whose error carries a timestamp.
        "same call, error with a timestamp",
        tuple(
            C(
                "connect",
                {"host": "db"},
                f"[2026-05-01 12:00:{s:02d}] ERROR connection refused",
                error=True,
            )
            for s in (3, 9, 17)
        ),
        "same_error",
        3,
    ),
    Scenario(
        # Issue 13: a countdown in the error of one repeated call.
        "same call, error with a retry-after countdown",
        tuple(
            C(
                "deploy",
                {"env": "prod"},
                f"Error: 503 Service Unavailable; retry after {n} s",
                error=True,
            )
            for n in (30, 29, 28)
        ),
        "same_error",
        3,
    ),
    Scenario(
        # Issue 13: results that differ only by the clock, for 62 calls; flagged at once.
        "same call, results differ only in the current time",
        tuple(
            C("get_status", {"service": "api"}, f"degraded as of 2026-05-01T12:{m:02d}:07Z")
            for m in range(62)
        ),
        "same_result",
        3,
    ),
    Scenario(
        # Issue 13: results that differ only by a request uuid.
        "same call, results differ only in a request id",
        tuple(
            C("lookup", {"sku": "A-1"}, f"in stock: 4 (request {u})")
            for u in (
                "3f2a9c1e-1b2c-4d5e-8f90-a1b2c3d4e5f6",
                "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                "9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a",
            )
        ),
        "same_result",
        3,
    ),
    Scenario(
        # Own: the same creation again and again, each making a new numbered duplicate.
        "same creation call making numbered duplicates",
        tuple(
            C("create_ticket", {"title": "Printer broken"}, f"created ticket #{n}")
            for n in (41, 42, 43)
        ),
        "same_result",
        3,
    ),
    Scenario(
        # Issue 13: an argument the tool declares volatile (Tool.volatile_args reaches the
        # detector as the tool's override, see runtime with_volatile_args).
        "a tool's declared volatile argument",
        tuple(
            StepObservation(
                index=i,
                tool_calls=(("fetch", {"url": "https://x.example", "attempt": i}),),
                results=(("timeout", False),),
            )
            for i in (1, 2, 3)
        ),
        "same_result",
        3,
        config=DetectorConfig(
            tool_overrides={"fetch": ToolDetectorOverride(volatile_fields=frozenset({"attempt"}))}
        ),
    ),
    Scenario(
        # OpenHands monologue: a tool result that repeats itself is no news.
        "repeated reply around a tool result that repeats",
        (
            MONOLOGUE,
            read("a.txt", "hello"),
            MONOLOGUE,
            MONOLOGUE,
            read("a.txt", "hello"),
            MONOLOGUE,
        ),
        "near_duplicate_message",
        6,
    ),
]

NOT_FLAGGED = [
    Scenario(
        "batch reads of many files",
        tuple(read(f"src/m{i}.py", f"def f{i}(): ...") for i in range(12)),
    ),
    Scenario(
        "batch writes with the same reply",
        tuple(
            C("write_file", {"path": f"out/{i}.txt", "content": str(i)}, "ok") for i in range(10)
        ),
    ),
    Scenario(
        "polling whose status changes",
        tuple(
            C("check_job", {"id": 7}, f"running {p}%" if p < 100 else "done")
            for p in range(0, 101, 10)
        ),
    ),
    Scenario(
        "read, write, read a changed file",
        (
            read("a.py", "x = 1"),
            write("a.py", "x = 2"),
            read("a.py", "x = 2"),
            write("a.py", "x = 3"),
            read("a.py", "x = 3"),
            C("run_tests", {}, "1 passed"),
        ),
    ),
    Scenario(
        "wait and poll alternating while the job advances",
        tuple(
            step
            for n in range(1, 6)
            for step in (
                C("sleep", {"seconds": 5}, "slept 5 s"),
                C("check_job", {"id": 7}, f"running ({n}/5)"),
            )
        ),
    ),
    Scenario(
        "exempt tool repeated",
        (C("wait_for", {"job": 7}, "still running"),) * 10,
        config=DetectorConfig(tool_overrides={"wait_for": ToolDetectorOverride(exempt=True)}),
    ),
    Scenario(
        "per-tool threshold raised",
        (C("check_job", {"id": 7}, "running"),) * 5,
        config=DetectorConfig(
            tool_overrides={"check_job": ToolDetectorOverride(repeat_threshold=8)},
            no_progress_steps=8,
        ),
    ),
    Scenario(
        "replies with repeated headings and lists",
        tuple(
            f"## Summary\n\n- File: src/{name}.py\n- Functions: {n}\n- Status: {status}\n\n"
            f"## Next\n\n- Review {name} tests"
            for name, n, status in (
                ("parser", 12, "clean"),
                ("lexer", 7, "two warnings"),
                ("codegen", 31, "needs refactor"),
                ("runtime", 4, "clean"),
            )
        ),
    ),
    Scenario(
        "formulaic text with different calls",
        tuple(
            StepObservation(
                index=i,
                tool_calls=(("read_file", {"path": f"docs/{i}.md"}),),
                results=((f"# Doc {i}", False),),
                content="Reading the next file.",
            )
            for i in range(1, 9)
        ),
    ),
    Scenario(
        "different errors",
        tuple(
            C("fetch", {"url": u}, f"Error: {e}", error=True)
            for u, e in (
                ("http://a", "timeout"),
                ("http://b", "404 not found"),
                ("http://c", "certificate expired"),
                ("http://d", "connection reset"),
                ("http://e", "invalid JSON"),
            )
        ),
    ),
    Scenario(
        "short identical verdicts in a batch review",
        ("No issues found.",) * 8,
    ),
    Scenario(
        "same search twice, then moving on",
        (
            C("search", {"q": "gguf"}, "3 hits"),
            C("search", {"q": "gguf"}, "3 hits"),
            read("hit1.md", "GGUF is a file format"),
            "GGUF is the file format llama.cpp loads.",
        ),
    ),
    Scenario(
        "different queries with the same empty answer",
        tuple(C("search", {"q": q}, "no results") for q in ("foo", "bar", "baz", "qux", "zap")),
    ),
    Scenario(
        "an empty reply now and then",
        (read("a", "1"), EMPTY, read("b", "2"), EMPTY, read("c", "3"), EMPTY),
    ),
    Scenario(
        "a realistic coding run",
        (
            C("list_dir", {"path": "."}, "setup.py src tests"),
            read("src/calc.py", "def add(a, b): return a - b"),
            C("run_tests", {}, "1 failed: test_add"),
            write("src/calc.py", "def add(a, b): return a + b"),
            C("run_tests", {}, "1 passed"),
            read("src/calc.py", "def add(a, b): return a + b"),
            "The bug was a minus sign in add(); it is fixed and the test passes.",
        ),
    ),
    # -- from public stuck-detector suites and issue 13 (the source is named in each) --
    Scenario(
        # OpenHands: the same cell four times, the syntax error at another line each time.
        "syntax errors at different lines",
        tuple(
            C("run_python", {"code": SNIPPET}, SYNTAX_ERROR.format(line=n) + "\n" * k, error=True)
            for k, n in enumerate((10, 20, 30, 40), 1)
        ),
    ),
    Scenario(
        # OpenHands: "detected at line 1, 1, 3, 2" and different output after it.
        "unterminated string detected at changing lines",
        tuple(
            C(
                "run_python",
                {"code": 'print("hello'},
                f"SyntaxError: unterminated string literal (detected at line {n})\n{tail}",
                error=True,
            )
            for n, tail in ((1, "more output"), (1, "other output"), (3, "Enough"), (2, "Last"))
        ),
    ),
    Scenario(
        # Issue 13: code edited between runs fails at a different (three-digit) line.
        "edited code failing at different long line numbers",
        tuple(
            C(
                "run_python",
                {"code": f"# version {v}\n..."},
                f'File "main.py", line {line}\nNameError: name "total" is not defined',
                error=True,
            )
            for v, line in ((1, 123), (2, 457), (3, 981))
        ),
    ),
    Scenario(
        # OpenHands monologue: an observation in between resets the count.
        "repeated reply with news from a tool in between",
        (
            MONOLOGUE,
            MONOLOGUE,
            read("log.txt", "OK, I was stuck, but no more."),
            MONOLOGUE,
            MONOLOGUE,
        ),
    ),
    Scenario(
        # Issue 13: a repeated-message count reset by every new tool result.
        "the same status line after each new result",
        tuple(
            step
            for i in range(1, 6)
            for step in (read(f"part{i}.csv", f"rows {i * 100}"), STATUS_LINE)
        ),
    ),
    Scenario(
        # OpenHands "not stuck": ls, read, pwd, read, pwd, read with no cycle in it.
        "similar commands that do not cycle",
        (
            C("run", {"cmd": "ls"}, "file1.txt\nfile2.txt"),
            read("file1.txt", "File content"),
            C("run", {"cmd": "pwd"}, "/home/user"),
            read("file2.txt", "Another file content"),
            C("run", {"cmd": "pwd"}, "/home/user"),
            read("file2.txt", "Another file content"),
        ),
    ),
    Scenario(
        # Own: three tools in rotation over new inputs (batch work), same shape each turn.
        "three tools in rotation over new files",
        tuple(
            step
            for name in ("a", "b", "c", "d")
            for step in (
                read(f"{name}.py", f"def {name}(): ..."),
                C("lint", {"path": f"{name}.py"}, "0 problems"),
                write(f"{name}_test.py", f"test {name}"),
            )
        ),
    ),
    Scenario(
        # Own: a poll with a timestamp whose progress advances.
        "polling with timestamps while progress advances",
        tuple(
            C("check_job", {"id": 7}, f"2026-05-01T12:00:{p:02d}Z running {p}%")
            for p in range(0, 100, 10)
        ),
    ),
    Scenario(
        # Own: a long job polled every few seconds, the elapsed time growing.
        "polling a long job whose elapsed time grows",
        tuple(C("check_job", {"id": 7}, f"running, elapsed {12 * n}s") for n in range(1, 8)),
    ),
    Scenario(
        # Own: a build counting down (whole minutes are content, not timing noise).
        "waiting on a countdown",
        tuple(
            C("build_status", {}, f"building, ETA {m} min" if m else "done")
            for m in (4, 3, 2, 1, 0)
        ),
    ),
    Scenario(
        # Own: batch creation, a new ticket number for a new title each time.
        "creating a batch of tickets",
        tuple(
            C("create_ticket", {"title": t}, f"created ticket #{n}")
            for n, t in enumerate(("disk full", "printer", "vpn", "email", "badge", "phone"), 40)
        ),
    ),
    Scenario(
        # Own: rows counted up with a clock in each line (progress in every result).
        "a long import reporting progress with a clock",
        tuple(
            C("import_status", {"job": "csv"}, f"[12:00:{n:02d}] processed {n * 100} of 900 rows")
            for n in range(1, 10)
        ),
    ),
    Scenario(
        # Own: tables read one after another, all in the same markdown shape.
        "tables read one after another",
        tuple(
            C(
                "sql_query",
                {"sql": f"SELECT * FROM {t} LIMIT 3"},
                f"id | name\n1 | {t}_a\n2 | {t}_b\n(2 rows)",
            )
            for t in ("users", "orders", "items", "stock", "shops", "staff")
        ),
    ),
    Scenario(
        # Own: lint, fix, lint again: errors move to other lines as they are fixed.
        "fixing lint errors one by one",
        (
            C("lint", {"path": "a.py"}, "a.py:12:5: F401 'os' imported but unused", error=True),
            write("a.py", "v2"),
            C("lint", {"path": "a.py"}, "a.py:40:1: F821 undefined name 'y'", error=True),
            write("a.py", "v3"),
            C("lint", {"path": "a.py"}, "a.py:77:9: E711 comparison to None", error=True),
            write("a.py", "v4"),
            C("lint", {"path": "a.py"}, "0 problems"),
        ),
    ),
    Scenario(
        # Own: a missing module installed, then the same command works.
        "an error fixed between two runs of the same command",
        (
            C(
                "run",
                {"cmd": "python app.py"},
                "ModuleNotFoundError: No module named 'yaml'",
                error=True,
            ),
            C("run", {"cmd": "pip install pyyaml"}, "Successfully installed pyyaml-6.0"),
            C("run", {"cmd": "python app.py"}, "ok: 3 files converted"),
        ),
    ),
]

# -- more everyday loops (own) --------------------------------------------------------

MORE_FLAGGED = [
    Scenario(
        "same SQL query three times", (C("sql", {"query": "SELECT 1"}, "1"),) * 3, "same_result", 3
    ),
    Scenario(
        "two searches in a cycle",
        (C("search", {"q": "a"}, "x"), C("search", {"q": "b"}, "y")) * 2
        + (C("search", {"q": "a"}, "x"),),
        "cycle",
        5,
    ),
    Scenario(
        "same error for different queries",
        tuple(
            C("query_db", {"sql": f"SELECT {n}"}, "Error: database is locked", error=True)
            for n in (1, 2, 3)
        ),
        "same_error",
        3,
    ),
    Scenario(
        "replies that differ only in spacing",
        (LONG_REPLY, LONG_REPLY + "  ", LONG_REPLY.replace(" ", "  ", 1)),
        "near_duplicate_message",
        3,
    ),
    Scenario(
        "empty replies after some text", ("Working on it.", EMPTY, EMPTY), "empty_response", 3
    ),
    Scenario("same write three times", (write("out.txt", "hi"),) * 3, "same_result", 3),
    Scenario(
        "polling an unchanged status stamped with the time",
        tuple(
            C("check_job", {"id": 7}, f"running (checked 2026-05-01T10:0{m}:00Z)")
            for m in (1, 2, 3)
        ),
        "same_result",
        3,
    ),
    Scenario(
        "three git commands in a cycle",
        (
            C("git_status", {}, "clean"),
            C("git_diff", {}, "no changes"),
            C("git_log", {"n": 1}, "abc123 fix"),
        )
        * 2
        + (C("git_status", {}, "clean"),),
        "cycle",
        7,
    ),
    Scenario(
        "same build command failing with varying errors",
        tuple(
            C("run", {"cmd": "make build"}, e, error=True)
            for e in (
                "make: *** No rule to make target 'build'.",
                "Error 2",
                "build failed",
                "make: *** No rule to make target 'build'.",
            )
        ),
        "same_call",
        4,
    ),
    Scenario(
        "same price look-up with reordered, padded arguments",
        (
            C("get_price", {"item": "pen", "currency": "USD"}, "3.00"),
            C("get_price", {"currency": "USD", "item": " pen"}, "3.00"),
            C("get_price", {"item": "pen ", "currency": "USD"}, "3.00"),
        ),
        "same_result",
        3,
    ),
    Scenario(
        # The demo's loop: the calculator on its own result, again and again.
        "calculator on its own result",
        (C("calculator", {"expression": "100.55"}, "100.55"),) * 3,
        "same_result",
        3,
    ),
]

MORE_NOT_FLAGGED = [
    Scenario(
        "paging through results",
        tuple(C("list_items", {"page": p}, f"items {p * 10}-{p * 10 + 9}") for p in range(8)),
    ),
    Scenario(
        "a retry that succeeds",
        (C("fetch", {"url": "x"}, "Error: timeout", error=True), C("fetch", {"url": "x"}, "200")),
    ),
    Scenario(
        "reading a table row by row",
        tuple(
            C("sql", {"query": f"SELECT * FROM t WHERE id={i}"}, f"row {i}: {i * 3}")
            for i in range(1, 11)
        ),
    ),
    Scenario(
        "code replies with the same boilerplate",
        tuple(
            f"```python\ndef test_{n}():\n    assert square({n}) == {n * n}\n```"
            for n in range(1, 6)
        ),
    ),
    Scenario(
        "separator lines in replies",
        tuple(
            f"Report {i}\n{'-' * 40}\nTotal: {i * 7}\n{'-' * 40}\nNext: part {i + 1}"
            for i in range(1, 6)
        ),
    ),
    Scenario(
        "fetch and summarise alternating with new pages",
        tuple(
            step
            for i in range(1, 6)
            for step in (
                C("fetch_page", {"n": i}, f"page {i} text"),
                C("summarise", {"text": f"page {i} text"}, f"summary of page {i}"),
            )
        ),
    ),
    Scenario("the same read twice, then an answer", (read("a", "x"), read("a", "x"), "x")),
    Scenario(
        "a counter that goes up",
        tuple(C("increment", {"name": "c"}, str(n)) for n in range(1, 7)),
    ),
    Scenario(
        "two timeouts, then success",
        (
            C("fetch", {"u": 1}, "Error: timeout", error=True),
            C("fetch", {"u": 1}, "Error: timeout", error=True),
            C("fetch", {"u": 1}, "ok"),
        ),
    ),
    Scenario(
        "batch conversion with identical results",
        tuple(C("convert", {"file": f"img{i}.png"}, "converted") for i in range(12)),
    ),
    Scenario(
        "tables in replies",
        tuple(f"| item | qty |\n|---|---|\n| row {i} | {i * 2} |" for i in range(1, 6)),
    ),
]

SCENARIOS = FLAGGED + MORE_FLAGGED + NOT_FLAGGED + MORE_NOT_FLAGGED


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_scenario(scenario: Scenario) -> None:
    detector = LoopDetector(scenario.config)
    results = [detector.observe(obs) for obs in observations(scenario.steps)]
    if scenario.detector is None:
        fired = [(i, [s.detector for s in r]) for i, r in enumerate(results, 1) if r]
        assert fired == [], "legitimate repetition was flagged"
        return
    first = next((i for i, r in enumerate(results, 1) if r), None)
    assert first == scenario.at, [[s.detector for s in r] for r in results]
    strike = results[first - 1][0]
    assert strike.detector == scenario.detector
    assert scenario.at in strike.steps
    assert strike.message and strike.summary and strike.window


def test_scenario_balance() -> None:
    flagged, quiet = FLAGGED + MORE_FLAGGED, NOT_FLAGGED + MORE_NOT_FLAGGED
    assert len(flagged) >= 30 and len(quiet) >= 30
    # As many runs that must stay quiet as runs that must trip (no detector by recall alone).
    assert len(quiet) >= len(flagged) and len(SCENARIOS) >= 80
    assert {s.detector for s in FLAGGED} >= {
        "same_call",
        "same_result",
        "cycle",
        "same_error",
        "near_duplicate_message",
        "no_progress",
        "empty_response",
    }


# --- what the strikes say --------------------------------------------------------------


def test_same_result_strike_names_the_steps_and_the_call() -> None:
    steps = (read("a.txt", "hello"), C("list_dir"), read("a.txt", "hello"), read("a.txt", "hello"))
    strikes = run((*steps, read("a.txt", "hello")))
    # Counting starts after step 2, the last step that brought something else new.
    assert [len(s) for s in strikes] == [0, 0, 0, 0, 1]
    strike = strikes[-1][0]
    assert strike.detector == "same_result"
    assert strike.steps == (3, 4, 5)
    assert strike.message == (
        "You have called read_file with the same arguments 3 times and got the same "
        "result each time; try something different or give your final answer."
    )
    assert strike.window == 'read_file({"path":"a.txt"}) -> hello'
    assert strike.detail == {"tool": "read_file", "count": 3}


def test_cycle_strike_shows_the_cycle() -> None:
    strikes = run((read("a.txt", "v1"), write("a.txt", "v1")) * 2 + (read("a.txt", "v1"),))
    strike = strikes[-1][0]
    assert strike.steps == (1, 2, 3, 4, 5)
    assert strike.window.startswith('read_file({"path":"a.txt"}) -> write_file(')
    assert strike.detail["period"] == 2
    # The cycle explains the repeated read; no second strike for the same call.
    assert [s.detector for s in strikes[-1]] == ["cycle"]


def test_strikes_repeat_while_the_loop_goes_on() -> None:
    strikes = run((read("a.txt", "hello"),) * 5)
    assert [len(s) for s in strikes] == [0, 0, 1, 1, 1]
    assert [s[0].detail["count"] for s in strikes[2:]] == [3, 4, 5]


def test_error_strike_wins_over_same_result() -> None:
    strikes = run((C("run", {}, "Error: boom", error=True),) * 3)
    assert [s.detector for s in strikes[-1]] == ["same_error"]
    assert "Error: boom" in strikes[-1][0].message


def test_tool_call_objects_are_accepted() -> None:
    detector = LoopDetector()
    results = [
        detector.observe(
            StepObservation(
                index=i,
                tool_calls=(ToolCall(name="read_file", arguments={"path": "a"}),),
                results=(("same", False),),
            )
        )
        for i in (1, 2, 3)
    ]
    assert [len(r) for r in results] == [0, 0, 1]


def test_mixed_exempt_and_normal_calls() -> None:
    config = DetectorConfig(tool_overrides={"sleep": ToolDetectorOverride(exempt=True)})
    steps = ((C("sleep", {"s": 1}, "slept"), read("a", "x")),) * 3
    assert [s[0].detector for s in run(steps, config) if s] == ["same_result"]


def test_history_is_bounded() -> None:
    detector = LoopDetector(DetectorConfig(window_steps=8))
    for i in range(5000):
        detector.observe(
            StepObservation(index=i, tool_calls=(("read", {"i": i}),), results=((str(i), False),))
        )
    assert len(detector._history) == 8
    assert len(detector._seen) <= 4096


def test_reset_forgets() -> None:
    detector = LoopDetector()
    for obs in observations((read("a", "x"),) * 2):
        detector.observe(obs)
    detector.reset()
    assert detector.observe(observations((read("a", "x"),))[0]) == []


def test_disabled_detector_is_silent_and_the_next_one_reports() -> None:
    config = DetectorConfig(disabled=frozenset({"same_result"}))
    strikes = run((read("a.txt", "hello"),) * 4, config)
    assert [s[0].detector for s in strikes if s] == ["same_call"]


# --- canonical arguments ---------------------------------------------------------------

SAME_ARGUMENTS = [
    ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
    ({"x": 1}, {"x": 1.0}),
    ({"x": 1}, {"x": "1"}),
    ({"x": 2.5}, {"x": "2.5"}),
    ({"x": 0}, {"x": -0.0}),
    ({"q": "hello   world"}, {"q": " hello world "}),
    ({"q": "x", "thought": "a"}, {"q": "x", "thought": "b"}),
    ({"q": "x", "reasoning": "because"}, {"q": "x"}),
    ({"o": {"b": 1, "a": [1, 2.0]}}, {"o": {"a": [1.0, "2"], "b": 1}}),
    ({"text": "line one  \nline two\n\n"}, {"text": "\nline one\nline two"}),
]

DIFFERENT_ARGUMENTS = [
    ({"x": 1}, {"x": 2}),
    ({"x": 1}, {"x": True}),
    ({"x": "007"}, {"x": "7"}),
    ({"l": [1, 2]}, {"l": [2, 1]}),
    ({"q": "a b"}, {"q": "ab"}),
    ({"code": "if x:\n    y()"}, {"code": "if x:\n  y()"}),
    ({"x": None}, {}),
]


@pytest.mark.parametrize(("a", "b"), SAME_ARGUMENTS)
def test_canonical_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    volatile = DetectorConfig().volatile_fields
    assert canonical_arguments(a, volatile) == canonical_arguments(b, volatile)


@pytest.mark.parametrize(("a", "b"), DIFFERENT_ARGUMENTS)
def test_canonical_different(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert canonical_arguments(a) != canonical_arguments(b)


def test_canonical_form_is_compact_json() -> None:
    assert canonical_arguments({"b": " x ", "a": 2.0}) == '{"a":2,"b":"x"}'


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("segfault at 0x7ffe12 (pid 4812)", "segfault at 0x7aaa99 (pid 5120)", True),
        ("request 3f2a9c1e-1b2c-4d5e-8f90-a1b2c3d4e5f6 failed", "request "
         "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d failed", True),
        ("took 0.53 s", "took 1.20 s", True),
        ("commit 9fceb02d0ae598e95dc970b74767f19372d61af8 missing",
         "commit 1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b missing", True),
        ("no such file: data/1.csv", "no such file: data/2.csv", False),
        ("line 12: syntax error", "line 13: syntax error", False),
    ],
)  # fmt: skip
def test_normalise_error(a: str, b: str, same: bool) -> None:
    assert (normalise_error(a) == normalise_error(b)) is same


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("at 2026-05-01T12:00:03Z: refused", "at 2026-05-01T12:00:09Z: refused", True),
        ("[12:00:03.25] refused", "[12:07:41.90] refused", True),
        ("failed at 1714564803", "failed at 1714564899", True),
        ("line 123: syntax error", "line 456: syntax error", False),
        ("connection refused on port 8080", "connection refused on port 8081", False),
        ("attempt 3 of 5", "attempt 4 of 5", False),
    ],
)  # fmt: skip
def test_normalise_error_keeps_what_tells_errors_apart(a: str, b: str, same: bool) -> None:
    assert (normalise_error(a) == normalise_error(b)) is same


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("rate limited (attempt 3 of 5)", "rate limited (attempt 4 of 5)", True),
        ("503; retry after 30 s", "503; retry after 29 s", True),
        ("line 12: bad indent", "line 13: bad indent", False),
        ("main.py:12:5: E501", "main.py:40:1: E501", False),
        ("Cell In[1], line 10", "Cell In[2], line 20", False),
        ("error at column 7", "error at column 9", False),
    ],
)  # fmt: skip
def test_errors_of_one_call_ignore_counters_not_positions(a: str, b: str, same: bool) -> None:
    assert (normalise_same_call_error(a) == normalise_same_call_error(b)) is same


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("created ticket #41", "created ticket #42", True),
        ("order id 1183 saved", "order id 1184 saved", True),
        ("ok (request 3f2a9c1e-1b2c-4d5e-8f90-a1b2c3d4e5f6)",
         "ok (request 0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d)", True),
        ("done in 0.53s", "done in 1.07s", True),
        ("running 40%", "running 50%", False),
        ("paid 42 dollars", "paid 43 dollars", False),
        ("slept 5 s", "slept 6 s", False),
        ("3 of 5 rows", "4 of 5 rows", False),
    ],
)  # fmt: skip
def test_normalise_result_blanks_only_volatile_parts(a: str, b: str, same: bool) -> None:
    assert (normalise_result(a) == normalise_result(b)) is same


def test_declared_volatile_args_reach_the_detector() -> None:
    # Three calls in one turn that differ only in "attempt": the same call three times
    # once the tool declares "attempt" volatile, three different calls otherwise.
    from agentkit import Tool
    from agentkit.runtime._tools import with_volatile_args

    calls = tuple(("fetch", {"url": "u", "attempt": n}) for n in (1, 2, 3))
    results = (("timeout", False),) * 3

    def fetch(url: str, attempt: int) -> str:
        """Fetch a page."""
        return "timeout"

    def strikes(config: DetectorConfig) -> list[str]:
        return [
            s.detector for s in LoopDetector(config).observe(StepObservation(1, calls, results))
        ]

    declared = Tool(fetch, volatile_args=frozenset({"attempt"}))
    assert strikes(with_volatile_args(DetectorConfig(), [declared])) == ["same_result"]
    assert strikes(with_volatile_args(DetectorConfig(), [Tool(fetch)])) == []


# --- configuration ---------------------------------------------------------------------


def test_config_rejects_unknown_options() -> None:
    with pytest.raises(ValidationError, match="extra"):
        DetectorConfig(same_call_treshold=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="extra"):
        ToolDetectorOverride(exemt=True)  # type: ignore[call-arg]


def test_config_rejects_unknown_detector_names() -> None:
    with pytest.raises(ValidationError, match="unknown detector"):
        DetectorConfig(disabled=frozenset({"same_calls"}))


def test_config_rejects_thresholds_beyond_the_window() -> None:
    with pytest.raises(ValidationError, match="window_steps = 4"):
        DetectorConfig(window_steps=4, same_call_threshold=5)
    with pytest.raises(ValidationError, match="repeat_threshold"):
        DetectorConfig(tool_overrides={"poll": ToolDetectorOverride(repeat_threshold=40)})
    with pytest.raises(ValidationError, match="cycle"):
        DetectorConfig(window_steps=6, cycle_periods=(3,), cycle_repeats=2)


def test_config_rejects_period_one() -> None:
    with pytest.raises(ValidationError, match="period"):
        DetectorConfig(cycle_periods=(1, 2))


def test_config_is_frozen() -> None:
    config = DetectorConfig()
    with pytest.raises(ValidationError):
        config.same_call_threshold = 9


# --- graded response -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strikes", "can_escalate", "expected"),
    [
        (1, True, "answer_now"),
        (2, True, "resample"),
        (3, True, "escalate"),
        (4, True, "stop"),
        (9, True, "stop"),
        (1, False, "answer_now"),
        (2, False, "resample"),
        (3, False, "stop"),
        (4, False, "stop"),
    ],
)
def test_default_plan(strikes: int, can_escalate: bool, expected: str) -> None:
    assert ResponsePlan().next_response(strikes, can_escalate) == expected


def test_custom_plan_repeats_its_last_entry() -> None:
    plan = ResponsePlan(sequence=("nudge", "nudge", "escalate", "escalate", "stop"))
    assert [plan.next_response(n, True) for n in range(1, 8)] == [
        "nudge", "nudge", "escalate", "escalate", "stop", "stop", "stop",
    ]  # fmt: skip
    assert [plan.next_response(n, False) for n in range(1, 5)] == [
        "nudge", "nudge", "stop", "stop",
    ]  # fmt: skip


def test_plan_of_only_escalations_stops_without_a_larger_model() -> None:
    assert ResponsePlan(sequence=("escalate",)).next_response(1, False) == "stop"


def test_plan_validation() -> None:
    with pytest.raises(ValidationError, match="empty"):
        ResponsePlan(sequence=())
    with pytest.raises(ValidationError):
        ResponsePlan(sequence=("nudge", "pray"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="first strike of a run is 1"):
        ResponsePlan().next_response(0, True)


def test_resample_settings() -> None:
    settings = ResponsePlan().resample
    assert settings.temperature == 0.9 and settings.top_k > 0
    assert settings.seed(42, 1) != settings.seed(42, 2) != 42
    assert 0 <= ResampleSettings(seed_step=2**40).seed(2**31 - 1, 3) < 2**31


# --- diagnosis -------------------------------------------------------------------------


def test_diagnosis_names_detectors_windows_and_steps() -> None:
    strikes = [s for step in run((read("a.txt", "hello"),) * 4) for s in step]
    strikes += [s for step in run(("I will call the calculator tool now.",) * 3) for s in step]
    text = diagnosis(strikes)
    lines = text.splitlines()
    assert lines[0] == ("Repetition detected 3 times (same_result x2, near_duplicate_message x1).")
    assert lines[1] == (
        "1. same_result at steps 1-3: read_file was called 3 times with the same "
        "arguments and returned the same result"
    )
    assert lines[2] == '   repeating: read_file({"path":"a.txt"}) -> hello'
    assert lines[3].startswith("2. same_result at steps 1-4: read_file was called 4 times")
    assert lines[5].startswith("3. near_duplicate_message at steps 1-3:")
    assert lines[6] == "   repeating: I will call the calculator tool now."


def test_diagnosis_of_a_stream_strike_and_of_nothing() -> None:
    stream = Strike(detector="stream_loop", message="m", window="the ", summary="looped")
    assert diagnosis([stream]) == (
        "Repetition detected once (stream_loop x1).\n1. stream_loop: looped\n   repeating: the "
    )
    assert diagnosis([]) == "No repetition was detected."


def test_diagnosis_joins_step_runs() -> None:
    strike = Strike(detector="cycle", message="m", steps=(9, 2, 3, 4, 7))
    assert "cycle at steps 2-4, 7, 9: m" in diagnosis([strike])
