"""From what someone said in a room to the App, and the App's replies back into that room.

Three kinds of room, three treatments:

- **A configured staff room** (`HRD_BOT_STAFF_ROOMS`): every message goes to the App
  as a group chat that says whether the room really is end-to-end encrypted, and
  whether the message came from a listed staff device (`trust.sent_from_listed_device`;
  keys the bot does not know yet are asked for once first); the App runs the staff
  commands from those devices only, and ignores chatter. A 👍 or ✋ reaction there is a
  claim of the alert it reacts to (`Incoming.claim_of`), under the same device rule;
  other reactions, and reactions anywhere else, are ignored. Nobody there is offered a
  DM, and files are not fetched: reports come in through reporters' private chats.
- **A private room** (encrypted, the bot and one person): everything the person
  sends, files included, goes to the handlers. A file is downloaded and decrypted
  within the report attachment limit; one that cannot be had (a failed download, a
  hash that does not match) gets the "could not decrypt" hint instead.
- **Any other room**: only messages addressed to the bot reach the handlers, which
  answer with a pointer; the sender (unless staff) is offered an encrypted DM.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from aiohttp import ClientError
from nio import LocalProtocolError

from bot.cases.claims import is_claim_reaction
from bot.content.library import FALLBACK
from bot.conversation.chat_trail import ChatTrail
from bot.conversation.flood import Dropped
from bot.model import MAX_ATTACHMENT_BYTES, Attachment, ChatRef, Handler, Incoming, Reply
from bot.text import directed
from bot.transports.matrix.candour import Candour, forget_tail
from bot.transports.matrix.erase import Tally
from bot.transports.matrix.inbound import Reacted, Said, Sealed
from bot.transports.matrix.media import fetch
from bot.transports.matrix.outbound import Outbound
from bot.transports.matrix.rooms import Rooms
from bot.transports.matrix.trust import sent_from_listed_device
from bot.transports.port import TransportPort

__all__ = ["Dispatch"]

log = logging.getLogger("hrd_bot.matrix.dispatch")


class Dispatch:
    """Hands one `Said` to the App and sends its replies; also the transport's own hints."""

    def __init__(
        self,
        port: TransportPort,
        client: Any,
        rooms: Rooms,
        out: Outbound,
        trail: ChatTrail,
        handle: Handler,
        staff_user_ids: frozenset[str],
        staff_device_keys: frozenset[str] = frozenset(),
    ) -> None:
        self._port = port
        self._client = client
        self._rooms = rooms
        self._out = out
        self._trail = trail
        self._handle = handle
        self._staff_user_ids = staff_user_ids
        self._staff_device_keys = staff_device_keys
        self.candour = Candour(rooms, self._notice)
        out.caution = self.candour.caution

    async def said(self, room_id: str, said: Said) -> None:
        if self._rooms.is_staff_room(room_id):
            await self._staff(room_id, said)
            return
        rooms = self._rooms
        private = rooms.is_private(room_id)
        if not private and not self._addressed(room_id, said):
            return
        user = self._port.pseudonyms.user("matrix", said.sender)
        attachment: Attachment | None = None
        if private and said.media is not None:
            attachment = await fetch(self._client, said.media, MAX_ATTACHMENT_BYTES)
            if attachment is None:
                log.warning("a file could not be downloaded or decrypted")
                await self.hint(room_id, said.sender, "matrix.undecryptable")
                return
        chat = ChatRef("matrix", room_id, private=private)
        incoming = Incoming(
            user,
            chat,
            text=said.text,
            message_id=said.event_id or None,
            raw_size=said.raw_size,
            attachment=attachment,
            location=said.location if private else None,
        )
        replies = await self._handle(incoming)
        if isinstance(replies, Dropped):
            return
        if private and said.event_id and await rooms.can_redact_others(room_id):
            await self._trail.record(room_id, said.event_id, delete_after=_ttl(replies))
        answered = await self._send_all(chat, replies)
        if answered and self._offers_dm(private, said.sender) and await rooms.offer_dm(said.sender):
            await self.hint(room_id, said.sender, "matrix.dm_offer")

    async def _staff(self, room_id: str, said: Said) -> None:
        """The staff room: the App checks who may command; chatter gets no answer."""
        encrypted = self._rooms.is_encrypted(room_id)
        chat = ChatRef("matrix", room_id, private=False, encrypted=encrypted)
        user = self._port.pseudonyms.user("matrix", said.sender)
        incoming = Incoming(
            user,
            chat,
            text=said.text,
            message_id=said.event_id or None,
            raw_size=said.raw_size,
            verified_device=await self._listed_device(room_id, said.sender, said.sealed),
        )
        await self._answer(chat, incoming)

    async def reacted(self, room_id: str, reaction: Reacted) -> None:
        """A 👍 or ✋ on a message in a staff room claims the alert it reacts to."""
        if not self._rooms.is_staff_room(room_id) or not is_claim_reaction(reaction.key):
            return
        encrypted = self._rooms.is_encrypted(room_id)
        chat = ChatRef("matrix", room_id, private=False, encrypted=encrypted)
        sender, sealed = reaction.sender, reaction.sealed
        incoming = Incoming(
            self._port.pseudonyms.user("matrix", sender),
            chat,
            message_id=reaction.event_id or None,
            verified_device=await self._listed_device(room_id, sender, sealed),
            claim_of=reaction.reacts_to,
        )
        await self._answer(chat, incoming)

    async def _listed_device(self, room_id: str, sender: str, sealed: Sealed | None) -> bool:
        """The sending device is listed; a device the bot has not queried yet is queried first."""
        listed = self._staff_device_keys
        if sent_from_listed_device(self._client, room_id, sender, sealed, listed):
            return True
        if sealed is None or not self._client.should_query_keys:
            return False
        try:
            await self._client.keys_query()
        except (ClientError, TimeoutError, LocalProtocolError) as exc:  # refused, not lost
            log.warning("device keys could not be fetched (%s)", type(exc).__name__)
            return False
        return sent_from_listed_device(self._client, room_id, sender, sealed, listed)

    async def _answer(self, chat: ChatRef, incoming: Incoming) -> bool:
        return await self._send_all(chat, await self._handle(incoming))

    async def _send_all(self, chat: ChatRef, replies: Sequence[Reply]) -> bool:
        for reply in replies:
            if reply.erase_chat:
                await self._forget(chat.address, reply)
            else:
                await self._out.answer(chat, reply)
        return bool(replies)

    async def _forget(self, room_id: str, reply: Reply) -> None:
        """The handlers' last words, then what happened in this room, in the language of
        those words (`Reply.language`: the session that held it is gone by now)."""
        t = self._port.library.translator(reply.language or FALLBACK)

        def say(tally: Tally) -> Reply:
            text = f"{reply.text}\n\n{directed(forget_tail(t, tally), t.rtl)}"
            return Reply(text, rtl=reply.rtl)

        self.candour.forget(room_id)
        await self._out.forget(room_id, say)

    def _addressed(self, room_id: str, said: Said) -> bool:
        """In a group the bot answers only when spoken to (a command or a mention)."""
        rooms = self._rooms
        if rooms.is_one_to_one(room_id):
            return True
        if said.text is None:
            return False
        localpart = rooms.own_id[1:].split(":")[0].casefold()
        text = said.text.casefold()
        return text.startswith("/") or rooms.own_id in said.mentions or localpart in text

    def _offers_dm(self, private: bool, sender: str) -> bool:
        """Outside a private room, people are offered one; staff work in their own room."""
        return not private and sender not in self._staff_user_ids

    async def hint(self, room_id: str, sender: str, key: str) -> None:
        """A transport-level notice in the person's stored language."""
        await self._notice(room_id, sender, (key,))

    async def _notice(self, room_id: str, sender: str, keys: tuple[str, ...]) -> None:
        language = await self._port.language(self._port.pseudonyms.user("matrix", sender))
        t = self._port.library.translator(language or FALLBACK)
        chat = ChatRef("matrix", room_id, self._rooms.is_private(room_id))
        text = directed("\n\n".join(t(key) for key in keys), t.rtl)
        await self._out.answer(chat, Reply(text, rtl=t.rtl))


def _ttl(replies: Sequence[Reply]) -> timedelta | None:
    """The person's message lives as long as the sensitive reply to it; otherwise it is kept
    on record for `/forget` only."""
    return next((r.ttl for r in replies if r.sensitive and r.ttl is not None), None)
