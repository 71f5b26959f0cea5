"""Which update ids were already taken, so an update delivered twice is handled once.

Telegram sends an update again when its receipt was not confirmed: a webhook request
that failed or timed out, or polling restarted after a crash before the next getUpdates
confirmed the offset. Ids are kept for `keep` (Telegram holds an unconfirmed update for
24 hours) in memory and in the encrypted database, so a restart does not forget them.
A set, not a high-water mark: webhook deliveries may arrive out of order, and a late
one that was never handled must not be taken for a repeat.

An id is taken when its update is handed to the handlers and written without waiting
(one write for all ids taken meanwhile); a crash within that one database trip is the
only way an update can be handled twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import timedelta

from bot.storage.database import Connection
from bot.transports.port import Storage

__all__ = ["SeenUpdates", "admit_once"]

log = logging.getLogger("hrd_bot.telegram")
KEEP = timedelta(hours=48)
PRUNE_EVERY = 1000  # ids taken between two deletions of expired rows
_INSERT = "INSERT INTO telegram_updates (bot, update_id, seen_at) VALUES "
_KEEP_FIRST = " ON CONFLICT (bot, update_id) DO NOTHING"
_ROWS_PER_STATEMENT = 300  # 900 parameters: within every SQLite's limit (999)


class SeenUpdates:
    """One bot account's recent update ids; `load` it (with the bot's id) before use."""

    def __init__(self, db: Storage, keep: timedelta = KEEP) -> None:
        self._db = db
        self._keep = int(keep.total_seconds())
        self._bot = 0
        self._ids: set[int] = set()
        self._order: deque[tuple[int, int]] = deque()
        self._noted: list[tuple[int, int]] = []
        self._writing: asyncio.Task[None] | None = None
        self._since_prune = 0
        self.duplicates = 0

    async def load(self, bot_id: int) -> None:
        """Forget expired ids, then read the others (a restart within `keep` knows them)."""
        self._bot = bot_id
        cutoff = int(time.time()) - self._keep

        def read(conn: Connection) -> list[tuple[int, int]]:
            conn.execute("DELETE FROM telegram_updates WHERE seen_at < ?", (cutoff,))
            rows = conn.execute(
                "SELECT update_id, seen_at FROM telegram_updates WHERE bot = ? ORDER BY seen_at",
                (bot_id,),
            )
            return [(int(r[0]), int(r[1])) for r in rows]

        rows = await self._db.run(read)
        self._ids = {update_id for update_id, _ in rows}
        self._order = deque((seen_at, update_id) for update_id, seen_at in rows)

    def seen(self, update_id: int) -> bool:
        return update_id in self._ids

    def admit(self, update_id: int) -> bool:
        """True the first time an id is offered (and it is recorded); False for a repeat."""
        if update_id in self._ids:
            self.duplicates += 1
            log.info("telegram: an update delivered again was not handled twice")
            return False
        now = int(time.time())
        self._forget_before(now - self._keep)
        self._ids.add(update_id)
        self._order.append((now, update_id))
        self._noted.append((update_id, now))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.get_running_loop().create_task(self._write_noted())
        return True

    async def flush(self) -> None:
        """Wait until every id taken so far is written (at a stop)."""
        while self._writing is not None and not self._writing.done():
            await asyncio.shield(self._writing)

    def _forget_before(self, cutoff: int) -> None:
        while self._order and self._order[0][0] < cutoff:
            _, update_id = self._order.popleft()
            self._ids.discard(update_id)

    async def _write_noted(self) -> None:
        while self._noted:
            rows, self._noted = self._noted, []
            self._since_prune += len(rows)
            prune_before = None
            if self._since_prune >= PRUNE_EVERY:
                self._since_prune = 0
                prune_before = int(time.time()) - self._keep
            try:
                await self._db.transaction(_writer(self._bot, rows, prune_before))
            except Exception as exc:  # nobody awaits this write: say it failed, keep going
                what = type(exc).__name__
                log.error("telegram: %d update ids were not recorded (%s)", len(rows), what)


def _writer(
    bot: int, rows: list[tuple[int, int]], prune_before: int | None
) -> Callable[[Connection], None]:
    """All rows in as few statements as the parameter limit allows (run in one transaction).
    An id already written, or twice in `rows`, keeps its first time."""
    first = list(dict(reversed(rows)).items())

    def write(conn: Connection) -> None:
        for at in range(0, len(first), _ROWS_PER_STATEMENT):
            chunk = first[at : at + _ROWS_PER_STATEMENT]
            values = ", ".join(["(?, ?, ?)"] * len(chunk))
            conn.execute(
                _INSERT + values + _KEEP_FIRST,
                [value for update_id, seen_at in chunk for value in (bot, update_id, seen_at)],
            )
        if prune_before is not None:
            conn.execute("DELETE FROM telegram_updates WHERE seen_at < ?", (prune_before,))

    return write


def admit_once(bot: int, update_id: int) -> Callable[[Connection], bool]:
    """For several workers (`bot.cluster.inbox`): record the id in the caller's
    transaction, which every worker's webhook shares; False if it was there already."""

    def admit(conn: Connection) -> bool:
        row = conn.execute(
            "INSERT INTO telegram_updates (bot, update_id, seen_at) VALUES (?, ?, ?) "
            "ON CONFLICT (bot, update_id) DO NOTHING RETURNING update_id",
            (bot, update_id, int(time.time())),
        ).fetchone()
        return row is not None

    return admit
