"""SQL tools over one SQLite file: ``SqliteDatabase(path).tools()``.

Read-only unless the author passes ``allow_writes=True``, enforced twice: the file is
opened with ``mode=ro``, and an authorizer (``Connection.set_authorizer``) admits only
reading actions, so a write is refused while the statement is still being prepared, with
a message that says what was refused and how the author enables writes. ``ATTACH`` is
refused even with writes on: it opens or creates any file on disk (``VACUUM INTO`` goes
through it as well), and these tools are about one database. A few SQL functions are
refused in every mode: ``fts3_tokenizer()`` hands out (and with two arguments installs) a
raw C pointer, and ``load_extension()`` loads native code; neither is ever a query.

Each call opens its own short-lived connection: tools run in worker threads, and sqlite3
connections belong to the thread that made them.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from agentkit import ConfigError, Tool, ToolError

__all__ = ["SqliteDatabase"]

_READ_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
    # BEGIN/COMMIT/SAVEPOINT change nothing on a read-only connection.
    | {sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT}
)
# Pragmas that only report, whatever their argument (PRAGMA table_info(users)).
_QUERY_PRAGMAS = frozenset(
    {
        "table_info",
        "table_xinfo",
        "table_list",
        "index_info",
        "index_xinfo",
        "index_list",
        "foreign_key_list",
        "foreign_key_check",
        "integrity_check",
        "quick_check",
    }
)
# Pragmas that are settings: reading them (no argument) is fine, setting them is a write.
_SETTING_PRAGMAS = frozenset(
    {
        "user_version",
        "application_id",
        "schema_version",
        "data_version",
        "page_count",
        "page_size",
        "freelist_count",
        "encoding",
        "journal_mode",
        "foreign_keys",
        "database_list",
        "collation_list",
        "compile_options",
        "function_list",
        "module_list",
        "pragma_list",
        "auto_vacuum",
        "max_page_count",
    }
)
# Functions no statement may call, writes or not: fts3_tokenizer('simple') returns the
# address of a C struct (an ASLR leak) and its two-argument form installs one.
_REFUSED_FUNCTIONS = frozenset({"fts3_tokenizer", "load_extension"})
_ACTION_NAMES: dict[int, str] = {
    getattr(sqlite3, f"SQLITE_{name}"): name.replace("_", " ")
    for name in (
        "INSERT",
        "UPDATE",
        "DELETE",
        "CREATE_TABLE",
        "CREATE_INDEX",
        "CREATE_VIEW",
        "CREATE_TRIGGER",
        "CREATE_TEMP_TABLE",
        "CREATE_TEMP_INDEX",
        "CREATE_TEMP_VIEW",
        "CREATE_TEMP_TRIGGER",
        "CREATE_VTABLE",
        "DROP_TABLE",
        "DROP_INDEX",
        "DROP_VIEW",
        "DROP_TRIGGER",
        "DROP_TEMP_TABLE",
        "DROP_TEMP_INDEX",
        "DROP_TEMP_VIEW",
        "DROP_TEMP_TRIGGER",
        "DROP_VTABLE",
        "ALTER_TABLE",
        "REINDEX",
        "ANALYZE",
        "ATTACH",
        "DETACH",
        "PRAGMA",
    )
}
_T = TypeVar("_T")
_Authorizer = Callable[[int, "str | None", "str | None", "str | None", "str | None"], int]


class SqliteDatabase:
    """One SQLite database file and the tools to query it (read-only by default).

    ``tools()`` returns ``sql_query``, ``list_tables`` and ``describe_table``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        allow_writes: bool = False,
        max_rows: int = 50,
        max_cell_chars: int = 200,
        query_timeout: float = 10.0,
    ) -> None:
        if os.fspath(path) in ("", ":memory:"):
            raise ConfigError(
                "SqliteDatabase needs a database file: every call opens its own "
                "connection, so an in-memory database would start empty each time"
            )
        self.path = os.path.realpath(path)
        if not allow_writes and not os.path.isfile(self.path):
            raise ConfigError(
                f"no database file at {self.path!r}; a read-only database must exist "
                "(pass allow_writes=True to let the agent create it)"
            )
        if allow_writes and not os.path.isdir(os.path.dirname(self.path)):
            raise ConfigError(f"the folder of {self.path!r} does not exist")
        if max_rows < 1 or max_cell_chars < 10 or query_timeout <= 0:
            raise ConfigError("max_rows, max_cell_chars and query_timeout must be positive")
        self.allow_writes = allow_writes
        self.max_rows = max_rows
        self.max_cell_chars = max_cell_chars
        self.query_timeout = query_timeout

    def __repr__(self) -> str:
        return f"SqliteDatabase({self.path!r}, allow_writes={self.allow_writes})"

    def tools(self) -> list[Tool]:
        """``sql_query``, ``list_tables`` and ``describe_table`` for this database."""
        access = (
            "Reads and writes are allowed."
            if self.allow_writes
            else "The database is read-only: only SELECT and reading PRAGMAs work."
        )
        query_help = (
            "Run one SQL statement on the SQLite database and get the result as a table "
            f"(at most {self.max_rows} rows). {access} Call list_tables first to learn the "
            "table and column names."
        )
        timeout = self.query_timeout + 5
        return [
            Tool(
                self.sql_query,
                description=query_help,
                timeout=timeout,
                idempotent=not self.allow_writes,
            ),
            Tool(self.list_tables, timeout=timeout, idempotent=True),
            Tool(self.describe_table, timeout=timeout, idempotent=True),
        ]

    # -- the tools ---------------------------------------------------------------------

    def sql_query(self, sql: str) -> str:
        """Run one SQL statement on the SQLite database and get the result as a table.
        Call list_tables first to learn the table and column names.

        Args:
            sql: one SQLite statement, for example "SELECT name, total FROM orders LIMIT 10"
        """
        if not sql.strip():
            raise ToolError("sql is empty; pass one SQL statement")
        return self._run(sql)

    def list_tables(self) -> str:
        """List the tables and views of the SQLite database with their column names."""
        with self._open() as call:
            rows = call.fetch(
                "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
            lines = []
            for name, kind in rows:
                columns = [str(r[1]) for r in call.fetch(f"PRAGMA table_info({_quote(name)})")]
                lines.append(f"{name} ({kind}): {', '.join(columns)}")
        return "\n".join(lines) if lines else "(the database has no tables)"

    def describe_table(self, table: str) -> str:
        """Show how a table of the SQLite database is defined, its row count and a few rows.

        Args:
            table: the table or view name, as list_tables shows it
        """
        with self._open() as call:
            found = call.fetch(
                "SELECT sql FROM sqlite_master WHERE name = ? AND type IN ('table', 'view')",
                (table,),
            )
            if not found:
                names = [
                    r[0]
                    for r in call.fetch(
                        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                        "AND name NOT LIKE 'sqlite_%' ORDER BY name LIMIT 50"
                    )
                ]
                known = ", ".join(names) or "none"
                raise ToolError(f"no table {table!r}; the tables are: {known}")
            count = call.fetch(f"SELECT COUNT(*) FROM {_quote(table)}")[0][0]
            sample = self._query(call, f"SELECT * FROM {_quote(table)} LIMIT 3", 3)
        return f"{found[0][0]}\n\n{count} rows. The first rows:\n{sample}"

    # -- running statements ------------------------------------------------------------

    def _run(self, sql: str) -> str:
        with self._open() as call:
            return self._query(call, sql, self.max_rows)

    def _query(self, call: _Call, sql: str, limit: int) -> str:
        cursor = call.guard(lambda: call.conn.execute(sql))
        if cursor.description is None:
            changed = cursor.rowcount
            if changed < 0:  # DDL and the like report no count
                return "OK"
            return f"OK, {changed} row{'' if changed == 1 else 's'} changed"
        columns = [d[0] for d in cursor.description]
        rows = call.guard(lambda: cursor.fetchmany(limit + 1))
        return self._table(columns, rows, limit)

    @contextmanager
    def _open(self) -> Iterator[_Call]:
        mode = "rwc" if self.allow_writes else "ro"
        try:
            # isolation_level=None: autocommit, so a permitted write is kept without a
            # COMMIT the model would have to remember.
            conn = sqlite3.connect(
                f"{Path(self.path).as_uri()}?mode={mode}",
                uri=True,
                timeout=5.0,
                isolation_level=None,
            )
        except sqlite3.Error as exc:
            raise ToolError(f"cannot open the database: {exc}") from exc
        call = _Call(conn, time.monotonic() + self.query_timeout, self.query_timeout)
        with closing(conn):
            conn.set_authorizer(self._authorizer(call.denied))
            # Checked every few thousand VM steps: stops runaway queries (cross joins,
            # recursive CTEs without end) with a message instead of hanging the step.
            conn.set_progress_handler(call.past_deadline, 10_000)
            yield call

    def _authorizer(self, denied: list[str]) -> _Authorizer:
        def check(
            action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None
        ) -> int:
            if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _REFUSED_FUNCTIONS:
                denied.append(f"FUNCTION {(arg2 or '').lower()}")
                return sqlite3.SQLITE_DENY
            if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
                # A plain VACUUM attaches a nameless temporary database: no file, no reach.
                if self.allow_writes and action == sqlite3.SQLITE_ATTACH and not arg1:
                    return sqlite3.SQLITE_OK
                denied.append(_ACTION_NAMES[action])
                return sqlite3.SQLITE_DENY
            if self.allow_writes or action in _READ_ACTIONS:
                return sqlite3.SQLITE_OK
            if action == sqlite3.SQLITE_PRAGMA:
                name = (arg1 or "").lower()
                if name in _QUERY_PRAGMAS or (name in _SETTING_PRAGMAS and arg2 is None):
                    return sqlite3.SQLITE_OK
            denied.append(_describe(action, arg1, arg2))
            return sqlite3.SQLITE_DENY

        return check

    def _table(self, columns: list[str], rows: list[Any], limit: int) -> str:
        lines = [" | ".join(columns)]
        lines += [" | ".join(self._cell(v) for v in row) for row in rows[:limit]]
        if len(rows) > limit:
            lines.append(
                f"(only the first {limit} rows are shown; add WHERE or LIMIT, or aggregate)"
            )
        else:
            lines.append(f"({len(rows)} row{'' if len(rows) == 1 else 's'})")
        return "\n".join(lines)

    def _cell(self, value: object) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, bytes):
            return f"<{len(value)} bytes>"
        text = repr(value) if isinstance(value, float) else str(value)
        # One row per line, one column per |: cells must not break either.
        text = text.replace("\n", "\\n").replace("|", "\\|")
        if len(text) > self.max_cell_chars:
            text = text[: self.max_cell_chars] + "..."
        return text


