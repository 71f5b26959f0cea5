"""Where the transport keeps its sync position and the event ids it has handled.

One process: its device's own encrypted store (`store.EncryptedStore`). Several workers
that lead in turn, each its own device of the bot account: one position and one set for
all of them, in the bot's database, so a worker that leads again neither answers what
another handled meanwhile nor skips it (`bot.cluster.matrix_position`). The sync then
also keeps the device's own position, for its to-device messages (see `sync`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["Position", "PositionFor"]


class Position(Protocol):
    """A sync position saved after a whole batch, and the event ids handled so far."""

    async def first_time(self, event_id: str) -> bool:
        """Record `event_id`; False when it was recorded before (a replayed event)."""
        ...

    async def sync_token(self) -> str | None: ...

    async def commit_sync_token(self, token: str) -> None: ...

    async def prune_handled(self, now: float | None = None) -> None: ...


PositionFor = Callable[[str], Position]
"""The shared position of an account, given its user id."""
