"""The SQL of leases on the SQLite store (see ``_lease`` for what a lease is)."""

from __future__ import annotations

import os
import sqlite3
import time

from .._errors import ResumeError
from ._lease import check_claim, lease_lost

__all__ = ["claim", "release", "renew"]


def claim(tx: sqlite3.Connection, run_id: str, owner: str) -> None:
    """Take the run's lease for ``owner``, unless a live executor holds it."""
    row = tx.execute("SELECT owner, heartbeat FROM runs WHERE id=?", (run_id,)).fetchone()
    if row is None:
        raise ResumeError("no such run", run_id=run_id)
    check_claim(run_id, owner, row["owner"], row["heartbeat"])
    tx.execute(
        "UPDATE runs SET owner=?, heartbeat=?, pid=? WHERE id=?",
        (owner, time.time(), os.getpid(), run_id),
    )


def renew(tx: sqlite3.Connection, run_id: str, owner: str | None) -> None:
    """Keep the lease alive; LeaseLostError if another executor took the run over."""
    if owner is None:
        return
    cur = tx.execute(
        "UPDATE runs SET heartbeat=? WHERE id=? AND (owner=? OR owner IS NULL)",
        (time.time(), run_id, owner),
    )
    if cur.rowcount == 0:
        holder = tx.execute("SELECT owner FROM runs WHERE id=?", (run_id,)).fetchone()
        raise lease_lost(run_id, holder["owner"] if holder else None)


def release(tx: sqlite3.Connection, run_id: str, owner: str | None) -> None:
    if owner is not None:
        tx.execute("UPDATE runs SET owner=NULL WHERE id=? AND owner=?", (run_id, owner))
