"""Which messages sit in which chat, so sensitive replies expire and `/forget` can wipe a chat.

Only message ids are kept (never text), inside the encrypted database; rows expire
after `keep`, because platforms stop allowing deletion after a while (Telegram: 48 h).

A busy transport records with `note`, which does not wait for the database: ids noted
while one write is under way all go in the next write (a group commit), so a
hundred chats answered at once cost a few database trips, not a hundred. Every read
(`due`, `in_chat`) first waits for what is noted, so the sweeper and `/forget` never
miss an id. Between a message being sent and its id
being written there is one database trip, as when the transport waited for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from bot.storage.database import Connection, Database

log = logging.getLogger("hrd_bot.chat_trail")
Row = tuple[str, str, str, int, int | None]
_INSERT = "INSERT INTO chat_messages (platform, chat, message_id, sent_at, delete_at) VALUES "
_ROWS_PER_STATEMENT = 100  # 500 parameters: within every SQLite's limit (999)


@dataclass(frozen=True, slots=True)
class Trace:
    row: int
    chat: str
    message_id: str


class ChatTrail:
    """One platform's trail; `chat` is the transport's own chat address."""

    def __init__(self, db: Database, platform: str, keep: timedelta = timedelta(hours=48)) -> None:
        self._db = db
        self.platform = platform
        self.keep = keep
        self._noted: list[Row] = []
        self._writing: asyncio.Task[None] | None = None

    async def record(
        self, chat: str, message_id: str, delete_after: timedelta | None = None
    ) -> None:
        await self.record_many(chat, [(message_id, delete_after)])

    async def record_many(
        self, chat: str, messages: Sequence[tuple[str, timedelta | None]]
    ) -> None:
        """Several messages of one chat in one database trip, written when this returns."""
        rows = self._rows(chat, messages)
        if rows:
            await self._write(rows)

    def note(self, chat: str, messages: Sequence[tuple[str, timedelta | None]]) -> None:
        """Record without waiting: written with everything else noted, in the next trip."""
        self._noted += self._rows(chat, messages)
        if self._noted and (self._writing is None or self._writing.done()):
            self._writing = asyncio.get_running_loop().create_task(self._write_noted())

    async def flush(self) -> None:
        """Wait until every id noted so far is written (at a stop, and before any read)."""
        while self._writing is not None and not self._writing.done():
            await asyncio.shield(self._writing)

    async def _write_noted(self) -> None:
        while self._noted:
            rows, self._noted = self._noted, []
            try:
                await self._write(rows)
            except Exception as exc:  # nobody awaits this write: say it failed, keep going
                log.error("%d message ids were not recorded (%s)", len(rows), type(exc).__name__)

    async def _write(self, rows: list[Row]) -> None:
        """Several rows in one statement (one transaction): in autocommit mode each would
        be its own commit, every one encrypting and appending its pages to the WAL again,
        and each statement is a database trip that takes the interpreter lock from the
        event loop."""
        step = _ROWS_PER_STATEMENT
        chunks = [rows[at : at + step] for at in range(0, len(rows), step)]
        if len(chunks) == 1:
            await self._db.run(_writer(chunks))
        else:
            await self._db.transaction(_writer(chunks))

    def _rows(self, chat: str, messages: Sequence[tuple[str, timedelta | None]]) -> list[Row]:
        """A time to live of zero is due at once (it is not "keep forever": that is None)."""
        now = int(time.time())
        return [
            (self.platform, chat, message_id, now, _due(now, delete_after))
            for message_id, delete_after in messages
        ]

    async def due(self, now: float | None = None, limit: int = 100) -> list[Trace]:
        """Messages whose time to live has passed, oldest first."""
        await self.flush()
        args = (self.platform, int(time.time() if now is None else now), limit)
        return await self._select(
            "SELECT id, chat, message_id FROM chat_messages "
            "WHERE platform = ? AND delete_at IS NOT NULL AND delete_at <= ? "
            "ORDER BY delete_at LIMIT ?",
            args,
        )

    async def in_chat(self, chat: str) -> list[Trace]:
        """Every message still on record in one chat, newest first (for `/forget`)."""
        await self.flush()
        return await self._select(
            "SELECT id, chat, message_id FROM chat_messages "
            "WHERE platform = ? AND chat = ? ORDER BY id DESC",
            (self.platform, chat),
        )

    async def drop(self, rows: list[int]) -> None:
        def delete(conn: Connection) -> None:
            conn.executemany("DELETE FROM chat_messages WHERE id = ?", [(r,) for r in rows])

        if rows:
            await self._db.run(delete)

    async def prune(self, now: float | None = None) -> int:
        """Forget ids too old to delete any more; returns how many."""
        cutoff = int(time.time() if now is None else now) - int(self.keep.total_seconds())

        def delete(conn: Connection) -> int:
            cursor = conn.execute(
                "DELETE FROM chat_messages WHERE platform = ? AND sent_at < ?",
                (self.platform, cutoff),
            )
            return int(cursor.rowcount)

        return await self._db.run(delete)

    async def _select(self, sql: str, args: tuple[object, ...]) -> list[Trace]:
        def read(conn: Connection) -> list[Trace]:
            return [Trace(int(r[0]), str(r[1]), str(r[2])) for r in conn.execute(sql, args)]

        return await self._db.run(read)


def _due(now: int, delete_after: timedelta | None) -> int | None:
    return None if delete_after is None else now + int(delete_after.total_seconds())


def _writer(chunks: list[list[Row]]) -> Callable[[Connection], None]:
    def write(conn: Connection) -> None:
        for chunk in chunks:
            values = ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk))
            conn.execute(_INSERT + values, [value for row in chunk for value in row])

    return write
