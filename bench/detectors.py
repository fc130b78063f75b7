"""The streaming repetition detector on a real small model: tokens saved, time it costs.

    python -m bench.detectors [--out bench/results] [--model smollm2-135m-instruct]
                              [--max-tokens 512] [--seed 0] [--threads 1]
    python -m bench.detectors --report-only    # rewrite detectors.md/.png from the JSON
    python -m bench.detectors --ordinary-only [--runs-db PATH]   # only the part below

A third part needs no model: ordinary agent runs (the task suite's reference solutions,
replayed through the real runtime; ``bench/ordinary.py``) and how many loop-detector
strikes they earn, which are all false alarms (target: none). ``--runs-db`` adds stored
runs, re-observed by a fresh loop detector and reported by status.

Two prompt sets, all sent to one model (``smollm2-135m-instruct`` by default) with greedy
sampling and a fixed seed, so a rerun on the same machine gives the same text:

- ``LOOP_PROMPTS`` drive the model into degenerate text: explicit requests to repeat,
  runaway lists, and ordinary requests (an email, a plot summary) that this model happens
  to answer with a loop. Each is generated twice with the same sampling: once without a
  detector, running to ``max_tokens``, and once with ``StreamDetector(DetectorConfig())``
  fed every piece through ``on_token``, which stops the generation at the first strike.
  Greedy decoding makes the stopped text a prefix of the full one (checked per row), so
  the difference in tokens is exactly what the detector saved.
- ``NORMAL_PROMPTS`` produce ordinary prose, code, a markdown table and numbered lists.
  Each is generated once with the detector; the time spent inside ``feed`` (a
  ``perf_counter`` around every call) over the generation's own time is its overhead,
  and any strike there is a false trip.

Before the timed generations of a prompt, one untimed single-token call puts its prompt
into llama.cpp's KV cache, so every timed generation evaluates one prompt token and the
seconds compare generation alone (prompt evaluation on this CPU build is slow and erratic
under load, and would otherwise swamp the difference). Results go to ``detectors.json``
(every row, with text excerpts, plus summaries and versions), ``detectors.md`` and
``detectors.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from agentkit import LlamaConfig, LlamaCppModel, Message, ModelResponse, Sampling, get_model
from agentkit.detection import DetectorConfig, StreamDetector, Strike

from .ordinary import redetect_store, replay_tasks, summarise_ordinary

DEFAULT_MODEL = "smollm2-135m-instruct"
OVERHEAD_TARGET = 0.02
"""Time inside ``StreamDetector.feed`` as a share of generation time, at most."""


@dataclass(frozen=True)
class Prompt:
    key: str
    text: str
    note: str
    """What the prompt is for, or what this model makes of it."""


LOOP_PROMPTS: tuple[Prompt, ...] = (
    Prompt("robot-poem", 'Write a poem where every line is "I am a robot".', "asked to repeat"),
    Prompt("endless-story", "Write a story that never ends.", "asked for no end"),
    Prompt("zeros-list", "Write a Python list containing 300 zeros.", "runaway data"),
    Prompt(
        "la-la",
        "la la la la la la la la la la la la la la la la la la la la",
        "continues a repeated phrase",
    ),
    Prompt("animals", "Write a very long list of animals.", "runaway list"),
    Prompt("fruits", "Write a very long list of fruits.", "runaway list (emoji)"),
    Prompt("chant", "Write a chant for a football team.", "ordinary request"),
    Prompt("ocean", "Describe the ocean in as much detail as possible.", "ordinary request"),
    Prompt(
        "email",
        "Write a short email asking a colleague to move our Monday meeting to Tuesday.",
        "ordinary request",
    ),
    Prompt(
        "romeo-juliet",
        "Summarise the plot of Romeo and Juliet in one paragraph.",
        "ordinary request",
    ),
    Prompt(
        "hash-map",
        "Explain what a hash map is and when to use one.",
        "ordinary request, a loop with small variations",
    ),
    Prompt(
        "capitals-table",
        "Make a markdown table of ten countries and their capitals.",
        "ordinary request, a table",
    ),
)

NORMAL_PROMPTS: tuple[Prompt, ...] = (
    Prompt("sky-prose", "Explain in two short paragraphs why the sky is blue.", "prose"),
    Prompt(
        "list-vs-tuple",
        "Explain the difference between a list and a tuple in Python.",
        "prose with a code block and bullets",
    ),
    Prompt(
        "prime-python",
        "Write a Python function that checks whether a number is prime, with a docstring.",
        "code",
    ),
    Prompt(
        "bank-class",
        "Write a Python class for a bank account with deposit and withdraw methods.",
        "code",
    ),
    Prompt(
        "reverse-js",
        "Write a JavaScript function that reverses a string, and show an example call.",
        "code",
    ),
    Prompt(
        "top-customers-sql",
        "Write a SQL query that returns the five customers with the highest total order value.",
        "code",
    ),
    Prompt(
        "count-lines-bash",
        "Write a bash script that counts the lines in every .txt file in a folder.",
        "code",
    ),
    Prompt(
        "planets-table",
        "Make a markdown table of the four inner planets with columns for name, "
        "diameter in km and number of moons.",
        "markdown table",
    ),
    Prompt("sleep-tips", "Give a numbered list of 8 tips for better sleep.", "numbered list"),
    Prompt("tea-steps", "List the steps to make a cup of tea.", "numbered list"),
)


# -- one generation -----------------------------------------------------------------------


@dataclass
class _TimedDetector:
    """``StreamDetector.feed`` as an ``on_token`` callback, timing every call."""

    detector: StreamDetector
    seconds: float = 0.0
    calls: int = 0
    pieces: list[str] = field(default_factory=list)
    """Every piece fed, kept (outside the timed part) to replay them in a tight loop."""

    def __call__(self, piece: str) -> bool:
        started = time.perf_counter()
        strike = self.detector.feed(piece)
        self.seconds += time.perf_counter() - started
        self.calls += 1
        self.pieces.append(piece)
        return strike is not None


def replay_seconds(pieces: Sequence[str], repeats: int = 5) -> float:
    """The fastest of ``repeats`` replays of ``pieces`` through a fresh detector: the
    cost of ``feed`` alone with warm CPU caches, for comparison with the in-generation
    figure, where every piece follows milliseconds of llama.cpp work."""
    best = float("inf")
    for _ in range(repeats):
        detector = StreamDetector(DetectorConfig())
        started = time.perf_counter()
        for piece in pieces:
            detector.feed(piece)
        best = min(best, time.perf_counter() - started)
    return best if pieces else 0.0


@dataclass
class Generation:
    tokens: int
    seconds: float
    """llama.cpp's own time for the call (one prompt token, then the generation)."""
    finish_reason: str
    chars: int
    text: str


