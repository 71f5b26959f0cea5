"""`hrd-bot data backup|restore|rekey`: the encrypted database's copies and key.

`backup` runs beside the bot (a second connection reads one snapshot); `restore` and
`rekey` change the file, so they take the data folder's lock and refuse while the bot
runs. Refusals raise the storage errors `bot.cli.main` turns into `error: …`, exit 2.

With `HRD_BOT_DATABASE_URL` (PostgreSQL), `backup` and `restore` refuse and name
PostgreSQL's own tools; `rekey` re-seals every sealed column under the new key
(`bot.storage.pg_rekey`), refused while any worker is connected.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bot.cli.pg_url import backup_elsewhere, restore_elsewhere
from bot.config import Settings
from bot.storage import DataDirLock, DbKey, resolve_db_key
from bot.storage.backup import backup, new_key, rekey, restore
from bot.storage.pg_rekey import rekey_postgres

__all__ = ["COMMANDS", "dispatch", "register"]

COMMANDS = frozenset({"data"})


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    data = commands.add_parser("data", help="backup, restore and rekey the encrypted database")
    actions = data.add_subparsers(dest="action", required=True)
    make = actions.add_parser("backup", help="an encrypted copy, taken while the bot runs")
    make.add_argument("path", type=Path, help="new file; never overwritten")
    back = actions.add_parser("restore", help="replace the database by a backup (bot stopped)")
    back.add_argument("path", type=Path)
    change = actions.add_parser("rekey", help="re-encrypt under a new key (bot stopped)")
    change.add_argument(
        "--new-key-file",
        type=Path,
        required=True,
        help="written first with a new random key if missing (0600); outside the data folder",
    )


def _backup(settings: Settings, path: Path) -> int:
    if url := settings.database_url:
        raise backup_elsewhere(url)
    key = resolve_db_key(settings.env, settings.data_dir, may_create=False)
    checked = backup(settings.database_path, key, path)
    print(f"backup written to {path} (schema {checked.schema}, {checked.pages} pages)")
    print("It opens only with the database key: keep the key apart from the backup.")
    return 0


def _restore(settings: Settings, path: Path) -> int:
    if url := settings.database_url:
        raise restore_elsewhere(url)
    lock = DataDirLock.acquire(settings.data_dir, "restoring a backup")
    try:
        key = resolve_db_key(settings.env, settings.data_dir, may_create=False)
        checked = restore(settings.database_path, key, path)
    finally:
        lock.release()
    print(f"restored {path} (schema {checked.schema}); start the bot")
    return 0


def _rekey(settings: Settings, path: Path) -> int:
    lock = DataDirLock.acquire(settings.data_dir, "changing the database key")
    try:
        old = resolve_db_key(settings.env, settings.data_dir, may_create=False)
        new, made = new_key(path, settings.data_dir)
        if made:
            print(f"new key written to {path} (mode 0600)")
        if url := settings.database_url:
            return _rekey_postgres(url, old, new, path)
        changed = rekey(settings.database_path, old, new)
    finally:
        lock.release()
    done = "re-encrypted under" if changed else "was already under"
    print(f"the database {done} the key in {path}.")
    print(
        "Point HRD_BOT_DB_KEY_FILE (or the HRD_BOT_DB_KEY credential) at it, start the "
        "bot, then destroy the old key and re-take backups: old backups need the old key."
    )
    return 0


def _rekey_postgres(url: str, old: DbKey, new: DbKey, path: Path) -> int:
    resealed = rekey_postgres(url, old, new)
    if resealed is None:
        print(f"the PostgreSQL database was already sealed under the key in {path}.")
    else:
        print(f"{resealed} row(s) of the PostgreSQL database re-sealed under the key in {path}.")
    print(
        "Point every worker's HRD_BOT_DB_KEY_FILE (or HRD_BOT_DB_KEY credential) at it, "
        "start them, then destroy the old key and take a new pg_dump: old dumps need the old key."
    )
    return 0


def dispatch(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "backup":
        return _backup(settings, args.path)
    if args.action == "restore":
        return _restore(settings, args.path)
    return _rekey(settings, args.new_key_file)
