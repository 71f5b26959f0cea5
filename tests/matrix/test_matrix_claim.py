"""Claiming with a reaction in an encrypted Matrix staff room, on a real Synapse.

Alice and Bruno are staff with listed devices; Carol's account is staff but her device
is not listed. An unencrypted 👍 from Alice, or an encrypted one from Carol, claims
nothing, and the room says whose account it was.
Alice's 👍 and Bruno's ✋ (with a variation selector) at once: exactly one claim in the
audit trail, the case acknowledged and assigned to the winner, and both told in the
room by staff label. The case is found from the alert's event id alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from nio import RoomSendResponse

from bot.crypto.keys import PrivateKey
from bot.model import ChatRef
from bot.storage.database import Connection
from tests.matrix.activist import WAIT, Activist, Chat
from tests.matrix.fixtures import Bot, unique
from tests.matrix.homeserver import Synapse
from tests.matrix.staff import group_room, invite, joined, room_holds


@dataclass
class Team:
    alice: Activist
    bruno: Activist
    carol: Activist
    room: str


@pytest.fixture
async def team(synapse: Synapse, bot: Bot, tmp_path: Path) -> AsyncIterator[Team]:
    people: list[Activist] = []
    for name in ("alice", "bruno", "carol"):
        login = unique(name)
        person = Activist(synapse.url, synapse.register(login), tmp_path / login, "")
        person.bot_id = bot.account.user_id
        people.append(await person.start())
    alice, bruno, carol = people
    room = await group_room(alice, encrypted=True)
    bot.staff_rooms = (room,)
    bot.staff_user_ids = frozenset(p.account.user_id for p in people)
    keys = [p.client.olm.account.identity_keys["ed25519"] for p in (alice, bruno) if p.client.olm]
    bot.staff_device_keys = frozenset(keys)  # Carol's device is not listed
    await bot.restart()
    assert bot.app is not None
    for label, person in zip(("Alice", "Bruno", "Carol"), people, strict=True):
        identity = bot.app.pseudonyms.user("matrix", person.account.user_id).key
        await bot.app.casework.store.add_staff(label, [identity], PrivateKey.generate().public)
    await bot.app.casework.store.set_recovery(PrivateKey.generate().public)
    for user_id in (bot.account.user_id, bruno.account.user_id, carol.account.user_id):
        await invite(alice, room, user_id)
    for person in (bruno, carol):
        await person.client.join(await asyncio.wait_for(person.invites.get(), WAIT))
    for user_id in (bot.account.user_id, bruno.account.user_id, carol.account.user_id):
        await room_holds(alice, room, joined(user_id))
    try:
        yield Team(alice, bruno, carol, room)
    finally:
        for person in people:
            await person.stop()


async def _alerted(bot: Bot, team: Team) -> tuple[str, str]:
    """A submitted case, and the event id of its alert in the staff room (once on record)."""
    assert bot.app is not None
    casework = bot.app.casework
    reporter = bot.app.pseudonyms.user("matrix", "@reporter:elsewhere")
    case = await casework.open_draft(reporter, ChatRef("matrix", "!nowhere:elsewhere"), "en")
    assert case is not None
    assert await casework.submit(case)
    chat = Chat(team.alice, team.room)
    async with asyncio.timeout(WAIT):
        while True:
            event_id, body = await chat.log.messages.get()
            if body.startswith(f"New case {case}"):
                break
    assert "To claim this case, react with 👍 or ✋" in body

    def settled(conn: Connection) -> bool:
        row = conn.execute(
            "SELECT message_ids FROM outbox WHERE case_id = ? AND kind = 'alert'", (case,)
        ).fetchone()
        return row is not None and row[0] is not None and event_id in row[0]

    async with asyncio.timeout(WAIT):
        while True:
            if await bot.app.db.run(settled):
                return case, event_id
            await asyncio.sleep(0.05)  # the database wakes nobody


async def _react(person: Activist, room: str, event_id: str, key: str) -> None:
    """An end-to-end encrypted reaction, as Element sends one (nio's `room_send` leaves
    reactions unencrypted): the relation stays readable to the server too."""
    client, relation = person.client, {"rel_type": "m.annotation", "event_id": event_id, "key": key}
    if not client.rooms[room].members_synced:
        await client.joined_members(room)
    if client.should_query_keys:
        await client.keys_query()
    if client.olm is not None and client.olm.should_share_group_session(room):
        await client.share_group_session(room, ignore_unverified_devices=True)
    _, sealed = client.encrypt(room, "m.reaction", {"m.relates_to": relation})
    await person.send_raw(room, "m.room.encrypted", sealed | {"m.relates_to": relation})


async def _react_in_clear(person: Activist, room: str, event_id: str, key: str) -> None:
    content = {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}}
    response = await person.client.room_send(
        room, "m.reaction", content, ignore_unverified_devices=True
    )
    assert isinstance(response, RoomSendResponse), response


async def _said(team: Team, case: str, count: int) -> list[str]:
    chat, found = Chat(team.alice, team.room), list[str]()
    async with asyncio.timeout(WAIT):
        while len(found) < count:
            _, body = await chat.log.messages.get()
            if case in body or "unlisted device" in body:
                found.append(body)
    return found


async def _claims(bot: Bot, case: str) -> int:
    assert bot.app is not None
    return sum(e.action == "case.claim" for e in await bot.app.casework.store.audit(case))


async def test_two_reactions_at_once_one_claim_and_both_told(bot: Bot, team: Team) -> None:
    case, alert = await _alerted(bot, team)
    await _react_in_clear(team.alice, team.room, alert, "👍")
    (refused,) = await _said(team, case, 1)
    assert refused.startswith("A claim came from an unlisted device of Alice")
    await _react(team.carol, team.room, alert, "👍")
    (refused,) = await _said(team, case, 1)
    assert refused.startswith("A claim came from an unlisted device of Carol")
    assert await _claims(bot, case) == 0

    await asyncio.gather(
        _react(team.alice, team.room, alert, "👍"),
        _react(team.bruno, team.room, alert, "✋\ufe0f"),
    )
    told = await _said(team, case, 2)
    assert bot.app is not None
    view = await bot.app.casework.case(case)
    winner = view.assignee
    assert winner in ("Alice", "Bruno") and view.state == "assigned"
    loser = ({"Alice", "Bruno"} - {winner}).pop()
    assert sorted(told) == sorted(
        [
            f"{case} claimed by {winner}: acknowledged and assigned to them.",
            f"{loser}: {case} is already claimed by {winner}.",
        ]
    )
    assert await _claims(bot, case) == 1
    assert all("reporter" not in text for text in told)