@dataclass
class LoopRow:
    key: str
    prompt: str
    note: str
    prompt_seconds: float
    """The untimed warm-up: evaluating the prompt into the KV cache."""
    without: Generation
    with_detector: Generation
    tripped: bool
    strike_kind: str | None
    strike_summary: str | None
    strike_window: str | None
    strike_chars: int | None
    feed_seconds: float
    feed_calls: int
    same_prefix: bool
    """Whether the stopped text is a prefix of the full one (greedy decoding)."""
    compression: float
    """Bytes / zlib-compressed bytes of the full text: ~2-3 for prose, far more for loops."""

    @property
    def saved(self) -> int:
        return self.without.tokens - self.with_detector.tokens


@dataclass
class NormalRow:
    key: str
    prompt: str
    note: str
    prompt_seconds: float
    generation: Generation
    feed_seconds: float
    feed_calls: int
    chars: int
    overhead: float
    """``feed_seconds`` / ``generation.seconds``."""
    replay_seconds: float
    """The same pieces fed again in a tight loop (see ``replay_seconds``)."""
    tripped: bool
    strike_summary: str | None
    strike_window: str | None
    compression: float


def _messages(prompt: Prompt) -> list[Message]:
    return [Message.user(prompt.text)]


def _warm(model: LlamaCppModel, prompt: Prompt, sampling: Sampling) -> float:
    """Evaluate the prompt into the KV cache; the timed calls then evaluate one token."""
    response = model.complete(
        _messages(prompt), sampling=sampling.model_copy(update={"max_tokens": 1})
    )
    return response.usage.seconds


def _generation(response: ModelResponse) -> Generation:
    return Generation(
        tokens=response.usage.completion_tokens,
        seconds=response.usage.seconds,
        finish_reason=response.finish_reason,
        chars=len(response.raw_text),
        text=response.raw_text,
    )


