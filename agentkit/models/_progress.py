"""Progress of long copies (model downloads, hashing): a quiet base and a text bar."""

from __future__ import annotations

import sys
import time
from typing import IO


class ProgressReporter:
    """Receives the progress of long copies. This base reports nothing (quiet mode);
    ``TextProgress`` draws a bar, and tests pass their own recorder."""

    def start(self, label: str, total: int | None) -> None:
        """A new task of ``total`` bytes begins (None when unknown)."""

    def advance(self, n: int, status: str = "") -> None:
        """``n`` more bytes are done; ``status`` is a short note such as "part 3/22"."""

    def finish(self) -> None:
        """The current task is over, successfully or not."""


class TextProgress(ProgressReporter):
    """``label [#####.....] 123.4/491.4 MB  25% part 3/6`` on one redrawn line."""

    def __init__(self, stream: IO[str] | None = None, width: int = 28) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.label, self.done, self.status = "", 0, ""
        self.total: int | None = None
        self._last_draw, self._last_pct, self._last_text = 0.0, -1, ""
        # Without a terminal (CI logs) a redrawn line would become thousands of lines,
        # so print a fresh line every 10% instead.
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def start(self, label: str, total: int | None) -> None:
        self.label, self.total, self.done, self.status = label, total, 0, ""
        self._last_pct = -1
        self._draw(force=True)

    def advance(self, n: int, status: str = "") -> None:
        self.done += n
        changed = bool(status) and status != self.status
        if changed:
            self.status = status
        self._draw(force=changed)

    def finish(self) -> None:
        self._draw(force=True)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, *, force: bool) -> None:
        now = time.monotonic()
        pct = int(100 * self.done / self.total) if self.total else 0
        if self.tty:
            if not force and now - self._last_draw < 0.1:
                return
        elif not force and pct // 10 == self._last_pct // 10:
            return
        self._last_draw, self._last_pct = now, pct
        done_mb = self.done / 1e6
        if self.total:
            filled = min(self.width, self.width * self.done // self.total)
            bar = "#" * filled + "." * (self.width - filled)
            text = f"{self.label} [{bar}] {done_mb:,.1f}/{self.total / 1e6:,.1f} MB {pct:3d}%"
        else:
            text = f"{self.label} {done_mb:,.1f} MB"
        if self.status:
            text += f" {self.status}"
        if text == self._last_text:
            return
        self._last_text = text
        self.stream.write(f"\r{text}\x1b[K" if self.tty else text + "\n")
        self.stream.flush()
