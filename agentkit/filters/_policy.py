"""A keyword and regular-expression policy, on the ``regex`` module with a time limit.

Patterns come from the application, and a pattern can backtrack for a very long time on
the wrong input (``(a+)+$``). The ``regex`` module stops a search after ``timeout``
seconds (TimeoutError), which the runtime treats like any failing filter: it fails
closed unless the filter was set to fail open.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._errors import ConfigError
from ._base import Finding, TextFilter
from ._verdict import Action

if TYPE_CHECKING:
    import regex

__all__ = ["RegexPolicy"]


class RegexPolicy(TextFilter):
    """Blocks (or redacts, retries, ...) text matching ``patterns`` or ``keywords``.

    ``patterns`` is a list of regular expressions or a mapping of label to expression
    (the label is what the verdict reports, and the placeholder of a redaction);
    ``keywords`` are matched as whole words. Matching ignores case unless
    ``ignore_case=False``. ``regex_timeout`` bounds each search, in seconds.
    """

    name = "policy"

    def __init__(
        self,
        patterns: Mapping[str, str] | Sequence[str] = (),
        *,
        keywords: Sequence[str] = (),
        ignore_case: bool = True,
        regex_timeout: float = 0.25,
        on_match: Action = "block",
        **options: Any,
    ) -> None:
        import regex  # on first use: it takes longer to import than agentkit itself

        if isinstance(patterns, str) or isinstance(keywords, str):
            raise ConfigError("RegexPolicy takes lists of patterns and keywords, not one string")
        named = (
            dict(patterns)
            if isinstance(patterns, Mapping)
            else {f"PATTERN_{i + 1}": p for i, p in enumerate(patterns)}
        )
        words = [regex.escape(k.strip()) for k in keywords if k.strip()]
        if words:
            named["KEYWORD"] = rf"(?<!\w)(?:{'|'.join(words)})(?!\w)"
        if not named:
            raise ConfigError("RegexPolicy needs at least one pattern or keyword")
        flags = regex.IGNORECASE if ignore_case else 0
        self.regex_timeout = regex_timeout
        self._compiled: list[tuple[str, regex.Pattern[str]]] = []
        problems = []
        for label, pattern in named.items():
            try:
                self._compiled.append((label, regex.compile(pattern, flags)))
            except regex.error as exc:
                problems.append(f"RegexPolicy: pattern {label} ({pattern!r}) is invalid: {exc}")
        if problems:
            raise ConfigError(problems)
        super().__init__(on_match=on_match, **options)

    def find(self, text: str) -> list[Finding]:
        return [
            Finding(m.start(), m.end(), label)
            for label, pattern in self._compiled
            for m in pattern.finditer(text, timeout=self.regex_timeout)
            if m.end() > m.start()
        ]
