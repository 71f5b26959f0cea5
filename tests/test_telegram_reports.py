"""Risk reports over Telegram, end to end: python-telegram-bot → HTTP → emulator, real SQLCipher.

An activist runs the interview in a private chat; the protection team works in a
Telegram group listed in HRD_BOT_STAFF_ROOMS (also the on-call list here), which gets
only the case id, country and urgency; staff triage with commands there, and the
team's reply reaches the activist's private chat. Files go with the first answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import Settings
from bot.crypto.bundle import open_bundle
from bot.crypto.keys import PrivateKey
from bot.model import MAX_ATTACHMENT_BYTES
from tests.telegram_emulator import Emulator, Screen, SimUser
from tests.telegram_emulator.harness import (
    RunningBot,
    eventually,
    onboard,
    running_bot,
    trail_rows,
)

FAST_SWEEP = timedelta(seconds=0.2)
WHAT = "CANARY-WHAT: they followed me after the meeting"
WHEN = "CANARY-WHEN yesterday evening"
PHOTO = b"\xff\xd8\xff\xe0 a photo of the car " + bytes(range(256)) * 64


@dataclass
class Team:
    """The staff group (Alice and Bruno are staff, Mallory is not) and the staff keys."""

    bot: RunningBot
    alice: SimUser
    bruno: SimUser
    mallory: SimUser
    keys: dict[str, PrivateKey]


@pytest.fixture
async def team(emu: Emulator, tmp_path: Path) -> AsyncIterator[Team]:
    alice, bruno, mallory = emu.group(
        "Protection team", "Alice", "Bruno", "Mallory", supergroup=True
    )
    room = f"telegram:{alice.chat.id}"
    settings = Settings.from_env(
        {"HRD_BOT_DATA_DIR": str(tmp_path), "HRD_BOT_STAFF_ROOMS": room, "HRD_BOT_ONCALL": room}
        | {"HRD_BOT_TELEGRAM_STAFF_ACTIONS": "all"}  # the operator allows every command
    )
    async with running_bot(
        emu,
        tmp_path / "x.db",
        sweep_interval=FAST_SWEEP,
        staff_rooms=settings.chats("HRD_BOT_STAFF_ROOMS"),
        oncall=settings.chats("HRD_BOT_ONCALL"),
        staff_without_device=settings.telegram_staff_actions,
    ) as running:
        app, keys = running.app, {}
        for member in (alice, bruno):
            key = keys[member.person.first_name] = PrivateKey.generate()
            identity = app.pseudonyms.user("telegram", str(member.person.id)).key
            await app.casework.store.add_staff(member.person.first_name, [identity], key.public)
        await app.casework.store.set_recovery(PrivateKey.generate().public)
        yield Team(running, alice, bruno, mallory, keys)


def pick(screen: Screen, fragment: str) -> str:
    """The exact label of the button whose label contains `fragment`."""
    found = [label for label in screen.buttons if fragment in label]
    assert found, f"no button like {fragment!r} in {screen.buttons}"
    return found[0]


async def tap(user: SimUser, screen: Screen, fragment: str) -> Screen:
    return await user.choose(pick(screen, fragment))


async def start_report(activist: SimUser) -> Screen:
    """From first contact to the first question."""
    menu = await onboard(activist)
    intro = await tap(activist, menu, "Report a risk")
    assert "encrypted" in intro.text
    first = await tap(activist, intro, "Start the report")
    assert "Question 1 of 7" in first.text
    return first


async def finish_report(activist: SimUser) -> str:
    """Answers 1 to 7 (a country typed by name, urgency and consent by button), review, send."""
    await activist.ask(WHAT)
    await activist.ask(WHEN)
    country = await activist.ask("colombia")
    assert "Question 4 of 7" in country.text, "the typed country was understood"
    urgency = await activist.ask("me and two colleagues")
    contact = await tap(activist, urgency, "Danger now")
    assert "Question 6 of 7" in contact.text
    consent = await activist.ask("here, evenings")
    review = await tap(activist, consent, "Yes, if it helps")
    assert "Before you send" in review.text and WHAT in review.text
    sent = await tap(activist, review, "Send the report")
    case = next(w for w in sent.text.split() if w.startswith("HRD-")).rstrip(".")
    assert "never asks for your passwords" in sent.text
    return case


async def says(member: SimUser, text: str, count: int = 1) -> str:
    """A message in the staff group, and the bot's answer there (no buttons)."""
    await member.send(text)
    return (await member.answer(count=count)).text