def compression(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data, 9)) if data else 0.0


def _kind(strike: Strike | None) -> str | None:
    return None if strike is None else str(strike.detail.get("kind"))


def run_loop(model: LlamaCppModel, prompt: Prompt, sampling: Sampling) -> LoopRow:
    warm = _warm(model, prompt, sampling)
    without = _generation(model.complete(_messages(prompt), sampling=sampling))
    timed = _TimedDetector(StreamDetector(DetectorConfig()))
    with_detector = _generation(
        model.complete(_messages(prompt), sampling=sampling, on_token=timed)
    )
    strike = timed.detector.strike
    return LoopRow(
        key=prompt.key,
        prompt=prompt.text,
        note=prompt.note,
        prompt_seconds=warm,
        without=without,
        with_detector=with_detector,
        tripped=strike is not None,
        strike_kind=_kind(strike),
        strike_summary=strike.summary if strike else None,
        strike_window=strike.window if strike else None,
        strike_chars=int(strike.detail["chars"]) if strike else None,
        feed_seconds=timed.seconds,
        feed_calls=timed.calls,
        same_prefix=without.text.startswith(with_detector.text),
        compression=compression(without.text),
    )


def run_normal(model: LlamaCppModel, prompt: Prompt, sampling: Sampling) -> NormalRow:
    warm = _warm(model, prompt, sampling)
    timed = _TimedDetector(StreamDetector(DetectorConfig()))
    generation = _generation(model.complete(_messages(prompt), sampling=sampling, on_token=timed))
    strike = timed.detector.strike
    return NormalRow(
        key=prompt.key,
        prompt=prompt.text,
        note=prompt.note,
        prompt_seconds=warm,
        generation=generation,
        feed_seconds=timed.seconds,
        feed_calls=timed.calls,
        chars=timed.detector.chars_seen,
        overhead=timed.seconds / generation.seconds if generation.seconds else 0.0,
        replay_seconds=replay_seconds(timed.pieces),
        tripped=strike is not None,
        strike_summary=strike.summary if strike else None,
        strike_window=strike.window if strike else None,
        compression=compression(generation.text),
    )


def loop_progress(index: int, total: int, row: LoopRow) -> str:
    w, d = row.without, row.with_detector
    caught = f"{row.strike_kind} strike" if row.tripped else "NOT caught"
    share = row.saved / w.tokens if w.tokens else 0.0
    return (
        f"[loop {index}/{total}] {row.key:<15} without {w.tokens:>3} tok {w.seconds:5.2f} s | "
        f"with {d.tokens:>3} tok {d.seconds:5.2f} s ({caught}) | saved {row.saved} ({share:.0%})"
    )


def normal_progress(index: int, total: int, row: NormalRow) -> str:
    g = row.generation
    trip = f"FALSE TRIP: {row.strike_summary}" if row.tripped else "no trip"
    return (
        f"[normal {index}/{total}] {row.key:<17} {g.tokens:>3} tok {g.seconds:5.2f} s | "
        f"feed {row.feed_seconds * 1e3:6.2f} ms over {row.feed_calls} pieces = "
        f"{row.overhead:.3%} | {trip}"
    )


# -- summaries and environment ----------------------------------------------------------------


