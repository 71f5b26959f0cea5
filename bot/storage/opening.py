"""Open the database only after checking it: never create over a file, never touch a file
with a wrong key, and name damage as damage.

The rule, in order:
1. No database file: a new one is built under a temporary name and renamed into place,
   so a crash while creating never leaves an empty file behind. If the key check file or
   a `-wal` file exists, the database went missing: refuse.
2. An empty file, or a size that is not a whole number of pages: damaged.
3. The key check file (`keycheck`) says the key is wrong: wrong key. Nothing is opened.
4. Page 1 is read with `immutable=1` (SQLite neither locks, nor reads or merges the WAL,
   nor writes anything). If it fails: damaged when the check file confirmed the key, or
   when other pages pass their HMAC under this key; otherwise a wrong key.
5. Opened for real; `cipher_integrity_check` (every page's HMAC) and `quick_check`
   (structure) must pass, else damaged, naming the failing pages.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlcipher3

from bot.storage import keycheck
from bot.storage.dbkey import DbKey
from bot.storage.faults import SQLITE_NOTADB, DamagedError, WrongKeyError, classify, damaged

__all__ = ["PAGE_SIZE", "SYNC_DEFAULT", "SYNC_DURABLE", "keyed", "open_checked"]

Connection = Any  # sqlcipher3.Connection has no stubs
PAGE_SIZE = 4096  # SQLCipher 4's default page size, used for every file this bot creates
_PAGE = re.compile(r"page (\d+)")
SYNC_DEFAULT = "PRAGMA synchronous = NORMAL"
"""Most commits (sessions, message ids) are synced at the next checkpoint, or with the
next durable commit: losing the last few in a power cut costs a repeated question."""
SYNC_DURABLE = "PRAGMA synchronous = FULL"
"""For commits a person is told are saved (`atomically(durable=True)`): the WAL is synced
before the commit returns. Measured in `bench/durability.py`."""
_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    SYNC_DEFAULT,
    "PRAGMA journal_size_limit = 33554432",  # a WAL grown by a big write shrinks back
    "PRAGMA secure_delete = ON",
    "PRAGMA foreign_keys = ON",
    "PRAGMA temp_store = MEMORY",
)


def keyed(target: str, key: DbKey, *, uri: bool = False) -> Connection:
    """A connection with the key given and SQLCipher's own logging off; nothing read yet."""
    conn = sqlcipher3.connect(target, uri=uri, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA cipher_log_level = NONE")
    conn.execute(key.pragma())
    return conn


def _fault(exc: BaseException, path: Path) -> BaseException:
    return classify(exc, path) or exc


def _create(path: Path, key: DbKey, prepare: Callable[[Connection], None]) -> None:
    building = path.with_name(path.name + ".creating")
    for leftover in (building, *(Path(f"{building}{s}") for s in ("-wal", "-shm"))):
        leftover.unlink(missing_ok=True)  # an earlier creation that never finished
    conn = keyed(str(building), key)
    try:
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # before WAL; retention relies on it
        for pragma in _PRAGMAS:
            conn.execute(pragma)
        prepare(conn)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()  # the last connection's close merges and removes the WAL
    building.chmod(0o600)
    with open(building, "rb") as handle:
        os.fsync(handle.fileno())
    building.rename(path)
    sync_folder(path.parent)
    keycheck.write(keycheck.check_path(path), key)


def sync_folder(folder: Path) -> None:
    """A rename is durable only once its folder is synced."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _refuse_missing(path: Path) -> None:
    check = keycheck.check_path(path)
    for witness in (check, Path(f"{path}-wal")):
        if witness.exists():
            raise DamagedError(
                f"the database {path} is missing, but {witness.name} shows it existed; "
                f"restore it from a backup, or delete {witness} to start an empty database"
            )


def _check_size(path: Path) -> None:
    size = path.stat().st_size
    if size == 0:
        raise damaged(path, "the file is empty (0 bytes); no new database is made over it")
    if size % PAGE_SIZE:
        raise damaged(path, f"its size ({size} bytes) is not a whole number of pages (truncated)")


def _failing_pages(conn: Connection) -> tuple[list[int], list[str]]:
    rows = [str(row[0]) for row in conn.execute("PRAGMA cipher_integrity_check").fetchall()]
    pages = [int(m.group(1)) for row in rows if (m := _PAGE.search(row))]
    return pages, rows


def _probe(path: Path, key: DbKey, confirmed: bool) -> None:
    """Read page 1 without changing anything; raise if the key or the page is bad."""
    conn = keyed(f"file:{quote(str(path))}?immutable=1", key, uri=True)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlcipher3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF != SQLITE_NOTADB:
            raise _fault(exc, path) from None
        if confirmed:
            reason = "page 1 fails its checksum, and the key check confirms the key"
            raise damaged(path, reason) from None
        pages, _ = _failing_pages(conn)
        total = path.stat().st_size // PAGE_SIZE
        if pages[:1] == [1] and len(pages) < total:
            raise damaged(path, "page 1 fails its checksum while later pages pass") from None
        raise WrongKeyError(f"the database key does not open {path}") from None
    finally:
        conn.close()


def _check_integrity(conn: Connection, path: Path) -> None:
    pages, rows = _failing_pages(conn)
    if rows:
        shown = ", ".join(map(str, pages[:10])) + (" …" if len(pages) > 10 else "")
        raise damaged(path, f"{len(rows)} page(s) fail their checksum (pages {shown})")
    try:
        result = [str(row[0]) for row in conn.execute("PRAGMA quick_check").fetchall()]
    except sqlcipher3.DatabaseError as exc:
        raise _fault(exc, path) from None
    if result != ["ok"]:
        raise damaged(path, f"the structure check found {len(result)} problem(s)")


def open_checked(path: Path, key: DbKey, prepare: Callable[[Connection], None]) -> Connection:
    """A checked, configured connection; `prepare` builds the schema of a new database."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        if not path.exists():
            _refuse_missing(path)
            _create(path, key, prepare)
        _check_size(path)
        check = keycheck.check_path(path)
        verdict = keycheck.verify(check, key)
        if verdict is False:
            raise WrongKeyError(f"the database key does not open {path}")
        _probe(path, key, confirmed=verdict is True)
        conn = keyed(str(path), key)
    except sqlcipher3.Error as exc:
        raise _fault(exc, path) from None
    except OSError as exc:
        raise _fault(exc, path) from None
    try:
        for pragma in _PRAGMAS:
            conn.execute(pragma)
        _check_integrity(conn, path)
        path.chmod(0o600)
        if verdict is None:
            keycheck.write(check, key)
    except BaseException as exc:
        conn.close()
        if isinstance(exc, sqlcipher3.Error | OSError):
            raise _fault(exc, path) from None
        raise
    return conn
