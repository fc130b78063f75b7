"""``agentkit models ...``."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    """Filled in by the catalog work."""
