"""Phone-seizure protection: sensitive replies expire, /forget wipes the chat, both survive a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.telegram_emulator import Emulator, Message, SimUser
from tests.telegram_emulator.harness import (
    RunningBot,
    eventually,
    onboard,
    running_bot,
    trail_rows,
)

SECOND = timedelta(seconds=1)
FAST = timedelta(seconds=0.1)


@pytest.fixture
async def short_ttl(emu: Emulator, tmp_path: Path) -> AsyncIterator[RunningBot]:
    async with running_bot(
        emu, tmp_path / "x.db", sensitive_ttl=SECOND, sweep_interval=FAST
    ) as running:
        yield running


async def _contacts(user: SimUser) -> Message:
    """Open the contact list: a sensitive screen."""
    await user.choose("People who can help")
    await user.choose("Digital security")
    return (await user.choose("Anywhere / prefer not to say")).last


async def test_a_sensitive_reply_is_deleted_after_its_ttl(
    emu: Emulator, short_ttl: RunningBot
) -> None:
    ana = emu.user()
    menu = (await onboard(ana)).last
    contacts = await _contacts(ana)
    assert contacts in ana.seen()
    await emu.world.wait_for(lambda: contacts.deleted, within=5)
    assert menu in ana.seen(), "what is not sensitive stays"

    async def row_dropped() -> bool:
        rows = await trail_rows(short_ttl.app, ana.chat.id)
        return str(contacts.message_id) not in [message_id for message_id, _ in rows]

    await eventually(row_dropped)


async def test_a_pending_deletion_survives_a_restart(emu: Emulator, tmp_path: Path) -> None:
    ana = emu.user()
    slow = timedelta(hours=1)
    async with running_bot(emu, tmp_path / "x.db", sensitive_ttl=SECOND, sweep_interval=slow):
        await onboard(ana)
        contacts = await _contacts(ana)
    assert contacts in ana.seen(), "nothing deleted it before the stop"
    await asyncio.sleep(1.1)
    async with running_bot(emu, tmp_path / "x.db", sensitive_ttl=SECOND, sweep_interval=slow):
        await emu.world.wait_for(lambda: contacts.deleted, within=5)


async def test_forget_wipes_the_chat_then_its_own_confirmation_expires(
    emu: Emulator, short_ttl: RunningBot
) -> None:
    ana = emu.user()
    await onboard(ana)
    await ana.choose("Legal information")
    await ana.ask("Kenya")
    await ana.ask("/forget")
    await ana.press("Yes, delete everything")
    done = (await ana.answer(count=1)).last
    await emu.world.wait_for(lambda: ana.seen() == [done], within=5)
    await emu.world.wait_for(lambda: not ana.seen(), within=5)

    async def no_rows() -> bool:
        return await trail_rows(short_ttl.app, ana.chat.id) == []

    await eventually(no_rows)


async def test_what_telegram_no_longer_deletes_is_let_go(
    emu: Emulator, short_ttl: RunningBot
) -> None:
    ana = emu.user()
    await onboard(ana)
    old = ana.seen()
    emu.advance(49 * 3600)
    contacts = await _contacts(ana)
    await emu.world.wait_for(lambda: contacts.deleted, within=5)
    await ana.ask("/forget")
    await ana.press("Yes, delete everything")
    done = (await ana.answer(count=1)).last
    await emu.world.wait_for(lambda: ana.seen() == [*old, done], within=5)

    async def only_the_confirmation_left() -> bool:
        rows = await trail_rows(short_ttl.app, ana.chat.id)
        return [message_id for message_id, _ in rows] in ([str(done.message_id)], [])

    await eventually(only_the_confirmation_left)


async def test_an_expired_message_in_a_blocking_chat_waits_without_calls(
    emu: Emulator, short_ttl: RunningBot
) -> None:
    ana = emu.user()
    await onboard(ana)
    contacts = await _contacts(ana)
    ana.block()
    await emu.world.wait_for(lambda: len(emu.calls("deleteMessage")) == 1, within=5)
    await asyncio.sleep(0.5)
    assert len(emu.calls("deleteMessage")) == 1, "one refusal, then no more calls"
    assert contacts in ana.seen()
    ana.unblock()
    await ana.ask("/menu")
    await emu.world.wait_for(lambda: contacts.deleted, within=5)


async def test_the_sweeper_does_not_retry_what_telegram_refuses(
    emu: Emulator, tmp_path: Path
) -> None:
    ana = emu.user()
    async with running_bot(
        emu, tmp_path / "x.db", sensitive_ttl=SECOND, sweep_interval=FAST
    ) as running:
        await onboard(ana)
        emu.advance(49 * 3600)
        old_contacts = await _contacts(ana)
        emu.advance(49 * 3600)
        await emu.world.wait_for(lambda: bool(emu.calls("deleteMessage")), within=5)
        await asyncio.sleep(0.5)
        assert [c.status for c in emu.calls("deleteMessage")] == [400]
        assert old_contacts in ana.seen()
        rows = await trail_rows(running.app, ana.chat.id)
        assert str(old_contacts.message_id) not in [message_id for message_id, _ in rows]


async def test_a_wipe_that_fails_is_finished_by_the_sweeper(
    emu: Emulator, short_ttl: RunningBot
) -> None:
    ana = emu.user()
    await onboard(ana)
    await ana.ask("/forget")
    emu.fail("deleteMessages", 500, times=3)
    await ana.press("Yes, delete everything")
    await ana.answer(count=1)
    await emu.world.wait_for(lambda: not ana.seen(), within=5)
    assert [c.status for c in emu.calls("deleteMessages")] == [500, 500, 500]