async def reply_outcome(member: SimUser, text: str) -> tuple[str, str]:
    """`/reply` in the staff group: the bot's "queued" notice, and what it is edited into
    once the outcome is known."""
    await member.send(text)
    message = (await member.answer(count=1)).messages[-1]
    queued = message.text
    await member.world.wait_for(lambda: message.text != queued)
    return queued or "", message.text or ""


def bot_texts(user: SimUser) -> list[str]:
    return [m.text or "" for m in user.world.messages[user.chat.id] if m.sender is user.world.bot]


async def test_a_report_is_alerted_without_content_then_triaged_answered_and_closed(
    emu: Emulator, team: Team
) -> None:
    activist = emu.user("Ana")
    await start_report(activist)
    case = await finish_report(activist)

    await team.alice.world.wait_for(lambda: any(case in t for t in bot_texts(team.alice)))
    alert = next(t for t in bot_texts(team.alice) if case in t)
    assert "critical" in alert and "country: Colombia" in alert
    assert "CANARY" not in alert, "a Telegram group gets no answers"

    assert case in await says(team.alice, "/cases@hrd_test_bot")
    assert "acknowledged" in await says(team.alice, f"/ack {case}")
    assert "assigned" in await says(team.alice, f"/assign@hrd_test_bot {case} Bruno")
    assert "sealed" in await says(team.bruno, f"/note {case} CANARY-NOTE checked")
    queued, outcome = await reply_outcome(team.bruno, f"/reply {case} CANARY-REPLY we are on it")
    assert "queued" in queued and outcome == f"Reply to the reporter of {case}: delivered."
    relayed = (await activist.answer(count=1)).last
    assert relayed.text == "Protection team: CANARY-REPLY we are on it"

    async def relay_expires() -> bool:
        rows = dict(await trail_rows(team.bot.app, activist.chat.id))
        return rows.get(str(relayed.message_id)) is not None

    await eventually(relay_expires)
    escalated = await says(team.alice, f"/escalate {case}")
    assert escalated.endswith("told: on-call chat 1 (telegram)."), "this room is on call"
    assert "closed" in await says(team.alice, f"/close {case} relocated")
    assert "cannot be changed" in await says(team.alice, f"/reply {case} again")

    for text in bot_texts(team.alice):
        assert "CANARY" not in text and "colleagues" not in text, text
    bundle = await team.bot.app.casework.store.export_bundle(case)
    opened = {item.field: item.data for item in open_bundle(bundle, team.keys["Bruno"]).items}
    assert opened["answer.what"] == WHAT.encode()
    assert opened["answer.where"] == b"CO"
    assert opened["note"] == b"CANARY-NOTE checked"
    assert opened["reply"] == b"CANARY-REPLY we are on it"
    assert opened["outcome"] == b"relocated"


async def test_staff_commands_from_outsiders_or_outside_the_room_are_refused(
    emu: Emulator, team: Team
) -> None:
    activist = emu.user("Ana")
    await start_report(activist)
    case = await finish_report(activist)
    await team.alice.world.wait_for(lambda: any(case in t for t in bot_texts(team.alice)))
    seen_by_activist = len(activist.seen())
    assert "Only the protection team" in await says(
        team.mallory, f"/reply {case} send me your location"
    )
    assert "Only the protection team" in await says(team.mallory, "/cases")
    alice_alone = SimUser(emu.world, team.alice.person, emu.world.private_chat(team.alice.person))
    assert "only in the protection team's room" in (await alice_alone.ask(f"/ack {case}")).text
    assert len(activist.seen()) == seen_by_activist, "nothing was relayed"
    assert "acknowledged" in await says(team.alice, f"/ack {case}")


