"""The bot account's Matrix sync position and handled event ids, shared by the workers.

Owner of `matrix_positions` and `matrix_handled`. Only the leader runs Matrix, each
worker as a device of its own; leadership moves, so what one device's store remembers
is not enough: a worker leading again would resume from its own old position and answer
the events another worker handled since, and one that never synced would skip them.
Here they are one position and one set for all: a `since` token belongs to the account's
timeline, so any device of the account can go on from it (the transport first fetches
its own device's to-device messages, which stay per device; see `matrix.sync`).

The account (a Matrix user id) is sealed; event ids and sync tokens name no person and
stay plain. An event id is recorded before it is handled (first time wins, whichever
worker), and forgotten after `KEEP_SECONDS`, as the device store forgets its own.
"""

from __future__ import annotations

import time

from bot.storage.database import Connection
from bot.transports.port import Storage

__all__ = ["ACCOUNT", "KEEP_SECONDS", "SharedPosition"]

ACCOUNT = "matrix_positions.account"
KEEP_SECONDS = 7 * 24 * 3600
"""As long as `bot.transports.matrix.store` keeps a device's own handled ids."""


class SharedPosition:
    """The transport's position and handled ids (its `Position`), in the shared database."""

    def __init__(self, db: Storage, account: str) -> None:
        self._db, self._account = db, account

    async def first_time(self, event_id: str) -> bool:
        """Record `event_id`; False when any worker recorded it before."""

        def insert(conn: Connection) -> bool:
            row = conn.execute(
                "INSERT INTO matrix_handled (event_id, handled_at) VALUES (?, ?) "
                "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                (event_id, int(time.time())),
            ).fetchone()
            return row is not None

        return await self._db.run(insert)

    async def prune_handled(self, now: float | None = None) -> None:
        """Forget handled ids old enough that no sync can replay them."""
        cutoff = int(time.time() if now is None else now) - KEEP_SECONDS

        def prune(conn: Connection) -> None:
            conn.execute("DELETE FROM matrix_handled WHERE handled_at < ?", (cutoff,))

        await self._db.run(prune)

    async def sync_token(self) -> str | None:
        """The position the account's leader saved last, if any."""

        def read(conn: Connection) -> str | None:
            row = conn.execute(
                "SELECT token FROM matrix_positions WHERE account = ?",
                (conn.seal(ACCOUNT, self._account),),
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._db.run(read)

    async def commit_sync_token(self, token: str) -> None:
        """Save the position once everything before it was handled."""

        def write(conn: Connection) -> None:
            conn.execute(
                "INSERT INTO matrix_positions (account, token, saved_at) VALUES (?, ?, ?) "
                "ON CONFLICT (account) DO UPDATE SET token = excluded.token, "
                "saved_at = excluded.saved_at",
                (conn.seal(ACCOUNT, self._account), token, int(time.time())),
            )

        await self._db.run(write)
