"""Rows of the run store turned into ``RunRow`` and ``StepRow``, tolerating bad values.

The store's JSON columns are written by agentkit, but the database is a plain SQLite
file (or PostgreSQL database) that anything can edit (or damage). One unreadable value
must not make a whole listing, ``runs show`` or the monitor fail: the field is shown
empty and a warning says which run and column it was.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Protocol

from ._lease import derived_status
from ._rows import RunRow, StepRow

__all__ = ["Row", "run_row", "step_row"]

_log = logging.getLogger("agentkit.store")


class Row(Protocol):
    """A database row read by column name (``sqlite3.Row``, a psycopg ``dict_row``)."""

    def __getitem__(self, key: str, /) -> Any: ...


def _decoded(r: Row, column: str, kind: type, where: str) -> Any:
    """Column ``column`` decoded from JSON if it holds a ``kind``; None, with a warning, if not."""
    raw = r[column]
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, TypeError) as exc:
        _log.warning("%s: %s is not valid JSON (%s); shown empty", where, column, exc)
        return None
    if not isinstance(value, kind):
        _log.warning(
            "%s: %s holds a JSON %s, not the %s it should; shown empty",
            where,
            column,
            type(value).__name__,
            kind.__name__,
        )
        return None
    return value


def _object(r: Row, column: str, where: str) -> dict[str, Any]:
    value = _decoded(r, column, dict, where)
    return value if value is not None else {}


def _array(r: Row, column: str, where: str) -> list[Any]:
    value = _decoded(r, column, list, where)
    return value if value is not None else []


def _tiers(r: Row, where: str) -> dict[str, int]:
    tiers = _object(r, "tiers_json", where)
    try:
        return {str(k): int(v) for k, v in tiers.items()}
    except (TypeError, ValueError):
        _log.warning("%s: tiers_json holds a count that is not a number; shown empty", where)
        return {}


def run_row(r: Row) -> RunRow:
    """A ``runs`` row; bad JSON in it is blanked with a warning."""
    where = f"run {r['id']}"
    return RunRow(
        id=r["id"],
        name=r["name"],
        task=r["task"],
        status=derived_status(r["status"], r["owner"], r["heartbeat"], r["pid"], r["updated_at"]),
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        finished_at=r["finished_at"],
        answer=r["answer"],
        error=r["error"],
        current_node=r["current_node"],
        steps=r["steps"],
        prompt_tokens=r["prompt_tokens"],
        cached_tokens=r["cached_tokens"],
        completion_tokens=r["completion_tokens"],
        model_seconds=r["model_seconds"],
        compute=r["compute"],
        tiers=_tiers(r, where),
        escalations=r["escalations"],
        alerts=r["alerts"],
        graph=_object(r, "graph_json", where),
        config=_object(r, "config_json", where),
        totals=_object(r, "totals_json", where),
    )


def step_row(r: Row) -> StepRow:
    """A ``steps`` row; bad JSON in its calls is blanked with a warning."""
    return StepRow(
        run_id=r["run_id"],
        idx=r["idx"],
        node=r["node"],
        kind=r["kind"],
        model=r["model"],
        tier=r["tier"],
        prompt_tokens=r["prompt_tokens"],
        cached_tokens=r["cached_tokens"],
        evaluated_tokens=r["evaluated_tokens"],
        completion_tokens=r["completion_tokens"],
        seconds=r["seconds"],
        compute=r["compute"],
        started_at=r["started_at"],
        finished_at=r["finished_at"],
        content=r["content"],
        tool_calls=_array(r, "tool_calls_json", f"run {r['run_id']} step {r['idx']}"),
        next_node=r["next_node"],
        state_json=r["state_json"],
    )


# -- and back: a step and the run's totals as SQL parameters --------------------------------

STEP_INSERT = (
    "INSERT OR REPLACE INTO steps(run_id, idx, node, kind, model, tier, prompt_tokens,"
    " cached_tokens, evaluated_tokens, completion_tokens, seconds, compute, started_at,"
    " finished_at, content, tool_calls_json, next_node, state_json)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
TOTALS_UPDATE = (
    "UPDATE runs SET steps = ?, prompt_tokens = ?, cached_tokens = ?, completion_tokens = ?,"
    " model_seconds = ?, compute = ?, tiers_json = ?, escalations = ?, alerts = ?,"
    " totals_json = ?, updated_at = ?, current_node = ? WHERE id = ?"
)


def step_values(step: StepRow) -> tuple[Any, ...]:
    return (
        step.run_id,
        step.idx,
        step.node,
        step.kind,
        step.model,
        step.tier,
        step.prompt_tokens,
        step.cached_tokens,
        step.evaluated_tokens,
        step.completion_tokens,
        step.seconds,
        step.compute,
        step.started_at,
        step.finished_at,
        step.content,
        json.dumps(step.tool_calls, default=str),
        step.next_node,
        step.state_json,
    )


def totals_values(step: StepRow, totals: dict[str, Any]) -> tuple[Any, ...]:
    """The runs row's copy of the runtime's totals (it counts nothing itself)."""
    return (
        step.idx,
        totals.get("prompt_tokens", 0),
        totals.get("cached_tokens", 0),
        totals.get("completion_tokens", 0),
        totals.get("model_seconds", 0.0),
        totals.get("compute", 0.0),
        json.dumps(totals.get("tier_steps", {})),
        totals.get("escalations", 0),
        totals.get("strikes", 0),
        json.dumps(totals),
        time.time(),
        step.next_node,
        step.run_id,
    )
