"""Opening a PostgreSQL database: schema, key check, the writer lock, and reconnecting.

Every call of ours runs inside one transaction that first takes the cluster-wide writer
lock (`pg_advisory_xact_lock(WRITER)`), so however many workers share the database, the
owner modules see what they see over SQLCipher: one call at a time, each complete or not
at all. Workers gain on platform I/O and handler CPU, not on database concurrency; the
calls are a few statements each, on loopback or a LAN.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg

from bot.storage.connection import Connection, PgConnection
from bot.storage.dbkey import DbKey
from bot.storage.faults import StorageError, WrongKeyError
from bot.storage.fields import SealedFields, UnsealError, field_key
from bot.storage.pg_schema import BASE, BASE_VERSION, LATER, META

__all__ = ["KEY_CHECK", "WRITER", "PgUnavailableError", "connect", "locked", "redacted"]

T = TypeVar("T")
WRITER = 0x68726462  # "hrdb": the one lock every call of every worker takes
_SCHEMA_LOCK = WRITER + 1
KEY_CHECK = b"hrd-bot postgres key check"


class PgUnavailableError(StorageError):
    """PostgreSQL could not be reached, or dropped the connection; the next call retries."""


def redacted(url: str) -> str:
    """The URL without its password, for messages to the operator."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    info.pop("password", None)
    return " ".join(f"{k}={v}" for k, v in sorted(info.items()) if k != "options")


def _raw(url: str) -> Any:
    try:
        return psycopg.connect(url, autocommit=True, cursor_factory=psycopg.ClientCursor)
    except psycopg.OperationalError as exc:
        raise PgUnavailableError(f"PostgreSQL cannot be reached ({redacted(url)})") from exc


def _version(raw: Any) -> int | None:
    row = raw.execute("SELECT to_regclass('hrd_bot_meta') IS NOT NULL").fetchone()
    if not row[0]:
        return None
    found = raw.execute("SELECT version FROM hrd_bot_meta").fetchone()
    return None if found is None else int(found[0])


def _migrate(raw: Any, key: DbKey) -> bytes:
    """Build or bring forward the schema; the salt of the field key."""
    with raw.transaction():
        raw.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        version = _version(raw)
        if version is None:
            salt = secrets.token_bytes(16)
            check = SealedFields(field_key(key, salt)).seal("hrd_bot_meta.keycheck", KEY_CHECK)
            raw.execute(META)
            raw.execute(BASE)
            raw.execute(
                "INSERT INTO hrd_bot_meta (version, salt, keycheck) VALUES (%s, %s, %s)",
                (BASE_VERSION, salt, check),
            )
            version = BASE_VERSION
        for number in sorted(n for n in LATER if n > version):
            raw.execute(LATER[number])
            raw.execute("UPDATE hrd_bot_meta SET version = %s", (number,))
        newest = max([BASE_VERSION, *LATER])
        if version > newest:
            raise StorageError(f"database schema {version} is newer than this program knows")
        row = raw.execute("SELECT salt FROM hrd_bot_meta").fetchone()
        return bytes(row[0])


def connect(url: str, key: DbKey) -> PgConnection:
    """A connection whose schema is current and whose key opens the sealed fields."""
    raw = _raw(url)
    try:
        salt = _migrate(raw, key)
        fields = SealedFields(field_key(key, salt))
        check = raw.execute("SELECT keycheck FROM hrd_bot_meta").fetchone()[0]
        try:
            if fields.unseal("hrd_bot_meta.keycheck", bytes(check)) != KEY_CHECK:
                raise UnsealError("key check")
        except UnsealError:
            raise WrongKeyError(f"the database key does not open {redacted(url)}") from None
    except BaseException:
        raw.close()
        raise
    return PgConnection(raw, fields)


def locked(conn: Connection, work: Callable[[Connection], T]) -> T:
    """`work(conn)` in one transaction under the writer lock, rolled back on error."""
    conn.execute("BEGIN")
    try:
        conn.execute("SELECT pg_advisory_xact_lock(?)", (WRITER,))
        result = work(conn)
    except BaseException:
        if not (conn.raw.closed or conn.raw.broken):
            with contextlib.suppress(psycopg.Error):  # the first error is the one to tell
                conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result
