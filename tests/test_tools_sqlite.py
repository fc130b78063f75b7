"""SqliteDatabase tools: read-only by default (every kind of write refused), writes on opt-in."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from agentkit._errors import ConfigError, ToolError
from agentkit.runtime._tools import Tool
from agentkit.tools import SqliteDatabase

WRITES_OFF = "writes are disabled"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, note TEXT);
        INSERT INTO users (name, note) VALUES ('ann', 'likes | pipes'), ('bob', NULL);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, total REAL);
        INSERT INTO orders (user_id, total) VALUES (1, 9.5), (1, 20.25), (2, 3.0);
        CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 5;
        """
    )
    conn.commit()
    conn.close()
    return path


def snapshot(path: Path) -> tuple[list[Any], list[Any], Any, Any]:
    conn = sqlite3.connect(path)
    try:
        return (
            conn.execute("SELECT * FROM users ORDER BY id").fetchall(),
            conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall(),
            conn.execute("PRAGMA user_version").fetchone(),
            conn.execute("PRAGMA journal_mode").fetchone(),
        )
    finally:
        conn.close()


def by_name(db: SqliteDatabase) -> dict[str, Tool]:
    return {t.name: t for t in db.tools()}


WRITES = [
    "INSERT INTO users (name) VALUES ('mallory')",
    "UPDATE users SET name = 'mallory' WHERE id = 1",
    "DELETE FROM users",
    "DROP TABLE users",
    "DROP VIEW big_orders",
    "CREATE TABLE evil (x)",
    "CREATE INDEX idx ON users (name)",
    "CREATE TEMP TABLE scratch (x)",
    "CREATE TRIGGER t AFTER INSERT ON users BEGIN DELETE FROM orders; END",
    "ALTER TABLE users ADD COLUMN age INTEGER",
    "ALTER TABLE users RENAME TO people",
    "ANALYZE",
    "PRAGMA user_version = 5",
    "PRAGMA journal_mode = WAL",
    "PRAGMA foreign_keys = ON",
    "REPLACE INTO users (id, name) VALUES (1, 'x')",
    "WITH x AS (SELECT 1) INSERT INTO users (name) SELECT 'y' FROM x",
]


@pytest.mark.parametrize("sql", WRITES)
def test_writes_are_refused_by_default(db_path: Path, sql: str) -> None:
    before = snapshot(db_path)
    db = SqliteDatabase(db_path)
    with pytest.raises(ToolError, match=WRITES_OFF) as info:
        db.sql_query(sql)
    assert "SqliteDatabase(path, allow_writes=True)" in str(info.value)
    assert snapshot(db_path) == before


@pytest.mark.parametrize(
    "sql",
    [
        "ATTACH DATABASE '{dir}/other.db' AS other",
        "VACUUM INTO '{dir}/copy.db'",
    ],
)
@pytest.mark.parametrize("allow_writes", [False, True])
def test_attach_is_refused_even_with_writes(
    db_path: Path, tmp_path: Path, sql: str, allow_writes: bool
) -> None:
    db = SqliteDatabase(db_path, allow_writes=allow_writes)
    with pytest.raises(ToolError, match="ATTACH"):
        db.sql_query(sql.format(dir=tmp_path))
    assert not (tmp_path / "other.db").exists()
    assert not (tmp_path / "copy.db").exists()


POINTER_LEAKS = [
    "SELECT fts3_tokenizer('simple')",
    "SELECT hex(FTS3_TOKENIZER('porter')) AS p",
    "WITH t AS (SELECT fts3_tokenizer('simple') AS p) SELECT hex(p) FROM t",
    "SELECT fts3_tokenizer('evil', x'4141414141414141')",
    "SELECT load_extension('/tmp/evil.so')",
]


@pytest.mark.parametrize("sql", POINTER_LEAKS)
@pytest.mark.parametrize("allow_writes", [False, True])
def test_engine_internals_are_refused(db_path: Path, sql: str, allow_writes: bool) -> None:
    # Without the tool's guard this SQLite hands out a pointer: the test can fail.
    with closing(sqlite3.connect(db_path)) as raw:
        pointer = raw.execute("SELECT hex(fts3_tokenizer('simple'))").fetchone()[0]
    assert len(pointer) == 16
    db = SqliteDatabase(db_path, allow_writes=allow_writes)
    refused = r"SQL function (fts3_tokenizer|load_extension)\(\)"
    with pytest.raises(ToolError, match=refused) as info:
        db.sql_query(sql)
    assert "not allowed" in str(info.value) and "Query the tables instead" in str(info.value)
    # Ordinary functions still work beside the refused ones.
    assert db.sql_query("SELECT upper(name) AS n FROM users ORDER BY id LIMIT 1") == (
        "n\nANN\n(1 row)"
    )


def test_plain_vacuum_is_a_write(db_path: Path) -> None:
    with pytest.raises(ToolError):
        SqliteDatabase(db_path).sql_query("VACUUM")
    assert SqliteDatabase(db_path, allow_writes=True).sql_query("VACUUM") == "OK"


@pytest.mark.parametrize(
    ("sql", "first_line"),
    [
        ("SELECT name FROM users ORDER BY id", "name"),
        ("PRAGMA table_info(users)", "cid | name | type | notnull | dflt_value | pk"),
        ("PRAGMA index_list(users)", "seq | name | unique | origin | partial"),
        ("PRAGMA user_version", "user_version"),
        ("PRAGMA journal_mode", "journal_mode"),
        ("PRAGMA integrity_check", "integrity_check"),
        ("WITH t AS (SELECT total FROM orders) SELECT SUM(total) AS s FROM t", "s"),
        ("EXPLAIN QUERY PLAN SELECT * FROM users", "id | parent | notused | detail"),
        ("SELECT * FROM big_orders", "id | user_id | total"),
    ],
)
def test_reading_statements_work_read_only(db_path: Path, sql: str, first_line: str) -> None:
    result = SqliteDatabase(db_path).sql_query(sql)
    assert result.splitlines()[0] == first_line


