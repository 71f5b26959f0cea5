"""The case thread over Telegram, end to end: python-telegram-bot → HTTP → emulator.

A reporter sends a report, the team replies from its Telegram group, the reporter
presses "Answer the team" under the reply and answers twice (text, then a photo), asks
where the case stands after `/ack` and after `/close`, and writes once more after the
close. A Telegram group is never end-to-end encrypted: it is told "New message on
HRD-…" each time, never what was said.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import Settings
from bot.crypto.bundle import open_bundle
from bot.crypto.keys import PrivateKey
from tests.telegram_emulator import Emulator, SimUser
from tests.telegram_emulator.harness import RunningBot, running_bot
from tests.test_telegram_reports import (
    bot_texts,
    finish_report,
    reply_outcome,
    says,
    start_report,
    tap,
)

PHOTO = b"\xff\xd8\xff\xe0 the car again " + bytes(range(256)) * 32


@pytest.fixture
async def staff(
    emu: Emulator, tmp_path: Path
) -> AsyncIterator[tuple[RunningBot, SimUser, PrivateKey]]:
    (alice,) = emu.group("Protection team", "Alice", supergroup=True)
    room = f"telegram:{alice.chat.id}"
    settings = Settings.from_env(
        {"HRD_BOT_DATA_DIR": str(tmp_path), "HRD_BOT_STAFF_ROOMS": room}
        | {"HRD_BOT_TELEGRAM_STAFF_ACTIONS": "all"}  # /reply and /close from a Telegram group
    )
    async with running_bot(
        emu,
        tmp_path / "x.db",
        sweep_interval=timedelta(seconds=0.2),
        staff_rooms=settings.chats("HRD_BOT_STAFF_ROOMS"),
        staff_without_device=settings.telegram_staff_actions,
    ) as running:
        store = running.app.casework.store
        identity = running.app.pseudonyms.user("telegram", str(alice.person.id)).key
        key = PrivateKey.generate()
        await store.add_staff("Alice", [identity], key.public)
        await store.set_recovery(PrivateKey.generate().public)
        yield running, alice, key


async def _notices(alice: SimUser, case: str, count: int) -> list[str]:
    def told() -> list[str]:
        return [t for t in bot_texts(alice) if t.startswith(f"New message on {case}")]

    await alice.world.wait_for(lambda: len(told()) >= count)
    return told()


async def test_reporter_and_team_talk_both_ways(
    emu: Emulator, staff: tuple[RunningBot, SimUser, PrivateKey]
) -> None:
    bot, alice, key = staff
    activist = emu.user("Ana")
    await start_report(activist)
    case = await finish_report(activist)

    queued, outcome = await reply_outcome(alice, f"/reply {case} Are you safe tonight?")
    assert "queued" in queued and outcome.endswith("delivered.")
    relayed = await activist.answer(count=1)
    assert relayed.text == "Protection team: Are you safe tonight?"
    assert relayed.buttons == ["Answer the team"]
    thread = await activist.choose("Answer the team")
    assert "Write here to the protection team" in thread.text

    answered = await activist.ask("CANARY-T1 we are at a friend's house")
    assert answered.text.startswith("Delivered to the team, locked.")
    await activist.send_photo(PHOTO, caption="CANARY-T2 the car again")
    sent = await activist.answer()
    assert sent.text.startswith("The file was delivered to the team, locked.")
    told = await _notices(alice, case, 2)
    assert told == [f"New message on {case} from the reporter."] * 2
    assert not [t for t in bot_texts(alice) if "CANARY" in t], "a group never gets the words"

    assert "acknowledged" in await says(alice, f"/ack {case}")
    state = await tap(activist, sent, "Where is my case?")
    assert f"Someone on the protection team is handling your case {case}." in state.text
    assert "Alice" not in state.text

    assert "closed" in await says(alice, f"/close {case} relocated")
    menu = await activist.ask("/menu")
    assert "Message the protection team" not in menu.buttons
    state = await tap(activist, menu, "Where is my case?")
    assert f"Your case {case} is closed" in state.text
    await tap(activist, state, "Message the protection team")
    late = await activist.ask("CANARY-T3 they came back")
    assert late.text.startswith("The case is closed; your message was passed to the team")
    told = await _notices(alice, case, 3)
    assert told[-1].endswith("The case is closed; it was not reopened.")
    assert "reporter.message" in await says(alice, f"/case {case}")

    bundle = await bot.app.casework.store.export_bundle(case)
    assert all(b"CANARY" not in item.sealed for item in bundle.items), "sealed, not readable"
    opened = [(i.field, i.data) for i in open_bundle(bundle, key).items]
    assert [data for field, data in opened if field.startswith("message")] == [
        b"CANARY-T1 we are at a friend's house",
        b"image/jpeg\nphoto.jpg\n" + PHOTO,
        b"CANARY-T2 the car again",
        b"CANARY-T3 they came back",
    ]
