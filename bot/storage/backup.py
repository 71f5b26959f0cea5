"""Online backup, restore and rekey of the encrypted database.

A backup is SQLite's backup API run from a second connection keyed like the first: it
copies pages through SQLCipher, so the copy is encrypted with the same key, keeps the
schema version and `auto_vacuum`, and (one step, one read transaction) is one
consistent snapshot while the bot goes on writing in WAL mode. `sqlcipher_export` was
tried and rejected: it leaves the copy's schema version at 0, which the bot would
take for a new database and migrate again.

Restore and rekey change the file, so they need the data folder's lock (the caller
takes it: they refuse while the bot runs). Neither ever leaves the database missing:
the new file is built beside it, checked, fsynced and renamed over it in one step.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import sqlcipher3

from bot.storage import keycheck
from bot.storage.dbkey import DbKey, DbKeyError, _read_key_file
from bot.storage.faults import SQLITE_NOTADB, DamagedError, StorageError, WrongKeyError
from bot.storage.migrations import MIGRATIONS
from bot.storage.opening import Connection, keyed, sync_folder

__all__ = ["Checked", "backup", "check_copy", "new_key", "open_existing", "rekey", "restore"]


class BackupError(StorageError):
    """The backup, restore or rekey was refused; the message is safe to print."""


@dataclass(frozen=True, slots=True)
class Checked:
    """What a check of an encrypted copy found: its schema version and size in pages."""

    schema: int
    pages: int


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _remove(path: Path) -> None:
    """A file and its WAL and shared-memory files, if any."""
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        name.unlink(missing_ok=True)


def open_existing(path: Path, key: DbKey, what: str) -> Connection:
    """A connection whose key is proven by reading the schema; never creates a file."""
    if not path.is_file():
        raise BackupError(f"{what} {path} does not exist")
    conn = keyed(str(path), key)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlcipher3.DatabaseError as exc:
        conn.close()
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF == SQLITE_NOTADB:
            raise WrongKeyError(f"the database key does not open {what} {path}") from None
        raise BackupError(f"{what} {path} cannot be read: {exc}") from None
    return conn


def check_copy(path: Path, key: DbKey) -> Checked:
    """Refuse a copy the key does not open, a damaged one, or one of an unknown schema."""
    conn = open_existing(path, key, "the copy")
    try:
        failing = conn.execute("PRAGMA cipher_integrity_check").fetchall()
        structure = [str(row[0]) for row in conn.execute("PRAGMA quick_check").fetchall()]
        if failing or structure != ["ok"]:
            raise DamagedError(f"the copy {path} is damaged ({len(failing)} page(s) fail)")
        schema = int(conn.execute("PRAGMA user_version").fetchone()[0])
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    except sqlcipher3.DatabaseError as exc:
        raise DamagedError(f"the copy {path} is damaged: {exc}") from None
    finally:
        conn.close()
    if schema == 0:
        raise BackupError(f"{path} is not an hrd-bot database (no schema version)")
    if schema > len(MIGRATIONS):
        raise BackupError(
            f"{path} has schema {schema}, newer than this program knows ({len(MIGRATIONS)})"
        )
    return Checked(schema, pages)


def _copy_pages(source: Path, key: DbKey, target: Path) -> None:
    """Source to target (which must not exist) through the backup API, in one step."""
    src = open_existing(source, key, "the database")
    try:
        dst = keyed(str(target), key)
        try:
            src.backup(dst)  # pages=-1: every page in one step, one read snapshot
            dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        finally:
            dst.close()
    finally:
        src.close()
    target.chmod(0o600)
    _fsync(target)


def backup(database: Path, key: DbKey, target: Path) -> Checked:
    """Copy the (possibly running) database to `target`, checked and synced; `target` must
    not exist. Built as `target.partial`, renamed into place only once it checks out."""
    if target.exists():
        raise BackupError(f"{target} already exists; a backup never overwrites a file")
    if keycheck.verify(keycheck.check_path(database), key) is False:
        raise WrongKeyError(f"the database key does not open {database}")
    partial = target.with_name(target.name + ".partial")
    _remove(partial)
    try:
        _copy_pages(database, key, partial)
        checked = check_copy(partial, key)
        os.link(partial, target)  # fails rather than replace a file made meanwhile
    except BaseException:
        _remove(partial)
        raise
    partial.unlink()
    sync_folder(target.parent)
    return checked


def _merge_wal(database: Path, key: DbKey) -> None:
    """Copy a left-over WAL into the file and remove it (the caller holds the lock)."""
    conn = open_existing(database, key, "the database")
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()  # the last connection removes the WAL


def restore(database: Path, key: DbKey, source: Path) -> Checked:
    """Replace the database by the backup at `source`; the caller holds the folder's lock.

    The backup is copied into the data folder and checked there (the copy is what is
    installed). The replaced database and its WAL are moved aside as `<db>.replaced`
    (a WAL left beside the restored file would be replayed into it) until the restored
    one is in place and checks out; then they are removed. Killed part-way, the same
    restore run again first puts the aside pair back, then starts over."""
    incoming = database.with_name(database.name + ".restoring")
    aside = database.with_name(database.name + ".replaced")
    _put_back(aside, database)
    _remove(incoming)
    try:
        _copy_file(source, incoming)
        checked = check_copy(incoming, key)
    except WrongKeyError:
        _remove(incoming)
        raise WrongKeyError(
            f"the database key does not open the backup {source} "
            "(a backup taken before a rekey needs the key of its time)"
        ) from None
    except BaseException:
        _remove(incoming)
        raise
    _move_aside(database, aside)
    os.replace(incoming, database)
    sync_folder(database.parent)
    try:
        check_copy(database, key)
    except BaseException:
        _put_back(aside, database)
        raise
    keycheck.write(keycheck.check_path(database), key)
    _remove(aside)
    sync_folder(database.parent)
    return checked


def _move_aside(database: Path, aside: Path) -> None:
    """The database (linked: it stays in place until the rename over it) and its WAL."""
    if not database.exists():
        return
    os.link(database, aside)
    with contextlib.suppress(FileNotFoundError):
        os.replace(f"{database}-wal", f"{aside}-wal")
    Path(f"{database}-shm").unlink(missing_ok=True)
    sync_folder(database.parent)


def _put_back(aside: Path, database: Path) -> None:
    """Undo `_move_aside` (after a failed check, or a restore killed part-way)."""
    if aside.exists():
        Path(f"{database}-shm").unlink(missing_ok=True)
        os.replace(aside, database)
        with contextlib.suppress(FileNotFoundError):
            os.replace(f"{aside}-wal", f"{database}-wal")
        sync_folder(database.parent)
    _remove(aside)


def _copy_file(source: Path, target: Path) -> None:
    if not source.is_file():
        raise BackupError(f"the backup {source} does not exist")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
        while chunk := src.read(1 << 20):
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())


def new_key(path: Path, data_dir: Path) -> tuple[DbKey, bool]:
    """The key in `path`, or a new random one written there first (mode 0600, synced).
    True when it was made now. Refused inside the data folder: a seized disk must not
    carry its own key."""
    if path.resolve().is_relative_to(data_dir.resolve()):
        raise DbKeyError(f"the new key file {path} is inside the data folder; keep it elsewhere")
    if path.exists():
        return DbKey(_read_key_file(path)), False
    value = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    sync_folder(path.parent)
    return DbKey(value), True


def _opens(database: Path, key: DbKey) -> bool:
    try:
        open_existing(database, key, "the database").close()
    except WrongKeyError:
        return False
    return True


def _drop_empty_wal(database: Path) -> None:
    """After the merge nothing may be left in the WAL: a WAL beside the rekeyed file
    would be replayed into it."""
    wal = Path(f"{database}-wal")
    if wal.exists() and wal.stat().st_size:
        raise BackupError(f"the WAL of {database} could not be merged; nothing was changed")
    wal.unlink(missing_ok=True)
    Path(f"{database}-shm").unlink(missing_ok=True)


def rekey(database: Path, old: DbKey, new: DbKey) -> bool:
    """Re-encrypt the database under `new`; the caller holds the folder's lock and wrote
    `new` to its key file first. False when the database already was under `new` (a
    rekey killed after its rename, run again: only the key check is rewritten).

    The file is never rekeyed in place: a copy is made (backup API), rekeyed with
    `PRAGMA rekey`, checked under the new key and renamed over the database. Until that
    rename the old key opens the database; after it, only the new one does."""
    if new.value == old.value:
        raise DbKeyError("the new key is the same as the current one")
    check = keycheck.check_path(database)
    if keycheck.verify(check, old) is not True and _opens(database, new):
        keycheck.write(check, new)
        return False
    if keycheck.verify(check, old) is False:
        raise WrongKeyError(f"the database key does not open {database}")
    _merge_wal(database, old)
    building = database.with_name(database.name + ".rekeying")
    _remove(building)
    try:
        _copy_pages(database, old, building)
        conn = keyed(str(building), old)
        try:
            conn.execute(new.pragma().replace("PRAGMA key", "PRAGMA rekey", 1))
        finally:
            conn.close()
        check_copy(building, new)
        _fsync(building)
    except BaseException:
        _remove(building)
        raise
    _drop_empty_wal(database)
    check.unlink(missing_ok=True)  # stale from here on; rewritten just below
    os.replace(building, database)
    sync_folder(database.parent)
    keycheck.write(check, new)
    return True
