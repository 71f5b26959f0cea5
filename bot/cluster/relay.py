"""Messages a follower hands to the leader: their sensitive content, and their outcome.

A sensitive reply (a reporter's words for a Matrix staff room) is never on disk in a
readable form. Each time a worker is elected it makes an X25519 key pair that lives only
in its memory and publishes the public key with a fresh term id (`relay_rows`). A
follower that hands over a sensitive row seals its reply to that key (HPKE, bound to the
row and the term) and wakes the leader, which opens it while adopting the row and sends
it. A blob of an earlier term opens nowhere (that leader died with its key): its row is
reported lost, as a sensitive row always was. Until a leader has published a key, the
follower keeps the reply in memory and marks the row alive (`OutboxHandover`).

The follower keeps every parcel it handed over and resolves its `done` with the outcome
the leader wrote (`rows.settle`), woken by NOTIFY `outbox_settled`, with a slow poll as
fallback. A row that vanished (`/forget`) resolves as lost; a follower that stops leaves
its rows queued on disk, as a stopped outbox does.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Iterable
from dataclasses import replace

from bot.cluster import relay_rows
from bot.cluster.leader import Leadership
from bot.cluster.listen import Waking, notify
from bot.crypto.hpke import InvalidTag, open_sealed
from bot.crypto.keys import PrivateKey
from bot.delivery.outbox import Outbox, Parcel
from bot.delivery.outcome import Outcome, Reason
from bot.delivery.rows import Row
from bot.model import Reply
from bot.transports.port import Storage

__all__ = ["SETTLED", "Relay"]

log = logging.getLogger("hrd_bot.cluster")
SETTLED = "outbox_settled"
"""NOTIFY channel: the leader settled rows (a follower may wait for their outcome)."""


class Relay:
    """One per worker; `attach` it to the outbox, `run` it until `stop`."""

    def __init__(
        self, db: Storage, leadership: Leadership, *, url: str | None = None, poll: float = 2.0
    ) -> None:
        self._db, self._leadership, self._url = db, leadership, url
        self._parcels: dict[int, Parcel] = {}
        self._unsealed: dict[int, Reply] = {}
        self._adopted: set[int] = set()
        self._key: PrivateKey | None = None
        self._term: str | None = None
        self._waking = Waking(url, SETTLED, poll)
        self._dirty = self._unpublished = False
        leadership.watch(self._on_change)

    def attach(self, outbox: Outbox) -> None:
        outbox.handed, outbox.settled = self.handed, self.settled

    def handed(self, parcel: Parcel) -> None:
        """The outbox left this parcel for the leader: keep it until its row settles."""
        self._parcels[parcel.id] = parcel
        if parcel.reply.sensitive:
            self._unsealed[parcel.id] = parcel.reply
        self._waking.wake()

    def settled(self, ids: Iterable[int]) -> None:
        """Rows were settled here: if this leader adopted one, tell the followers (one
        NOTIFY per wake; a follower's own rows concern nobody else)."""
        ours = self._adopted.intersection(ids)
        if ours and self._url is not None:
            self._adopted -= ours
            self._dirty = True
            self._waking.wake()

    def ids(self) -> list[int]:
        """Rows handed over and not yet settled (marked alive as this worker's own)."""
        return sorted(self._parcels)

    async def run(self) -> None:
        if self._leadership.leading:
            await self._on_change(True)

        async def step() -> None:
            with contextlib.suppress(Exception):  # a database fault: try again later
                await self._tell()
                await self._resolve()
                await self._seal()

        await self._waking.run(step)

    async def stop(self) -> None:
        await self._waking.stop()

    async def opened(self, found: list[Row], stale: float) -> list[Row]:
        """The leader adopting `found`: a sensitive row gets its reply from its blob (or
        stays without one: lost); one whose blob has not come yet waits, unless stale."""
        waiting = [row.id for row in found if row.reply is None and row.attempts == 0]
        key, term = self._key, self._term
        blobs: dict[int, tuple[str, bytes]] = {}
        if waiting and key is not None and term is not None:
            blobs = await self._db.run(relay_rows.take(waiting))
        adopted = []
        for row in found:
            if key is not None and term is not None and row.id in blobs:
                adopted.append(replace(row, reply=_open(key, term, row.id, *blobs[row.id])))
            elif row.id not in waiting or row.updated_at < stale:
                adopted.append(row)  # (a blob may still come while the row is fresh)
        self._adopted.update(row.id for row in adopted)
        return adopted

    async def _on_change(self, leading: bool) -> None:
        if not leading:
            term, self._key, self._term = self._term, None, None
            self._adopted.clear()
            if term is not None:
                with contextlib.suppress(Exception):
                    await self._db.run(relay_rows.withdraw(term))
            return
        if self._key is None:
            self._key, self._term = PrivateKey.generate(), secrets.token_hex(8)
            self._unpublished = True
            with contextlib.suppress(Exception):  # else `run` tries again
                await self._tell()

    async def _tell(self) -> None:
        """Publish this term's key (and wake the followers that hold a reply to seal),
        and tell them that rows were settled."""
        key, term = self._key, self._term
        if self._unpublished and key is not None and term is not None:
            await self._db.run(relay_rows.publish(term, key.public))
            self._unpublished, self._dirty = False, self._url is not None
        if self._dirty:
            self._dirty = False
            await self._db.run(notify(SETTLED))

    async def _resolve(self) -> None:
        if not self._parcels:
            return
        ids = self.ids()  # not those handed over while this reads
        found = await self._db.run(relay_rows.outcomes(ids))
        for row_id in ids:
            outcome = found.get(row_id, Outcome(reason=Reason.LOST))
            if outcome is None:
                continue
            parcel = self._parcels.pop(row_id)
            self._unsealed.pop(row_id, None)
            if not parcel.done.done():
                parcel.done.set_result(outcome)

    async def _seal(self) -> None:
        for row_id, reply in list(self._unsealed.items()):
            if not await self._db.run(relay_rows.store(row_id, reply)):
                return  # no leader yet: kept in memory, tried again at the next wake
            self._unsealed.pop(row_id, None)


def _open(key: PrivateKey, term: str, row_id: int, sealed_for: str, blob: bytes) -> Reply | None:
    """The reply sealed to this term's key, or None: another term's, or not ours."""
    if sealed_for != term:
        return None
    try:
        return relay_rows.decode(open_sealed(blob, key.key, relay_rows.info(row_id, term)))
    except (InvalidTag, ValueError, KeyError):
        log.warning("cluster: a handed-over message did not open")
        return None
