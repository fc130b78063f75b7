"""The run store: where every run is written as it goes, and what every watcher reads.

``Store`` is the contract every store keeps. ``RunStore`` is an embedded SQLite database
(WAL mode), the default; ``PostgresRunStore`` is one PostgreSQL database shared by many
machines (``pip install 'agentkit[postgres]'``). ``open_store`` opens either from a path
or a ``postgresql://`` URL. The rows they hand out (``RunRow``, ``StepRow``) are plain
frozen data; events are in ``agentkit.events``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._open import StoreSpec, is_store, open_store
from ._pg_local import TemporaryPostgres
from ._protocol import Store
from ._rows import (
    CONTROL_COMMANDS,
    Batch,
    Control,
    RunRow,
    StepRow,
    ToolResult,
    control_problem,
    default_db_path,
    default_store_spec,
    is_store_url,
)
from ._sqlite import SCHEMA_VERSION, RunStore

if TYPE_CHECKING:
    from ._postgres import PostgresRunStore

__all__ = [
    "CONTROL_COMMANDS",
    "SCHEMA_VERSION",
    "Batch",
    "Control",
    "PostgresRunStore",
    "RunRow",
    "RunStore",
    "StepRow",
    "Store",
    "StoreSpec",
    "TemporaryPostgres",
    "ToolResult",
    "control_problem",
    "default_db_path",
    "default_store_spec",
    "is_store",
    "is_store_url",
    "open_store",
]


def __getattr__(name: str) -> Any:
    # psycopg is an optional dependency: it loads with the PostgreSQL store, on first use.
    if name == "PostgresRunStore":
        from ._postgres import PostgresRunStore

        return PostgresRunStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
