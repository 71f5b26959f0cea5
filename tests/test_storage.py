"""The database file is encrypted, a wrong key fails cleanly, keys come from the right places."""

from __future__ import annotations

import hashlib
import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from bot.conversation.chat_trail import ChatTrail
from bot.conversation.sessions import Session, SessionStore
from bot.model import UserRef
from bot.storage import (
    Database,
    DataDirLock,
    DbKey,
    DbKeyError,
    LockedError,
    StorageFullError,
    WrongKeyError,
    keycheck,
    resolve_db_key,
)
from bot.storage.database import Connection
from bot.storage.migrations import MIGRATIONS
from tests.conftest import TEST_KEY


async def test_file_is_encrypted_and_wrong_key_fails_without_damage(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    db = await Database.open(path, TEST_KEY)
    await db.secret("canary-secret")
    await db.close()
    data = path.read_bytes()
    assert not data.startswith(b"SQLite format 3")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = hashlib.sha256(data).hexdigest()
    with pytest.raises(WrongKeyError, match="does not open"):
        await Database.open(path, DbKey("cd" * 32))
    with pytest.raises(WrongKeyError):
        await Database.open(path, DbKey("a passphrase"))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    db = await Database.open(path, TEST_KEY)
    await db.close()


async def test_passphrase_keys_work_too(tmp_path: Path) -> None:
    key = DbKey("correct horse battery staple")
    db = await Database.open(tmp_path / "p.db", key)
    secret = await db.secret("s")
    await db.close()
    db = await Database.open(tmp_path / "p.db", key)
    assert await db.secret("s") == secret
    await db.close()


async def test_a_setting_is_kept_replaced_and_survives_a_reopen(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "s.db", TEST_KEY)
    assert await db.read_setting("transport.login") is None
    await db.put_setting("transport.login", b"first")
    await db.put_setting("transport.login", b"second")
    await db.close()
    db = await Database.open(tmp_path / "s.db", TEST_KEY)
    assert await db.read_setting("transport.login") == b"second"
    await db.close()


async def test_schema_is_migrated_to_the_latest_version(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "m.db", TEST_KEY)
    version = await db.run(lambda conn: conn.execute("PRAGMA user_version").fetchone()[0])
    await db.close()
    assert version == len(MIGRATIONS)


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "n.db", TEST_KEY)
    await db.run(lambda conn: conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}"))
    await db.close()
    with pytest.raises(RuntimeError, match="newer"):
        await Database.open(tmp_path / "n.db", TEST_KEY)


def test_key_from_environment_then_file_then_created(tmp_path: Path) -> None:
    assert (
        resolve_db_key({"HRD_BOT_DB_KEY": "ab" * 32}, tmp_path, may_create=False).value == "ab" * 32
    )
    key_file = tmp_path / "k"
    key_file.write_text("secret words\n")
    key_file.chmod(0o600)
    env = {"HRD_BOT_DB_KEY_FILE": str(key_file)}
    assert resolve_db_key(env, tmp_path, may_create=False).value == "secret words"
    with pytest.raises(DbKeyError, match="no database key"):
        resolve_db_key({}, tmp_path, may_create=False)
    created = resolve_db_key({}, tmp_path, may_create=True)
    assert created.created_at == tmp_path / "db.key"
    assert stat.S_IMODE((tmp_path / "db.key").stat().st_mode) == 0o600
    again = resolve_db_key({}, tmp_path, may_create=True)
    assert again.value == created.value and again.created_at is None


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "k"
    key_file.write_text("x" * 64)
    key_file.chmod(0o644)
    with pytest.raises(DbKeyError, match="chmod 600"):
        resolve_db_key({"HRD_BOT_DB_KEY_FILE": str(key_file)}, tmp_path, may_create=False)


def test_key_never_shows_in_repr() -> None:
    assert "ab" not in repr(TEST_KEY)


async def test_ids_noted_together_are_all_on_record(db_path: Path) -> None:
    db = await Database.open(db_path, TEST_KEY)
    try:
        trail = ChatTrail(db, "test")
        trail.note("1", [(str(number), None) for number in range(250)])
        trail.note("2", [("9", timedelta(hours=1))])
        await trail.flush()
        assert sorted(int(t.message_id) for t in await trail.in_chat("1")) == list(range(250))
        assert [t.message_id for t in await trail.in_chat("2")] == ["9"]
    finally:
        await db.close()


async def test_a_failed_save_raises_and_the_next_one_is_written(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await Database.open(db_path, TEST_KEY)
    try:
        store = SessionStore(db)
        user = UserRef("test", "u1")
        run = db.run

        async def broken(work: object) -> None:
            monkeypatch.setattr(db, "run", run)
            raise OSError("disk full")

        monkeypatch.setattr(db, "run", broken)
        with pytest.raises(OSError, match="disk full"):
            await store.save(Session(user, "en", {"step": 1}))
        assert not (await store.load(user)).known
        await store.save(Session(user, "en", {"step": 2}))
        assert (await SessionStore(db).load(user)).state == {"step": 2}
    finally:
        await db.close()


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


async def test_a_damaged_key_check_file_falls_back_to_the_pages(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    db = await Database.open(path, TEST_KEY)
    await db.secret("s")
    await db.close()
    check = keycheck.check_path(path)
    check.write_text(check.read_text().replace("0", "1", 1))
    assert keycheck.verify(check, TEST_KEY) is None
    before = _files(tmp_path)
    with pytest.raises(WrongKeyError, match="does not open"):
        await Database.open(path, DbKey("cd" * 32))
    assert _files(tmp_path) == before
    db = await Database.open(path, TEST_KEY)
    await db.close()
    assert keycheck.verify(check, TEST_KEY) is True, "rewritten once the key proved right"
    assert keycheck.verify(check, DbKey("a passphrase")) is False


async def test_a_passphrase_key_has_a_key_check_too(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    db = await Database.open(path, DbKey("correct horse"))
    await db.close()
    assert keycheck.verify(keycheck.check_path(path), DbKey("correct horse")) is True
    assert keycheck.verify(keycheck.check_path(path), DbKey("correct horsE")) is False


def test_one_process_per_data_folder(tmp_path: Path) -> None:
    held = DataDirLock.acquire(tmp_path, "running the bot")
    with pytest.raises(LockedError, match=rf"pid {os.getpid()}, running the bot"):
        DataDirLock.acquire(tmp_path, "an admin command")
    held.release()
    DataDirLock.acquire(tmp_path, "an admin command").release()


async def test_a_full_database_raises_storage_full_and_keeps_working(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "f.db", TEST_KEY)
    try:
        pages = await db.run(lambda conn: conn.execute("PRAGMA page_count").fetchone()[0])
        await db.run(lambda conn: conn.execute(f"PRAGMA max_page_count = {pages}"))

        def big(conn: Connection) -> None:
            conn.execute("INSERT INTO settings VALUES ('big', ?)", (b"x" * 100_000,))

        with pytest.raises(StorageFullError, match="no space left"):
            await db.transaction(big)
        with pytest.raises(StorageFullError):
            await db.run(big)
        await db.run(lambda conn: conn.execute(f"PRAGMA max_page_count = {pages * 100}"))
        await db.transaction(big)
        assert await db.setting("big", bytes) == b"x" * 100_000
    finally:
        await db.close()
