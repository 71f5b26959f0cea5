"""How the key and case commands reach their secrets: passphrases, key files, the store.

Shared by `bot.cli.keys` and `bot.cli.cases`. A passphrase comes from
`HRD_BOT_KEY_PASSPHRASE` (or the file named by `HRD_BOT_KEY_PASSPHRASE_FILE`, one
trailing newline removed; nothing else is stripped, since spaces can be part of a
passphrase) for scripts, else it is asked for with getpass and never echoed.
"""

from __future__ import annotations

import getpass
import hmac
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from bot.cases.store import CasesStore
from bot.config import ConfigError, Settings, secret
from bot.crypto.errors import KeyFileError
from bot.crypto.keyfile import read_private_key
from bot.crypto.keys import PrivateKey
from bot.storage import Database, DataDirLock, DbKey, LockedError, resolve_db_key

__all__ = ["UNLOCK_ENV", "open_database", "open_store", "passphrase", "private_key"]

UNLOCK_ENV = "HRD_BOT_KEY_PASSPHRASE"  # the variable's name, not a passphrase


async def open_database(settings: Settings, key: DbKey) -> Database:
    """PostgreSQL when `HRD_BOT_DATABASE_URL` is set (several workers), else the SQLCipher
    file. The key is the same either way, and never comes from PostgreSQL."""
    if (url := settings.database_url) is not None:
        return await Database.open_postgres(url, key)
    return await Database.open(settings.database_path, key)


def passphrase(env: Mapping[str, str], *, confirm: bool) -> str:
    """From the environment, or typed: twice when creating a key file, once to open one."""
    try:
        given = secret(env, UNLOCK_ENV, raw=True)
    except ConfigError as exc:
        raise KeyFileError(str(exc)) from None
    if given is not None:
        return given
    first = getpass.getpass("Passphrase for the private key: ")
    if confirm:
        again = getpass.getpass("The same passphrase again: ")
        if not hmac.compare_digest(first.encode("utf-8"), again.encode("utf-8")):
            raise KeyFileError("the two passphrases differ; nothing was written")
    return first


def private_key(settings: Settings, path: Path) -> PrivateKey:
    """Open a staff or recovery key file, asking for its passphrase."""
    return read_private_key(path, passphrase(settings.env, confirm=False))


async def open_store(settings: Settings, work: Callable[[CasesStore], Awaitable[int]]) -> int:
    """Run `work` against the server's encrypted database, closing it afterwards.

    Never creates a database key: these commands belong to a configured server. They
    take the data folder's lock, so they refuse while the bot runs: one process per data
    folder, so a command's writes never hold up the bot's (or fail on them).
    """
    try:
        lock = DataDirLock.acquire(settings.data_dir, "an admin command")
    except LockedError as exc:
        raise LockedError(f"{exc}; stop the bot first (systemctl stop hrd-bot)") from None
    try:
        key = resolve_db_key(settings.env, settings.data_dir, may_create=False)
        db = await open_database(settings, key)
        try:
            return await work(CasesStore(db))
        finally:
            await db.close()
    finally:
        lock.release()
