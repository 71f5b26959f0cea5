"""One update from arrival to answer, in order per chat.

Updates are processed concurrently so one slow chat never holds up the others, but
within a chat they wait their turn: a reply is sent and recorded, and its buttons
become current, before the next update of that chat is looked at.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager

from telegram import Update

from bot.chat_trail import ChatTrail
from bot.model import ChatRef, Handler, Reply
from bot.pseudonym import Pseudonymizer
from bot.transports.telegram.buttons import ButtonBook
from bot.transports.telegram.incoming import Arrival, from_update
from bot.transports.telegram.outbox import Outbox

__all__ = ["Dispatcher"]

log = logging.getLogger("hrd_bot.telegram")


class Dispatcher:
    """Turns updates into calls of the bot's handler and sends what it answers."""

    def __init__(
        self,
        handle: Handler,
        pseudonyms: Pseudonymizer,
        buttons: ButtonBook,
        trail: ChatTrail,
        outbox: Outbox,
    ) -> None:
        self._handle = handle
        self._pseudonyms = pseudonyms
        self._buttons = buttons
        self._trail = trail
        self.outbox = outbox
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, int] = {}

    async def on_update(self, update: object, _context: object) -> None:
        """PTB's callback for every update (a `TypeHandler`)."""
        if not isinstance(update, Update):
            return
        arrival = from_update(update, self._pseudonyms)
        if arrival is None:
            if update.callback_query is not None:
                await self.outbox.answer(update.callback_query.id)
            return
        async with self.turn(arrival.incoming.chat.address):
            await self._receive(arrival)

    async def send(self, chat: ChatRef, reply: Reply) -> None:
        """A message the bot starts (not an answer): it waits for the chat's turn too."""
        async with self.turn(chat.address):
            await self.outbox.send(chat, reply)

    @asynccontextmanager
    async def turn(self, chat: str) -> AsyncIterator[None]:
        self._waiting[chat] = self._waiting.get(chat, 0) + 1
        lock = self._locks.setdefault(chat, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            self._waiting[chat] -= 1
            if not self._waiting[chat]:
                del self._waiting[chat], self._locks[chat]

    async def _receive(self, arrival: Arrival) -> None:
        """Answering the press and recording the user's message run beside the handler:
        neither changes what it answers, and each is one more wait on a busy loop."""
        chat = arrival.incoming.chat
        self.outbox.reachable(chat.address)
        beside: Awaitable[None] | None = None
        if arrival.query_id is not None:
            beside = self.outbox.answer(arrival.query_id)
        elif chat.private and arrival.message_id is not None:
            beside = self._trail.record(chat.address, str(arrival.message_id))
        incoming, refused = arrival.resolve(self._buttons)
        if refused is not None:
            log.info("telegram: a %s button press was refused", refused.value)
        if beside is None:
            replies = await self._handle(incoming)
        else:
            _, replies = await asyncio.gather(beside, self._handle(incoming))
        for reply in replies:
            await self.outbox.send(chat, reply)
