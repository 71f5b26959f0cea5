"""Room membership: which invites to take, which rooms are private, DM offers, leaving.

Joins and DM creations are rate-limited (a global bucket and one per account), so an
invite flood from many accounts fills the bot slowly and one from a single account
not at all: an account over its limit is ignored, and invites over the global limit
wait in a bounded queue (oldest dropped first) until the bucket refills.
Only invites to direct rooms are taken, and an invite to a configured staff room
when it comes from a staff account; other invites are declined, except a staff
account's invite to a group room not (yet) configured: it is left pending, so an
operator who invites the bot first and lists the room afterwards only restarts it
(at start the transport looks up invites to listed rooms it is not in). A room is private
only when it is end-to-end encrypted, holds just the bot and one person and is not a
staff room; everything else but a staff room gets the handlers' pointer to a private
chat, and the bot offers an encrypted DM. On-call and lead accounts, listed by user id,
get an encrypted DM the bot opens itself (`direct_room`), for escalations. `withheld`
says where a sensitive reply may not go: an unencrypted room, a group, or a staff room
with anyone who is not staff.
"""

from __future__ import annotations

import enum
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientError
from nio import InviteMemberEvent, RoomCreateResponse, RoomGetStateResponse, RoomPreset

from bot.conversation.flood import FloodGuard
from bot.transports.matrix.power import can_redact
from bot.transports.matrix.store import forget_room

__all__ = ["Invite", "Limits", "Rooms"]

log = logging.getLogger("hrd_bot.matrix.rooms")
ENCRYPTION_STATE = {
    "type": "m.room.encryption",
    "state_key": "",
    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
}
ALL = "*"


class Invite(enum.Enum):
    DIRECT = "direct"
    STAFF = "staff"
    DECLINE = "decline"
    PENDING = "pending"


@dataclass(frozen=True, slots=True)
class Limits:
    """Token buckets (rate per second, burst) for joins and for DM offers."""

    joins: tuple[float, int] = (0.1, 20)
    joins_per_inviter: tuple[float, int] = (1 / 60, 3)
    offers: tuple[float, int] = (0.05, 10)
    offers_per_user: tuple[float, int] = (1 / 600, 1)
    waiting_invites: int = 200


def _guard(spec: tuple[float, int]) -> FloodGuard:
    return FloodGuard(rate=spec[0], burst=spec[1])


