"""Which messages sit in which chat, so sensitive replies expire and `/forget` can wipe a chat.

Only message ids are kept (never text), inside the encrypted database; rows expire
after `keep`, because platforms stop allowing deletion after a while (Telegram: 48 h).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from bot.storage.database import Connection, Database


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

    async def record(
        self, chat: str, message_id: str, delete_after: timedelta | None = None
    ) -> None:
        now = int(time.time())
        due = now + int(delete_after.total_seconds()) if delete_after else None
        args = (self.platform, chat, message_id, now, due)

        def insert(conn: Connection) -> None:
            conn.execute(
                "INSERT INTO chat_messages (platform, chat, message_id, sent_at, delete_at) "
                "VALUES (?, ?, ?, ?, ?)",
                args,
            )

        await self._db.run(insert)

    async def due(self, now: float | None = None, limit: int = 100) -> list[Trace]:
        """Messages whose time to live has passed, oldest first."""
        args = (self.platform, int(time.time() if now is None else now), limit)
        return await self._select(
            "SELECT id, chat, message_id FROM chat_messages "
            "WHERE platform = ? AND delete_at IS NOT NULL AND delete_at <= ? "
            "ORDER BY delete_at LIMIT ?",
            args,
        )

    async def in_chat(self, chat: str) -> list[Trace]:
        """Every message still on record in one chat, newest first (for `/forget`)."""
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
