"""The Matrix transport: encrypted DMs in, replies out, sensitive replies redacted later.

Each sync batch is handled before the next: rooms in parallel, events within a
room in order. An event id is recorded in the encrypted store before the message
is handled, so a replayed batch (after a crash) is never answered twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from nio import (
    AsyncClient,
    AsyncClientConfig,
    OlmUnverifiedDeviceError,
    RoomRedactResponse,
    RoomSendResponse,
)

from bot.app import App
from bot.chat_trail import ChatTrail
from bot.config import Settings
from bot.model import ChatRef, Handler, Incoming, Reply
from bot.sweeper import Sweeper
from bot.transports.matrix.config import MatrixConfig
from bot.transports.matrix.inbound import Item, Membership, Said, Undecryptable, parse
from bot.transports.matrix.login import sign_in
from bot.transports.matrix.render import contents
from bot.transports.matrix.rooms import Limits, Rooms
from bot.transports.matrix.store import STORE_FILE, EncryptedStore, check_passphrase
from bot.transports.matrix.sync import Batch, Syncer
from bot.transports.matrix.trust import TofuExceptStaff, TrustPolicy, apply_trust
from bot.transports.matrix.undecrypted import Undecrypted
from handlers.output import directed

__all__ = ["MatrixTransport", "Tuning"]

log = logging.getLogger("hrd_bot.matrix")


@dataclass(frozen=True, slots=True)
class Tuning:
    """Timings and sizes; the defaults suit production, tests shorten them."""

    timeline_limit: int = 1000
    poll_ms: int = 30_000
    sweep_interval: timedelta = timedelta(seconds=30)
    decrypt_grace: float = 5.0
    hint_every: float = 60.0
    limits: Limits = field(default_factory=Limits)


class MatrixTransport:
    """A `Transport` for one bot account; see the package docstring for the policies."""

    name = "matrix"

    def __init__(
        self,
        config: MatrixConfig,
        app: App,
        *,
        trust: TrustPolicy | None = None,
        tuning: Tuning = Tuning(),
    ) -> None:
        self._config = config
        self._app = app
        self._trust = trust or TofuExceptStaff(
            config.user_id, config.staff_user_ids, config.staff_device_keys
        )
        self._tuning = tuning
        self._trail = ChatTrail(app.db, "matrix")
        self._prepare_lock = asyncio.Lock()
        self._client: Any = None
        self._syncer: Syncer | None = None
        self._stopped = False
        self.device_id: str | None = None
        self.ready = asyncio.Event()
        """Set once the first sync is handled (the bot is answering)."""

    @classmethod
    def from_settings(cls, settings: Settings, app: App) -> MatrixTransport:
        return cls(MatrixConfig.from_settings(settings), app)

    def stats(self) -> dict[str, int]:
        """Health figures since start: syncs handled, timeline gaps fetched, unreadable events."""
        if self._syncer is None or self._client is None:
            return {"batches": 0, "gaps": 0, "undecryptable": 0}
        syncer = self._syncer
        return {
            "batches": syncer.batches,
            "gaps": syncer.gaps,
            "undecryptable": self._undecrypted.count,
        }

    async def run(self, handle: Handler) -> None:
        config = self._config
        check_passphrase(config.store_dir, config.store_passphrase)
        client = AsyncClient(
            config.homeserver,
            config.user_id,
            store_path=str(config.store_dir),
            config=AsyncClientConfig(
                encryption_enabled=True,
                store=EncryptedStore,
                store_name=STORE_FILE,
                pickle_key=config.store_passphrase,
                store_sync_tokens=False,
            ),
        )
        try:
            await self._start(client, handle)
        finally:
            await client.close()
            if isinstance(client.store, EncryptedStore):
                client.store.close()

    async def _start(self, client: Any, handle: Handler) -> None:
        login = await sign_in(client, self._config, self._app.db)
        self.device_id = login.device_id
        store: EncryptedStore = client.store
        store.prune_handled()
        tuning = self._tuning
        self._client, self._handle = client, handle
        self._rooms = Rooms(client, self._config.staff_user_ids, tuning.limits)
        self._undecrypted = Undecrypted(client, tuning.decrypt_grace, tuning.hint_every)
        self._syncer = Syncer(client, store, tuning.timeline_limit, tuning.poll_ms)
        sweeper = Sweeper(self._trail, self._redact, interval=tuning.sweep_interval)
        log.info("matrix: signed in, syncing")
        if self._stopped:
            return
        sweeper.start()
        try:
            await self._syncer.run(self._on_batch, self._between)
        finally:
            await sweeper.stop()

    async def stop(self) -> None:
        self._stopped = True
        if self._syncer is not None:
            await self._syncer.stop()

    async def _on_batch(self, batch: Batch) -> None:
        for room_id, state in batch.invites.items():
            self._rooms.on_invite(room_id, state)
        await asyncio.gather(
            *(self._on_room(r.room_id, r.events, batch.initial) for r in batch.rooms)
        )

    async def _between(self) -> bool:
        """Work between syncs; True keeps the next sync short (something is waiting)."""
        self.ready.set()
        await self._rooms.take_invites()
        readable, expired = self._undecrypted.retry()
        for room_id, item in readable:
            await self._act(room_id, item)
        for room_id, sender in expired:
            await self._hint(room_id, sender, "matrix.undecryptable")
        return self._rooms.backlog or self._undecrypted.pending

    async def _on_room(self, room_id: str, events: list[Any], initial: bool) -> None:
        items = [item for event in events if (item := parse(event)) is not None]
        history = 0 if not initial else len(items)
        for index, item in enumerate(items):
            if self._is_own_join(item):
                history = max(history, index + 1)
        for index, item in enumerate(items):
            if item.sender == self._rooms.own_id and not isinstance(item, Membership):
                continue
            if not self._client.store.first_time(item.event_id) or index < history:
                continue
            try:
                await self._act(room_id, item)
            except Exception as exc:  # one bad event must not stop the room or the bot
                log.exception("matrix: failed to handle an event (%s)", type(exc).__name__)
        if (person := self._rooms.greet_due(room_id)) is not None:
            await self._deliver(room_id, Said("", person, "/start", 0))

    def _is_own_join(self, item: Item) -> bool:
        own = self._rooms.own_id
        return isinstance(item, Membership) and item.user_id == own and item.membership == "join"

    async def _act(self, room_id: str, item: Item) -> None:
        if isinstance(item, Said):
            await self._deliver(room_id, item)
        elif isinstance(item, Undecryptable):
            await self._undecrypted.add(room_id, item)
        elif self._left_alone(room_id, item):
            await self._leave(room_id)

    def _left_alone(self, room_id: str, item: Membership) -> bool:
        """The person left (or was banned) and nobody else is in the room with the bot."""
        gone = item.membership in ("leave", "ban") and item.user_id != self._rooms.own_id
        return gone and not self._rooms.others_joined(room_id)

    def _addressed(self, room_id: str, said: Said) -> bool:
        """In a group the bot answers only when spoken to (a command or a mention)."""
        if self._rooms.is_one_to_one(room_id):
            return True
        if said.text is None:
            return False
        own = self._rooms.own_id
        localpart = own[1:].split(":")[0].casefold()
        text = said.text.casefold()
        return text.startswith("/") or own in said.mentions or localpart in text

    async def _deliver(self, room_id: str, said: Said) -> None:
        private = self._rooms.is_private(room_id)
        if not private and not self._addressed(room_id, said):
            return
        user = self._app.pseudonyms.user("matrix", said.sender)
        language = (await self._app.sessions.load(user)).language
        if private and said.event_id and await self._rooms.can_redact_others(room_id):
            await self._trail.record(room_id, said.event_id)
        chat = ChatRef("matrix", room_id, private=private)
        incoming = Incoming(
            user,
            chat,
            text=said.text,
            language_hint=language,
            message_id=said.event_id or None,
            raw_size=said.raw_size,
        )
        replies: Sequence[Reply] = await self._handle(incoming)
        for reply in replies:
            await self.send(chat, reply)
        if not private and replies and await self._rooms.offer_dm(said.sender):
            await self._hint(room_id, said.sender, "matrix.dm_offer")

    async def _hint(self, room_id: str, sender: str, key: str) -> None:
        """A transport-level notice in the person's stored language."""
        user = self._app.pseudonyms.user("matrix", sender)
        session = await self._app.sessions.load(user)
        t = self._app.library.translator(session.language or "en")
        private = self._rooms.is_private(room_id)
        await self.send(
            ChatRef("matrix", room_id, private), Reply(directed(t(key), t.rtl), rtl=t.rtl)
        )

    async def send(self, chat: ChatRef, reply: Reply) -> None:
        if self._client is None:
            raise RuntimeError("the Matrix transport is not running")
        room_id = chat.address
        if reply.sensitive and not self._rooms.is_encrypted(room_id):
            log.warning("matrix: refused to send a sensitive reply to an unencrypted room")
            return
        for content in contents(reply):
            event_id = await self._post(room_id, content)
            if event_id is not None and not reply.erase_chat:
                await self._trail.record(room_id, event_id, delete_after=reply.ttl)
        if reply.erase_chat:
            await self._erase(room_id)

    async def _post(self, room_id: str, content: dict[str, str]) -> str | None:
        room = self._client.rooms.get(room_id)
        if room is None:
            return None
        if room.encrypted:
            await self._prepare(room_id)
        try:
            response = await self._client.room_send(room_id, "m.room.message", content)
        except OlmUnverifiedDeviceError:
            await self._prepare(room_id)
            response = await self._client.room_send(room_id, "m.room.message", content)
        if isinstance(response, RoomSendResponse):
            return str(response.event_id)
        log.warning("matrix: send failed (%s)", getattr(response, "status_code", "?"))
        return None

    async def _prepare(self, room_id: str) -> None:
        """Know every device in the room, then apply the trust policy to each."""
        client = self._client
        async with self._prepare_lock:
            if not client.rooms[room_id].members_synced:
                await client.joined_members(room_id)
            if client.should_query_keys:
                await client.keys_query()
            apply_trust(client, room_id, self._trust)

    async def _redact(self, room_id: str, event_id: str) -> bool:
        """The sweeper's `delete`: True when gone or never deletable, False to retry."""
        if self._client is None or room_id not in self._client.rooms:
            return True
        response = await self._client.room_redact(room_id, event_id)
        if isinstance(response, RoomRedactResponse):
            return True
        status = getattr(getattr(response, "transport_response", None), "status", 0)
        return bool(400 <= status < 500 and status != 429)

    async def _erase(self, room_id: str) -> None:
        """`/forget`: redact what the bot can in this room, then leave and forget it."""
        traces = await self._trail.in_chat(room_id)
        done = [t.row for t in traces if await self._redact(room_id, t.message_id)]
        await self._trail.drop(done)
        await self._leave(room_id)
        log.info("matrix: erased a chat (%d messages redacted)", len(done))

    async def _leave(self, room_id: str) -> None:
        await self._rooms.leave(room_id)
        await self._trail.drop([t.row for t in await self._trail.in_chat(room_id)])
