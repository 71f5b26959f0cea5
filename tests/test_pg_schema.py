"""Both engines end with the same tables, columns, NOT NULLs and keys, so one SQL serves both."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import sqlcipher3

from bot.storage import Database
from bot.storage.migrations import MIGRATIONS
from bot.storage.pg_schema import BASE_VERSION, LATER
from tests.conftest_storage import TEST_KEY
from tests.postgres_server import PgServer, fresh_schema

Shape = dict[str, dict[str, tuple[bool, bool]]]  # table → column → (not null, in primary key)


def _sqlite_shape() -> Shape:
    conn: Any = sqlcipher3.connect(":memory:")
    for script in MIGRATIONS:
        conn.executescript(script)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    shape: Shape = {}
    for table in tables:
        if table.startswith("sqlite_"):
            continue
        rows = conn.execute(f"PRAGMA table_info({table})").fetchall()
        # an INTEGER PRIMARY KEY is NOT NULL in fact, though SQLite's table_info says 0
        shape[table] = {r[1]: (bool(r[3]) or bool(r[5]), bool(r[5])) for r in rows}
    return shape


def _pg_shape(url: str) -> Shape:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.table_name, c.column_name, c.is_nullable = 'NO',"
            " EXISTS (SELECT 1 FROM information_schema.key_column_usage k"
            "  JOIN information_schema.table_constraints t USING (constraint_name, table_schema)"
            "  WHERE t.constraint_type = 'PRIMARY KEY' AND k.table_name = c.table_name"
            "  AND k.column_name = c.column_name AND k.table_schema = c.table_schema)"
            " FROM information_schema.columns c WHERE c.table_schema = current_schema()"
            " AND c.table_name != 'hrd_bot_meta'"
        ).fetchall()
    shape: Shape = {}
    for table, column, not_null, key in rows:
        shape.setdefault(table, {})[column] = (bool(not_null), bool(key))
    return shape


def test_postgres_has_the_sqlcipher_schema(pg_server: PgServer) -> None:
    url = pg_server.schema_url(fresh_schema(pg_server))

    async def build() -> None:
        await (await Database.open_postgres(url, TEST_KEY)).close()

    asyncio.run(build())
    assert _pg_shape(url) == _sqlite_shape()


def test_every_migration_after_the_base_has_a_twin() -> None:
    assert sorted(LATER) == list(range(BASE_VERSION + 1, len(MIGRATIONS) + 1))
