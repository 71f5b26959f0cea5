"""A worker's loop over the shared inbox: its chats' rows, one at a time per chat, in order.

Woken by PostgreSQL's NOTIFY (`inbox`, sent with each row), by its own webhook (a row
it just wrote), or by a slow poll (`poll`, the fallback and the lease renewal). Each
wake-up claims (`Inbox.claim`: renew, adopt, read) and queues rows not yet in flight on
their chat's lane; a lane's task handles its rows one after another and deletes each
once handled. A lane this worker took from nobody or from another worker is `fresh`:
its first row is handled with `fresh=True`, so the transport first forgets what it
remembers of that chat (it may be stale: another worker served it meanwhile).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from bot.cluster.inbox import CHANNEL, Inbox, Row
from bot.cluster.listen import Waking

__all__ = ["Handle", "InboxConsumer"]

log = logging.getLogger("hrd_bot.cluster")
Handle = Callable[[Row, bool], Awaitable[None]]


class InboxConsumer:
    """Runs until `stop`; `url` (PostgreSQL) is listened on for NOTIFY, if given."""

    def __init__(
        self, inbox: Inbox, handle: Handle, *, url: str | None = None, poll: float = 1.0
    ) -> None:
        self._inbox = inbox
        self._handle = handle
        self._waking = Waking(url, CHANNEL, poll)
        self._lanes: dict[str, deque[Row]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._in_flight: set[int] = set()
        self._fresh: set[str] = set()
        self.handled = 0

    def wake(self) -> None:
        self._waking.wake()

    def taken(self, lane: str) -> None:
        """This worker took the lane's lease (see the module): forget before its next row."""
        self._fresh.add(lane)

    async def run(self) -> None:
        async def step() -> None:
            try:
                await self._claim()
            except Exception as exc:  # a database fault: the next wake-up retries
                log.warning("cluster: inbox claim failed (%s)", type(exc).__name__)

        try:
            await self._waking.run(step)
        finally:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def stop(self) -> None:
        await self._waking.stop()

    async def _claim(self) -> None:
        """A row stays `in flight` from its queueing until a claim no longer returns it
        (deleted): a claim read before a row was done still holds it."""
        claim = await self._inbox.claim()
        self._fresh.update(claim.taken)
        for row in claim.rows:
            if row.seq in self._in_flight:
                continue
            self._in_flight.add(row.seq)
            self._lanes.setdefault(row.lane, deque()).append(row)
            if row.lane not in self._tasks:
                self._tasks[row.lane] = asyncio.create_task(self._serve(row.lane))
        queued = {row.seq for lane in self._lanes.values() for row in lane}
        self._in_flight &= queued | {row.seq for row in claim.rows}

    async def _serve(self, lane: str) -> None:
        queue = self._lanes[lane]
        try:
            while queue:
                row = queue[0]
                fresh = lane in self._fresh
                self._fresh.discard(lane)
                try:
                    await self._handle(row, fresh)
                except Exception as exc:  # one broken update must not stop its chat
                    log.error("cluster: an update failed (%s)", type(exc).__name__)
                await self._inbox.done(row.seq)
                queue.popleft()
                self.handled += 1
        except Exception as exc:  # the row stays: the next claim queues it again
            log.error("cluster: an update was not marked done (%s)", type(exc).__name__)
            self._in_flight.difference_update(row.seq for row in queue)
        finally:
            del self._tasks[lane], self._lanes[lane]
