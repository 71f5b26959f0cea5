"""`hrd-bot data` on PostgreSQL: backup and restore name PostgreSQL's own tools; rekey
re-seals every sealed value under the new key in one transaction; after it the old key opens nothing, the new one reads every row; a
refusal or a failure part-way changes nothing. Each test has a database of its own (the
rekey refuses while other sessions are connected to its database)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bot import cli
from bot.delivery import rows
from bot.delivery.outcome import Outcome, Reason
from bot.model import ChatRef, Reply
from bot.storage import Database, DbKey, StorageError, WrongKeyError, postgres
from bot.storage.connection import Connection
from bot.storage.pg_rekey import SEALED, InUseError, rekey_postgres
from tests.keys import TEST_KEY
from tests.postgres_server import USER, PgServer

NEW_KEY = DbKey(secrets.token_hex(32))
PASSWORD = "CANARY-PW-5d1e"
ROOM = ChatRef("fake", "!room:example.org", private=False)
PERSON = ChatRef("fake", "+254712345678")
Snapshot = dict[str, list[tuple[object, ...]]]


@pytest.fixture
def url(pg_server: PgServer) -> Iterator[str]:
    name = "rk_" + secrets.token_hex(6)
    with psycopg.connect(pg_server.url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} OWNER {USER}")
    yield f"postgresql://{USER}@127.0.0.1:{pg_server.port}/{name}"
    with psycopg.connect(pg_server.url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _fill(conn: Connection) -> None:
    """Rows in sealed columns of four tables: a queued message, a settled one whose
    address was let go, an audit row (append-only), a setting."""
    rows.insert(ROOM, Reply("New case HRD-1"), "alert", "HRD-1", None)(conn)
    settled = rows.insert(PERSON, Reply("hello"), "reply", None, "person-key")(conn)
    rows.settle(settled, Outcome(reason=Reason.BLOCKED), 1)(conn)
    conn.execute(
        "INSERT INTO audit (at, actor, action, detail) VALUES (0, 'system', 'test', ?)",
        (conn.seal("audit.detail", b'{"said": "CANARY"}'),),
    )


async def _filled(url: str) -> bytes:
    db = await Database.open_postgres(url, TEST_KEY)
    try:
        await db.transaction(_fill)
        return await db.secret("test.secret")
    finally:
        await db.close()


def _snapshot(url: str, key: DbKey) -> tuple[Snapshot, Snapshot]:
    """Every sealed column's values, opened with `key` and as stored, table by table."""
    conn = postgres.connect(url, key)
    opened: Snapshot = {}
    stored: Snapshot = {}
    try:
        for table, columns in SEALED.items():
            found = conn.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
            stored[table] = sorted(
                tuple(bytes(v) if isinstance(v, bytes) else v for v in row) for row in found
            )
            opened[table] = sorted(
                tuple(
                    v and conn.unseal(f"{table}.{c}", v) for c, v in zip(columns, row, strict=True)
                )
                for row in found
            )
    finally:
        conn.close()
    return opened, stored


async def test_after_a_rekey_the_old_key_opens_nothing_and_the_new_one_reads_every_row(
    url: str,
) -> None:
    secret = await _filled(url)
    before, stored_before = _snapshot(url, TEST_KEY)
    assert sum(len(found) for found in before.values()) == 4
    assert await asyncio.to_thread(rekey_postgres, url, TEST_KEY, NEW_KEY) == 4
    with pytest.raises(WrongKeyError):
        await Database.open_postgres(url, TEST_KEY)
    after, stored_after = _snapshot(url, NEW_KEY)
    assert after == before
    old_values = {v for found in stored_before.values() for row in found for v in row}
    new_values = {v for found in stored_after.values() for row in found for v in row}
    assert old_values & new_values <= {None, ""}, "a value is still sealed under the old key"
    db = await Database.open_postgres(url, NEW_KEY)
    assert await db.secret("test.secret") == secret
    queued = await db.transaction(rows.pending)
    assert [(r.chat.address, r.reply and r.reply.text) for r in queued] == [
        (ROOM.address, "New case HRD-1")
    ]
    await db.close()
    assert rekey_postgres(url, TEST_KEY, NEW_KEY) is None, "run again: already done"


