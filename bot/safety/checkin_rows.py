"""The `checkins` table: its one writer. Each function takes the open connection and never
commits, so `bot.safety.checkins` keeps each answer, tick and alert one transaction.

`chat` (a platform id) and `zone` (where the person lives) are sealed on PostgreSQL
(`Connection.seal`); every read of them goes through here and comes back unsealed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.storage.database import Connection

__all__ = [
    "Plan",
    "Reading",
    "answered",
    "delete",
    "drop_closed",
    "due",
    "duress_chat",
    "forget_statement",
    "link_case",
    "mark_alerted",
    "mark_asked",
    "missed",
    "move_zone",
    "pending_duress",
    "plan",
    "plan_with_country",
    "reading",
    "set_duress",
    "set_paused",
    "settle_duress",
    "unlink_case",
    "upsert",
]

Plan = tuple[int | None, int | None, str | None]
"""`every_s`, `daily_at` (minutes after midnight), `zone`."""
Reading = tuple[str | None, str, str, str, int | None, int | None, str | None, bytes | None]
"""case, platform, chat, language, `every_s`, `daily_at`, zone, duress hash."""
_CHAT = "checkins.chat"
_ZONE = "checkins.zone"
_PLAN = "SELECT every_s, daily_at, zone FROM checkins WHERE user_key = ?"
_UPSERT = (
    "INSERT INTO checkins (user_key, case_id, platform, chat, language, every_s, "
    "daily_at, zone, next_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (user_key) DO UPDATE SET case_id = COALESCE(excluded.case_id, "
    "checkins.case_id), platform = excluded.platform, chat = excluded.chat, "
    "language = excluded.language, every_s = excluded.every_s, "
    "daily_at = excluded.daily_at, zone = excluded.zone, next_at = excluded.next_at,"
    " asked_at = NULL, alerted_at = NULL, paused = 0"
)


def upsert(conn: Connection, user_key: str, case: str | None, row: Sequence[object]) -> None:
    """Start or change check-ins: `row` is platform, chat, language, every_s, daily_at,
    zone, next_at; a pause, a pending question or alert is reset."""
    platform, chat, language, every_s, daily_at, zone, next_at = row
    sealed = (conn.seal(_CHAT, str(chat)), conn.seal(_ZONE, _text(zone)))
    conn.execute(
        _UPSERT,
        (user_key, case, platform, sealed[0], language, every_s, daily_at, sealed[1], next_at),
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def plan(conn: Connection, user_key: str) -> Plan | None:
    found = conn.execute(_PLAN, (user_key,)).fetchone()
    return None if found is None else (found[0], found[1], conn.unseal(_ZONE, found[2]))


def reading(conn: Connection, user_key: str) -> Reading | None:
    """What an answer needs to know of the person's check-ins."""
    found = conn.execute(
        "SELECT case_id, platform, chat, language, every_s, daily_at, zone, duress "
        "FROM checkins WHERE user_key = ?",
        (user_key,),
    ).fetchone()
    if found is None:
        return None
    case, platform, chat, language, every, daily, zone, word = found
    chat, zone = conn.unseal(_CHAT, str(chat)), conn.unseal(_ZONE, zone)
    return case, str(platform), chat, str(language), every, daily, zone, word


def plan_with_country(conn: Connection, user_key: str) -> tuple[Any, ...] | None:
    """`every_s`, `daily_at`, zone, paused, a duress word set, next time, the case's country."""
    found = conn.execute(
        "SELECT k.every_s, k.daily_at, k.zone, k.paused, k.duress IS NOT NULL, "
        "k.next_at, c.country FROM checkins k LEFT JOIN cases c ON c.id = k.case_id "
        "WHERE k.user_key = ?",
        (user_key,),
    ).fetchone()
    if found is None:
        return None
    every, daily, zone, paused, word, due, country = found
    zone, country = conn.unseal(_ZONE, zone), conn.unseal("cases.country", country)
    return every, daily, zone, paused, word, due, country


def delete(conn: Connection, user_key: str) -> None:
    conn.execute("DELETE FROM checkins WHERE user_key = ?", (user_key,))


def forget_statement() -> str:
    """For `/forget`: the person's check-ins go."""
    return "DELETE FROM checkins WHERE user_key = ?"


def set_paused(conn: Connection, user_key: str, paused: bool, next_at: int) -> None:
    conn.execute(
        "UPDATE checkins SET paused = ?, next_at = ?, asked_at = NULL, alerted_at = NULL"
        " WHERE user_key = ?",
        (int(paused), next_at, user_key),
    )


