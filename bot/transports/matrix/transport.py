"""The Matrix transport: encrypted DMs in, replies out, sensitive replies redacted later.

Each sync batch is handled before the next: rooms in parallel, events within a
room in order. An event id is recorded (in the encrypted store, or with several
workers in the position they share, see `position`) before the message is handled,
so a replayed batch (after a crash, or a new leader's) is never answered twice. The
sweeper that redacts expired replies starts after the first sync, once the bot
knows which rooms it is still in.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bot.conversation.sweeper import Sweeper
from bot.model import ChatRef, Handler, Reply
from bot.transports.matrix.config import MatrixConfig
from bot.transports.matrix.dispatch import Dispatch
from bot.transports.matrix.enrol import new_client
from bot.transports.matrix.inbound import (
    Item,
    Membership,
    Reacted,
    Said,
    Undecryptable,
    Unreadable,
    read,
)
from bot.transports.matrix.login import sign_in
from bot.transports.matrix.outbound import Outbound
from bot.transports.matrix.poison import Poison
from bot.transports.matrix.position import Position, PositionFor
from bot.transports.matrix.rooms import Limits, Rooms
from bot.transports.matrix.store import EncryptedStore, check_passphrase
from bot.transports.matrix.sync import Batch, Syncer
from bot.transports.matrix.trust import TofuExceptStaff, TrustPolicy
from bot.transports.matrix.undecrypted import Undecrypted
from bot.transports.port import TransportPort

__all__ = ["MatrixTransport", "Tuning"]

log = logging.getLogger("hrd_bot.matrix")
PRUNE_EVERY = 3600.0


@dataclass(frozen=True, slots=True)
class Tuning:
    """Timings and sizes; the defaults suit production, tests shorten them."""

    timeline_limit: int = 1000
    poll_ms: int = 30_000
    sweep_interval: timedelta = timedelta(seconds=30)
    decrypt_grace: float = 5.0
    hint_every: float = 60.0
    limits: Limits = field(default_factory=Limits)


@dataclass(slots=True)
class _Live:
    """What exists only while the transport runs (one logged-in client)."""

    client: Any
    position: Position
    handle: Handler
    rooms: Rooms
    out: Outbound
    dispatch: Dispatch
    undecrypted: Undecrypted
    syncer: Syncer
    sweeper: Sweeper


class MatrixTransport:
    """A `Transport` for one bot account; see the package docstring for the policies."""

    name = "matrix"
    idempotent = True  # a resend with the same transaction id is deduplicated by the server

    def __init__(
        self,
        config: MatrixConfig,
        port: TransportPort,
        *,
        trust: TrustPolicy | None = None,
        tuning: Tuning | None = None,
        position: PositionFor | None = None,
    ) -> None:
        """`position`: the account's shared position (several workers); else the device's."""
        self._config = config
        self._port = port
        self._shared = position
        self._trust = trust or TofuExceptStaff(
            config.user_id, config.staff_user_ids, config.staff_device_keys
        )
        self._tuning = tuning or Tuning()
        self._trail = port.chat_trail("matrix")
        self._live: _Live | None = None
        self._stopped = False
        self._pruned_at = -PRUNE_EVERY
        self.poison = Poison()
        """Events skipped as unreadable since this transport was made (across restarts of run)."""
        self.device_id: str | None = None
        self.ready = asyncio.Event()
        """Set once the first sync is handled (the bot is answering)."""

    @property
    def connected(self) -> bool:
        """After the first sync was handled, while the last sync succeeded."""
        live = self._live
        return live is not None and self.ready.is_set() and live.syncer.failures == 0

    def stats(self) -> dict[str, int]:
        """Health figures since start: syncs handled, timeline gaps fetched, events that could
        not be decrypted (yet), events skipped as unreadable (malformed, unparseable), and
        syncs nio's own state handling failed on (their events were still handled)."""
        live = self._live
        return {
            "batches": live.syncer.batches if live else 0,
            "gaps": live.syncer.gaps if live else 0,
            "undecryptable": live.undecrypted.count if live else 0,
            "unreadable": self.poison.count,
            "unapplied": live.syncer.unapplied if live else 0,
        }

    async def run(self, handle: Handler) -> None:
        config = self._config  # opening the store costs a key derivation: not on the loop
        own = await asyncio.to_thread(
            check_passphrase, config.store_dir, config.store_passphrase, config.user_id
        )
        client: Any = new_client(config)
        try:
            login = await sign_in(client, self._config, self._port.storage, own)
            self.device_id = login.device_id
            if not self._stopped:
                await self._serve(self._assemble(client, handle))
        finally:
            await client.close()
            if isinstance(client.store, EncryptedStore):
                await client.store.close()

    def _assemble(self, client: Any, handle: Handler) -> _Live:
        tuning, config = self._tuning, self._config
        store: EncryptedStore = client.store
        position = store if self._shared is None else self._shared(config.user_id)
        staff = config.staff_user_ids
        rooms = Rooms(client, staff, tuning.limits, self._staff_rooms())
        out = Outbound(client, rooms, self._trail, self._trust)
        return _Live(
            client=client,
            position=position,
            handle=handle,
            rooms=rooms,
            out=out,
            dispatch=Dispatch(
                self._port, client, rooms, out, self._trail, handle, staff, config.staff_device_keys
            ),
            undecrypted=Undecrypted(client, tuning.decrypt_grace, tuning.hint_every),
            syncer=Syncer(
                client, store, tuning.timeline_limit, tuning.poll_ms, self.poison, position
            ),
            sweeper=Sweeper(self._trail, out.redact, interval=tuning.sweep_interval),
        )

    def _staff_rooms(self) -> frozenset[str]:
        """The Matrix rooms of `HRD_BOT_STAFF_ROOMS`, as the App was configured with them."""
        rooms = self._port.staff_rooms
        return frozenset(room.address for room in rooms if room.platform == self.name)

    async def _staff_invites(self) -> None:
        """Queue staff-room invites sent before this start, which no sync repeats."""
        live = self._running
        missing = frozenset(r for r in self._staff_rooms() if r not in live.client.rooms)
        for room_id, state in (await live.syncer.pending_invites(missing)).items():
            live.rooms.on_invite(room_id, state)

    async def _oncall_dms(self) -> None:
        """Open the DMs of on-call accounts at start, so they can accept them before an
        escalation needs them (leads' DMs open at their first message)."""
        for chat in self._port.oncall:
            if chat.platform == self.name and chat.address.startswith("@"):
                await self._running.rooms.direct_room(chat.address)

    async def _serve(self, live: _Live) -> None:
        self._live = live
        log.info("signed in, syncing")
        try:
            await live.syncer.run(self._on_batch, self._between)
        finally:
            await live.sweeper.stop()
            self._live = None

    async def stop(self) -> None:
        self._stopped = True
        if self._live is not None:
            await self._live.syncer.stop()

    async def send(self, chat: ChatRef, reply: Reply, key: str = "") -> tuple[str, ...]:
        if self._live is None:
            raise RuntimeError("the Matrix transport is not running")
        return await self._live.out.send(chat, reply, key)

    @property
    def _running(self) -> _Live:
        assert self._live is not None
        return self._live

    async def _on_batch(self, batch: Batch) -> None:
        for room_id, state in batch.invites.items():
            try:
                self._running.rooms.on_invite(room_id, state)
            except Exception as exc:
                self.poison.skip(f"an invite, {type(exc).__name__}")
        await asyncio.gather(
            *(self._on_room(r.room_id, r.events, batch.initial) for r in batch.rooms)
        )

    async def _between(self) -> bool:
        """Work between syncs; True keeps the next sync short (something is waiting)."""
        live = self._running
        if not self.ready.is_set():
            live.sweeper.start(self._port.scheduler)
            await _guarded(self._staff_invites())
            await _guarded(self._oncall_dms())
            self.ready.set()
        if time.monotonic() - self._pruned_at > PRUNE_EVERY:
            await live.position.prune_handled()
            self._pruned_at = time.monotonic()
        await _guarded(live.rooms.take_invites())
        readable, expired = live.undecrypted.retry()
        for room_id, item in readable:
            await _guarded(self._act(room_id, item))
        for room_id, sender in expired:
            await _guarded(live.dispatch.hint(room_id, sender, "matrix.undecryptable"))
        return live.rooms.backlog or live.undecrypted.pending

    async def _on_room(self, room_id: str, events: list[Any], initial: bool) -> None:
        live = self._running
        items = [item for event in events if (item := read(event)) is not None]
        history = len(items) if initial else 0
        for index, item in enumerate(items):
            if self._is_own_join(item):
                history = max(history, index + 1)
        for index, item in enumerate(items):
            if item.sender == live.rooms.own_id and not isinstance(item, Membership):
                continue
            fresh = await live.position.first_time(item.event_id) if item.event_id else True
            if fresh and index >= history:
                await _guarded(self._act(room_id, item))
        if (person := live.rooms.greet_due(room_id)) is not None:
            await _guarded(live.dispatch.said(room_id, Said("", person, "/start", 0)))

    def _is_own_join(self, item: Item) -> bool:
        own = self._running.rooms.own_id
        return isinstance(item, Membership) and item.user_id == own and item.membership == "join"

    async def _act(self, room_id: str, item: Item) -> None:
        if isinstance(item, Said):
            await self._running.dispatch.said(room_id, item)
        elif isinstance(item, Reacted):
            await self._running.dispatch.reacted(room_id, item)
        elif isinstance(item, Undecryptable):
            await self._running.undecrypted.add(room_id, item)
        elif isinstance(item, Unreadable):
            self.poison.skip(item.kind)
        elif self._left_alone(room_id, item):
            await self._running.out.leave(room_id)

    def _left_alone(self, room_id: str, item: Membership) -> bool:
        """The person left (or was banned) and nobody else is in the room with the bot.

        A staff room is kept: staff may come back, and the bot cannot rejoin uninvited.
        """
        rooms = self._running.rooms
        gone = item.membership in ("leave", "ban") and item.user_id != rooms.own_id
        return gone and not rooms.is_staff_room(room_id) and not rooms.others_joined(room_id)


async def _guarded(work: Awaitable[None]) -> None:
    """One bad event must not stop its room or the bot; the log names only the error type."""
    try:
        await work
    except Exception as exc:
        log.error("failed to handle an event (%s)", type(exc).__name__)
        log.debug("traceback of that failure", exc_info=True)
