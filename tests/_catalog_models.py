"""The cached catalog models, for tests that need the real files.

A model that is missing (or corrupted) in the cache fails the test that needs it; it
does not skip it. `make test` pulls every catalog model first, so a missing one means
the setup went wrong, and a skip would let a half-finished download pass CI.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentkit._errors import ModelFileError, ModelNotFoundError
from agentkit.models._catalog import resolve_model

__all__ = ["require_model"]


def require_model(name: str) -> Path:
    """The verified cached file of catalog model ``name``; the test fails without it."""
    try:
        return resolve_model(name, pull=False)
    except (ModelNotFoundError, ModelFileError) as exc:
        pytest.fail(
            f"{exc}\nThe tests that run real models need every catalog model in the cache: "
            "run `make models-all` (it pulls and verifies them).",
            pytrace=False,
        )
