"""A report's life before staff see it, each step one transaction that a kill cannot split.

A kill at any page write leaves each step done or not done, never half:
- opening: the case (already a draft), its sealed keys, its audit and the link to the
  reporter. A draft whose reply never left is linked to no session; staff never list
  drafts and retention deletes them.
- sealing an answer replaces the draft's earlier item of that field (`add_item`,
  `replace`): if the kill took the "Saved and locked" reply, the reporter is asked
  again and the second answer takes the first one's place.
- submitting: the state, the audit, and the reporter's session let go of the draft and
  carry `SENT` instead, so the reporter is told it was sent at their next message.
  A second submit of the same case changes nothing and says it was not the first.
- discarding: the reporter's session lets go of the draft with it.
The sessions row is edited in SQL here as retention does (`bot.safety.retention`); a session
still cached in memory is overwritten by the save that follows the same handler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.cases.rows import SYSTEM, append_audit, case_meta, create_case
from bot.conversation.sessions import SENT
from bot.crypto.records import CaseMeta
from bot.storage.database import Connection

__all__ = ["Reporter", "Submitted", "delete_draft", "open_draft", "submit"]

_REPORTER_SESSION = (
    "WHERE user_key IN (SELECT user_key FROM case_reporters WHERE case_id = ?) "
    "AND json_extract(state, '$.report.case') = ?"
)
_LET_GO = "UPDATE sessions SET state = json_remove(state, '$.report') " + _REPORTER_SESSION  # noqa: S608
_SENT = (
    f"UPDATE sessions SET state = json_set(json_remove(state, '$.report'), '$.{SENT}', ?) "  # noqa: S608  (constant SQL)
    + _REPORTER_SESSION
)


@dataclass(frozen=True, slots=True)
class Reporter:
    """Who wrote a report and where to answer them: a pseudonym key and a chat address."""

    user_key: str
    platform: str
    chat: str
    language: str


@dataclass(frozen=True, slots=True)
class Submitted:
    """The case after `submit`; `first` is False when it had been submitted before."""

    case: CaseMeta
    first: bool


def open_draft(conn: Connection, now: int, reporter: Reporter) -> CaseMeta:
    case = create_case(conn, now, SYSTEM, None, None, state="draft")
    append_audit(conn, now, SYSTEM, "case.draft", case)
    conn.execute(
        "INSERT INTO case_reporters (case_id, user_key, platform, chat, language) "
        "VALUES (?, ?, ?, ?, ?)",
        (case.id, reporter.user_key, reporter.platform, reporter.chat, reporter.language),
    )
    return case


def submit(
    conn: Connection,
    now: int,
    case_id: str,
    actor: str,
    then: Callable[[Connection, CaseMeta], None] | None,
) -> Submitted:
    """Draft to `new`, once; `then` runs in the same transaction, only the first time."""
    case = case_meta(conn, case_id)
    if case.state != "draft":
        return Submitted(case, first=False)
    conn.execute(
        "UPDATE cases SET state = 'new', submitted_at = ?, updated_at = ? WHERE id = ?",
        (now, now, case_id),
    )
    conn.execute(_SENT, (case_id, case_id, case_id))
    case = case_meta(conn, case_id)
    append_audit(conn, now, actor, "case.submit", case)
    if then is not None:
        then(conn, case)
    return Submitted(case, first=True)


def delete_draft(conn: Connection, case_id: str) -> bool:
    """Remove an unsent draft and everything sealed to it (cascade); audit rows remain."""
    conn.execute(_LET_GO, (case_id, case_id))
    cursor = conn.execute("DELETE FROM cases WHERE id = ? AND state = 'draft'", (case_id,))
    return bool(cursor.rowcount)
