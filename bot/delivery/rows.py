"""The outbox's rows in SQLCipher: one per message and destination, with its state.

A row keeps the message's text only when it is not sensitive (alerts, reminders,
check-in questions, notices: metadata). A sensitive message (answers, a relay, the
team's words) is kept in memory only; its row says that it exists, never what it says,
so after a crash staff can be told exactly which messages to send again.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from contextvars import Context
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from bot.delivery.outcome import Outcome, Reason
from bot.model import ChatRef, Choice, Reply
from bot.storage.database import Connection, Database

__all__ = ["GroupCommit", "Row", "insert", "pending", "settle"]

T = TypeVar("T")
Write = tuple[Callable[[Connection], Any], "asyncio.Future[Any]"]

KEEP_SETTLED = 7 * 86_400


@dataclass(frozen=True, slots=True)
class Row:
    """A queued message as read back at start: `reply` is None when it was sensitive."""

    id: int
    chat: ChatRef
    kind: str
    case_id: str | None
    created_at: float
    reply: Reply | None


def body(reply: Reply) -> str | None:
    if reply.sensitive:
        return None
    ttl = None if reply.ttl is None else reply.ttl.total_seconds()
    choices = [[c.id, c.label] for c in reply.choices]
    return json.dumps({"text": reply.text, "choices": choices, "ttl": ttl, "rtl": reply.rtl})


def _reply(text: str | None) -> Reply | None:
    if text is None:
        return None
    data = json.loads(text)
    ttl = None if data["ttl"] is None else timedelta(seconds=data["ttl"])
    choices = tuple(Choice(str(i), str(label)) for i, label in data["choices"])
    return Reply(data["text"], choices, ttl=ttl, rtl=bool(data["rtl"]))


def insert(
    chat: ChatRef, reply: Reply, kind: str, case_id: str | None, person: str | None
) -> Callable[[Connection], int]:
    values = (
        chat.platform,
        chat.address,
        int(chat.private),
        int(chat.encrypted),
        kind,
        case_id,
        person,
        body(reply),
        int(time.time()),
    )

    def run(conn: Connection) -> int:
        cursor = conn.execute(
            "INSERT INTO outbox (platform, address, private, encrypted, kind, case_id,"
            " person, body, state, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?9, ?9)",
            values,
        )
        return int(cursor.lastrowid or 0)

    return run


def settle(row_id: int, outcome: Outcome, attempts: int) -> Callable[[Connection], None]:
    state = "delivered" if outcome.delivered else "failed"
    ids = json.dumps(list(outcome.message_ids)) if outcome.message_ids else None
    reason = None if outcome.reason is None else outcome.reason.value
    values = (state, reason, ids, attempts, int(time.time()), row_id)

    def run(conn: Connection) -> None:
        conn.execute(
            "UPDATE outbox SET state = ?, reason = ?, message_ids = ?, attempts = ?,"
            " updated_at = ?, body = NULL WHERE id = ?",
            values,
        )

    return run


def pending(conn: Connection) -> list[Row]:
    """Queued rows, oldest first; those whose content was only in memory become `lost`,
    and settled rows older than a week go (their message ids live on in the chat trail)."""
    found = conn.execute(
        "SELECT id, platform, address, private, encrypted, kind, case_id, created_at, body"
        " FROM outbox WHERE state = 'queued' ORDER BY id"
    ).fetchall()
    rows = [
        Row(
            int(r[0]),
            ChatRef(str(r[1]), str(r[2]), private=bool(r[3]), encrypted=bool(r[4])),
            str(r[5]),
            None if r[6] is None else str(r[6]),
            float(r[7]),
            _reply(r[8]),
        )
        for r in found
    ]
    lost = [(Reason.LOST.value, int(time.time()), row.id) for row in rows if row.reply is None]
    conn.executemany(
        "UPDATE outbox SET state = 'failed', reason = ?, updated_at = ? WHERE id = ?", lost
    )
    conn.execute(
        "DELETE FROM outbox WHERE state != 'queued' AND updated_at < ?",
        (int(time.time()) - KEEP_SETTLED,),
    )
    return rows


def counts(conn: Connection) -> dict[str, int]:
    found = conn.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall()
    return {str(state): int(n) for state, n in found}


def forget_statement() -> str:
    """For `/forget`: what was queued for or sent to this person goes with them."""
    return "DELETE FROM outbox WHERE person = ?"


def chats(rows: Sequence[Row]) -> set[tuple[str, str]]:
    return {(row.chat.platform, row.chat.address) for row in rows}


class GroupCommit:
    """Row writes made while a commit is under way all go in the next one (a group
    commit, as `SessionStore` does). Every caller still returns only once its write is
    committed (a posted row is on disk before `Outbox.post` returns; a lane sends its
    next message only after the last one is settled), but ten lanes settling at once cost one
    transaction, one WAL append and, under `synchronous=FULL`, one fsync, not ten.
    The writes of one commit succeed or fail together (a full disk fails them all)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._pending: list[Write] = []
        self._writing: asyncio.Task[None] | None = None

    async def write(self, work: Callable[[Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        committed: asyncio.Future[T] = loop.create_future()
        self._pending.append((work, committed))
        if self._writing is None or self._writing.done():
            # a fresh context: the writer must not inherit a chat's turn (see Outbox)
            self._writing = loop.create_task(self._write_pending(), context=Context())
        return await committed

    async def flush(self) -> None:
        """Wait until every write asked for so far is committed or has failed."""
        while self._writing is not None and not self._writing.done():
            await asyncio.shield(self._writing)

    async def _write_pending(self) -> None:
        while self._pending:
            await asyncio.sleep(0)  # those just told their last write is in write the next
            batch, self._pending = self._pending, []
            try:
                results = await self._db.transaction(_each(batch))
            except Exception as exc:  # these writes fail; the next ones get their own commit
                for _, committed in batch:
                    if not committed.done():
                        committed.set_exception(exc)
                continue
            except BaseException:  # cancelled: nobody would write what is still waiting
                for _, committed in batch + self._pending:
                    committed.cancel()
                self._pending = []
                raise
            for (_, committed), result in zip(batch, results, strict=True):
                if not committed.done():
                    committed.set_result(result)


def _each(batch: list[Write]) -> Callable[[Connection], list[Any]]:
    def run(conn: Connection) -> list[Any]:
        return [work(conn) for work, _ in batch]

    return run
