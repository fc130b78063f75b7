"""The SQL of leases on the SQLite store (see ``_lease`` for what a lease is)."""

from __future__ import annotations

import os
import sqlite3
import time

from .._errors import LeaseLostError, ResumeError, RunLeasedError
from ._lease import STALE_SECONDS, lease_live

__all__ = ["claim", "release", "renew"]


def claim(tx: sqlite3.Connection, run_id: str, owner: str) -> None:
    """Take the run's lease for ``owner``, unless a live executor holds it."""
    row = tx.execute("SELECT owner, heartbeat FROM runs WHERE id=?", (run_id,)).fetchone()
    if row is None:
        raise ResumeError("no such run", run_id=run_id)
    holder, beat = row["owner"], row["heartbeat"]
    if holder not in (None, owner) and lease_live(holder, beat):
        quiet = time.time() - beat
        raise RunLeasedError(
            f"another executor ({holder}) is running it; its last heartbeat was {quiet:.0f} s "
            f"ago. Wait for it to finish, or, if it is dead, retry once it has been quiet for "
            f"{STALE_SECONDS:.0f} s",
            run_id=run_id,
        )
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
        raise LeaseLostError(
            f"another executor ({holder['owner'] if holder else '?'}) took this run over; "
            "this one stopped without writing its step",
            run_id=run_id,
        )


def release(tx: sqlite3.Connection, run_id: str, owner: str | None) -> None:
    if owner is not None:
        tx.execute("UPDATE runs SET owner=NULL WHERE id=? AND owner=?", (run_id, owner))
