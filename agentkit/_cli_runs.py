"""``agentkit runs ...`` and ``agentkit monitor``."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Filled in by the run-store work."""
