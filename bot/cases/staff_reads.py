"""What staff actions read about cases, beside `bot.cases.rows` (which writes them):
who holds a case, which cases are open, where its reporter can be answered."""

from __future__ import annotations

from bot.storage.database import Connection

__all__ = ["assignee", "open_case_ids", "reporter_chat"]

_OPEN = (
    "SELECT id FROM cases WHERE state NOT IN ('draft', 'closed') "
    "ORDER BY CASE urgency WHEN 'critical' THEN 0 WHEN 'high' THEN 1 ELSE 2 END, created_at"
)


def assignee(conn: Connection, case_id: str) -> str | None:
    found = conn.execute("SELECT assignee FROM cases WHERE id = ?", (case_id,)).fetchone()
    return None if found is None or found[0] is None else str(found[0])


def open_case_ids(conn: Connection) -> list[str]:
    """Submitted cases not closed, most urgent first, then oldest first."""
    return [str(row[0]) for row in conn.execute(_OPEN)]


def reporter_chat(conn: Connection, case_id: str) -> tuple[str, str, str, str] | None:
    """Platform, chat, language and pseudonym key of the reporter, while the case keeps
    a chat address (closing it lets go of the address)."""
    row = conn.execute(
        "SELECT platform, chat, language, user_key FROM case_reporters "
        "WHERE case_id = ? AND chat != ''",
        (case_id,),
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]), str(row[2]), str(row[3]))