def summarise(loops: Sequence[LoopRow], normal: Sequence[NormalRow]) -> dict[str, Any]:
    tokens_without = sum(r.without.tokens for r in loops)
    tokens_with = sum(r.with_detector.tokens for r in loops)
    seconds_without = sum(r.without.seconds for r in loops)
    seconds_with = sum(r.with_detector.seconds for r in loops)
    caught = [r for r in loops if r.tripped]
    feed = sum(r.feed_seconds for r in normal)
    generation = sum(r.generation.seconds for r in normal)
    calls = sum(r.feed_calls for r in normal)
    overhead = feed / generation if generation else 0.0
    return {
        "loops": {
            "prompts": len(loops),
            "ran_to_max_tokens_without_detector": sum(
                r.without.finish_reason == "length" for r in loops
            ),
            "caught": len(caught),
            "missed": [r.key for r in loops if not r.tripped],
            "tokens_without": tokens_without,
            "tokens_with": tokens_with,
            "tokens_saved": tokens_without - tokens_with,
            "tokens_saved_share": 1 - tokens_with / tokens_without if tokens_without else 0.0,
            "tokens_ratio": tokens_without / tokens_with if tokens_with else None,
            "caught_tokens_saved_share": (
                sum(r.saved for r in caught) / sum(r.without.tokens for r in caught)
                if caught
                else 0.0
            ),
            "seconds_without": seconds_without,
            "seconds_with": seconds_with,
            "seconds_saved": seconds_without - seconds_with,
            "seconds_saved_share": 1 - seconds_with / seconds_without if seconds_without else 0.0,
            "median_trip_tokens": (
                statistics.median(r.with_detector.tokens for r in caught) if caught else None
            ),
            "median_trip_chars": (
                statistics.median(r.strike_chars or 0 for r in caught) if caught else None
            ),
            "all_prefixes_match": all(r.same_prefix for r in loops),
            "overhead_with_detector": (
                sum(r.feed_seconds for r in loops) / seconds_with if seconds_with else 0.0
            ),
        },
        "normal": {
            "prompts": len(normal),
            "tokens": sum(r.generation.tokens for r in normal),
            "generation_seconds": generation,
            "feed_seconds": feed,
            "feed_calls": calls,
            "microseconds_per_feed": feed / calls * 1e6 if calls else 0.0,
            "microseconds_per_feed_replayed": (
                sum(r.replay_seconds for r in normal) / calls * 1e6 if calls else 0.0
            ),
            "overhead": overhead,
            "max_overhead": max((r.overhead for r in normal), default=0.0),
            "overhead_target": OVERHEAD_TARGET,
            "overhead_met": overhead < OVERHEAD_TARGET,
            "false_trips": [
                {"key": r.key, "summary": r.strike_summary, "window": r.strike_window}
                for r in normal
                if r.tripped
            ],
        },
    }


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment(model: LlamaCppModel, config: LlamaConfig) -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "versions": {
            name: _version(name) for name in ("agentkit", "llama_cpp_python", "numpy", "pydantic")
        },
        "model": model.name,
        "model_file": str(model.path),
        "model_file_bytes": model.path.stat().st_size,
        "model_parameters": model.parameters,
        "threads": config.n_threads,
        "n_ctx": model.context_size,
        "load_average_at_start": list(os.getloadavg()),
    }


def _text(text: str, limit: int = 400) -> dict[str, str]:
    """Head and tail of a generation, enough to see what it was."""
    if len(text) <= 2 * limit:
        return {"head": text, "tail": ""}
    return {"head": text[:limit], "tail": text[-limit:]}


def _loop_json(row: LoopRow) -> dict[str, Any]:
    data = asdict(row)
    data["saved"] = row.saved
    data["saved_share"] = row.saved / row.without.tokens if row.without.tokens else 0.0
    data["tokens_ratio"] = (
        row.without.tokens / row.with_detector.tokens if row.with_detector.tokens else None
    )
    data["without"]["text"] = _text(row.without.text)
    data["with_detector"]["text"] = _text(row.with_detector.text)
    return data


def _normal_json(row: NormalRow) -> dict[str, Any]:
    data = asdict(row)
    data["generation"]["text"] = _text(row.generation.text)
    return data


# -- ordinary agent runs ---------------------------------------------------------------------


def ordinary_part(runs_db: Path | None) -> dict[str, Any]:
    """Replays of the task suite (and recorded runs, if given) through the loop detector."""
    rows, control = replay_tasks()
    recorded = redetect_store(runs_db) if runs_db is not None else None
    return {
        "summary": summarise_ordinary(rows, control, recorded),
        "rows": [asdict(r) for r in rows],
        "recorded": recorded,
        "runs_db": str(runs_db) if runs_db is not None else None,
    }


def ordinary_line(part: dict[str, Any]) -> str:
    s = part["summary"]
    return (
        f"ordinary runs: {s['false_alarm_runs']} of {s['runs']} replayed runs flagged "
        f"({s['false_alarm_strikes']} strikes); control: {s['control']['strikes']} strike(s)"
    )


