"""What staff are told matches what arrived, on the Bot API emulator, under faults.

Two staff groups (Alice's and Bruno's); the reporter is Ana. Faults are aimed at one
chat's `sendMessage` so the staff room's own answers are not disturbed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.config import Settings
from bot.crypto.keys import PrivateKey
from bot.delivery import RetryPolicy
from bot.model import Reply
from tests.telegram_emulator import Emulator, SimUser
from tests.telegram_emulator.harness import RunningBot, chat_of, running_bot
from tests.test_telegram_reports import bot_texts, finish_report, reply_outcome, start_report


@dataclass
class Desk:
    bot: RunningBot
    alice: SimUser
    bruno: SimUser


@pytest.fixture
async def desk(emu: Emulator, tmp_path: Path) -> AsyncIterator[Desk]:
    (alice,) = emu.group("Team A", "Alice", supergroup=True)
    (bruno,) = emu.group("Team B", "Bruno", supergroup=True)
    rooms = f"telegram:{alice.chat.id},telegram:{bruno.chat.id}"
    settings = Settings.from_env(
        {"HRD_BOT_DATA_DIR": str(tmp_path), "HRD_BOT_STAFF_ROOMS": rooms}
        | {"HRD_BOT_TELEGRAM_STAFF_ACTIONS": "all"}  # /reply from a Telegram group
    )
    async with running_bot(
        emu,
        tmp_path / "d.db",
        staff_rooms=settings.chats("HRD_BOT_STAFF_ROOMS"),
        staff_without_device=settings.telegram_staff_actions,
    ) as running:
        store = running.app.casework.store
        for member in (alice, bruno):
            identity = running.app.pseudonyms.user("telegram", str(member.person.id)).key
            await store.add_staff(
                member.person.first_name, [identity], PrivateKey.generate().public
            )
        await store.set_recovery(PrivateKey.generate().public)
        yield Desk(running, alice, bruno)


def _to(emu: Emulator, user: SimUser) -> list[int]:
    """Statuses of every sendMessage to the user's chat (0: the answer was lost)."""
    return [c.status for c in emu.calls("sendMessage") if c.params.get("chat_id") == user.chat.id]


async def _history(desk: Desk, case: str) -> list[str]:
    entries = await desk.bot.app.casework.store.audit(case)
    return [entry.action for entry in entries]


async def _reported(emu: Emulator, desk: Desk) -> tuple[SimUser, str]:
    ana = emu.user("Ana")
    await start_report(ana)
    case = await finish_report(ana)
    await desk.alice.world.wait_for(lambda: any(case in t for t in bot_texts(desk.alice)))
    await desk.bot.app.outbox.drain()
    return ana, case


async def test_a_reply_to_a_reporter_who_blocked_the_bot_says_not_delivered_and_why(
    emu: Emulator, desk: Desk
) -> None:
    ana, case = await _reported(emu, desk)
    ana.block()
    queued, said = await reply_outcome(desk.alice, f"/reply {case} Are you safe tonight?")
    assert "queued" in queued
    assert said.startswith(f"Reply to the reporter of {case}: not delivered: the person blocked")
    assert _to(emu, ana)[-1] == 403
    assert "case.reply.failed" in await _history(desk, case)
    assert "case.reply.delivered" not in await _history(desk, case)


async def test_five_server_errors_in_a_row_then_the_reply_arrives_once(
    emu: Emulator, desk: Desk
) -> None:
    ana, case = await _reported(emu, desk)
    before = len(ana.from_bot())
    emu.fail("sendMessage", 502, times=5, chat=ana.chat.id)
    _, said = await reply_outcome(desk.alice, f"/reply {case} CANARY-5XX hello")
    assert said == f"Reply to the reporter of {case}: delivered."
    assert _to(emu, ana)[-6:] == [502] * 5 + [200]
    assert [m.text for m in ana.from_bot()[before:]] == ["Protection team: CANARY-5XX hello"]
    assert "case.reply.delivered" in await _history(desk, case)


async def test_a_429_with_retry_after_is_waited_out_and_the_reply_arrives_once(
    emu: Emulator, desk: Desk
) -> None:
    ana, case = await _reported(emu, desk)
    before = len(ana.from_bot())
    emu.fail("sendMessage", 429, retry_after=1, times=4, chat=ana.chat.id)
    _, said = await reply_outcome(desk.alice, f"/reply {case} CANARY-429 hello")
    assert said == f"Reply to the reporter of {case}: delivered."
    assert [m.text for m in ana.from_bot()[before:]] == ["Protection team: CANARY-429 hello"]


async def test_a_lost_answer_is_never_resent_and_staff_are_told_it_may_have_arrived(
    emu: Emulator, desk: Desk
) -> None:
    """Telegram cannot say whether a send whose answer was lost arrived: resending could
    double it, so the outbox reports it uncertain instead of delivered or resent."""
    ana, case = await _reported(emu, desk)
    before = len(ana.from_bot())
    emu.lose_answer("sendMessage", chat=ana.chat.id)
    _, said = await reply_outcome(desk.alice, f"/reply {case} CANARY-LOST hello")
    assert "not delivered: the platform did not confirm it; it may have arrived" in said
    assert [m.text for m in ana.from_bot()[before:]] == ["Protection team: CANARY-LOST hello"]
    assert _to(emu, ana)[-1] == 0, "one call, whose answer was lost; no second"


async def test_a_staff_group_refusing_then_recovering_gets_the_alert_once_and_the_other_is_told(
    emu: Emulator, desk: Desk
) -> None:
    emu.fail("sendMessage", 403, times=3, chat=desk.alice.chat.id)
    ana = emu.user("Ana")
    await start_report(ana)
    case = await finish_report(ana)
    await desk.bot.app.outbox.drain()
    alice_saw = [t for t in bot_texts(desk.alice) if case in t]
    bruno_saw = bot_texts(desk.bruno)
    assert len(alice_saw) == 1, "the alert arrives once, after the room recovers"
    assert len([t for t in bruno_saw if case in t and "New case" in t]) == 1
    down = [t for t in bruno_saw if "cannot be reached" in t]
    assert down == [
        "Staff room 1 (telegram) cannot be reached: the bot is no longer in that room or "
        "group. Alerts still go to the other rooms; the bot keeps trying that room for 1 h."
    ]
    assert "Staff room 1 (telegram) can be reached again." in bruno_saw


async def test_a_bot_api_outage_of_a_minute_delays_a_message_and_loses_or_doubles_nothing(
    emu: Emulator, desk: Desk
) -> None:
    ana, _ = await _reported(emu, desk)
    before = len(ana.from_bot())
    app = desk.bot.app
    app.outbox.policy = RetryPolicy(window=600.0, first=0.5, cap=5.0, attempt=10.0)
    await emu.outage()
    outcome = await app.deliver(chat_of(ana), Reply("CANARY-OUTAGE check-in"), kind="checkin")
    await asyncio.sleep(60)
    assert not outcome.done(), "still being tried"
    await emu.restore()
    assert (await asyncio.wait_for(outcome, 30)).delivered
    assert [m.text for m in ana.from_bot()[before:]] == ["CANARY-OUTAGE check-in"]
