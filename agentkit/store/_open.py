"""``open_store``: the one place that turns a path or a URL into a run store."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeGuard

from .._errors import StoreError
from ._protocol import Store
from ._rows import default_store_spec, is_store_url
from ._sqlite import RunStore

__all__ = ["StoreSpec", "is_store", "open_store"]

StoreSpec = Store | str | os.PathLike[str] | None
"""What ``store=``, ``--db`` and ``AGENTKIT_DB`` accept: a store, a path, a URL, or None."""


def is_store(spec: object) -> TypeGuard[Store]:
    """Whether ``spec`` is an open store rather than something that names one."""
    return spec is not None and not isinstance(spec, (str, os.PathLike))


def open_store(spec: StoreSpec = None, *, create: bool = True) -> Store:
    """The run store ``spec`` names.

    ``postgresql://user:password@host:port/dbname`` (or ``postgres://``) opens a shared
    PostgreSQL store (``pip install 'agentkit[postgres]'``); any other string or path a
    SQLite file; None ``$AGENTKIT_DB``, else the default file; a store is returned as it
    is. Without ``create`` the store must exist already.
    """
    if spec is None:
        spec = default_store_spec()
    if not isinstance(spec, (str, os.PathLike)):
        return spec
    if is_store_url(spec):
        return _postgres(str(spec), create)
    return RunStore(Path(spec), create=create)


def _postgres(url: str, create: bool) -> Store:
    try:
        from ._postgres import PostgresRunStore
    except ImportError as exc:
        raise StoreError(
            f"a PostgreSQL run store needs psycopg ({exc.name or exc} is missing); install "
            "it with: pip install 'agentkit[postgres]'"
        ) from exc
    return PostgresRunStore(url, create=create)
