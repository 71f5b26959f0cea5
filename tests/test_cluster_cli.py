"""`HRD_BOT_DATABASE_URL` (or its file) makes `hrd-bot run` and the admin commands open
PostgreSQL with the same database key; without it, the SQLCipher file as before."""

from __future__ import annotations

from pathlib import Path

from bot.cli.access import open_database
from bot.config import Settings
from bot.storage import DbKey
from tests.keys import TEST_KEY
from tests.postgres_server import PgServer, fresh_schema


async def test_the_url_opens_postgresql_with_the_same_key(
    pg_server: PgServer, tmp_path: Path
) -> None:
    url = pg_server.schema_url(fresh_schema(pg_server))
    secret = tmp_path / "database-url"
    secret.write_text(url + "\n")
    env = {"HRD_BOT_DATA_DIR": str(tmp_path), "HRD_BOT_DATABASE_URL_FILE": str(secret)}
    settings = Settings.from_env(env)
    assert settings.database_url == url
    assert "database-url" not in repr(settings) and url not in repr(settings)
    db = await open_database(settings, TEST_KEY)
    assert not db.sqlite
    await db.put_setting("probe", b"one")
    await db.close()
    again = await open_database(Settings.from_env({**env}), TEST_KEY)
    assert await again.read_setting("probe") == b"one"
    await again.close()
    assert not (tmp_path / "hrd-bot.db").exists()


async def test_without_a_url_the_sqlcipher_file_is_opened(tmp_path: Path) -> None:
    settings = Settings.from_env({"HRD_BOT_DATA_DIR": str(tmp_path)})
    assert settings.database_url is None
    db = await open_database(settings, DbKey("cd" * 32))
    assert db.sqlite
    await db.close()
    assert (tmp_path / "hrd-bot.db").exists()