async def test_a_photo_with_the_first_answer_is_sealed_with_the_report(
    emu: Emulator, team: Team
) -> None:
    activist = emu.user("Ana")
    await start_report(activist)
    photo = await activist.send_photo(PHOTO, caption="the car")
    saved = await activist.answer()
    assert "The file is saved and locked." in saved.text
    assert "Question 1 of 7" in saved.text, "the question is still open for words"
    case = await finish_report(activist)

    full = photo.extra["photo"][-1]["file_id"]
    assert [c.params["file_id"] for c in emu.calls("getFile")] == [full], "the largest size"
    bundle = await team.bot.app.casework.store.export_bundle(case)
    opened = {item.field: item.data for item in open_bundle(bundle, team.keys["Alice"]).items}
    assert opened["attachment.0"] == b"image/jpeg\nphoto.jpg\n" + PHOTO
    alert = next(t for t in bot_texts(team.alice) if case in t)
    assert "Files: photo (16 KB)" in alert and "photo.jpg" not in alert

    async def user_photo_on_record() -> bool:
        rows = await trail_rows(team.bot.app, activist.chat.id)
        return str(photo.message_id) in [message_id for message_id, _ in rows]

    await eventually(user_photo_on_record)


async def test_the_group_alert_names_each_file_by_kind_and_size_never_by_name(
    emu: Emulator, team: Team
) -> None:
    activist = emu.user("Ana")
    await start_report(activist)
    await activist.send_photo(PHOTO, caption="CANARY-CAPTION the car")
    assert "saved and locked" in (await activist.answer()).text
    summons = b"%PDF-1.7 " + b"0" * 3000
    await activist.send_document(summons, "Ana Perez summons.pdf", caption="CANARY-CAPTION")
    assert "saved and locked" in (await activist.answer()).text
    case = await finish_report(activist)

    await team.alice.world.wait_for(lambda: any(case in t for t in bot_texts(team.alice)))
    alert = next(t for t in bot_texts(team.alice) if case in t)
    assert "Files: photo (16 KB), PDF document (2.9 KB)" in alert
    for name in ("Ana Perez", "summons", ".pdf", ".jpg", "CANARY"):
        assert name not in alert, name
    assert [t for t in bot_texts(team.alice) if "CANARY" in t or "summons" in t] == []
    sent_files = [c for c in emu.world.calls if c.method.lower().startswith("send")]
    assert {c.method for c in sent_files} == {"sendMessage"}, "no file goes to a group"


async def test_an_oversized_document_is_refused_without_being_downloaded(
    emu: Emulator, tg: RunningBot
) -> None:
    activist = emu.user("Ana")
    await onboard(activist)
    await activist.send_document(b"%PDF-1.7 notes", "notes.pdf")
    assert "only be sent with the first question" in (await activist.answer()).text
    await tg.app.casework.store.set_recovery(PrivateKey.generate().public)
    await tap(activist, await activist.ask("/menu"), "Report a risk")
    await activist.choose("Start the report")
    fetched = (len(emu.calls("getFile")), len(emu.world.downloads))
    big = b"%PDF-1.7 " + b"0" * MAX_ATTACHMENT_BYTES
    await activist.send_document(big, "scan.pdf", caption="the summons")
    refused = await activist.answer()
    assert "That file is too big (the limit is 10 MB)" in refused.text
    assert "Question 1 of 7" in refused.text
    assert (len(emu.calls("getFile")), len(emu.world.downloads)) == fetched, "not fetched"
    await activist.send_document(b"%PDF-1.7 summons", "summons.pdf")
    assert "The file is saved and locked." in (await activist.answer()).text
    assert len(emu.world.downloads) == fetched[1] + 1
