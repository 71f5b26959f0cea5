"""`hrd-bot data rekey` on PostgreSQL: every sealed value re-sealed under the new key.

PostgreSQL stores only what the bot sealed (`bot.storage.fields`), under a field key
derived from the database key and a salt in `hrd_bot_meta`. A rekey draws a new salt,
opens each sealed value with the old field key and seals it with the new one, and
rewrites the key check, all in ONE transaction under the workers' writer lock: killed
or failed part-way, nothing changed and the old key still opens everything; committed,
only the new key does. Rows are read and rewritten by `ctid` (no key columns to know).

Workers keep their field key in memory, so a worker still running would go on sealing
under the old key: the rekey refuses while any other session (of whichever account) is
connected to the database. The audit table is append-only by trigger; the trigger is
switched off inside the transaction only (DDL is transactional in PostgreSQL).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from bot.storage import postgres
from bot.storage.connection import Connection
from bot.storage.dbkey import DbKey
from bot.storage.faults import StorageError, WrongKeyError
from bot.storage.fields import Fields, SealedFields, UnsealError, field_key
from bot.storage.postgres import KEY_CHECK

__all__ = ["SEALED", "InUseError", "rekey_postgres", "resealed"]

SEALED: dict[str, tuple[str, ...]] = {
    "settings": ("value",),
    "sessions": ("state",),
    "chat_addresses": ("address",),
    "staff": ("label", "identities", "public_key"),
    "org_keys": ("public_key",),
    "cases": ("public_key", "country", "urgency", "assignee", "log_key"),
    "case_log_states": ("after",),
    "case_reporters": ("chat",),
    "audit": ("detail",),
    "checkins": ("chat", "zone"),
    "outbox": ("address", "body", "reason"),
    "inbox": ("body",),
    "button_screens": ("choices",),
    "cluster_leader": ("public_key",),
    "matrix_positions": ("account",),
}
"""Every sealed column, by table: a column sealed anywhere must be listed here, or a
rekey leaves it under the old key (tests/test_pg_data.py checks each exists)."""

_APPEND_ONLY = ("audit", "audit_no_change")
_SETTLE = 3.0  # seconds for a worker that has just stopped to leave pg_stat_activity


class InUseError(StorageError):
    """Other sessions are connected: a running worker would keep sealing under the old key."""


def _others(conn: Connection) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid != pg_backend_pid() AND backend_type = 'client backend'"
    ).fetchone()
    return int(row[0])


def _alone(conn: Connection) -> None:
    deadline = time.monotonic() + _SETTLE
    while (others := _others(conn)) and time.monotonic() < deadline:
        time.sleep(0.1)
    if others:
        raise InUseError(
            f"{others} other session(s) are connected to the database: stop every worker "
            "(hrd-bot run) and close other sessions, then run rekey again"
        )


def resealed(old: Fields, new: Fields, column: str, value: Any) -> Any:
    """`value` under `new`. NULL stays NULL; '' stays '' (what a settled outbox row keeps
    instead of an address: no sealed text is empty)."""
    if value is None or value == "":
        return value
    plain = old.unseal(column, bytes(value) if isinstance(value, memoryview) else value)
    return new.seal(column, plain)


def _reseal_table(conn: Connection, old: Fields, new: Fields, table: str) -> int:
    columns = SEALED[table]
    found = conn.execute(
        f"SELECT ctid::text, {', '.join(columns)} FROM {table}"  # noqa: S608 (names are ours)
    ).fetchall()
    if not found:
        return 0
    sets = ", ".join(f"{c} = ?" for c in columns)
    updates = []
    for ctid, *values in found:
        pairs = zip(columns, values, strict=True)
        updates.append([*(resealed(old, new, f"{table}.{c}", v) for c, v in pairs), ctid])
    conn.executemany(f"UPDATE {table} SET {sets} WHERE ctid = ?::tid", updates)  # noqa: S608
    return len(found)


def _reseal_all(old: Fields, key: DbKey) -> Callable[[Connection], int]:
    def work(conn: Connection) -> int:
        _alone(conn)
        salt = secrets.token_bytes(16)
        new = SealedFields(field_key(key, salt))
        table, trigger = _APPEND_ONLY
        conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
        try:
            count = sum(_reseal_table(conn, old, new, name) for name in SEALED)
        except UnsealError as exc:
            raise StorageError(f"nothing was changed: {exc}") from None
        conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")
        check = new.seal("hrd_bot_meta.keycheck", KEY_CHECK)
        conn.execute("UPDATE hrd_bot_meta SET salt = ?, keycheck = ?", (salt, check))
        return count

    return work


def rekey_postgres(url: str, old: DbKey, new: DbKey) -> int | None:
    """Re-seal the database at `url` under `new`: how many rows were rewritten, or None
    when it already was under `new` (a rekey that committed, run again). Blocking: run
    it from the command line, never on the event loop."""
    if new.value == old.value:
        raise StorageError("the new key is the same as the current one")
    try:
        conn = postgres.connect(url, old)
    except WrongKeyError:
        try:
            postgres.connect(url, new).close()
        except WrongKeyError:
            raise WrongKeyError(
                f"neither the current key nor the new one opens {postgres.redacted(url)}"
            ) from None
        return None
    try:
        return postgres.locked(conn, _reseal_all(conn.fields, new))
    finally:
        conn.close()
