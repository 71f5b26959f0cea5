"""Escalation over Matrix on a real Synapse: on-call accounts, listed by user id, are
reached in an encrypted DM the bot opens; nobody counts as reached before joining it."""

from __future__ import annotations

import asyncio
import time

from bot.delivery import RetryPolicy
from bot.model import ChatRef
from bot.safety.escalation import Escalation
from bot.storage.database import Connection
from tests.matrix.activist import WAIT, Activist, Chat
from tests.matrix.fixtures import Bot, MakeActivist
from tests.matrix.staff import Desk, joined, room_holds

CASE = "HRD-ESC1-MX01"


def _person(account: Activist) -> ChatRef:
    """How `HRD_BOT_ONCALL=matrix:@oscar:hs` lists an on-call account."""
    return ChatRef("matrix", account.account.user_id, private=False, encrypted=True)


async def _new_case(bot: Bot, submitted: int) -> None:
    """A submitted critical case nobody acknowledged (its sealed content plays no part)."""
    assert bot.app is not None

    def insert(conn: Connection) -> None:
        conn.execute(
            "INSERT INTO cases (id, public_key, created_at, updated_at, state, urgency,"
            " submitted_at) VALUES (?, x'00', ?2, ?2, 'new', 'critical', ?2)",
            (CASE, submitted),
        )

    await bot.app.db.transaction(insert)


async def _until_said(chat: Chat, fragment: str) -> str:
    async with asyncio.timeout(WAIT):
        while fragment not in (said := await chat.reply()):
            pass
    return said


async def test_on_call_is_reached_in_an_encrypted_dm_the_bot_opens_once_they_join(
    bot: Bot, desk: Desk, make_activist: MakeActivist
) -> None:
    oscar, lena = await make_activist(), await make_activist()
    bot.oncall = (_person(oscar),)
    bot.delivery = RetryPolicy(window=4.0, first=0.2, cap=1.0, attempt=10.0)
    await bot.restart()  # opens on-call DMs at start
    dm = await asyncio.wait_for(oscar.invites.get(), WAIT)
    await oscar.client.join(dm)
    await room_holds(oscar, dm, joined(oscar.account.user_id))
    await room_holds(oscar, dm, lambda room: bool(room.encrypted) and room.member_count == 2)

    assert bot.app is not None
    now = int(time.time())
    await _new_case(bot, now - 31 * 60)
    casework = bot.app.casework
    escalation = Escalation(
        bot.app.db,
        bot.app.outbox,
        casework.words,
        casework.staff_rooms,
        oncall=casework.oncall,
        leads=(_person(lena),),  # a lead who never accepts the bot's invitation
        clock=lambda: now,
    )
    assert await escalation.tick() == 2

    page = await Chat(oscar, dm).reply()
    assert CASE in page and "Please check the staff room" in page
    assert oscar.log(dm).undecryptable == 0
    told = await _until_said(desk.room, f"Escalation of {CASE}:")
    assert told == f"Escalation of {CASE}: on-call chat 1 (matrix) has the message."

    lead_dm = await asyncio.wait_for(lena.invites.get(), WAIT)  # opened at the first page
    assert lead_dm in lena.client.invited_rooms
    told = await _until_said(desk.room, f"Escalation of {CASE}:")  # after the retry window
    assert told == (
        f"Escalation of {CASE}: lead chat 1 (matrix) could not be reached (the person has not "
        "yet accepted the bot's invitation to a private chat). Call them directly."
    )
    assert lena.log(lead_dm).messages.empty()
