"""The store contract (tests/store_contract.py) run against each store: SQLite and PostgreSQL.

The PostgreSQL store runs against a real server (the ``postgres_server`` fixture in
conftest.py starts one on 127.0.0.1 for the session); each test gets a database of its own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg
import pytest
from store_contract import StoreContract

from agentkit.store import Store, open_store


class _Handles:
    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.opened: list[Store] = []

    def open(self, *, create: bool = True) -> Store:
        store = open_store(self.spec, create=create)
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self.opened:
            store.close()


class SQLiteBackend(_Handles):
    name = "sqlite"

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path

    def _sql(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(self.path)) as conn:
            rows = conn.execute(sql, params).fetchall()
            conn.commit()
        return rows

    def age(self, run_id: str, seconds: float) -> None:
        self._sql("UPDATE runs SET heartbeat = heartbeat - ? WHERE id = ?", (seconds, run_id))

    def set_column(self, table: str, column: str, value: str, run_id: str) -> None:
        key = "id" if table == "runs" else "run_id"
        self._sql(f"UPDATE {table} SET {column} = ? WHERE {key} = ?", (value, run_id))

    def insert_event_json(self, run_id: str, data_json: str) -> None:
        self._sql(
            "INSERT INTO events(run_id, step, ts, type, data_json) VALUES (?, 1, 0, 'x', ?)",
            (run_id, data_json),
        )

    def meta(self) -> dict[str, str]:
        return dict(self._sql("SELECT key, value FROM meta"))

    def set_meta(self, key: str, value: str) -> None:
        self._sql("UPDATE meta SET value = ? WHERE key = ?", (value, key))

    def add_foreign_table(self) -> None:
        self._sql("CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)")
        self._sql("INSERT INTO orders(item) VALUES ('pen')")

    def foreign_rows(self) -> list[tuple[Any, ...]]:
        return self._sql("SELECT * FROM orders")


class PostgresBackend(_Handles):
    name = "postgres"

    def _sql(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.spec, autocommit=True) as conn:
            cur = conn.execute(sql.encode(), params)
            return cur.fetchall() if cur.description else []

    def age(self, run_id: str, seconds: float) -> None:
        self._sql(
            "UPDATE agentkit.runs SET heartbeat = heartbeat - %s WHERE id = %s", (seconds, run_id)
        )

    def set_column(self, table: str, column: str, value: str, run_id: str) -> None:
        key = "id" if table == "runs" else "run_id"
        self._sql(f"UPDATE agentkit.{table} SET {column} = %s WHERE {key} = %s", (value, run_id))

    def insert_event_json(self, run_id: str, data_json: str) -> None:
        self._sql(
            "INSERT INTO agentkit.events(run_id, step, ts, type, data_json)"
            " VALUES (%s, 1, 0, 'x', %s)",
            (run_id, data_json),
        )

    def meta(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self._sql("SELECT key, value FROM agentkit.meta")}

    def set_meta(self, key: str, value: str) -> None:
        self._sql("UPDATE agentkit.meta SET value = %s WHERE key = %s", (value, key))

    def add_foreign_table(self) -> None:
        self._sql("CREATE SCHEMA agentkit")
        self._sql("CREATE TABLE agentkit.orders (id SERIAL PRIMARY KEY, item TEXT)")
        self._sql("INSERT INTO agentkit.orders(item) VALUES ('pen')")

    def foreign_rows(self) -> list[tuple[Any, ...]]:
        return self._sql("SELECT * FROM agentkit.orders")


class TestSQLiteStore(StoreContract):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[SQLiteBackend]:
        handles = SQLiteBackend(tmp_path / "runs.db")
        yield handles
        handles.close_all()


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def backend(self, postgres_url: str) -> Iterator[PostgresBackend]:
        handles = PostgresBackend(postgres_url)
        yield handles
        handles.close_all()
