"""Writes batched into shared commits: many small writes made at once cost one
transaction (and, under `synchronous=FULL`, one fsync) instead of one each."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import Context
from typing import Any, TypeVar

from bot.storage.database import Connection, Database

__all__ = ["GroupCommit"]

T = TypeVar("T")
Write = tuple[Callable[[Connection], Any], "asyncio.Future[Any]"]


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