async def test_a_rekey_is_refused_while_a_worker_is_connected(url: str) -> None:
    await _filled(url)
    running = await Database.open_postgres(url, TEST_KEY)
    try:
        with pytest.raises(InUseError, match="stop every worker"):
            await asyncio.to_thread(rekey_postgres, url, TEST_KEY, NEW_KEY)
        assert await running.read_setting("test.secret") is not None
    finally:
        await running.close()
    with pytest.raises(WrongKeyError):
        await Database.open_postgres(url, NEW_KEY)


async def test_a_value_the_key_cannot_open_stops_the_rekey_and_changes_nothing(url: str) -> None:
    await _filled(url)
    before = _snapshot(url, TEST_KEY)
    with psycopg.connect(url, autocommit=True) as intruder:
        intruder.execute("UPDATE outbox SET body = 'plain text' WHERE body IS NOT NULL")
    with pytest.raises(StorageError, match="nothing was changed"):
        rekey_postgres(url, TEST_KEY, NEW_KEY)
    with psycopg.connect(url, autocommit=True) as intruder:
        intruder.execute("UPDATE outbox SET body = NULL WHERE body = 'plain text'")
    after = _snapshot(url, TEST_KEY)
    assert after[0]["settings"] == before[0]["settings"]
    assert after[1]["audit"] == before[1]["audit"], "rolled back, trigger and all"


def test_every_sealed_column_exists_in_the_postgresql_schema(url: str) -> None:
    postgres.connect(url, TEST_KEY).close()
    with psycopg.connect(url) as conn:
        found = set(
            conn.execute(
                "SELECT table_name, column_name FROM information_schema.columns"
                " WHERE table_schema = current_schema()"
            ).fetchall()
        )
    listed = {(table, column) for table, columns in SEALED.items() for column in columns}
    assert listed - found == set()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str) -> str:
    """The command line's settings for a PostgreSQL deployment, password inline."""
    for name in ("HRD_BOT_DB_KEY_FILE", "CREDENTIALS_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HRD_BOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HRD_BOT_DB_KEY", TEST_KEY.value)
    with_password = url.replace(f"//{USER}@", f"//{USER}:{PASSWORD}@")
    monkeypatch.setenv("HRD_BOT_DATABASE_URL", with_password)
    return with_password


def test_backup_and_restore_on_postgresql_name_its_own_tools_and_touch_nothing(
    cli_env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "backup.db"
    assert cli.main(["data", "backup", str(target)]) == 2
    said = capsys.readouterr().err
    assert "PostgreSQL" in said and "pg_dump" in said and "useless without the database key" in said
    assert not target.exists()
    target.write_bytes(b"not a backup")
    assert cli.main(["data", "restore", str(target)]) == 2
    said += capsys.readouterr().err
    assert "pg_restore" in said
    assert PASSWORD not in said


async def test_the_rekey_command_reseals_postgresql_under_the_new_key_file(
    cli_env: str, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = await _filled(url)
    new_file = tmp_path / "keys" / "new.key"
    new_file.parent.mkdir()
    assert (
        await asyncio.to_thread(cli.main, ["data", "rekey", "--new-key-file", str(new_file)]) == 0
    )
    said = capsys.readouterr()
    assert "4 row(s) of the PostgreSQL database re-sealed" in said.out
    assert PASSWORD not in said.out + said.err
    new = DbKey(new_file.read_text().strip())
    with pytest.raises(WrongKeyError):
        await Database.open_postgres(url, TEST_KEY)
    db = await Database.open_postgres(url, new)
    assert await db.secret("test.secret") == secret
    await db.close()
