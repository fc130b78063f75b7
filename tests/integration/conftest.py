"""Integration tests load real GGUF models; every test here carries the marker.

Every catalog model must be in the cache (`make models-all`): a missing or corrupted one
fails the tests here instead of skipping them, so a half-finished download cannot pass CI,
and no test starts a download of its own.

The ``llama_servers`` fixture runs real llama-server processes (built by `make llama-tools`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _catalog_models import require_model

from agentkit import ModelError
from agentkit.models import LlamaServer, list_models, llama_tool


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def _catalog_models_cached() -> None:
    """Fail (never skip) when a catalog model is not in the cache, naming the fix."""
    for entry in list_models():
        require_model(entry.name)


# -- a real llama-server -----------------------------------------------------------------


class LlamaServers:
    """llama-server processes started on 127.0.0.1 on first use, one per model and
    option set, all stopped when the session ends."""

    def __init__(self) -> None:
        self._running: dict[tuple[str, tuple[str, ...]], LlamaServer] = {}

    def get(self, model: str, *extra_args: str, fresh: bool = False) -> LlamaServer:
        """The server for ``model`` (a new one, never shared, with ``fresh``)."""
        try:
            llama_tool("llama-server")
        except ModelError as exc:
            # Not a skip: `make test` builds the binaries, so missing ones are a setup bug.
            pytest.fail(str(exc), pytrace=False)
        key = (model, tuple(extra_args))
        if fresh or key not in self._running:
            # One thread: on shared cores llama.cpp threads that wait on each other stall badly.
            server = LlamaServer(model, slots=2, context=4096, threads=1, extra_args=extra_args)
            server.start()
            if fresh:
                self._running[(model, (*extra_args, str(id(server))))] = server
                return server
            self._running[key] = server
        return self._running[key]

    def stop_all(self) -> None:
        for server in self._running.values():
            server.stop()
        self._running.clear()


@pytest.fixture(scope="session")
def llama_servers() -> Iterator[LlamaServers]:
    """Start real llama-server processes as tests ask for them; stop them all at the end."""
    servers = LlamaServers()
    yield servers
    servers.stop_all()
