"""What staff actions read about cases, beside `bot.cases.rows` (which writes them):
who holds a case, which cases are open, where its reporter can be answered.

Urgency, assignee and the reporter's chat address are sealed (`Connection.seal`):
they are unsealed here, and the open cases are ordered by urgency in Python."""

from __future__ import annotations

from bot.storage.database import Connection

__all__ = ["assignee", "open_case_ids", "reporter_chat"]

_OPEN = (
    "SELECT id, urgency, created_at FROM cases WHERE state NOT IN ('draft', 'closed') "
    "ORDER BY created_at, seq"
)
_RANK = {"critical": 0, "high": 1}


def assignee(conn: Connection, case_id: str) -> str | None:
    found = conn.execute("SELECT assignee FROM cases WHERE id = ?", (case_id,)).fetchone()
    if found is None or found[0] is None:
        return None
    return str(conn.unseal("cases.assignee", found[0]))


def open_case_ids(conn: Connection) -> list[str]:
    """Submitted cases not closed, most urgent first, then oldest first."""
    found = [
        (_RANK.get(conn.unseal("cases.urgency", urgency) or "", 2), created, str(case_id))
        for case_id, urgency, created in conn.execute(_OPEN).fetchall()
    ]
    return [case_id for _, _, case_id in sorted(found, key=lambda one: one[:2])]


def reporter_chat(conn: Connection, case_id: str) -> tuple[str, str, str, str] | None:
    """Platform, chat, language and pseudonym key of the reporter, while the case keeps
    a chat address (closing it lets go of the address)."""
    row = conn.execute(
        "SELECT platform, chat, language, user_key FROM case_reporters "
        "WHERE case_id = ? AND chat != ''",
        (case_id,),
    ).fetchone()
    if row is None:
        return None
    chat = conn.unseal("case_reporters.chat", str(row[1]))
    return str(row[0]), chat, str(row[2]), str(row[3])