def move_zone(conn: Connection, user_key: str, zone: str, next_at: int) -> None:
    """A new zone; the next question moves unless one is asked and waiting."""
    conn.execute(
        "UPDATE checkins SET zone = ?, next_at = CASE WHEN asked_at IS NULL THEN ? "
        "ELSE next_at END WHERE user_key = ?",
        (conn.seal(_ZONE, zone), next_at, user_key),
    )


def set_duress(conn: Connection, user_key: str, hashed: bytes | None) -> bool:
    """False without check-ins."""
    done = conn.execute("UPDATE checkins SET duress = ? WHERE user_key = ?", (hashed, user_key))
    return bool(done.rowcount > 0)


def answered(conn: Connection, user_key: str, next_at: int, duress_at: int | None) -> None:
    """The question is closed and the next one due at `next_at`; `duress_at` marks a
    duress alert to raise."""
    conn.execute(
        "UPDATE checkins SET asked_at = NULL, alerted_at = NULL, next_at = ?, "
        "duress_at = COALESCE(?, duress_at) WHERE user_key = ?",
        (next_at, duress_at, user_key),
    )


def duress_chat(conn: Connection, user_key: str) -> tuple[str, str, str] | None:
    """Platform, chat and language of a duress alert still to raise, if any."""
    found = conn.execute(
        "SELECT platform, chat, language FROM checkins "
        "WHERE user_key = ? AND duress_at IS NOT NULL",
        (user_key,),
    ).fetchone()
    return None if found is None else (str(found[0]), conn.unseal(_CHAT, found[1]), str(found[2]))


def settle_duress(conn: Connection, user_key: str, case_id: str) -> None:
    """The duress alert is raised on `case_id`: nothing left to raise."""
    conn.execute(
        "UPDATE checkins SET duress_at = NULL, case_id = ? WHERE user_key = ?",
        (case_id, user_key),
    )


def drop_closed(conn: Connection) -> None:
    """Check-ins tied to a closed case end with it."""
    closed = "SELECT id FROM cases WHERE state = 'closed'"
    conn.execute(f"DELETE FROM checkins WHERE case_id IN ({closed})")  # noqa: S608


def due(conn: Connection, now: int) -> list[tuple[str, str, str]]:
    """User key, platform and chat of each question due to be asked."""
    found = conn.execute(
        "SELECT user_key, platform, chat FROM checkins "
        "WHERE paused = 0 AND asked_at IS NULL AND next_at <= ?",
        (now,),
    ).fetchall()
    return [(str(k), str(p), conn.unseal(_CHAT, str(c))) for k, p, c in found]


def mark_asked(conn: Connection, user_keys: Sequence[str], now: int) -> None:
    conn.executemany(
        "UPDATE checkins SET asked_at = ? WHERE user_key = ?", [(now, k) for k in user_keys]
    )


def missed(conn: Connection, asked_before: int) -> list[tuple[str, str | None, str, str, str, int]]:
    """Questions asked before `asked_before`, not answered, not yet alerted: user key,
    case, platform, chat, language, when asked."""
    found = conn.execute(
        "SELECT user_key, case_id, platform, chat, language, asked_at FROM checkins "
        "WHERE paused = 0 AND alerted_at IS NULL AND asked_at <= ?",
        (asked_before,),
    ).fetchall()
    return [(k, case, p, conn.unseal(_CHAT, str(c)), lang, at) for k, case, p, c, lang, at in found]


def pending_duress(conn: Connection) -> list[str]:
    found = conn.execute("SELECT user_key FROM checkins WHERE duress_at IS NOT NULL")
    return [str(row[0]) for row in found.fetchall()]


def mark_alerted(conn: Connection, user_key: str, now: int) -> None:
    conn.execute("UPDATE checkins SET alerted_at = ? WHERE user_key = ?", (now, user_key))


def link_case(conn: Connection, user_key: str, case_id: str) -> None:
    conn.execute("UPDATE checkins SET case_id = ? WHERE user_key = ?", (case_id, user_key))


def unlink_case(conn: Connection, case_id: str) -> None:
    """The case closed: the person's check-ins are theirs, not the case's; they run on,
    linked to no case (a missed one opens a new one) until stopped or `/forget`."""
    conn.execute("UPDATE checkins SET case_id = NULL WHERE case_id = ?", (case_id,))