def render_ordinary(part: dict[str, Any] | None) -> list[str]:
    """The report's section on ordinary agent runs (absent from older JSON files)."""
    if part is None:
        return []
    s = part["summary"]
    rows = ["| kind | runs | runs with a strike | strikes |", "|---|---:|---:|---:|"]
    for kind, k in s["by_kind"].items():
        rows.append(f"| {kind} | {k['runs']} | {k['runs_with_strikes']} | {k['strikes']} |")
    rows.append(
        f"| **total** | **{s['runs']}** | **{s['false_alarm_runs']}** "
        f"| **{s['false_alarm_strikes']}** |"
    )
    alarms = [
        f"- {a['task']} ({a['variant']}): {', '.join(a['detectors'])}: {'; '.join(a['windows'])}"
        for a in s["false_alarms"]
    ]
    c = s["control"]
    checked = (
        "all of them succeeded and their checkers accepted the outcome"
        if s["all_succeeded_and_checked"]
        else "NOT all of them succeeded with an accepted outcome (see the rows in the JSON)"
    )
    lines = [
        "## Ordinary agent runs: loop-detector false alarms",
        "",
        f"The {s['tasks']} tasks of the ladder's task suite, each run by its reference "
        "solution through `ScriptedModel` in a real `Agent` (real tools, real run store, "
        f"the runtime's own detectors), in {len(s['variants'])} variants: "
        f"{' and '.join(s['variants'])}; {checked}. None of them loops, so every strike "
        "is a false alarm.",
        "",
        *rows,
        "",
        *(alarms or ["No replayed run earned a strike."]),
        "",
        f"Control (a run that does loop: {c['variant']}): {c['strikes']} strike(s) "
        f"({', '.join(c['detectors']) or 'none'}), so the count does see strikes.",
    ]
    if s.get("recorded") is not None:
        lines += ["", f"Recorded runs of `{part['runs_db']}`, re-observed by a fresh "
                  "`LoopDetector` (these may loop for real):", "",
                  "| status | runs | flagged now | flagged when recorded |",
                  "|---|---:|---:|---:|"]  # fmt: skip
        for status, r in s["recorded"]["by_status"].items():
            lines.append(
                f"| {status} | {r['runs']} | {r['flagged_now']} | {r['flagged_when_recorded']} |"
            )
        strikes = s["recorded"].get("strikes", [])
        if strikes:
            lines += [
                "",
                "Every strike recorded in those runs, with what it saw (for review: each is "
                "a real loop or a false alarm):",
                "",
                "| run | status | step | detector | what repeated |",
                "|---|---|---:|---|---|",
            ]
            for k in strikes[:40]:
                seen = k["window"].replace("|", "\\|").replace("\n", " ")
                lines.append(
                    f"| {k['name']} | {k['status']} | {k['step']} | {k['detector']} | `{seen}` |"
                )
    return [*lines, ""]


# -- reports -----------------------------------------------------------------------------------