@dataclass
class _Call:
    """One tool call's connection, its deadline, and the actions its authorizer refused."""

    conn: sqlite3.Connection
    deadline: float
    timeout: float
    denied: list[str] = field(default_factory=list)

    def past_deadline(self) -> int:
        return int(time.monotonic() > self.deadline)

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self.guard(lambda: self.conn.execute(sql, params).fetchall())

    def guard(self, action: Callable[[], _T]) -> _T:
        """Run a sqlite3 call, turning its errors into messages the model can act on."""
        try:
            return action()
        except (sqlite3.Error, sqlite3.Warning) as exc:
            raise self._explain(exc) from exc

    def _explain(self, exc: Exception) -> ToolError:
        if self.denied:
            what = self.denied[0]
            if what.startswith("FUNCTION "):
                return ToolError(
                    f"the SQL function {what.split()[1]}() is not allowed in these tools; "
                    "it exposes the database engine's internals. Query the tables instead."
                )
            if what.startswith(("ATTACH", "DETACH")):
                return ToolError(
                    f"{what} (also behind VACUUM INTO) is not allowed: this tool works on its "
                    "own database only"
                )
            return ToolError(
                f"writes are disabled for this database ({what} was refused); only reading "
                "statements work. Do not retry the write. The agent's author can enable "
                "writes with SqliteDatabase(path, allow_writes=True)."
            )
        message = str(exc)
        if message == "interrupted" and self.past_deadline():
            return ToolError(
                f"the query ran longer than {self.timeout:g} s and was stopped; "
                "add a WHERE or LIMIT, or aggregate"
            )
        if "one statement at a time" in message:
            return ToolError("run one SQL statement per call")
        return ToolError(f"SQL error: {message}")


def _describe(action: int, arg1: str | None, arg2: str | None) -> str:
    """What an authorizer refusal was, in the words of SQL rather than of the engine."""
    what = _ACTION_NAMES.get(action, f"action {action}")
    if action == sqlite3.SQLITE_PRAGMA:
        return f"PRAGMA {arg1}" + (f" = {arg2}" if arg2 is not None else "")
    # CREATE, DROP and ALTER show up first as writes to the schema table.
    if arg1 in ("sqlite_master", "sqlite_temp_master") or action == sqlite3.SQLITE_ALTER_TABLE:
        return "changing the schema"
    if action in (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE):
        return f"{what} on table {arg1}"
    return what


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