def test_results_are_a_compact_table(db_path: Path) -> None:
    db = SqliteDatabase(db_path)
    assert db.sql_query("SELECT id, name, note FROM users ORDER BY id") == (
        "id | name | note\n1 | ann | likes \\| pipes\n2 | bob | NULL\n(2 rows)"
    )
    assert db.sql_query("SELECT x'00ff' AS b, 1.5 AS f, 'a\nb' AS s") == (
        "b | f | s\n<2 bytes> | 1.5 | a\\nb\n(1 row)"
    )


def test_rows_and_cells_are_capped(db_path: Path) -> None:
    db = SqliteDatabase(db_path, max_rows=2, max_cell_chars=10)
    text = db.sql_query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) "
        "SELECT i, printf('%020d', i) AS wide FROM n"
    )
    lines = text.splitlines()
    assert lines[1:3] == ["1 | 0000000000...", "2 | 0000000000..."]
    assert "only the first 2 rows" in lines[-1]
    assert len(lines) == 4


def test_writes_work_when_allowed(db_path: Path) -> None:
    db = SqliteDatabase(db_path, allow_writes=True)
    assert db.sql_query("INSERT INTO users (name) VALUES ('cy')") == "OK, 1 row changed"
    assert db.sql_query("UPDATE users SET note = 'x'") == "OK, 3 rows changed"
    assert db.sql_query("DELETE FROM users WHERE name = 'bob'") == "OK, 1 row changed"
    assert db.sql_query("CREATE TABLE log (msg TEXT)") == "OK"
    assert db.sql_query("CREATE INDEX idx ON users (name)") == "OK"
    assert db.sql_query("ALTER TABLE users ADD COLUMN age INTEGER") == "OK"
    assert db.sql_query("DROP TABLE orders") == "OK"
    assert db.sql_query("PRAGMA user_version = 5") == "OK"
    users, schema, version, _ = snapshot(db_path)
    assert users == [(1, "ann", "x", None), (3, "cy", "x", None)]
    assert {name for name, _ in schema} == {"users", "log", "idx", "big_orders"}
    assert version == (5,)


def test_writes_allowed_can_create_a_new_database(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "new.db", allow_writes=True)
    db.sql_query("CREATE TABLE t (x)")
    assert (tmp_path / "new.db").exists()


def test_query_errors_are_explained(db_path: Path) -> None:
    db = SqliteDatabase(db_path)
    with pytest.raises(ToolError, match="one SQL statement per call"):
        db.sql_query("SELECT 1; DROP TABLE users")
    with pytest.raises(ToolError, match="no such table: nope"):
        db.sql_query("SELECT * FROM nope")
    with pytest.raises(ToolError, match="syntax error"):
        db.sql_query("SELEC 1")
    with pytest.raises(ToolError, match="empty"):
        db.sql_query("  ")


def test_runaway_query_is_stopped(db_path: Path) -> None:
    db = SqliteDatabase(db_path, query_timeout=0.2)
    with pytest.raises(ToolError, match=r"ran longer than 0\.2 s"):
        db.sql_query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT COUNT(*) FROM n"
        )


def test_list_and_describe_tables(db_path: Path) -> None:
    db = SqliteDatabase(db_path)
    assert db.list_tables() == (
        "big_orders (view): id, user_id, total\n"
        "orders (table): id, user_id, total\n"
        "users (table): id, name, note"
    )
    described = db.describe_table("orders")
    assert described.startswith("CREATE TABLE orders")
    assert "3 rows. The first rows:\nid | user_id | total\n1 | 1 | 9.5" in described
    with pytest.raises(ToolError, match="no table 'order'; the tables are: big_orders, orders"):
        db.describe_table("order")


def test_describe_quotes_odd_names(tmp_path: Path) -> None:
    path = tmp_path / "odd.db"
    conn = sqlite3.connect(path)
    conn.execute('CREATE TABLE "we""ird name" (x)')
    conn.commit()
    conn.close()
    db = SqliteDatabase(path)
    assert "0 rows" in db.describe_table('we"ird name')
    assert db.list_tables() == 'we"ird name (table): x'


def test_bad_configuration(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must exist"):
        SqliteDatabase(tmp_path / "missing.db")
    with pytest.raises(ConfigError, match="database file"):
        SqliteDatabase(":memory:")
    with pytest.raises(ConfigError, match="folder"):
        SqliteDatabase(tmp_path / "no" / "such.db", allow_writes=True)


async def test_tools_through_ainvoke(db_path: Path) -> None:
    tools = by_name(SqliteDatabase(db_path))
    assert sorted(tools) == ["describe_table", "list_tables", "sql_query"]
    result = await tools["sql_query"].ainvoke({"sql": "SELECT COUNT(*) AS n FROM orders"})
    assert result == "n\n3\n(1 row)"
    assert "users (table)" in await tools["list_tables"].ainvoke({})
    with pytest.raises(ToolError, match=WRITES_OFF):
        await tools["sql_query"].ainvoke({"sql": "DELETE FROM orders"})


def test_every_tool_has_a_schema_and_says_whether_it_writes(db_path: Path) -> None:
    for allow_writes in (False, True):
        tools = by_name(SqliteDatabase(db_path, allow_writes=allow_writes))
        for t in tools.values():
            spec = t.spec
            assert spec.description
        query = tools["sql_query"].spec
        assert query.parameters["required"] == ["sql"]
        assert ("read-only" in query.description) is not allow_writes
        assert tools["describe_table"].spec.parameters["required"] == ["table"]
