"""The buttons' current screens, shared by several workers (`bot.cluster`).

`ButtonBook` keeps each chat's current screen in memory. With several workers a screen
may be sent by one worker (the leader's check-in question, a worker that served the
chat before) and pressed at another (the chat's lease holder), so every screen shown is
also written here, and before a press is resolved the chat's current screen is read
back: the newest any worker showed. The chat is its keyed pseudonym; the choice ids are
sealed on PostgreSQL; nonces and message ids are plain (random, and the platform's).
A screen is kept `KEEP_S` after it was shown, as the chat trail keeps message ids, so
the table is never a lasting list of the chats that used the bot; a press on an older
screen is answered as a stale one, with the current screen.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence

from bot.conversation.pseudonym import Pseudonymizer
from bot.storage.database import Connection
from bot.transports.port import Storage
from bot.transports.telegram.buttons import ButtonBook
from bot.transports.telegram.incoming import PLATFORM

__all__ = ["KEEP_S", "SharedButtonBook"]

CHOICES = "button_screens.choices"
KEEP_S = 48 * 3600
Screen = tuple[int, str, tuple[str, ...]]


def _save(chat: str, screen: Screen | None) -> Callable[[Connection], None]:
    def run(conn: Connection) -> None:
        if screen is None:
            conn.execute("DELETE FROM button_screens WHERE chat = ?", (chat,))
            return
        message_id, nonce, choices = screen
        now = int(time.time())
        conn.execute(
            "INSERT INTO button_screens (chat, message_id, nonce, choices, shown_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (chat) DO UPDATE SET"
            " message_id = excluded.message_id, nonce = excluded.nonce,"
            " choices = excluded.choices, shown_at = excluded.shown_at",
            (chat, message_id, nonce, conn.seal(CHOICES, json.dumps(choices)), now),
        )
        conn.execute("DELETE FROM button_screens WHERE shown_at < ?", (now - KEEP_S,))

    return run


def _load(chat: str) -> Callable[[Connection], Screen | None]:
    def run(conn: Connection) -> Screen | None:
        row = conn.execute(
            "SELECT message_id, nonce, choices FROM button_screens WHERE chat = ?"
            " AND shown_at >= ?",
            (chat, int(time.time()) - KEEP_S),
        ).fetchone()
        if row is None:
            return None
        choices = json.loads(conn.unseal(CHOICES, str(row[2])))
        return int(row[0]), str(row[1]), tuple(str(c) for c in choices)

    return run


class SharedButtonBook(ButtonBook):
    """A `ButtonBook` whose screens every worker sees (see the module)."""

    def __init__(self, secret: bytes, db: Storage, pseudonyms: Pseudonymizer) -> None:
        super().__init__(secret)
        self._db, self._pseudonyms = db, pseudonyms
        self._writes: list[asyncio.Task[None]] = []

    def shown(self, chat: str, message_id: int, nonce: str, choices: Sequence[str]) -> None:
        super().shown(chat, message_id, nonce, choices)
        self._write(chat, (message_id, nonce, tuple(choices)))

    def forget(self, chat: str) -> None:
        super().forget(chat)
        self._write(chat, None)

    async def refresh(self, chat: str) -> None:
        """Before a press in `chat` is resolved: the newest screen any worker showed there
        (this worker's own writes first)."""
        await self.flush()
        found = await self._db.run(_load(self._key(chat)))
        if found is None:
            ButtonBook.forget(self, chat)
        else:
            ButtonBook.shown(self, chat, *found)

    async def flush(self) -> None:
        while self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
            self._writes = [task for task in self._writes if not task.done()]

    def _write(self, chat: str, screen: Screen | None) -> None:
        task = asyncio.get_running_loop().create_task(self._db.run(_save(self._key(chat), screen)))
        self._writes.append(task)

    def _key(self, chat: str) -> str:
        return self._pseudonyms.chat(PLATFORM, chat)
