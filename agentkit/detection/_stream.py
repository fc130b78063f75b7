"""Stop a generation early when its text degenerates into a loop.

Small models sometimes fall into a loop ("the the the ...", the same sentence or line
again and again, one JSON array item repeated) and would burn tokens until max_tokens.
``StreamDetector`` is fed each generated piece and trips once, with a Strike, as soon as
the text has clearly looped. Three cheap checks, each looking only at recent text:

- period: the tail of the text is an exact repetition of a unit of 1 to
  ``stream_max_period`` characters (found with ``str.rfind`` of the last few characters
  and confirmed with one slice comparison, every ``stream_check_every`` characters);
- line: the last few lines hold only one or two distinct lines (list markers removed,
  so "1. I will ..." / "2. I will ..." count as the same line);
- n-gram: the last words of prose are mostly the same few word n-grams (a loop with
  small variations that no exact period catches).

Code (``` fences, lines indented by 4 spaces or a tab) and markdown tables repeat by
nature, so there only the period and line checks run, comparing lines exactly and with
much higher thresholds: a line repeated 30 times still trips, twenty similar lines of
code do not. Separators (rows of dashes, equals signs, box-drawing lines) repeat by
nature too: a repetition made only of them trips only past ``stream_rule_min_span``.

Cost: every piece is appended to a bounded tail and split into lines and words (O(piece));
the period check runs every ``stream_check_every`` characters and costs a few ``rfind``
calls and slice comparisons in C. About 1 µs per character in CPython.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from collections.abc import Hashable
from typing import Generic, TypeVar

from ._config import DetectorConfig, Strike, clip

__all__ = ["StreamDetector"]

_KEY = 8
"""Characters at the very end searched for earlier in the text to propose periods."""
_MAX_CANDIDATES = 16
"""Periods tried per check; repetitive-but-legitimate text (indentation) offers many."""
_LINE_CAP = 400
"""Characters of a line kept for comparison; a longer line is a loop only if the period
check sees it."""
_WORD_CAP = 64
_FENCE = ("```", "~~~")
_LIST_MARKER = re.compile(r"^(?:(?:[-*+•>]|\d{1,4}[.)]|#{1,6}|\[[ xX]\])\s+)+")
_PUNCT = "\"'`.,;:!?()[]{}<>*_-|"
_NUMBER = re.compile(r"\b\d+\b")
# What rules and dividers are drawn with: ASCII separators and the box-drawing block.
_RULE_CHARS = frozenset("-=_*~+#|:") | frozenset(map(chr, range(0x2500, 0x2580)))
_SENTENCE_WORDS = 3
"""Alphabetic words a line needs before its standalone numbers are ignored: "Step 4: read
the file." loops with a counter, while "- file_4.txt" or a JSON data row differ by it."""

T = TypeVar("T", bound=Hashable)


class _CountingWindow(Generic[T]):
    """The last ``size`` items with their counts, updated in O(1) per item."""

    __slots__ = ("_counts", "_items")

    def __init__(self, size: int) -> None:
        self._items: deque[T] = deque(maxlen=size)
        self._counts: Counter[T] = Counter()

    def push(self, item: T) -> None:
        if len(self._items) == self._items.maxlen:
            old = self._items[0]
            self._counts[old] -= 1
            if not self._counts[old]:
                del self._counts[old]
        self._items.append(item)
        self._counts[item] += 1

    @property
    def full(self) -> bool:
        return len(self._items) == self._items.maxlen

    @property
    def distinct(self) -> int:
        return len(self._counts)

    def __len__(self) -> int:
        return len(self._items)

    def most_common(self) -> T:
        return self._counts.most_common(1)[0][0]

    def clear(self) -> None:
        self._items.clear()
        self._counts.clear()


