"""The outbox's rows in the database: one per message and destination, with its state.

A row keeps the message's text only when it is not sensitive (alerts, reminders,
check-in questions, notices: metadata). A sensitive message (answers, a relay, the
team's words) is kept in memory only; its row says that it exists, never what it says,
so after a crash staff can be told exactly which messages to send again.

A row addressed to a person (a reporter: `person` is set) keeps their chat address only
while it is queued: settled, delivered or not, the address is blanked in the same write.

On PostgreSQL the address, the body and the reason are sealed (`Connection.seal`); the
message ids a row settled with are also kept one per row in `outbox_messages`, so an
alert is found from one of its ids by plain SQL on both engines.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from bot.delivery.outcome import Outcome, Reason
from bot.model import ChatRef, Choice, Reply
from bot.storage.database import Connection

__all__ = [
    "ADDRESS",
    "BODY",
    "CLAIMABLE",
    "REASON",
    "Row",
    "alerted_case",
    "body",
    "insert",
    "pending",
    "reply_from",
    "settle",
    "touch",
]


KEEP_SETTLED = 7 * 86_400
ADDRESS, BODY, REASON = "outbox.address", "outbox.body", "outbox.reason"
"""The sealed columns (`Connection.seal`: the identity on SQLCipher)."""
_LET_GO = "address = CASE WHEN person IS NULL THEN address ELSE '' END"
"""A settled row to a person no longer needs where they are (staff rooms are no secret)."""


@dataclass(frozen=True, slots=True)
class Row:
    """A queued message as read back at start: `reply` is None when it was sensitive;
    `attempts` is above 0 when a try may have left before the stop."""

    id: int
    chat: ChatRef
    kind: str
    case_id: str | None
    created_at: float
    reply: Reply | None
    attempts: int = 0
    updated_at: float = 0.0


def body(reply: Reply) -> str | None:
    if reply.sensitive:
        return None
    ttl = None if reply.ttl is None else reply.ttl.total_seconds()
    choices = [[c.id, c.label] for c in reply.choices]
    data = {"text": reply.text, "choices": choices, "ttl": ttl, "rtl": reply.rtl}
    return json.dumps(data | {"replaces": reply.replaces})


def reply_from(text: str | None) -> Reply | None:
    """The reply `body` wrote (None for None)."""
    if text is None:
        return None
    data = json.loads(text)
    ttl = None if data["ttl"] is None else timedelta(seconds=data["ttl"])
    choices = tuple(Choice(str(i), str(label)) for i, label in data["choices"])
    replaces = data.get("replaces")
    return Reply(data["text"], choices, ttl=ttl, rtl=bool(data["rtl"]), replaces=replaces)


def insert(
    chat: ChatRef, reply: Reply, kind: str, case_id: str | None, person: str | None
) -> Callable[[Connection], int]:
    text = body(reply)

    def run(conn: Connection) -> int:
        now = int(time.time())
        values = (
            chat.platform,
            conn.seal(ADDRESS, chat.address),
            int(chat.private),
            int(chat.encrypted),
            kind,
            case_id,
            person,
            conn.seal(BODY, text),
            now,
            now,
        )
        row = conn.execute(
            "INSERT INTO outbox (platform, address, private, encrypted, kind, case_id,"
            " person, body, state, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?) RETURNING id",
            values,
        ).fetchone()
        return int(row[0])

    return run


def settle(row_id: int, outcome: Outcome, attempts: int) -> Callable[[Connection], None]:
    state = "delivered" if outcome.delivered else "failed"
    ids = json.dumps(list(outcome.message_ids)) if outcome.message_ids else None
    reason = None if outcome.reason is None else outcome.reason.value

    def run(conn: Connection) -> None:
        conn.execute(
            "UPDATE outbox SET state = ?, reason = ?, message_ids = ?, attempts = ?,"  # noqa: S608
            f" updated_at = ?, body = NULL, {_LET_GO} WHERE id = ?",
            (state, conn.seal(REASON, reason), ids, attempts, int(time.time()), row_id),
        )
        if not outcome.message_ids:
            return
        conn.executemany(
            "INSERT INTO outbox_messages (outbox_id, message_id) VALUES (?, ?)"
            " ON CONFLICT (outbox_id, message_id) DO NOTHING",
            [(row_id, message_id) for message_id in dict.fromkeys(outcome.message_ids)],
        )

    return run


def pending(conn: Connection) -> list[Row]:
    """Queued rows, oldest first (settled rows older than a week are pruned on the way)."""
    found = conn.execute(
        "SELECT id, platform, address, private, encrypted, kind, case_id, created_at, body,"
        " attempts, updated_at FROM outbox WHERE state = 'queued' ORDER BY id"
    ).fetchall()
    prune(conn)
    return [
        Row(
            int(r[0]),
            ChatRef(
                str(r[1]), conn.unseal(ADDRESS, str(r[2])), private=bool(r[3]), encrypted=bool(r[4])
            ),
            str(r[5]),
            None if r[6] is None else str(r[6]),
            float(r[7]),
            reply_from(conn.unseal(BODY, r[8])),
            int(r[9]),
            float(r[10]),
        )
        for r in found
    ]


CLAIMABLE = ("alert", "sos", "reminder", "checkin")
"""Kinds of message about a case that staff can claim the case from (`alerted_case`)."""


def alerted_case(conn: Connection, platform: str, address: str, message_id: str) -> str | None:
    """The case of the alert the bot delivered to this chat as `message_id` (from the ids
    recorded when it settled), or None: nothing in the message itself is trusted."""
    marks = ", ".join("?" * len(CLAIMABLE))
    row = conn.execute(
        "SELECT o.case_id FROM outbox o JOIN outbox_messages m ON m.outbox_id = o.id"  # noqa: S608
        " WHERE m.message_id = ? AND o.platform = ? AND o.address = ?"
        f" AND o.state = 'delivered' AND o.case_id IS NOT NULL AND o.kind IN ({marks})"
        " ORDER BY o.id DESC LIMIT 1",
        (message_id, platform, conn.seal(ADDRESS, address), *CLAIMABLE),
    ).fetchone()
    return None if row is None else str(row[0])


def give_up(found: list[tuple[int, Reason]]) -> Callable[[Connection], None]:
    """After a stop: these will not be sent again (lost, or perhaps already sent)."""

    def run(conn: Connection) -> None:
        now = int(time.time())
        conn.executemany(
            "UPDATE outbox SET state = 'failed', reason = ?, updated_at = ?, body = NULL,"  # noqa: S608
            f" {_LET_GO} WHERE id = ?",
            [(conn.seal(REASON, reason.value), now, row_id) for row_id, reason in found],
        )

    return run


def trying(row_id: int, *, left: bool = True) -> Callable[[Connection], None]:
    """Noted before a try that could not be repeated exactly (on a platform that cannot
    deduplicate, or of content held only in memory), and cleared (`left=False`) when the
    try surely did not leave: if the bot dies before the outcome is written, the next
    start knows whether the message may have left."""

    def run(conn: Connection) -> None:
        conn.execute("UPDATE outbox SET attempts = ? WHERE id = ?", (int(left), row_id))

    return run


def touch(ids: list[int]) -> Callable[[Connection], None]:
    """Several workers (`bot.cluster`): these queued rows are still held by a live worker
    (the leader adopts only rows nobody touched for a while)."""

    def run(conn: Connection) -> None:
        now = int(time.time())
        conn.executemany(
            "UPDATE outbox SET updated_at = ? WHERE id = ? AND state = 'queued'",
            [(now, row_id) for row_id in ids],
        )

    return run


def prune(conn: Connection) -> None:
    """Settled rows go after a week: their message ids live on in the chat trail. An
    alert about a case still open stays, so staff can claim the case from it."""
    marks = ", ".join("?" * len(CLAIMABLE))
    conn.execute(
        "DELETE FROM outbox WHERE state != 'queued' AND updated_at < ? AND NOT ("  # noqa: S608
        f"kind IN ({marks}) AND case_id IN (SELECT id FROM cases WHERE state != 'closed'))",
        (int(time.time()) - KEEP_SETTLED, *CLAIMABLE),
    )


def forget_statement() -> str:
    """For `/forget`: what was queued for or sent to this person goes with them."""
    return "DELETE FROM outbox WHERE person = ?"
