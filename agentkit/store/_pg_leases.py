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

from .._errors import ResumeError
from ._lease import check_claim, lease_lost
from ._pg_schema import NAMESPACE

__all__ = ["claim", "release", "renew"]


def claim(cur: Cursor[DictRow], run_id: str, owner: str) -> None:
    """Take the run's lease for ``owner``, unless a live executor holds it."""
    cur.execute(f"SELECT owner, heartbeat FROM {NAMESPACE}.runs WHERE id=%s FOR UPDATE", (run_id,))
    row = cur.fetchone()
    if row is None:
        raise ResumeError("no such run", run_id=run_id)
    check_claim(run_id, owner, row["owner"], row["heartbeat"])
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
        raise lease_lost(run_id, holder["owner"] if holder else None)


def release(cur: Cursor[DictRow], run_id: str, owner: str | None) -> None:
    if owner is not None:
        cur.execute(
            f"UPDATE {NAMESPACE}.runs SET owner=NULL WHERE id=%s AND owner=%s", (run_id, owner)
        )
