"""Everything the bot puts into a room, and takes out again.

Replies are encrypted to the devices the trust policy allows; every sent event id is
kept in the chat trail (inside SQLCipher) so a sensitive reply can be redacted when
its time to live ends and `/forget` can redact the whole conversation. A sensitive
reply (a report's answers, a relay from the protection team) is never sent where
`Rooms.withheld` forbids it, whatever asked for it: the room gets `WITHHELD` instead,
so staff learn that something was held back and why, and nothing of its content.
A reply's files count as sensitive whatever its flag: they go only where such a reply
may, uploaded encrypted, and elsewhere nothing of them is sent.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientError
from nio import (
    JoinedMembersError,
    OlmUnverifiedDeviceError,
    RoomRedactResponse,
    RoomSendResponse,
)

from bot.conversation.chat_trail import ChatTrail
from bot.delivery import Reason, Undelivered
from bot.model import Attachment, ChatRef, Reply
from bot.transports.matrix.erase import History, Tally, erase, scan
from bot.transports.matrix.media import upload_encrypted
from bot.transports.matrix.render import MSGTYPE, contents, edit_content, file_content
from bot.transports.matrix.rooms import Rooms
from bot.transports.matrix.trust import TrustPolicy, apply_trust

__all__ = ["NOT_UPLOADED", "WITHHELD", "Outbound"]

log = logging.getLogger("hrd_bot.matrix.outbound")
WITHHELD = (
    "A confidential message was withheld: this room {reason}. Such messages go only to "
    "a private chat, or to an end-to-end encrypted staff room whose members are all staff."
)
_REDACT_TRIES = 5
_LONGEST_WAIT = 10.0
_FORGET_BUDGET = 120.0  # seconds of redacting at /forget before what is left is counted
NOT_UPLOADED = (
    "The file {name} could not be uploaded to this room. It is sealed in the case: "
    "save it with `hrd-bot cases open BUNDLE --save-files DIR`."
)


class Outbound:
    def __init__(self, client: Any, rooms: Rooms, trail: ChatTrail, trust: TrustPolicy) -> None:
        self._client = client
        self._rooms = rooms
        self._trail = trail
        self._trust = trust
        self._prepare_lock = asyncio.Lock()
        self.caution: Callable[[str], Awaitable[None]] | None = None
        """Called before a sensitive reply goes to a room (the transport's notice, if due)."""

    async def answer(self, chat: ChatRef, reply: Reply) -> None:
        """An answer to the room that wrote: a failure is logged by kind, nothing more."""
        try:
            await self.send(chat, reply)
        except Undelivered as failure:
            log.warning("an answer was not delivered (%s)", failure.reason.value)

    async def send(self, chat: ChatRef, reply: Reply, key: str = "") -> tuple[str, ...]:
        """The event ids posted, or `Undelivered`. `key` becomes each event's transaction
        id, so a retry after a lost answer is deduplicated by the homeserver."""
        room_id = await self._direct(chat.address) if chat.address.startswith("@") else chat.address
        withheld = False
        if reply.sensitive or reply.files:
            await self._know_members(room_id)
            if (reason := self._rooms.withheld(room_id)) is not None:
                log.warning("withheld a sensitive reply: the room %s", reason)
                reply, withheld = Reply(WITHHELD.format(reason=reason)), True
        if reply.sensitive and not (withheld or reply.erase_chat) and self.caution is not None:
            await self.caution(room_id)
        edit = None if reply.replaces is None else edit_content(reply, reply.replaces)
        if edit is not None and not withheld:
            return (await self._post(room_id, edit, _tx(key, 0)),)
        if reply.erase_chat:
            await self.forget(room_id, lambda _: reply)
            return ()
        sent: list[str] = []
        for content in contents(reply):
            sent.append(await self._post_kept(room_id, content, reply, _tx(key, len(sent))))
        for attachment in reply.files:
            media = await self._upload(room_id, attachment)
            missing = {"msgtype": MSGTYPE, "body": NOT_UPLOADED.format(name=attachment.name)}
            posted = await self._post_kept(room_id, media or missing, reply, _tx(key, len(sent)))
            sent.append(posted)
        if withheld:
            raise Undelivered(Reason.WITHHELD)
        return tuple(sent)

    async def _direct(self, user_id: str) -> str:
        """An account listed by user id (on-call, leads) is written to in its encrypted DM;
        until the person has joined it, the message waits (retried, never "delivered")."""
        room_id = await self._rooms.direct_room(user_id)
        if room_id is None:
            raise Undelivered(Reason.UNREACHABLE, transient=True)
        if not self._rooms.others_joined(room_id):
            raise Undelivered(Reason.NOT_JOINED, transient=True)
        return room_id

    async def _post_kept(
        self, room_id: str, content: dict[str, Any], reply: Reply, tx_id: str | None
    ) -> str:
        """Post, and note the event in the chat trail for its time to live and `/forget`."""
        event_id = await self._post(room_id, content, tx_id)
        await self._trail.record(room_id, event_id, delete_after=reply.ttl)
        return event_id

    async def _upload(self, room_id: str, attachment: Attachment) -> dict[str, Any] | None:
        """The file's event content, uploaded encrypted; None when it cannot be sent."""
        room = self._client.rooms.get(room_id)
        if attachment.data is None or room is None or not room.encrypted:
            return None
        uploaded = await upload_encrypted(self._client, attachment.data)
        return None if uploaded is None else file_content(attachment, *uploaded)

    async def _post(self, room_id: str, content: dict[str, Any], tx_id: str | None) -> str:
        room = self._client.rooms.get(room_id)
        staff = self._rooms.is_staff_room(room_id)
        if room is None or not (staff or self._rooms.others_joined(room_id)):
            log.warning("send skipped: nobody the bot may write to is in that room")
            raise Undelivered(_shut_out(staff))
        if room.encrypted:
            await self._prepare(room_id)
        try:
            response = await self._client.room_send(room_id, "m.room.message", content, tx_id=tx_id)
        except OlmUnverifiedDeviceError:  # a device appeared while sharing the room key
            await self._prepare(room_id)
            response = await self._client.room_send(room_id, "m.room.message", content, tx_id=tx_id)
        except (ClientError, OSError):
            raise Undelivered(Reason.UNREACHABLE, transient=True, uncertain=True) from None
        if isinstance(response, RoomSendResponse):
            return str(response.event_id)
        raise _failure(response, staff)

    async def _know_members(self, room_id: str) -> None:
        """Fetch the member list once. A refusal is the send's failure: nio's `room_send`
        would otherwise raise `MembersSyncError` for an encrypted room it cannot list."""
        room = self._client.rooms.get(room_id)
        if room is not None and not room.members_synced:
            response = await self._client.joined_members(room_id)
            if isinstance(response, JoinedMembersError):
                raise _failure(response, self._rooms.is_staff_room(room_id))

    async def _prepare(self, room_id: str) -> None:
        """Know every device in the room, then apply the trust policy to each."""
        client = self._client
        async with self._prepare_lock:
            await self._know_members(room_id)
            if client.should_query_keys:
                await client.keys_query()
            apply_trust(client, room_id, self._trust)

    async def redact(self, room_id: str, event_id: str) -> bool:
        """The sweeper's `delete`: True when gone or never deletable, False to retry later."""
        if room_id not in self._client.rooms:
            return True  # the bot is no longer in the room: nothing can be done any more
        response = await self._client.room_redact(room_id, event_id)
        if isinstance(response, RoomRedactResponse):
            return True
        status = getattr(getattr(response, "transport_response", None), "status", 0)
        return bool(400 <= status < 500 and status != 429)

    async def forget(self, room_id: str, say: Callable[[Tally], Reply]) -> Tally:
        """`/forget`: redact what the bot can in this room, post `say(tally)`, then leave.

        Where the power to redact could not be read, the person's messages are tried too:
        what the server refuses is counted as not deleted.

        The last message is posted after the redactions so it can tell what they did. It
        is not kept: the bot leaves, so it could not redact it later.
        """
        try:
            history = await scan(self._client, room_id)
        except (ClientError, OSError, TimeoutError, ValueError) as exc:
            log.warning("could not read the room's history (%s)", type(exc).__name__)
            history = History(complete=False)
        recorded = [t.message_id for t in await self._trail.in_chat(room_id)]
        power = await self._rooms.redact_power(room_id, fresh=True)
        deadline = asyncio.get_running_loop().time() + _FORGET_BUDGET
        redact = functools.partial(self._redact_counted, room_id, deadline)
        tally = await erase(history, self._rooms.own_id, power is not False, recorded, redact)
        try:
            for content in contents(say(tally)):
                await self._post(room_id, content, None)
        except Undelivered as failure:
            log.warning("the last message after /forget was not delivered (%s)", failure.reason)
        await self.leave(room_id)
        return tally

    async def _redact_counted(self, room_id: str, deadline: float, event_id: str) -> bool:
        """True only when the server accepted the redaction. A rate limit is waited out
        until `deadline`, so the person is not left waiting for the last message."""
        loop = asyncio.get_running_loop()
        for _ in range(_REDACT_TRIES):
            if loop.time() >= deadline:
                return False
            try:
                response = await self._client.room_redact(room_id, event_id)
            except (ClientError, OSError, TimeoutError):
                return False
            if isinstance(response, RoomRedactResponse):
                return True
            wait = getattr(response, "retry_after_ms", None)
            if wait is None:
                return False
            await asyncio.sleep(min(float(wait) / 1000, _LONGEST_WAIT, deadline - loop.time()))
        return False

    async def leave(self, room_id: str) -> None:
        await self._rooms.leave(room_id)
        await self._trail.drop(await self._trail.in_chat(room_id))


def _tx(key: str, part: int) -> str | None:
    """Each event's transaction id: the same on every try of the same message."""
    return f"{key}.{part}" if key else None


def _shut_out(staff_room: bool) -> Reason:
    """Why the bot may not write to a room: a staff room lost the bot; a private chat was
    left by the person (the bot then leaves it too) or the person removed the bot."""
    return Reason.REMOVED if staff_room else Reason.BLOCKED


def _failure(response: Any, staff_room: bool) -> Undelivered:
    """A homeserver's refusal: 403 means the bot may no longer post there (see `_shut_out`);
    404 that the room is gone; 429 and 5xx pass; other 4xx are final."""
    status = getattr(getattr(response, "transport_response", None), "status", 0) or 0
    code = str(getattr(response, "status_code", "") or "")
    log.warning("send failed (%s %s)", status or "?", code or "?")
    if status == 429 or code == "M_LIMIT_EXCEEDED":
        wait = getattr(response, "retry_after_ms", None)
        after = None if wait is None else float(wait) / 1000
        return Undelivered(Reason.UNREACHABLE, transient=True, retry_after=after)
    if status == 403 or code == "M_FORBIDDEN":
        return Undelivered(_shut_out(staff_room))
    if status == 404 or code == "M_NOT_FOUND":
        return Undelivered(Reason.GONE)
    if 400 <= status < 500:
        return Undelivered(Reason.REFUSED)
    return Undelivered(Reason.UNREACHABLE, transient=True, uncertain=True)
