"""Telegram updates through the shared inbox of several workers (`bot.cluster`).

The webhook writes each update with a chat into the inbox under the chat's keyed
pseudonym (in a private chat, the person) and answers 200; the update id is recorded in
the same transaction, so Telegram's retry of an update whose answer was lost, at
whichever worker, is dropped there. The worker that holds the chat's lease handles it.
Before the first update of a chat it took over, it forgets what it remembers of the
sender (cached session, flood buckets); before a button press, it reads the chat's
current screen, which any worker may have sent (`shared_buttons`).

A flood must not cost the shared database a write per update: before storing, each
chat passes a gate of this worker's own (token buckets twice as generous as the App's,
so a person never meets it; with N workers a flooder gets N times it). A refused update
is answered 200 and kept nowhere; `/sos` and a shared location draw on the gate's SOS
bucket instead, so someone who flooded can still call for help. What passes meets the
App's own limits and its notice, as with one worker.
"""

from __future__ import annotations

import json
import logging

from telegram import Bot

from bot.cluster.consumer import InboxConsumer
from bot.cluster.inbox import Inbox, Lease, Row
from bot.cluster.worker import Membership
from bot.conversation.flood import FloodGuard
from bot.transports.port import TransportPort
from bot.transports.telegram.dispatch import Dispatcher
from bot.transports.telegram.incoming import PLATFORM
from bot.transports.telegram.reading import UpdateReader
from bot.transports.telegram.seen import admit_once
from bot.transports.telegram.shared_buttons import SharedButtonBook

__all__ = ["InboxedUpdates", "chat_and_sender"]

log = logging.getLogger("hrd_bot.telegram")


def _id(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _field(value: object, name: str) -> object:
    return value.get(name) if isinstance(value, dict) else None


def chat_and_sender(body: object) -> tuple[int, int | None] | None:
    """The chat id of a message or a button press, and its sender's id; None without a chat."""
    press = _field(body, "callback_query")
    message = _field(press, "message") if press is not None else _field(body, "message")
    chat = _id(_field(_field(message, "chat"), "id"))
    if chat is None:
        return None
    sender = _field(press, "from") if press is not None else _field(message, "from")
    return chat, _id(_field(sender, "id"))


def _may_be_sos(body: object) -> bool:
    message = _field(body, "message")
    text = _field(message, "text")
    return _field(message, "location") is not None or (
        isinstance(text, str) and text.casefold().startswith("/sos")
    )


class InboxedUpdates:
    """This worker's webhook side (`receive`) and handling side (`consumer`)."""

    def __init__(
        self,
        port: TransportPort,
        membership: Membership,
        bot: Bot,
        reader: UpdateReader,
        dispatcher: Dispatcher,
        buttons: SharedButtonBook,
    ) -> None:
        lease, alive = membership.lease, membership.alive
        self._inbox = Inbox(port.storage, membership.worker, lease=lease, alive=alive)
        self._membership = membership
        self._pseudonyms = port.pseudonyms
        self._bot, self._reader = bot, reader
        self._dispatcher, self._buttons = dispatcher, buttons
        self.consumer = InboxConsumer(
            self._inbox, self._handle, url=membership.url, poll=membership.poll
        )
        self._gate = FloodGuard(rate=4.0, burst=60)
        self.flood_drops = 0

    async def receive(self, body: object) -> bool:
        """True once the update is stored (or dropped as a repeat); False for one without
        a chat, which the caller hands to the application as a single worker would."""
        found = chat_and_sender(body)
        update_id = _id(_field(body, "update_id"))
        if found is None or update_id is None:
            return False
        lane = self._pseudonyms.chat(PLATFORM, str(found[0]))
        if not self._admit(lane, body):
            return True
        lease = await self._inbox.receive(
            lane, json.dumps(body), admit=admit_once(self._bot.id, update_id)
        )
        if lease is Lease.TAKEN:
            self.consumer.taken(lane)
        if lease in (Lease.TAKEN, Lease.KEPT):
            self.consumer.wake()
        return True

    def _admit(self, lane: str, body: object) -> bool:
        allowed, warn = self._gate.check(lane)
        if not allowed and _may_be_sos(body):
            allowed, warn = self._gate.check_sos(lane)
        if not allowed:
            self.flood_drops += 1
            if warn:
                log.warning("telegram: a chat floods the webhook; its updates are dropped")
        return allowed

    async def _handle(self, row: Row, fresh: bool) -> None:
        raw = json.loads(row.body)
        if fresh:
            self._forget(raw)
        if _field(raw, "callback_query") is not None and (found := chat_and_sender(raw)):
            await self._buttons.refresh(str(found[0]))
        update = self._reader.read(raw, self._bot)
        if update is not None:
            await self._dispatcher.handle_update(update)

    def _forget(self, raw: object) -> None:
        found = chat_and_sender(raw)
        if found is None:
            return
        sender = found[1]
        if sender is not None:
            self._membership.forget(self._pseudonyms.user(PLATFORM, str(sender)).key)
