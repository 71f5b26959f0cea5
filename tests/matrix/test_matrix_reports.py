"""Risk reports over Matrix on a real Synapse: interview, sealed file, staff room triage, relay.

The reporter works in an encrypted DM; the protection team in an encrypted staff room
(the bot joins on a staff invite) and, to show what is held back, an unencrypted one.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest

from bot.crypto.bundle import open_bundle
from bot.crypto.keys import PrivateKey
from bot.delivery import Reason, Undelivered
from bot.model import Reply
from tests.matrix.activist import Activist, Chat
from tests.matrix.fixtures import Bot, MakeActivist, unique
from tests.matrix.homeserver import Synapse
from tests.matrix.staff import (
    LABEL,
    Desk,
    group_room,
    invite,
    joined,
    room_holds,
)
from tests.matrix.test_matrix_flows import homeserver_rows

WHAT = "CANARY-WHAT they followed me after the meeting"
NOTE = "CANARY-NOTE called the lawyer"
ANSWER = "CANARY-REPLY we are on it"
IMAGE = b"\x89PNG\r\n\x1a\n" + os.urandom(3000)
POINTER = "I only help in a private chat"
REFUSED = "Only the protection team"
WITHHELD = "A confidential message was withheld"


async def interview(chat: Chat) -> str:
    """The whole report, a file with the first answer; returns the case reference."""
    await chat.pick("English")
    assert "encrypted" in await chat.pick("Report a risk")
    assert "Question 1 of 7" in await chat.pick("Start the report")
    await chat.activist.send_file(chat.room_id, IMAGE, "evidence.png", "image/png")
    assert "The file is saved and locked." in await chat.reply()
    assert "Question 2 of 7" in await chat.say(WHAT)
    await chat.say("yesterday evening")
    assert "Question 4 of 7" in await chat.say("Colombia"), "a country typed by name"
    await chat.say("me and two colleagues")
    await chat.pick("Danger now")
    await chat.say("here, evenings")
    review = await chat.pick("Yes, if it helps")
    assert "Before you send" in review and WHAT in review
    sent = await chat.pick("Send the report")
    found = re.search(r"HRD-[0-9A-Z]{4}-[0-9A-Z]{4}", sent)
    assert found, sent
    return found.group(0)


async def test_report_alert_triage_and_relay_in_encrypted_rooms(
    bot: Bot, desk: Desk, activist: Activist, synapse: Synapse, caplog: pytest.LogCaptureFixture
) -> None:
    assert bot.app is not None
    caplog.set_level(logging.DEBUG, logger="hrd_bot")
    dm = await activist.open_dm()
    case = await interview(dm)

    alert = await desk.room.reply()
    assert case in alert and "critical" in alert and "Colombia" in alert
    answers = await desk.room.reply()
    assert WHAT in answers and "yesterday evening" in answers, "the encrypted room gets answers"
    assert f"Files sent with {case}" in await desk.room.reply(), (
        "and the file (see test_attachments_matrix)"
    )
    head = await desk.plain.reply()
    assert case in head and "CANARY" not in head, "an unencrypted room gets the alert only"
    plain = await desk.plain.reply()
    assert WITHHELD in plain and "not end-to-end encrypted" in plain
    assert "CANARY" not in plain

    room = desk.room
    assert case in await room.say("/cases")
    assert "acknowledged" in await room.say(f"/ack {case}")
    assert "assigned" in await room.say(f"/assign {case} {LABEL}")
    assert "sealed" in await room.say(f"/note {case} {NOTE}")
    assert "queued" in await room.say(f"/reply {case} {ANSWER}")
    assert await dm.reply() == f"Protection team: {ANSWER}\n\n1. Answer the team"
    assert await room.reply() == f"* Reply to the reporter of {case}: delivered.", "an edit"
    relay_id = dm.log.bot_events[-1]
    expiring = await bot.app.db.run(
        lambda c: c.execute(
            "SELECT count(*) FROM chat_messages WHERE message_id = ? AND delete_at IS NOT NULL",
            (relay_id,),
        ).fetchone()[0]
    )
    assert expiring == 1, "the relay is redacted after its time to live"
    assert "closed" in await room.say(f"/close {case} relocated")
    assert "cannot be changed" in await room.say(f"/reply {case} again")

    bundle = await bot.app.casework.store.export_bundle(case)
    opened = {item.field: item.data for item in open_bundle(bundle, desk.key).items}
    assert opened["answer.what"] == WHAT.encode()
    assert opened["answer.where"] == b"CO"
    assert opened["attachment.0"] == b"image/png\nevidence.png\n" + IMAGE
    assert opened["note"] == NOTE.encode() and opened["reply"] == ANSWER.encode()

    for room_id in (dm.room_id, room.room_id):
        types = {row[0] for row in homeserver_rows(synapse, EVENT_TYPES, room_id)}
        assert "m.room.encrypted" in types and "m.room.message" not in types
        stored = " ".join(row[0] for row in homeserver_rows(synapse, EVENT_JSON, room_id))
        assert "CANARY" not in stored and case not in stored

    ours = [r.getMessage() for r in caplog.records if r.name.startswith("hrd_bot")]
    assert any("withheld a sensitive reply" in line for line in ours)
    assert not any("failed to handle" in line for line in ours)
    for line in ours:
        for secret in ("@", "!", "$", "mxc", "CANARY", case, "evidence", "Colombia", LABEL):
            assert secret not in line, line


EVENT_TYPES = "SELECT type FROM events WHERE room_id = ?"
EVENT_JSON = "SELECT json FROM event_json WHERE room_id = ?"


async def test_a_non_staff_member_of_the_staff_room_is_refused_and_reads_no_answers(
    bot: Bot, desk: Desk, make_activist: MakeActivist
) -> None:
    outsider = await make_activist()
    await invite(desk.staff, desk.room.room_id, outsider.account.user_id)
    await outsider.client.join(await outsider.invites.get())
    await room_holds(desk.staff, desk.room.room_id, joined(outsider.account.user_id))
    await room_holds(outsider, desk.room.room_id, lambda room: bool(room.encrypted))
    seen_by_outsider = Chat(outsider, desk.room.room_id)
    await outsider.send(desk.room.room_id, "/reply HRD-2222-2222 send me your location")
    assert REFUSED in await desk.room.reply()
    assert REFUSED in await seen_by_outsider.reply()
    assert bot.transport is not None
    with pytest.raises(Undelivered) as refused:
        await bot.transport.send(desk.ref(desk.room), Reply("CANARY-ANSWERS", sensitive=True))
    assert refused.value.reason is Reason.WITHHELD
    held = await desk.room.reply()
    assert WITHHELD in held and "not on the staff list" in held and "CANARY" not in held
    assert "CANARY" not in await seen_by_outsider.reply()


async def test_a_file_over_the_limit_is_refused_with_the_limit(
    bot: Bot, activist: Activist
) -> None:
    assert bot.app is not None
    await bot.app.casework.store.set_recovery(PrivateKey.generate().public)
    dm = await activist.open_dm()
    await dm.pick("English")
    await dm.pick("Report a risk")
    await dm.pick("Start the report")
    huge = 11 * 1024 * 1024
    await activist.send_file(
        dm.room_id, b"x" * 100, "film.mp4", "video/mp4", msgtype="m.file", declared_size=huge
    )
    refused = await dm.reply()
    assert "That file is too big (the limit is 10 MB)" in refused
    assert "Question 1 of 7" in refused


async def test_a_file_in_an_unencrypted_room_gets_only_the_pointer(
    bot: Bot, activist: Activist
) -> None:
    plain = await activist.open_dm(encrypted=False)
    await plain.reply()  # the DM offer
    await activist.send_file(plain.room_id, IMAGE, "evidence.png", "image/png")
    assert POINTER in await plain.reply()


async def test_a_staff_invite_before_the_room_is_listed_waits_for_the_restart(
    bot: Bot, synapse: Synapse, tmp_path: Path
) -> None:
    name = unique("staff")
    staff = Activist(synapse.url, synapse.register(name), tmp_path / name, bot.account.user_id)
    await staff.start()
    try:
        bot.staff_user_ids = frozenset({staff.account.user_id})
        await bot.restart()
        assert bot.transport is not None
        transport = bot.transport
        room_id = await group_room(staff, encrypted=True)
        seen = transport.stats()["batches"]
        await invite(staff, room_id, bot.account.user_id)
        await Chat(staff, room_id).until(lambda: transport.stats()["batches"] > seen)
        bot.staff_rooms = (room_id,)
        await bot.restart()
        await room_holds(staff, room_id, joined(bot.account.user_id))
    finally:
        await staff.stop()
