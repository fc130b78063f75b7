"""The SQL of leases on the PostgreSQL store (see ``_lease`` for what a lease is).

A claim locks the run's row (``SELECT ... FOR UPDATE``) before it looks at the lease, so
two executors claiming at once, on one machine or on two, are served one after the
other: the second sees the first's fresh heartbeat and is refused.
"""

from __future__ import annotations

import os
import time

from psycopg import Cursor
from psycopg.rows import DictRow

from .._errors import LeaseLostError, ResumeError, RunLeasedError
from ._lease import STALE_SECONDS, lease_live
from ._pg_schema import NAMESPACE

__all__ = ["claim", "release", "renew"]


def claim(cur: Cursor[DictRow], run_id: str, owner: str) -> None:
    """Take the run's lease for ``owner``, unless a live executor holds it."""
    cur.execute(f"SELECT owner, heartbeat FROM {NAMESPACE}.runs WHERE id=%s FOR UPDATE", (run_id,))
    row = cur.fetchone()
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
    cur.execute(
        f"UPDATE {NAMESPACE}.runs SET owner=%s, heartbeat=%s, pid=%s WHERE id=%s",
        (owner, time.time(), os.getpid(), run_id),
    )


def renew(cur: Cursor[DictRow], run_id: str, owner: str | None) -> None:
    """Keep the lease alive; LeaseLostError if another executor took the run over."""
    if owner is None:
        return
    cur.execute(
        f"UPDATE {NAMESPACE}.runs SET heartbeat=%s WHERE id=%s AND (owner=%s OR owner IS NULL)",
        (time.time(), run_id, owner),
    )
    if cur.rowcount == 0:
        cur.execute(f"SELECT owner FROM {NAMESPACE}.runs WHERE id=%s", (run_id,))
        holder = cur.fetchone()
        raise LeaseLostError(
            f"another executor ({holder['owner'] if holder else '?'}) took this run over; "
            "this one stopped without writing its step",
            run_id=run_id,
        )


def release(cur: Cursor[DictRow], run_id: str, owner: str | None) -> None:
    if owner is not None:
        cur.execute(
            f"UPDATE {NAMESPACE}.runs SET owner=NULL WHERE id=%s AND owner=%s", (run_id, owner)
        )
