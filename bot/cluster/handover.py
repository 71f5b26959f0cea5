"""The outbox of several workers: who sends a queued row that its worker cannot.

Each worker sends the rows it queued (Telegram from any worker) and, every `touch`
seconds, marks those it still holds as alive (`rows.touch`). The leader adopts
(`Outbox.resume`, as at a start): rows of a platform only it runs (Matrix: followers
leave them queued, see `leader_only`) at once, woken by NOTIFY `outbox` or the poll;
and any other queued row nobody marked for `stale` seconds, whose worker died. As at a
start, an adopted row that may already have left on a platform that cannot deduplicate
it is not sent again but reported uncertain. One whose content was sensitive is sent
if a follower sealed it to this leader's term (`relay`), else (kept only in the dead
worker's memory, or sealed to a dead leader) it is reported lost to the staff rooms.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from bot.cluster.leader import Leadership
from bot.cluster.leader_only import OUTBOX
from bot.cluster.listen import Waking
from bot.cluster.relay import Relay
from bot.delivery import rows
from bot.delivery.outbox import Outbox
from bot.delivery.outcome import Reason
from bot.transports.port import Storage

__all__ = ["Lost", "OutboxHandover"]

log = logging.getLogger("hrd_bot.cluster")
Lost = Callable[[list[tuple[rows.Row, Reason]]], Awaitable[object]]


class OutboxHandover:
    """Runs on every worker until `stop`; adopts only while `leadership` leads."""

    def __init__(
        self,
        db: Storage,
        outbox: Outbox,
        leadership: Leadership,
        lost: Lost,
        *,
        url: str | None = None,
        leader_only: frozenset[str] = frozenset({"matrix"}),
        touch: float = 10.0,
        stale: float = 60.0,
        poll: float = 2.0,
        relay: Relay | None = None,
    ) -> None:
        self._db, self._outbox, self._leadership, self._lost = db, outbox, leadership, lost
        self._relay = relay
        self._leader_only = leader_only
        self._touch, self._stale = touch, stale
        self._waking = Waking(url, OUTBOX, poll)
        self.adopted = 0

    async def run(self) -> None:
        touched = 0.0

        async def step() -> None:
            nonlocal touched
            with contextlib.suppress(Exception):  # a database fault: try again later
                if time.monotonic() - touched >= self._touch:
                    touched = time.monotonic()
                    await self._mark_alive()
                if self._leadership.leading:
                    await self.adopt()

        await self._waking.run(step)

    async def stop(self) -> None:
        await self._waking.stop()

    async def adopt(self) -> None:
        """Take queued rows that are the leader's (see the module); none this outbox holds,
        before or after the read (a row may be settled meanwhile)."""
        before = self._held()
        found = await self._db.transaction(rows.pending)
        held = before | self._held()
        stale = time.time() - self._stale
        mine = [
            row
            for row in found
            if row.id not in held
            and (row.chat.platform in self._leader_only or row.updated_at < stale)
        ]
        if mine and self._relay is not None:
            mine = await self._relay.opened(mine, stale)
        if mine:
            self.adopted += len(mine)
            log.info("cluster: adopted %d queued messages", len(mine))
            await self._lost(await self._outbox.resume(mine))

    async def _mark_alive(self) -> None:
        ids = sorted(self._held() | set(self._relay.ids() if self._relay else ()))
        if ids:
            await self._db.run(rows.touch(ids))

    def _held(self) -> set[int]:
        return {row_id for ids in self._outbox.held().values() for row_id in ids}