class Rooms:
    """Membership decisions for one logged-in nio client."""

    def __init__(
        self,
        client: Any,
        staff: frozenset[str],
        limits: Limits,
        staff_rooms: frozenset[str] = frozenset(),
    ) -> None:
        self._client = client
        self._staff = staff
        self._staff_rooms = staff_rooms
        self._limits = limits
        self._joins, self._join_each = _guard(limits.joins), _guard(limits.joins_per_inviter)
        self._offers, self._offer_each = _guard(limits.offers), _guard(limits.offers_per_user)
        self._waiting: OrderedDict[str, Invite] = OrderedDict()
        self._greet: set[str] = set()
        self._offered: dict[str, str] = {}
        self._redact_power: dict[str, bool] = {}

    @property
    def own_id(self) -> str:
        return str(self._client.user_id)

    def is_staff_room(self, room_id: str) -> bool:
        return room_id in self._staff_rooms

    def is_private(self, room_id: str) -> bool:
        room = self._client.rooms.get(room_id)
        if room is None or room_id in self._staff_rooms:
            return False
        return bool(room.encrypted) and int(room.member_count) <= 2

    def is_encrypted(self, room_id: str) -> bool:
        room = self._client.rooms.get(room_id)
        return room is not None and bool(room.encrypted)

    def is_one_to_one(self, room_id: str) -> bool:
        room = self._client.rooms.get(room_id)
        return room is not None and int(room.member_count) <= 2

    def others_joined(self, room_id: str) -> list[str]:
        room = self._client.rooms.get(room_id)
        if room is None:
            return []
        return [
            u.user_id for u in room.users.values() if u.user_id != self.own_id and not u.invited
        ]

    def withheld(self, room_id: str) -> str | None:
        """Why a sensitive reply may not go to this room, or None when it may.

        Members who are only invited count: once they join they could read it.
        """
        room = self._client.rooms.get(room_id)
        if room is None or not room.encrypted:
            return "is not end-to-end encrypted"
        others = [user for user in room.users if user != self.own_id]
        if room_id in self._staff_rooms:
            if all(user in self._staff for user in others):
                return None
            return "has members who are not on the staff list"
        return None if len(others) <= 1 else "is not a private chat"

    async def can_redact_others(self, room_id: str) -> bool:
        """Whether the bot may redact the person's messages here (False while unknown)."""
        return bool(await self.redact_power(room_id))

    async def redact_power(self, room_id: str, *, fresh: bool = False) -> bool | None:
        """The power to redact everyone's events, asked once per room and run (or now, when
        `fresh`); None when the room's state could not be read (asked again next time).

        Read from the room's state on the server, so the answer survives a restart.
        """
        if fresh or room_id not in self._redact_power:
            known = await self._check_redact_power(room_id)
            if known is None:
                return None
            self._redact_power[room_id] = known
        return self._redact_power[room_id]

    async def _check_redact_power(self, room_id: str) -> bool | None:
        if room_id not in self._client.rooms:
            return False
        try:
            response = await self._client.room_get_state(room_id)
        except (ClientError, OSError, TimeoutError) as exc:
            log.warning("could not read a room's state (%s)", type(exc).__name__)
            return None
        if not isinstance(response, RoomGetStateResponse):
            log.warning("could not read a room's state to check the power to redact")
            return None
        return can_redact(response.events, self.own_id)

    def on_invite(self, room_id: str, invite_state: list[Any]) -> None:
        """Queue a new invite, to be taken or declined as the buckets allow."""
        for event in invite_state:
            if (
                isinstance(event, InviteMemberEvent)
                and event.state_key == self.own_id
                and event.membership == "invite"
                and room_id not in self._waiting
            ):
                sender = str(event.sender)
                kind = self._decide(room_id, sender, bool(event.content.get("is_direct")))
                if kind is Invite.PENDING:
                    log.warning(
                        "a staff account invited the bot to a room not in HRD_BOT_STAFF_ROOMS"
                    )
                elif self._join_each.check(sender)[0]:
                    self._waiting[room_id] = kind
                    self._trim()
                return

    def _decide(self, room_id: str, sender: str, direct: bool) -> Invite:
        """A staff room only from staff (nobody else can pull the bot into it); DMs from anyone."""
        if room_id in self._staff_rooms:
            return Invite.STAFF if sender in self._staff else Invite.DECLINE
        if direct:
            return Invite.DIRECT
        return Invite.PENDING if sender in self._staff else Invite.DECLINE

    def _trim(self) -> None:
        while len(self._waiting) > self._limits.waiting_invites:
            self._waiting.popitem(last=False)
            log.warning("invite flood: dropped a waiting invite")

    @property
    def backlog(self) -> bool:
        return bool(self._waiting)

    async def take_invites(self) -> None:
        """Join (or decline) waiting invites as far as the global bucket allows."""
        while self._waiting and self._joins.check(ALL)[0]:
            room_id, kind = self._waiting.popitem(last=False)
            if kind is Invite.DECLINE:
                await self._client.room_leave(room_id)
                log.info("declined an invite (not a direct room, or a staff room from non-staff)")
                continue
            response = await self._client.join(room_id)
            if hasattr(response, "room_id"):
                if kind is Invite.DIRECT:
                    self._greet.add(room_id)
                log.info("joined a %s room", kind.value)
            else:
                log.warning("could not join a room: %s", getattr(response, "status_code", "?"))

    def greet_due(self, room_id: str) -> str | None:
        """The person to greet with the start screen, once they are in the room with the bot."""
        if room_id not in self._greet:
            return None
        others = self.others_joined(room_id)
        if len(others) != 1:
            return None
        self._greet.discard(room_id)
        return others[0]

    def _encrypted_dm_with(self, user_id: str) -> bool:
        return self._direct_with(user_id) is not None

    def has_other_dm(self, user_id: str, room_id: str) -> bool:
        """Another encrypted DM with `user_id` (joined or invited) than `room_id`."""
        return self._offered.get(user_id, room_id) != room_id or any(
            room.encrypted and room.member_count <= 2 and user_id in room.users
            for room in self._client.rooms.values()
            if room.room_id not in self._staff_rooms and room.room_id != room_id
        )

    async def offer_dm(self, user_id: str, *, fresh: bool = False) -> bool:
        """Make sure an encrypted DM with `user_id` exists (create it and invite them).

        `fresh` creates one even when a DM exists: a room the bot creates makes it a
        creator, so it may redact everyone's messages there.
        """
        if not fresh and self._encrypted_dm_with(user_id):
            return True
        if not (self._offer_each.check(user_id)[0] and self._offers.check(ALL)[0]):
            return False
        room_id = await self._create_dm(user_id)
        if room_id is None:
            return False
        self._greet.add(room_id)
        log.info("created an encrypted DM for a user of an unencrypted room")
        return True

    def _direct_with(self, user_id: str) -> str | None:
        if user_id in self._offered:
            return self._offered[user_id]
        for room in self._client.rooms.values():
            private = room.encrypted and room.member_count <= 2
            if private and user_id in room.users and room.room_id not in self._staff_rooms:
                return str(room.room_id)
        return None

    async def direct_room(self, user_id: str) -> str | None:
        """The encrypted DM with an on-call or lead account (listed by the operator),
        created with them invited the first time; None if the homeserver refused it."""
        if (room_id := self._direct_with(user_id)) is not None:
            return room_id
        room_id = await self._create_dm(user_id)
        if room_id is not None:
            log.info("created an encrypted DM for an on-call account")
        return room_id

    async def _create_dm(self, user_id: str) -> str | None:
        """An encrypted DM the bot creates, with `user_id` invited (and its creator's power
        to redact everyone's messages); None if the homeserver refused."""
        response = await self._client.room_create(
            is_direct=True,
            preset=RoomPreset.trusted_private_chat,
            invite=[user_id],
            initial_state=[ENCRYPTION_STATE],
        )
        if not isinstance(response, RoomCreateResponse):
            log.warning("could not create a DM: %s", getattr(response, "status_code", "?"))
            return None
        self._offered[user_id] = str(response.room_id)
        return str(response.room_id)

    async def leave(self, room_id: str) -> None:
        """Leave and forget the room, so its history goes from the bot's account too, and
        its keys and those of people the bot no longer shares a room with from its store."""
        self._greet.discard(room_id)
        self._redact_power.pop(room_id, None)
        for user, room in list(self._offered.items()):
            if room == room_id:
                del self._offered[user]
        await self._client.room_leave(room_id)
        await self._client.room_forget(room_id)
        await forget_room(self._client, room_id)
