"""A staff password alone does not command the bot: on Synapse, the same staff account
logged in on a second device (not in `MATRIX_STAFF_DEVICE_KEYS`) sends staff commands.

Each is refused, the case and its audit stay as they were, nothing reaches the
reporter, and the staff room is told whose account it was (never what was asked).
An unencrypted command, even from the listed account, cannot show its device and is
refused the same way. The listed device's commands still work afterwards.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.matrix.activist import Activist, Chat
from tests.matrix.fixtures import Bot, unique
from tests.matrix.homeserver import Account, Synapse
from tests.matrix.staff import LABEL, Desk, room_holds
from tests.matrix.test_matrix_reports import interview

CANARY = "CANARY-IMPOSTOR come to the bus station at 18:00 and bring your laptop"
UNLISTED = f"A staff command came from an unlisted device of {LABEL}"
IMPOSTOR_COMMANDS = (
    f"/reply {{case}} {CANARY}",
    f"/note {{case}} {CANARY}",
    f"/close {{case}} {CANARY}",
    "/ack {case}",
    f"/assign {{case}} {LABEL}",
    "/cases",
)
ANSWER = "CANARY-REPLY we are on it"


def _login(synapse: Synapse, account: Account) -> Account:
    """A new login (a new device) of an existing account, as a stolen password allows."""
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": account.user_id},
        "password": account.password,
    }
    request = urllib.request.Request(
        f"{synapse.url}/_matrix/client/v3/login",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    return Account(account.user_id, account.password, answer["access_token"], answer["device_id"])


@pytest.fixture
async def impostor(
    synapse: Synapse, bot: Bot, desk: Desk, tmp_path: Path
) -> AsyncIterator[Activist]:
    """The staff account on a second device: a matrix-nio client the operator never listed."""
    account = await asyncio.to_thread(_login, synapse, desk.staff.account)
    assert account.device_id != desk.staff.account.device_id
    other = Activist(synapse.url, account, tmp_path / unique("stolen"), bot.account.user_id)
    await other.start()
    await room_holds(other, desk.room.room_id, lambda room: bool(room.encrypted))
    try:
        yield other
    finally:
        await other.stop()


async def _case_state(bot: Bot, case: str) -> tuple[object, ...]:
    assert bot.app is not None
    view = await bot.app.casework.case(case)
    audit = await bot.app.casework.store.audit(case)
    return view.state, view.urgency, view.assignee, tuple((e.actor, e.action) for e in audit)


async def test_a_second_device_of_a_staff_account_is_refused_and_the_listed_one_still_works(
    bot: Bot,
    desk: Desk,
    impostor: Activist,
    activist: Activist,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="hrd_bot")
    dm = await activist.open_dm()
    case = await interview(dm)
    room = desk.room
    for _ in range(3):  # the alert, the answers, the files
        await room.reply()
    before = await _case_state(bot, case)

    for command in IMPOSTOR_COMMANDS:
        await impostor.send(room.room_id, command.format(case=case))
        told = await room.reply()
        assert told.startswith(UNLISTED) and "not carried out" in told, (command, told)
        assert "CANARY" not in told and case not in told, "no content of the command"
    await desk.staff.send_raw(
        room.room_id, "m.room.message", {"msgtype": "m.text", "body": f"/note {case} {CANARY}"}
    )
    unencrypted = await room.reply()
    assert unencrypted.startswith(UNLISTED) and "without end-to-end encryption" in unencrypted
    assert await _case_state(bot, case) == before, "the case and its audit are unchanged"
    assert dm.log.messages.empty(), "nothing reached the reporter"
    assert Chat(impostor, room.room_id).log.messages.empty(), "the impostor reads no answers"

    assert "acknowledged" in await room.say(f"/ack {case}")
    assert "assigned" in await room.say(f"/assign {case} {LABEL}")
    assert "sealed" in await room.say(f"/note {case} checked")
    assert "queued" in await room.say(f"/reply {case} {ANSWER}")
    assert await dm.reply() == f"Protection team: {ANSWER}\n\n1. Answer the team"
    assert "delivered" in await room.reply()
    assert "closed" in await room.say(f"/close {case} relocated")
    assert bot.app is not None
    actions = [entry.action for entry in await bot.app.casework.store.audit(case)]
    assert actions.count("case.note") == 1 and actions.count("case.close") == 1

    refusals = [r.getMessage() for r in caplog.records if "listed staff device" in r.getMessage()]
    assert len(refusals) == len(IMPOSTOR_COMMANDS) + 1
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("hrd_bot")]
    secrets = (CANARY, case, LABEL, impostor.account.user_id, impostor.account.device_id)
    for line in ours:
        for secret in secrets:
            assert secret not in line, line
