"""Leases: one executor per run, told apart by an owner id and kept alive by heartbeats.

An executor writes its owner id (host, process, a random part) and a heartbeat with the
run, and renews the heartbeat with every step and every few seconds of a long one. A
second executor may take a run over only once the lease is stale: its heartbeat is older
than ``STALE_SECONDS``, or its owner's process is gone from this very host. A run whose
lease is stale while its status still says running shows as ``interrupted``.
"""

from __future__ import annotations

import os
import socket
import time
import uuid

from .._errors import LeaseLostError, RunLeasedError

__all__ = ["HEARTBEAT_SECONDS", "STALE_SECONDS", "derived_status", "lease_live", "new_owner"]

STALE_SECONDS = 30.0
"""A lease with no heartbeat for this long belongs to an executor presumed dead."""
HEARTBEAT_SECONDS = 5.0
"""How often an executor renews its lease while a step runs."""
_HOST = socket.gethostname()


def new_owner() -> str:
    """An owner id for one executor of one run: ``host:pid:random``."""
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, run by someone else
        return True
    except OSError:
        return False
    return True


def lease_live(owner: str | None, heartbeat: float | None, now: float | None = None) -> bool:
    """Whether the lease still belongs to a live executor."""
    if not owner or heartbeat is None:
        return False
    if (now if now is not None else time.time()) - heartbeat >= STALE_SECONDS:
        return False
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host == _HOST and pid.isdigit():
        return _process_alive(int(pid))
    return True


def check_claim(run_id: str, owner: str, holder: str | None, heartbeat: float | None) -> None:
    """RunLeasedError unless ``owner`` may take the lease from ``holder`` (both stores)."""
    if holder in (None, owner) or not lease_live(holder, heartbeat):
        return
    quiet = time.time() - (heartbeat or 0.0)
    raise RunLeasedError(
        f"another executor ({holder}) is running it; its last heartbeat was {quiet:.0f} s "
        f"ago. Wait for it to finish, or, if it is dead, retry once it has been quiet for "
        f"{STALE_SECONDS:.0f} s",
        run_id=run_id,
    )


def lease_lost(run_id: str, holder: str | None) -> LeaseLostError:
    """The error of an executor whose run another one took over (both stores)."""
    return LeaseLostError(
        f"another executor ({holder or '?'}) took this run over; "
        "this one stopped without writing its step",
        run_id=run_id,
    )


def derived_status(
    status: str,
    owner: str | None,
    heartbeat: float | None,
    pid: int | None = None,
    updated_at: float | None = None,
) -> str:
    """``interrupted`` for a run that says it is live but whose executor is gone.

    Runs written before leases existed have no owner: their process id and last update
    stand in for it (a process of this host that is gone, and no write for a while).
    """
    if status not in ("running", "paused"):
        return status
    if owner is not None:
        return status if lease_live(owner, heartbeat) else "interrupted"
    if pid is not None and updated_at is not None and not _process_alive(pid):
        return "interrupted" if time.time() - updated_at >= STALE_SECONDS else status
    return status
