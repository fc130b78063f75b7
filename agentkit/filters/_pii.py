"""PII redaction on presidio-analyzer's pattern recognizers, without its NLP engine.

presidio's recognizers for e-mail addresses, phone numbers (python-phonenumbers), card
numbers (Luhn check), IBANs (the ISO 7064 check digits and each country's format) and
IP addresses (validated by ``ipaddress``) work on plain text: they need neither spaCy's
language model nor a download. The e-mail recognizer checks the domain against the
public-suffix list; here that list is the snapshot bundled with tldextract, so checking
never reaches the network (tldextract would otherwise fetch a fresh copy).

presidio (and spaCy, which it imports) load on the first scan, not with agentkit.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable, Sequence
from typing import Any

from .._errors import ConfigError
from ._base import Finding, TextFilter

__all__ = ["PII_ENTITIES", "PIIFilter"]

PII_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS")
"""What ``PIIFilter`` finds by default, by presidio's entity names."""

PHONE_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "CH", "IN", "CA", "AU", "BR")
"""Regions whose national formats are recognised without a +country prefix."""

_INSTALL_HINT = "install the filters extra: pip install 'agentkit[filters]'"


def _require(module: str, what: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"{what} needs the {module} package; {_INSTALL_HINT}")


class PIIFilter(TextFilter):
    """Finds (and by default redacts) e-mails, phone numbers, card numbers, IBANs and
    IP addresses with presidio-analyzer's validated pattern recognizers.

    ``entities`` picks among ``PII_ENTITIES``; ``phone_regions`` are the regions whose
    numbers count without a +country prefix; ``phone_leniency`` is phonenumbers'
    matching leniency (0 possible, 1 valid, 2 strict grouping: the digits grouped as the
    region writes them, which keeps order numbers and room lists out; 3 exact grouping);
    ``min_score`` drops weaker presidio results (its validated recognizers score 0.4-1).
    """

    name = "pii"

    def __init__(
        self,
        entities: Sequence[str] = PII_ENTITIES,
        *,
        phone_regions: Sequence[str] = PHONE_REGIONS,
        phone_leniency: int = 2,
        min_score: float = 0.0,
        **options: Any,
    ) -> None:
        unknown = sorted(set(entities) - set(PII_ENTITIES))
        if unknown:
            raise ConfigError(f"PIIFilter: unknown entities {unknown}; use some of {PII_ENTITIES}")
        _require("presidio_analyzer", "PIIFilter")
        self.entities = tuple(entities)
        self.phone_regions = tuple(phone_regions)
        self.phone_leniency = phone_leniency
        self.min_score = min_score
        self._recognizers: list[Any] | None = None
        self._lock = threading.Lock()
        super().__init__(**options)

    def find(self, text: str) -> list[Finding]:
        found = []
        for recognizer in self._loaded():
            for r in recognizer.analyze(text, entities=recognizer.supported_entities):
                if r.score > self.min_score and r.entity_type in self.entities:
                    found.append(Finding(r.start, r.end, r.entity_type, float(r.score)))
        return found

    def warm_up(self) -> None:
        """Load presidio now instead of on the first scan (about a second)."""
        self._loaded()

    def _loaded(self) -> list[Any]:
        if self._recognizers is None:
            with self._lock:
                if self._recognizers is None:
                    self._recognizers = _recognizers(
                        self.entities, self.phone_regions, self.phone_leniency
                    )
        return self._recognizers


def _recognizers(entities: Sequence[str], regions: Sequence[str], leniency: int) -> list[Any]:
    import tldextract
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
    )

    offline = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class OfflineEmailRecognizer(EmailRecognizer):
        """presidio's e-mail recognizer, its domain check on the bundled suffix list."""

        def validate_result(self, pattern_text: str) -> bool:
            return bool(offline(pattern_text.rpartition("@")[2]).fqdn)

    made: dict[str, Callable[[], Any]] = {
        "EMAIL_ADDRESS": OfflineEmailRecognizer,
        "PHONE_NUMBER": lambda: PhoneRecognizer(
            supported_regions=tuple(regions), leniency=leniency
        ),
        "CREDIT_CARD": CreditCardRecognizer,
        "IBAN_CODE": IbanRecognizer,
        "IP_ADDRESS": IpRecognizer,
    }
    return [made[e]() for e in entities]
