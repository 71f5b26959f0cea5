"""Which messages sit in which chat, so sensitive replies expire and `/forget` can wipe a chat.

Only message ids are kept (never text), inside the encrypted database; rows expire
after `keep`, because platforms stop allowing deletion after a while (Telegram: 48 h).

A row names its chat by a keyed pseudonym (`Pseudonymizer.chat`), never by its address.
The real address is kept in `chat_addresses` only while a message of that chat is due to
be deleted when its time to live ends (the sweeper must know where to delete it), and goes
in the same transaction as the last such row (`drop`), or at the next `prune` (every sweep);
a `prune` after addresses went empties the WAL, so no older copy stays in its frames
(in the file, `secure_delete` has overwritten them).
`/forget` needs no stored address: the chat asking gives it. Rows older than this design
name their chat by a random token (`MOVED`, set by the migration that made
`chat_addresses`) mapped to its address, which is kept until they expire.

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

from bot.conversation.pseudonym import PSEUDONYM_SECRET, Pseudonymizer
from bot.storage.database import Connection, Database

__all__ = ["MOVED", "ChatTrail", "Row", "Trace"]

log = logging.getLogger("hrd_bot.chat_trail")
Row = tuple[str, str, str, int, int | None]
"""(platform, chat, message id, sent at, delete at): the real address until written."""
_INSERT = "INSERT INTO chat_messages (platform, chat, message_id, sent_at, delete_at) VALUES "
_KEEP_ADDRESS = (
    "INSERT INTO chat_addresses (platform, chat, address) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
)
_ROWS_PER_STATEMENT = 100  # 500 parameters: within every SQLite's limit (999)
MOVED = "moved:"
"""How the migration that made `chat_addresses` named the chats of the rows it found
(`moved:` and a random token); the SQL below spells it `LIKE 'moved:%'` (the prefix holds
no wildcard), which both SQLCipher and PostgreSQL take."""
_ADDRESS = "chat_addresses.address"
"""Sealed on PostgreSQL (`Connection.seal`): a lookup by address seals its parameter."""
_NEEDED = (
    "SELECT 1 FROM chat_messages m WHERE m.platform = a.platform AND m.chat = a.chat "
    "AND (m.delete_at IS NOT NULL OR m.chat LIKE 'moved:%')"
)
_PURGE_CHAT = (
    "DELETE FROM chat_addresses AS a WHERE platform = ? AND chat = ? "  # noqa: S608  (constant SQL)
    f"AND NOT EXISTS ({_NEEDED})"
)
_PURGE_ALL = f"DELETE FROM chat_addresses AS a WHERE platform = ? AND NOT EXISTS ({_NEEDED})"  # noqa: S608


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
        self._names: Pseudonymizer | None = None
        self._let_go = 0  # addresses deleted since the WAL was last emptied

    async def _pseudonyms(self) -> Pseudonymizer:
        """The server's pseudonym key, read once (the same key as users' pseudonyms)."""
        if self._names is None:
            self._names = Pseudonymizer(await self._db.secret(PSEUDONYM_SECRET))
        return self._names

    async def _name(self, chat: str) -> str:
        return (await self._pseudonyms()).chat(self.platform, chat)

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
        names = await self._pseudonyms()
        named: dict[str, str] = {}
        for _, chat, _, _, _ in rows:
            if chat not in named:
                named[chat] = names.chat(self.platform, chat)
        kept = {(p, named[chat], chat) for p, chat, _, _, due in rows if due is not None}
        rows = [(p, named[chat], m, sent, due) for p, chat, m, sent, due in rows]
        step = _ROWS_PER_STATEMENT
        chunks = [rows[at : at + step] for at in range(0, len(rows), step)]
        if len(chunks) == 1 and not kept:
            await self._db.run(_writer(chunks, kept))
        else:  # an address and its rows are written together or not at all
            await self._db.transaction(_writer(chunks, kept))

    def _rows(self, chat: str, messages: Sequence[tuple[str, timedelta | None]]) -> list[Row]:
        """A time to live of zero is due at once (it is not "keep forever": that is None)."""
        now = int(time.time())
        return [
            (self.platform, chat, message_id, now, _due(now, delete_after))
            for message_id, delete_after in messages
        ]

    async def due(self, now: float | None = None, limit: int = 100) -> list[Trace]:
        """Messages whose time to live has passed, oldest first, with their chat's address."""
        await self.flush()
        args = (self.platform, int(time.time() if now is None else now), limit)
        return await self._select(
            "SELECT m.id, a.address, m.message_id FROM chat_messages m "
            "JOIN chat_addresses a ON a.platform = m.platform AND a.chat = m.chat "
            "WHERE m.platform = ? AND m.delete_at IS NOT NULL AND m.delete_at <= ? "
            "ORDER BY m.delete_at LIMIT ?",
            args,
        )

    async def in_chat(self, chat: str) -> list[Trace]:
        """Every message still on record in one chat, newest first (for `/forget`)."""
        await self.flush()
        name, platform = await self._name(chat), self.platform

        def read(conn: Connection) -> list[Trace]:
            moved = conn.execute(
                "SELECT chat FROM chat_addresses WHERE platform = ? AND address = ? "
                "AND chat LIKE 'moved:%'",
                (platform, conn.seal(_ADDRESS, chat)),
            ).fetchall()
            found: list[tuple[int, str]] = []
            for named in [name, *(str(r[0]) for r in moved)]:
                found += conn.execute(
                    "SELECT id, message_id FROM chat_messages WHERE platform = ? AND chat = ?",
                    (platform, named),
                ).fetchall()
            return [Trace(int(r), chat, str(m)) for r, m in sorted(found, reverse=True)]

        return await self._db.run(read)

    async def drop(self, traces: Sequence[Trace]) -> None:
        """Forget these rows, and the address of a chat none of what is left needs. A row
        goes only if it still holds the message read: one dropped meanwhile (by the
        sweeper, or `/forget`) may have left its row id to a new row."""
        platform = self.platform

        def delete(conn: Connection) -> int:
            chats: set[str] = set()
            for trace in traces:
                gone = conn.execute(
                    "DELETE FROM chat_messages WHERE id = ? AND message_id = ? RETURNING chat",
                    (trace.row, trace.message_id),
                ).fetchall()
                chats.update(str(r[0]) for r in gone)
            return sum(conn.execute(_PURGE_CHAT, (platform, c)).rowcount for c in chats)

        if traces:
            self._let_go += await self._db.transaction(delete)

    async def prune(self, now: float | None = None) -> int:
        """Forget ids too old to delete any more, and every address no row needs (a chat's
        last due message may have gone with `/forget` or expired); returns how many ids."""
        cutoff = int(time.time() if now is None else now) - int(self.keep.total_seconds())

        def delete(conn: Connection) -> tuple[int, int]:
            cursor = conn.execute(
                "DELETE FROM chat_messages WHERE platform = ? AND sent_at < ?",
                (self.platform, cutoff),
            )
            pruned = int(cursor.rowcount)
            return pruned, int(conn.execute(_PURGE_ALL, (self.platform,)).rowcount)

        pruned, let_go = await self._db.transaction(delete)
        self._let_go += let_go
        if self._let_go and await self._db.truncate_wal():
            self._let_go = 0
        return pruned

    async def _select(self, sql: str, args: tuple[object, ...]) -> list[Trace]:
        def read(conn: Connection) -> list[Trace]:
            return [
                Trace(int(r[0]), conn.unseal(_ADDRESS, str(r[1])), str(r[2]))
                for r in conn.execute(sql, args)
            ]

        return await self._db.run(read)


def _due(now: int, delete_after: timedelta | None) -> int | None:
    return None if delete_after is None else now + int(delete_after.total_seconds())


def _writer(
    chunks: list[list[Row]], addresses: set[tuple[str, str, str]]
) -> Callable[[Connection], None]:
    """Rows already named by pseudonym; `addresses` (platform, pseudonym, address) for the
    chats with a message due to be deleted."""

    def write(conn: Connection) -> None:
        if addresses:
            conn.executemany(
                _KEEP_ADDRESS,
                [(p, c, conn.seal(_ADDRESS, a)) for p, c, a in sorted(addresses)],
            )
        for chunk in chunks:
            values = ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk))
            conn.execute(_INSERT + values, [value for row in chunk for value in row])

    return write
