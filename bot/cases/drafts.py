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
The sessions row is edited in the same transaction (`bot.conversation.sessions`), as
retention does; a session still cached in memory is overwritten by the save that follows
the same handler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.cases import rows
from bot.cases.reporter_rows import link_reporter
from bot.cases.rows import (
    SYSTEM,
    append_audit,
    case_meta,
    create_case,
    mark_submitted,
)
from bot.conversation.sessions import let_go_of_draft, report_sent
from bot.crypto.records import CaseMeta
from bot.storage.database import Connection

__all__ = ["Reporter", "Submitted", "delete_draft", "open_draft", "submit"]


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
    link = (reporter.user_key, reporter.platform, reporter.chat, reporter.language)
    link_reporter(conn, case.id, link)
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
    mark_submitted(conn, case_id, now)
    report_sent(conn, case_id)
    case = case_meta(conn, case_id)
    append_audit(conn, now, actor, "case.submit", case)
    if then is not None:
        then(conn, case)
    return Submitted(case, first=True)


def delete_draft(conn: Connection, case_id: str) -> bool:
    """Remove an unsent draft and everything sealed to it (cascade); audit rows remain."""
    let_go_of_draft(conn, case_id)
    return rows.delete_draft(conn, case_id)
