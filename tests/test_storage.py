"""The database file is encrypted, a wrong key fails cleanly, keys come from the right places."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from bot.storage import Database, DbKey, KeyError_, WrongKeyError, resolve_db_key
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
    with pytest.raises(KeyError_, match="no database key"):
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
    with pytest.raises(KeyError_, match="chmod 600"):
        resolve_db_key({"HRD_BOT_DB_KEY_FILE": str(key_file)}, tmp_path, may_create=False)


def test_key_never_shows_in_repr() -> None:
    assert "ab" not in repr(TEST_KEY)