def render_markdown(payload: dict[str, Any]) -> str:
    st, env = payload["settings"], payload["environment"]
    s_loop, s_norm = payload["summary"]["loops"], payload["summary"]["normal"]
    loop_rows = [
        "| prompt | what | without: tokens | s | with: tokens | s | caught by | saved | ratio |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in payload["loops"]:
        w, d = r["without"], r["with_detector"]
        ratio = f"{r['tokens_ratio']:.1f}x" if r["tokens_ratio"] else "-"
        loop_rows.append(
            f"| {r['key']} | {r['note']} | {w['tokens']} | {w['seconds']:.2f} "
            f"| {d['tokens']} | {d['seconds']:.2f} | {r['strike_kind'] or '**missed**'} "
            f"| {r['saved']} ({r['saved_share']:.0%}) | {ratio} |"
        )
    loop_rows.append(
        f"| **total** | | **{s_loop['tokens_without']}** | **{s_loop['seconds_without']:.1f}** "
        f"| **{s_loop['tokens_with']}** | **{s_loop['seconds_with']:.1f}** "
        f"| {s_loop['caught']}/{s_loop['prompts']} "
        f"| **{s_loop['tokens_saved']} ({s_loop['tokens_saved_share']:.0%})** "
        f"| {s_loop['tokens_ratio']:.1f}x |"
    )
    normal_rows = [
        "| prompt | what | tokens | generation s | feed ms | pieces | µs/piece "
        "| µs/piece replayed | overhead | trip |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in payload["normal"]:
        g = r["generation"]
        per = r["feed_seconds"] / r["feed_calls"] * 1e6 if r["feed_calls"] else 0.0
        replayed = r["replay_seconds"] / r["feed_calls"] * 1e6 if r["feed_calls"] else 0.0
        normal_rows.append(
            f"| {r['key']} | {r['note']} | {g['tokens']} | {g['seconds']:.2f} "
            f"| {r['feed_seconds'] * 1e3:.2f} | {r['feed_calls']} | {per:.1f} "
            f"| {replayed:.1f} | {r['overhead']:.3%} "
            f"| {'**false trip**' if r['tripped'] else 'none'} |"
        )
    normal_rows.append(
        f"| **total** | | {s_norm['tokens']} | {s_norm['generation_seconds']:.1f} "
        f"| {s_norm['feed_seconds'] * 1e3:.2f} | {s_norm['feed_calls']} "
        f"| {s_norm['microseconds_per_feed']:.1f} "
        f"| {s_norm['microseconds_per_feed_replayed']:.1f} | **{s_norm['overhead']:.3%}** "
        f"| {len(s_norm['false_trips'])} |"
    )
    v = env["versions"]
    return "\n".join(
        [
            "# Streaming repetition detector: tokens saved and what it costs",
            "",
            f"`{env['model']}` ({env['model_parameters'] / 1e6:.0f}M parameters) on llama.cpp, "
            f"greedy (temperature 0, seed {st['seed']}), max_tokens {st['max_tokens']}, "
            f"{env['threads']} thread(s). Each loop prompt is generated twice with the same "
            "sampling, without and with `StreamDetector(DetectorConfig())` on `on_token` "
            "(stop at the first strike); seconds are llama.cpp's time for the generation "
            "alone (the prompt was put in the KV cache by an untimed call first).",
            "",
            "## Prompts that loop",
            "",
            *loop_rows,
            "",
            "## Ordinary generations: overhead and false trips",
            "",
            *normal_rows,
            "",
            *_verdict(payload),
            "",
            *render_ordinary(payload.get("ordinary")),
            f"Machine: {env['processor']}, {env['cpu_count']} CPUs, {env['platform']}; Python "
            f"{env['python']}; agentkit {v['agentkit']}, llama-cpp-python "
            f"{v['llama_cpp_python']}; load average at start "
            f"{', '.join(f'{x:.2f}' for x in env['load_average_at_start'])}.",
            "",
            f"Rerun: `.venv/bin/python -m bench.detectors --threads {env['threads']}` (every "
            "row, with the head and tail of each generation, in `detectors.json`).",
            "",
        ]
    )


def _verdict(payload: dict[str, Any]) -> list[str]:
    s_loop, s_norm = payload["summary"]["loops"], payload["summary"]["normal"]
    rows = {r["key"]: r for r in payload["loops"]}
    min_span = payload["settings"]["detector"]["stream_min_span"]
    missed = [rows[key] for key in s_loop["missed"]]
    missed_text = (
        "Every looping prompt was caught."
        if not missed
        else f"Missed ({len(missed)}): " + "; ".join(_why_missed(r, min_span) for r in missed) + "."
    )
    trips = s_norm["false_trips"]
    trip_text = (
        f"None of the {s_norm['prompts']} ordinary generations tripped it."
        if not trips
        else f"{len(trips)} of the {s_norm['prompts']} ordinary generations tripped it: "
        + "; ".join(f"{t['key']}: {t['summary']}" for t in trips)
        + "."
    )
    met = "under" if s_norm["overhead_met"] else "NOT under"
    prefix = (
        "every stopped text is a prefix of the full one, so the detector changed nothing "
        "before its strike"
        if s_loop["all_prefixes_match"]
        else "some stopped texts are NOT a prefix of the full one (see same_prefix in the JSON)"
    )
    return [
        f"Without the detector, {s_loop['ran_to_max_tokens_without_detector']} of the "
        f"{s_loop['prompts']} loop prompts ran to max_tokens. With it, {s_loop['caught']} were "
        f"stopped, after a median of {s_loop['median_trip_tokens']:.0f} tokens "
        f"({s_loop['median_trip_chars']:.0f} characters): tokens generated fell from "
        f"{s_loop['tokens_without']} to {s_loop['tokens_with']} "
        f"({s_loop['tokens_saved_share']:.0%} saved over all {s_loop['prompts']}, "
        f"{s_loop['caught_tokens_saved_share']:.0%} over the caught ones) and generation time "
        f"from {s_loop['seconds_without']:.1f} s to {s_loop['seconds_with']:.1f} s "
        f"({s_loop['seconds_saved_share']:.0%}); {prefix}. {missed_text} "
        f"On ordinary text, time inside `feed` was {s_norm['overhead']:.2%} of generation "
        f"time (worst prompt {s_norm['max_overhead']:.2%}), {met} the "
        f"{s_norm['overhead_target']:.0%} target: {s_norm['microseconds_per_feed']:.0f} µs per "
        f"piece between tokens, against {s_norm['microseconds_per_feed_replayed']:.1f} µs when "
        "the same pieces are replayed in a tight loop (the gap is most likely cold CPU caches "
        f"after each token's llama.cpp work). {trip_text} The machine was shared with another "
        "benchmark, so the seconds are noisy; the token counts are exact and repeat on a "
        "rerun with the same thread count.",
    ]


def _why_missed(row: dict[str, Any], min_span: int) -> str:
    """A loop the detector let run to max_tokens, and the likely reason, from its numbers."""
    w = row["without"]
    per_token = w["chars"] / w["tokens"] if w["tokens"] else 0.0
    said = (
        f"{row['key']} ({w['tokens']} tokens, {w['chars']} characters, compresses "
        f"{row['compression']:.1f}x)"
    )
    if per_token < 1.5:
        return (
            f"{said}: {per_token:.2f} characters per token (multi-token characters such as "
            f"emoji), so max_tokens came before the {min_span} characters of exact repetition "
            "the period check needs"
        )
    return (
        f"{said}: it loops with its wording varied, so no exact period repeats, its lines "
        "differ, and its word window keeps too many distinct n-grams"
    )


def render_chart(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loops = list(reversed(payload["loops"]))
    normal = list(reversed(payload["normal"]))
    ordinary = payload.get("ordinary")
    if ordinary is None:
        fig, (left, right) = plt.subplots(
            1, 2, figsize=(13, 5.2), gridspec_kw={"width_ratios": [3, 2]}
        )
    else:
        fig, (left, right, third) = plt.subplots(
            1, 3, figsize=(17, 5.2), gridspec_kw={"width_ratios": [3, 2, 1.6]}
        )
        _ordinary_panel(third, ordinary["summary"])
    ys = list(range(len(loops)))
    left.barh(
        [y + 0.2 for y in ys],
        [r["without"]["tokens"] for r in loops],
        height=0.4,
        color="#a0aec0",
        label="without detector",
    )
    left.barh(
        [y - 0.2 for y in ys],
        [r["with_detector"]["tokens"] for r in loops],
        height=0.4,
        color="#2b6cb0",
        label="with detector",
    )
    left.set_yticks(ys, [r["key"] + ("" if r["tripped"] else " (missed)") for r in loops])
    left.set_xlabel(f"completion tokens (max_tokens = {payload['settings']['max_tokens']})")
    left.set_title("Prompts that loop: tokens generated")
    for y, r in zip(ys, loops, strict=True):
        left.text(
            r["with_detector"]["tokens"] + 6,
            y - 0.2,
            f"{r['with_detector']['tokens']} (-{r['saved_share']:.0%})" if r["tripped"] else "",
            va="center",
            fontsize=7,
        )
    left.set_xlim(0, payload["settings"]["max_tokens"] * 1.4)
    left.legend(loc="lower right", fontsize=8)
    target = payload["summary"]["normal"]["overhead_target"] * 100
    right.barh(
        [r["key"] for r in normal],
        [r["overhead"] * 100 for r in normal],
        color=["#c53030" if r["tripped"] else "#2b6cb0" for r in normal],
    )
    right.axvline(target, color="#c53030", linestyle="--", linewidth=1)
    right.text(target, len(normal) - 0.4, f" target {target:.0f}%", color="#c53030", fontsize=8)
    right.set_xlim(0, target * 1.3)
    right.set_xlabel("time in StreamDetector.feed / generation time (%)")
    right.set_title("Ordinary generations: detector overhead")
    fig.suptitle(f"{payload['environment']['model']}, greedy", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _ordinary_panel(ax: Any, summary: dict[str, Any]) -> None:
    kinds = list(summary["by_kind"])
    runs = [summary["by_kind"][k]["runs"] for k in kinds]
    flagged = [summary["by_kind"][k]["runs_with_strikes"] for k in kinds]
    ax.barh(kinds, runs, color="#a0aec0", label="replayed runs")
    ax.barh(kinds, flagged, color="#c53030", label="runs with a strike (false alarms)")
    for y, (n, f) in enumerate(zip(runs, flagged, strict=True)):
        ax.text(n + 0.5, y, f"{f}/{n}", va="center", fontsize=8)
    ax.set_xlim(0, max(runs, default=1) * 1.3)
    ax.set_xlabel("runs")
    ax.set_title("Ordinary runs: false alarms")
    ax.legend(loc="lower right", fontsize=7)


def write_reports(payload: dict[str, Any], out: Path, *, rewrite_json: bool = True) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if rewrite_json:
        path = out / "detectors.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(path)
    (out / "detectors.md").write_text(render_markdown(payload), encoding="utf-8")
    render_chart(payload, out / "detectors.png")


# -- command line ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.detectors",
        description="Tokens the streaming repetition detector saves, and what it costs.",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=1, help="llama.cpp threads (default 1: a shared machine)"
    )
    parser.add_argument(
        "--ordinary-only",
        action="store_true",
        help="only replay ordinary agent runs through the loop detector (no model) and "
        "update that part of detectors.json",
    )
    parser.add_argument(
        "--runs-db", type=Path, help="also re-observe the recorded runs of this run store"
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite detectors.md and detectors.png from detectors.json without generating",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.report_only:
        recorded = json.loads((args.out / "detectors.json").read_text(encoding="utf-8"))
        write_reports(recorded, args.out, rewrite_json=False)
        return 0
    if args.ordinary_only:
        recorded = json.loads((args.out / "detectors.json").read_text(encoding="utf-8"))
        recorded["ordinary"] = ordinary_part(args.runs_db)
        write_reports(recorded, args.out)
        print(ordinary_line(recorded["ordinary"]), file=sys.stderr)
        return 0
    config = LlamaConfig(n_ctx=2048, n_threads=args.threads, seed=args.seed)
    model = get_model(args.model, config)
    env = environment(model, config)
    sampling = Sampling(temperature=0.0, seed=args.seed, max_tokens=args.max_tokens)
    started = time.perf_counter()
    loops: list[LoopRow] = []
    for i, prompt in enumerate(LOOP_PROMPTS, 1):
        loops.append(run_loop(model, prompt, sampling))
        print(loop_progress(i, len(LOOP_PROMPTS), loops[-1]), file=sys.stderr, flush=True)
    normal: list[NormalRow] = []
    for i, prompt in enumerate(NORMAL_PROMPTS, 1):
        normal.append(run_normal(model, prompt, sampling))
        print(normal_progress(i, len(NORMAL_PROMPTS), normal[-1]), file=sys.stderr, flush=True)
    env["load_average_at_end"] = list(os.getloadavg())
    env["wall_seconds"] = time.perf_counter() - started
    payload: dict[str, Any] = {
        "benchmark": "streaming repetition detector: tokens saved on loops, overhead on "
        "ordinary text",
        "settings": {
            "max_tokens": args.max_tokens,
            "temperature": 0.0,
            "seed": args.seed,
            "detector": DetectorConfig().model_dump(mode="json"),
        },
        "environment": env,
        "summary": summarise(loops, normal),
        "loops": [_loop_json(r) for r in loops],
        "normal": [_normal_json(r) for r in normal],
        "ordinary": ordinary_part(args.runs_db),
    }
    write_reports(payload, args.out)
    s_loop, s_norm = payload["summary"]["loops"], payload["summary"]["normal"]
    print(
        f"loops: {s_loop['tokens_without']} -> {s_loop['tokens_with']} tokens "
        f"({s_loop['tokens_saved_share']:.0%} saved), caught {s_loop['caught']}/"
        f"{s_loop['prompts']}; overhead on ordinary text {s_norm['overhead']:.3%}, "
        f"false trips {len(s_norm['false_trips'])}; wrote {args.out}/detectors.{{json,md,png}}",
        file=sys.stderr,
    )
    print(ordinary_line(payload["ordinary"]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