class StreamDetector:
    """Watches one generation piece by piece and trips once when its text loops.

    Feed every generated piece to ``feed``; the first Strike it returns means "stop this
    generation". Afterwards ``strike`` holds it and ``feed`` returns None. Call ``reset``
    (or make a new detector) before the next generation.
    """

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        c = self.config
        # Enough tail for the longest repetition any check may need to confirm.
        longest = max(
            c.stream_min_span,
            c.stream_fenced_min_span,
            c.stream_rule_min_span,
            c.stream_max_period * max(c.stream_min_repeats, c.stream_fenced_min_repeats),
        )
        self._keep = longest + _KEY
        self._prose_lines: _CountingWindow[str] = _CountingWindow(c.stream_line_window)
        self._counted_lines: _CountingWindow[str] = _CountingWindow(c.stream_numbered_line_window)
        self._code_lines: _CountingWindow[str] = _CountingWindow(c.stream_fenced_line_window)
        self._grams: _CountingWindow[tuple[str, ...]] = _CountingWindow(
            c.stream_word_window - c.stream_ngram + 1
        )
        self._recent_words: deque[str] = deque(maxlen=max(c.stream_ngram - 1, 1))
        self.reset()

    def reset(self) -> None:
        """Forget everything, ready for a new generation."""
        self.strike: Strike | None = None
        self.chars_seen = 0
        self.pieces_seen = 0
        self._tail = ""
        self._since_check = 0
        self._line = ""
        self._partial_word = ""
        self._in_fence = False
        self._after_structured = False
        self._forget_context()

    @property
    def tripped(self) -> bool:
        """Whether this generation has already looped."""
        return self.strike is not None

    def feed(self, piece: str) -> Strike | None:
        """Take the next generated piece; a Strike the first time the text has looped."""
        if self.strike is not None or "stream_loop" in self.config.disabled or not piece:
            return None
        self.pieces_seen += 1
        self.chars_seen += len(piece)
        self._tail += piece
        if len(self._tail) > 2 * self._keep:
            # Trim in big steps so the copy is paid once per ``_keep`` characters.
            self._tail = self._tail[-self._keep :]
        found = self._scan_lines(piece)
        if found is None:
            self._since_check += len(piece)
            if self._since_check >= self.config.stream_check_every:
                self._since_check = 0
                found = self._check_period()
        if found is not None:
            self.strike = found
        return found

    # --- line and word bookkeeping ---

    def _structured(self) -> bool:
        """Whether the text being written now is code or a table rather than prose."""
        if self._in_fence:
            return True
        if not self._line.strip():
            # At a line break (or in leading spaces) the line just finished decides: a
            # repeated table row has its newline as the last character most of the time.
            return self._after_structured
        return _structured_line(self._line)

    def _scan_lines(self, piece: str) -> Strike | None:
        segments = piece.split("\n")
        last = len(segments) - 1
        for i, segment in enumerate(segments):
            found = None
            if segment:
                if len(self._line) < _LINE_CAP:
                    self._line += segment[: _LINE_CAP - len(self._line)]
                found = self._take_words(segment, ends_line=False)
            if i < last:
                found = found or self._take_words("", ends_line=True) or self._end_line()
            if found is not None:
                return found
        return None

    def _take_words(self, segment: str, ends_line: bool) -> Strike | None:
        text = self._partial_word + segment
        words = text.split()
        if words and not ends_line and not text[-1].isspace():
            self._partial_word = words.pop()[:_WORD_CAP]
        else:
            self._partial_word = ""
        if self._structured():
            return None
        c = self.config
        for raw in words:
            word = raw.strip(_PUNCT).lower()
            if not word:
                continue  # bullets, table bars and lone punctuation carry no content
            if len(self._recent_words) >= c.stream_ngram - 1:
                gram = (*self._recent_words, word)[-c.stream_ngram :]
                # N-grams of numbers alone are data (a matrix of zeros), not a phrase.
                if any(ch.isalpha() for token in gram for ch in token):
                    self._grams.push(gram)
            self._recent_words.append(word)
            grams = self._grams
            if grams.full and grams.distinct <= c.stream_max_ngram_ratio * len(grams):
                common = " ".join(grams.most_common())
                return self._make_strike(
                    kind="ngram",
                    window=self._tail[-120:].strip(),
                    what=f'the same few phrases ("{clip(common, 60)}" ...)',
                    detail={"distinct_ngrams": grams.distinct, "ngrams": len(grams)},
                )
        return None

    def _end_line(self) -> Strike | None:
        raw, self._line = self._line, ""
        line = raw.strip()
        if line.startswith(_FENCE):
            self._in_fence = not self._in_fence
            self._after_structured = False
            self._forget_context()
            return None
        structured = self._in_fence or _structured_line(raw)
        self._after_structured = structured
        if sum(ch.isalnum() for ch in line) < 4:
            return None  # blank lines, braces and short markers neither count nor reset
        if structured:
            # Code and tables: compare exactly; digits and markers are content there.
            self._prose_lines.clear()
            self._counted_lines.clear()
            self._grams.clear()
            self._recent_words.clear()
            return self._line_loop(self._code_lines, " ".join(line.split()), line)
        self._code_lines.clear()
        words = _LIST_MARKER.sub("", line).lower().split()
        return self._line_loop(self._prose_lines, " ".join(words), line) or self._line_loop(
            self._counted_lines, " ".join(_blank_counters(words)), line
        )

    def _line_loop(self, window: _CountingWindow[str], key: str, line: str) -> Strike | None:
        window.push(key)
        if not window.full or window.distinct > self.config.stream_line_max_distinct:
            return None
        return self._make_strike(
            kind="line",
            window=line,
            what=f'the same line ("{clip(line, 60)}")',
            detail={"lines": len(window), "distinct_lines": window.distinct},
        )

    def _forget_context(self) -> None:
        self._prose_lines.clear()
        self._counted_lines.clear()
        self._code_lines.clear()
        self._grams.clear()
        self._recent_words.clear()

    # --- exact periodic tail ---

    def _check_period(self) -> Strike | None:
        c = self.config
        tail = self._tail
        n = len(tail)
        if n <= _KEY:
            return None
        structured = self._structured()
        min_repeats = c.stream_fenced_min_repeats if structured else c.stream_min_repeats
        min_span = c.stream_fenced_min_span if structured else c.stream_min_span
        if n < min_span:
            return None
        key = tail[n - _KEY :]
        start = max(0, n - _KEY - c.stream_max_period)
        end = n - 1
        for _ in range(_MAX_CANDIDATES):
            at = tail.rfind(key, start, end)
            if at < 0:
                return None
            period = n - _KEY - at
            need = max(min_span, min_repeats * period)
            if _is_rule(tail[n - period :]):
                need = max(need, c.stream_rule_min_span)
            # Cheap one-period test first; the full comparison copies ``need`` characters.
            if (
                need <= n
                and tail[n - 2 * period : n - period] == tail[n - period :]
                and tail[n - need + period :] == tail[n - need : n - period]
            ):
                start = _run_start(tail, period, n - need)
                unit = _readable_rotation(tail[start : start + period])
                return self._make_strike(
                    kind="period",
                    window=unit,
                    what=f'the same {period}-character text ("{clip(unit, 60)}")',
                    detail={"period": period, "repeats": (n - start) // period},
                )
            end = at + _KEY - 1
        return None

    def _make_strike(self, kind: str, window: str, what: str, detail: dict[str, int]) -> Strike:
        structured = self._structured()
        return Strike(
            detector="stream_loop",
            message=(
                f"Your reply started repeating {what} over and over; do not repeat it. "
                "Continue with something new or give your final answer."
            ),
            window=clip(window),
            detail={
                "kind": kind,
                "chars": self.chars_seen,
                "pieces": self.pieces_seen,
                "structured": structured,
                **detail,
            },
            summary=(
                f"the generation looped on {what} after {self.chars_seen} characters "
                f"({self.pieces_seen} pieces){' inside code or a table' if structured else ''}"
            ),
        )


def _run_start(text: str, period: int, known: int) -> int:
    """Where the repetition with ``period`` that reaches the end of ``text`` begins.

    ``text[known:]`` is known to repeat; a binary search with slice comparisons finds the
    earliest start, once per strike.
    """
    low, high = 0, known
    while low < high:
        mid = (low + high) // 2
        if text[mid + period :] == text[mid : len(text) - period]:
            high = mid
        else:
            low = mid + 1
    return low


def _readable_rotation(unit: str) -> str:
    """``". I will call the tool"`` -> ``"I will call the tool. "``: start at a word."""
    for i in range(len(unit)):
        if unit[i - 1].isspace() and not unit[i].isspace():
            return unit[i:] + unit[:i]
    return unit


def _blank_counters(words: list[str]) -> list[str]:
    """Sentence-like words with standalone numbers blanked ("step 4: read the file")."""
    if not words or words[0][0] in '{["':
        return words  # a JSON data row: its numbers are its content
    if sum(1 for w in words if w.strip(_PUNCT).isalpha()) < _SENTENCE_WORDS:
        return words
    return [_NUMBER.sub("0", w) for w in words]


def _is_rule(unit: str) -> bool:
    """Whether a repeating unit is drawn only with separator characters (and spaces)."""
    return any(ch in _RULE_CHARS for ch in unit) and all(
        ch in _RULE_CHARS or ch.isspace() for ch in unit
    )


def _structured_line(line: str) -> bool:
    """A markdown table row, a fence line, or a line indented like code (4 spaces, a tab)."""
    head = line.lstrip()
    return line.startswith(("    ", "\t")) or head.startswith("|") or head.startswith(_FENCE)
