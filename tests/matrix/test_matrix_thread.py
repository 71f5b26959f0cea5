"""The case thread over Matrix on a real Synapse: the reporter answers the team from their
encrypted DM (text, then a photo), asks where the case stands after `/ack` and `/close`,
and writes after the close. The encrypted all-staff room gets the words, quoted; the
unencrypted staff room is told there is a new message, and never what it says.
"""

from __future__ import annotations

import os

from bot.crypto.bundle import open_bundle
from tests.matrix.activist import Activist, Chat
from tests.matrix.fixtures import Bot
from tests.matrix.homeserver import Synapse
from tests.matrix.staff import Desk
from tests.matrix.test_matrix_flows import homeserver_rows
from tests.matrix.test_matrix_reports import EVENT_JSON, WITHHELD, interview

PHOTO = b"\x89PNG\r\n\x1a\n" + os.urandom(2000)


async def drain(chat: Chat, count: int) -> list[str]:
    return [await chat.reply() for _ in range(count)]


async def test_reporter_and_team_talk_both_ways_in_encrypted_rooms(
    bot: Bot, desk: Desk, activist: Activist, synapse: Synapse
) -> None:
    assert bot.app is not None
    dm = await activist.open_dm()
    case = await interview(dm)
    await drain(desk.room, 3)  # the alert, the answers, the list of files
    await drain(desk.plain, 3)  # the alert, and two "withheld" notices

    assert "queued" in await desk.room.say(f"/reply {case} Are you safe tonight?")
    relayed = await dm.reply()
    assert relayed == "Protection team: Are you safe tonight?\n\n1. Answer the team"
    assert await desk.room.reply() == f"* Reply to the reporter of {case}: delivered.", "an edit"
    assert "Write here to the protection team" in await dm.pick("Answer the team")

    answered = await dm.say("CANARY-M1 we are at a friend's house\n/close " + case)
    assert answered.startswith("Delivered to the team, locked.")
    head, content = await drain(desk.room, 2)
    assert head == f"New message on {case} from the reporter."
    assert content.splitlines()[1:] == [
        "> CANARY-M1 we are at a friend's house",
        f"> /close {case}",
    ]
    notice, withheld = await drain(desk.plain, 2)
    assert notice == head and WITHHELD in withheld and "CANARY" not in withheld

    await activist.send_file(dm.room_id, PHOTO, "street.png", "image/png")
    assert (await dm.reply()).startswith("The file was delivered to the team, locked.")
    head, content = await drain(desk.room, 2)
    assert head == f"New message on {case} from the reporter."
    assert "image/png" in content and "street" not in content
    await drain(desk.plain, 2)

    assert "acknowledged" in await desk.room.say(f"/ack {case}")
    state = await dm.pick("Where is my case?")
    assert f"Someone on the protection team is handling your case {case}." in state

    assert "closed" in await desk.room.say(f"/close {case} relocated")
    await dm.say("/menu")
    assert f"Your case {case} is closed" in await dm.pick("Where is my case?")
    await dm.pick("Message the protection team")
    late = await dm.say("CANARY-M3 they came back")
    assert late.startswith("The case is closed; your message was passed to the team")
    head, content = await drain(desk.room, 2)
    assert head.endswith("The case is closed; it was not reopened.")
    assert "> CANARY-M3 they came back" in content

    bundle = await bot.app.casework.store.export_bundle(case)
    opened = [(i.field, i.data) for i in open_bundle(bundle, desk.key).items]
    assert [data for field, data in opened if field.startswith("message")] == [
        f"CANARY-M1 we are at a friend's house\n/close {case}".encode(),
        b"image/png\nstreet.png\n" + PHOTO,
        b"CANARY-M3 they came back",
    ]
    for room_id in (dm.room_id, desk.room.room_id, desk.plain.room_id):
        stored = " ".join(row[0] for row in homeserver_rows(synapse, EVENT_JSON, room_id))
        assert "CANARY" not in stored, "the homeserver holds no message in clear"
