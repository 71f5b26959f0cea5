"""One update from arrival to answer, in order per chat.

Updates are processed concurrently so one slow chat never holds up the others, but
within a chat they wait their turn: a reply is sent and recorded, and its buttons
become current, before the next update of that chat is looked at.

A message the bot starts (a staff alert, the protection team's reply to a reporter,
an escalation) takes its chat's turn too. It comes from the delivery outbox
(`bot.delivery`), whose lanes run in tasks that hold no turn: a handler only queues
it, so a reporter submitting (their turn held) while staff reply to them (the
group's turn held) never wait for each other.

A group's turns are slow (Telegram allows 20 messages a minute in one group) and every
update waiting for one holds one of the application's concurrent slots, so a busy or
hostile group could hold them all and stall every private chat. A group therefore gets
at most `GROUP_BACKLOG` updates waiting or being answered, and all groups together at
most `GROUPS_IN_FLIGHT`; beyond that an update in a group is dropped (and logged).

Every update is taken once (`SeenUpdates`): one delivered again is dropped before
anything else. One that the library read but that cannot be turned into the neutral
model (see `incoming.Unreadable`) is skipped and counted like one it could not read.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import replace
from datetime import timedelta

from telegram import Update

from bot.conversation.chat_trail import ChatTrail
from bot.conversation.flood import Dropped
from bot.conversation.pseudonym import Pseudonymizer
from bot.conversation.turns import Turns
from bot.model import Attachment, ChatRef, Handler, Incoming, Reply
from bot.transports.telegram.buttons import ButtonBook
from bot.transports.telegram.files import Media
from bot.transports.telegram.incoming import Arrival, from_update, unreadable
from bot.transports.telegram.outbox import Outbox
from bot.transports.telegram.reading import UpdateReader, kind_of
from bot.transports.telegram.seen import SeenUpdates

__all__ = ["Dispatcher", "Fetch"]

log = logging.getLogger("hrd_bot.telegram")
Fetch = Callable[[Media], Awaitable[Attachment | None]]
_HELD: ContextVar[frozenset[str]] = ContextVar("telegram_turns_held", default=frozenset())
GROUP_BACKLOG = 10
GROUPS_IN_FLIGHT = 64  # of the application's 256 concurrent updates


class Dispatcher:
    """Turns updates into calls of the bot's handler and sends what it answers."""

    def __init__(
        self,
        handle: Handler,
        pseudonyms: Pseudonymizer,
        buttons: ButtonBook,
        trail: ChatTrail,
        outbox: Outbox,
        *,
        fetch: Fetch,
        reader: UpdateReader,
        seen: SeenUpdates,
        username: str | None = None,
    ) -> None:
        self._handle = handle
        self._pseudonyms = pseudonyms
        self._buttons = buttons
        self._trail = trail
        self.outbox = outbox
        self._fetch = fetch
        self._username = username
        self._reader = reader
        self._seen = seen
        self._turns = Turns()
        self._group_backlog: Counter[str] = Counter()

    async def on_update(self, update: object, _context: object) -> None:
        """PTB's callback for every update (a `TypeHandler`)."""
        if not isinstance(update, Update) or not self._seen.admit(update.update_id):
            return
        await self.handle_update(update)

    async def handle_update(self, update: Update) -> None:
        """One update already admitted once (by `on_update`, or by the shared inbox of
        several workers, `bot.cluster.inbox`)."""
        try:
            arrival = from_update(update, self._pseudonyms, self._username)
        except Exception:  # values of types the Bot API never sends: see `incoming`
            self._reader.skip(kind_of(update))
            return
        if arrival is None and self._reader.stubbed(update.update_id):
            arrival = unreadable(update, self._pseudonyms)
        if arrival is None:
            if update.callback_query is not None:
                await self.outbox.answer(update.callback_query.id)
            return
        chat = arrival.incoming.chat
        if chat.private:
            async with self.turn(chat.address):
                await self._receive(arrival)
            return
        if not self._room_in_group(chat.address):
            log.warning("telegram: a group has too many updates waiting; one was dropped")
            return
        self._group_backlog[chat.address] += 1
        try:
            async with self.turn(chat.address):
                await self._receive(arrival)
        finally:
            self._group_backlog[chat.address] -= 1
            if not self._group_backlog[chat.address]:
                del self._group_backlog[chat.address]

    def _room_in_group(self, chat: str) -> bool:
        in_flight = self._group_backlog.total()
        return self._group_backlog[chat] < GROUP_BACKLOG and in_flight < GROUPS_IN_FLIGHT

    async def send(self, chat: ChatRef, reply: Reply) -> tuple[str, ...]:
        """A message the bot starts, in its chat's turn (see the module). The delivery
        outbox sends from tasks of their own, which hold no turn, so waiting for this
        chat's turn cannot close a circle of waits."""
        if chat.address in _HELD.get():
            return await self.outbox.post(chat, reply)
        async with self.turn(chat.address):
            return await self.outbox.post(chat, reply)

    @asynccontextmanager
    async def turn(self, chat: str) -> AsyncIterator[None]:
        async with self._turns.turn(chat):
            held = _HELD.set(_HELD.get() | {chat})
            try:
                yield
            finally:
                _HELD.reset(held)

    async def _receive(self, arrival: Arrival) -> None:
        """The user's message is noted in the trail with the first answer (one write for
        both); answering a button press runs beside the handler (it changes nothing it
        answers). The message expires with the shortest time to live of the screen it
        answered and of the replies to it: what a person writes in a sensitive flow
        (answers, files, captions, words to the team) goes with what the bot said."""
        chat = arrival.incoming.chat
        private_id = arrival.message_id if chat.private else None
        self.outbox.reachable(chat.address, private_id)
        received = [str(private_id)] if private_id else []
        ttl = self.outbox.screen_ttl(chat.address)
        incoming, refused = arrival.resolve(self._buttons)
        if refused is not None:
            log.info("telegram: a %s button press was refused", refused.value)
        try:
            if arrival.media is not None:
                incoming = await self._with_file(incoming, arrival.media)
            replies = await self._answers(incoming, arrival.query_id)
            received = [] if isinstance(replies, Dropped) else received  # flooded: no trace
        except Exception:
            self._trail.note(chat.address, [(m, ttl) for m in received])
            raise
        ttl = _shortest(ttl, *(reply.ttl for reply in replies))
        for reply in replies:
            await self.outbox.send(chat, reply, received, ttl)
            received = []
        self._trail.note(chat.address, [(m, ttl) for m in received])

    async def _answers(self, incoming: Incoming, query_id: str | None) -> Sequence[Reply]:
        if query_id is None:
            return await self._handle(incoming)
        _, replies = await asyncio.gather(self.outbox.answer(query_id), self._handle(incoming))
        return replies

    async def _with_file(self, incoming: Incoming, media: Media) -> Incoming:
        """The file fetched within the limit; one Telegram would not give is dropped, and
        the handlers answer a message with nothing they can read (and show the screen)."""
        attachment = await self._fetch(media)
        if attachment is None:
            return replace(incoming, text=None, raw_size=0)
        return replace(incoming, attachment=attachment)


def _shortest(*ttls: timedelta | None) -> timedelta | None:
    """The shortest time to live of these (None: none of them expires)."""
    return min((ttl for ttl in ttls if ttl is not None), default=None)
