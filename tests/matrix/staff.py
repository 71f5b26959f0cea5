"""The protection team's side: a staff member's E2E client, their staff rooms, a bot set up for them.

The bot is configured the way an operator would: `HRD_BOT_STAFF_ROOMS` names the
rooms, `MATRIX_STAFF_USER_IDS` the account, `MATRIX_STAFF_DEVICE_KEYS` the staff
client's ed25519 key (as if checked out of band), and the member is registered
with their platform identity as a pseudonym, their public key and a recovery key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nio import MatrixRoom, RoomCreateResponse, RoomInviteResponse, RoomPreset

from bot.crypto.keys import PrivateKey
from bot.model import ChatRef
from tests.matrix.activist import ENCRYPTION, Activist, Chat
from tests.matrix.fixtures import Bot, unique
from tests.matrix.homeserver import Synapse

__all__ = ["LABEL", "Desk", "open_desk", "room_holds"]

LABEL = "Alice"
WAIT = 30.0


@dataclass
class Desk:
    """One staff member, their key on 'their machine', an encrypted and a plain staff room."""

    staff: Activist
    key: PrivateKey
    room: Chat
    plain: Chat

    def ref(self, chat: Chat) -> ChatRef:
        return ChatRef("matrix", chat.room_id, private=False, encrypted=True)


async def room_holds(
    person: Activist, room_id: str, check: Callable[[MatrixRoom], bool], wait: float = WAIT
) -> None:
    """Wait until this client's view of the room passes `check` (its sync runs meanwhile)."""
    async with asyncio.timeout(wait):
        while True:
            person.synced.clear()
            room = person.client.rooms.get(room_id)
            if room is not None and check(room):
                return
            await person.synced.wait()


def joined(user_id: str) -> Callable[[MatrixRoom], bool]:
    def check(room: MatrixRoom) -> bool:
        user = room.users.get(user_id)
        return user is not None and not user.invited

    return check


async def group_room(person: Activist, *, encrypted: bool) -> str:
    """A private group room (not a DM), created with nobody invited yet."""
    response = await person.client.room_create(
        preset=RoomPreset.private_chat, initial_state=[ENCRYPTION] if encrypted else []
    )
    assert isinstance(response, RoomCreateResponse), response
    room_id = str(response.room_id)
    await room_holds(person, room_id, lambda room: bool(room.encrypted) == encrypted)
    return room_id


async def invite(person: Activist, room_id: str, user_id: str) -> None:
    response = await person.client.room_invite(room_id, user_id)
    assert isinstance(response, RoomInviteResponse), response


async def open_desk(synapse: Synapse, bot: Bot, folder: Path) -> Desk:
    name = unique("staff")
    staff = Activist(synapse.url, synapse.register(name), folder / name, bot.account.user_id)
    await staff.start()
    olm = staff.client.olm
    assert olm is not None
    rooms = [await group_room(staff, encrypted=flag) for flag in (True, False)]
    bot.staff_rooms = tuple(rooms)
    bot.staff_user_ids = frozenset({staff.account.user_id})
    bot.staff_device_keys = frozenset({olm.account.identity_keys["ed25519"]})
    await bot.restart()
    assert bot.app is not None
    key = PrivateKey.generate()
    identity = bot.app.pseudonyms.user("matrix", staff.account.user_id).key
    await bot.app.casework.store.add_staff(LABEL, [identity], key.public)
    await bot.app.casework.store.set_recovery(PrivateKey.generate().public)
    for room_id in rooms:
        await invite(staff, room_id, bot.account.user_id)
    for room_id in rooms:
        await room_holds(staff, room_id, joined(bot.account.user_id))
    return Desk(staff, key, Chat(staff, rooms[0]), Chat(staff, rooms[1]))
