"""Shared fixtures. Unit tests never load a real model: that is what the scripted model is
for, and a guard below makes an accidental real load fail loudly. Tests marked
``integration`` get the real GGUF files through the catalog (pulled by `make test`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentkit.store import RunStore, TemporaryPostgres


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test writes to the user's real run database."""
    monkeypatch.setenv("AGENTKIT_DB", str(tmp_path / "default-runs.db"))


@pytest.fixture(autouse=True)
def _no_real_models_in_unit_tests(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if request.node.get_closest_marker("integration") is not None:
        return
    try:
        import llama_cpp
    except ImportError:  # pragma: no cover - the backend is a hard dependency
        return

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError(
            "a unit test tried to load a real model; use "
            "agentkit.testing.ScriptedModel or mark the test integration"
        )

    monkeypatch.setattr(llama_cpp.Llama, "__init__", refuse)
    # LlamaCppModel loads weights through the raw binding (agentkit.models._llama_vocab).
    monkeypatch.setattr(llama_cpp, "llama_model_load_from_file", refuse)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    s = RunStore(tmp_path / "runs.db")
    yield s
    s.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[TemporaryPostgres]:
    """A PostgreSQL server of the tests' own (as root, it runs as the postgres user)."""
    with TemporaryPostgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: TemporaryPostgres) -> Iterator[str]:
    """The URL of a new, empty database on the tests' server, dropped afterwards."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url.rsplit("/", 1)[1])
