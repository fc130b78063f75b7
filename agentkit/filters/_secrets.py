"""Secrets and API keys, found by detect-secrets' plugins and its false-positive filters.

detect-secrets knows the shapes of many providers' keys (AWS, GitHub, GitLab, Slack,
Stripe, OpenAI, SendGrid, Twilio, npm, PyPI, JWTs, private keys...), credentials in
assignments (``password = "..."``) and in URLs. It reports the secret's value; the span
redacted here is that value widened to the whole token around it (a GitHub token is
reported by its prefix, a JWT without its signature), and for a private key the whole
PEM block.

Left out on purpose: the high-entropy-string plugins (in free text they flag ordinary
words) and the public-IP plugin (IP addresses are ``PIIFilter``'s). detect-secrets keeps
its settings in a process-wide object, so scans take a lock and set them each time.
"""

from __future__ import annotations

import threading
from typing import Any

from ._base import Finding, TextFilter
from ._pii import _require

__all__ = ["SecretsFilter"]

_LEFT_OUT = frozenset({"Base64HighEntropyString", "HexHighEntropyString", "IPPublicDetector"})
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/=.~")
_lock = threading.Lock()


class SecretsFilter(TextFilter):
    """Finds (and by default redacts) API keys, tokens, private keys and passwords with
    detect-secrets. ``plugins`` names detect-secrets plugin classes to use instead of
    all of them (less the entropy and IP plugins). ``unquoted`` also reads assignments
    without quotes (``password: hunter2``, ``API_SECRET=...``), as detect-secrets'
    keyword plugin does in YAML files, keeping what its heuristic filters let through."""

    name = "secrets"

    def __init__(
        self, *, plugins: list[str] | None = None, unquoted: bool = True, **options: Any
    ) -> None:
        _require("detect_secrets", "SecretsFilter")
        self.plugins = plugins
        self.unquoted = unquoted
        self._config: dict[str, Any] | None = None
        super().__init__(**options)

    def find(self, text: str) -> list[Finding]:
        from detect_secrets.core.scan import scan_line
        from detect_secrets.settings import transient_settings

        found: list[Finding] = []
        offset = 0
        with _lock, transient_settings(self._settings()):
            for line in text.splitlines(keepends=True):
                bare = line.rstrip("\r\n")
                for secret in scan_line(bare):
                    found += _spans(text, line, offset, secret.type, secret.secret_value or "")
                if self.unquoted:
                    for value in _unquoted(bare):
                        found += _spans(text, line, offset, "Secret Keyword", value)
                offset += len(line)
        return found

    def warm_up(self) -> None:
        """Import detect-secrets and its plugins now."""
        self.find("warm up")

    def _settings(self) -> dict[str, Any]:
        if self._config is None:
            from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

            classes: list[type] = list(get_mapping_from_secret_type_to_class().values())
            names = self.plugins or sorted(
                c.__name__ for c in classes if c.__name__ not in _LEFT_OUT
            )
            self._config = {"plugins_used": [{"name": n} for n in names]}
        return self._config


def _unquoted(line: str) -> list[str]:
    """Values of unquoted secret assignments, read as detect-secrets reads a YAML file."""
    from detect_secrets.filters import heuristic
    from detect_secrets.plugins.keyword import KeywordDetector
    from detect_secrets.util.code_snippet import get_code_snippet

    if heuristic.is_indirect_reference(line):
        return []
    context = get_code_snippet(lines=[line], line_number=1)
    found = KeywordDetector().analyze_line(
        filename="adhoc.yaml", line=line, line_number=0, context=context
    )
    return [
        s.secret_value
        for s in found
        if s.secret_value
        and not any(
            rejects(s.secret_value)
            for rejects in (
                heuristic.is_templated_secret,
                heuristic.is_sequential_string,
                heuristic.is_potential_uuid,
                heuristic.is_not_alphanumeric_string,
                heuristic.is_prefixed_with_dollar_sign,
            )
        )
    ]


def _spans(text: str, line: str, offset: int, kind: str, value: str) -> list[Finding]:
    label = "_".join(kind.upper().replace("-", " ").split())  # AWS_ACCESS_KEY
    if kind == "Private Key":
        return [_pem_block(text, offset, label)]
    spans = []
    start = line.find(value) if value else -1
    while start >= 0:
        # Widened to the right only: values are reported from their first character.
        left, right = start, start + len(value)
        while right < len(line) and line[right] in _TOKEN_CHARS:
            right += 1
        while right > start + len(value) and line[right - 1] == ".":  # a sentence's end
            right -= 1
        spans.append(Finding(offset + left, offset + right, label))
        start = line.find(value, right)
    return spans


def _pem_block(text: str, offset: int, label: str) -> Finding:
    """From the -----BEGIN line to the end of its -----END line (or of the text)."""
    begin = text.find("-----BEGIN", offset)
    begin = offset if begin < 0 else begin
    end = text.find("-----END", begin)
    if end < 0:
        return Finding(begin, len(text), label)
    close = text.find("-----", end + len("-----END"))
    return Finding(begin, len(text) if close < 0 else close + 5, label)
