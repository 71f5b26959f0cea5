"""SOS over Telegram, end to end (python-telegram-bot → HTTP → emulator, real SQLCipher):
the alert, a location message, and the alert's place ahead of a flood from the same
person and from others, in the outbox lane and in the transport's rate limiter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.crypto.bundle import open_bundle
from bot.crypto.keys import PrivateKey
from bot.delivery.outbox import Outgoing
from bot.model import ChatRef, Reply
from bot.transports.telegram.priority import URGENT, PriorityLimiter
from tests.telegram_emulator import Emulator, Message, SimUser
from tests.telegram_emulator.harness import RunningBot, onboard, running_bot

WORDS = "CANARY-SOS they are outside"
QUEUED = 30
"""Notices queued for the staff group before the SOS: more than Telegram's 20 a minute
for one group, so most of them wait in the rate limiter and the lane."""


@dataclass
class Team:
    bot: RunningBot
    alice: SimUser
    room: ChatRef
    key: PrivateKey


@pytest.fixture
async def team(emu: Emulator, tmp_path: Path) -> AsyncIterator[Team]:
    (alice,) = emu.group("Protection team", "Alice", supergroup=True)
    room = ChatRef("telegram", str(alice.chat.id), private=False)
    async with running_bot(emu, tmp_path / "x.db", staff_rooms=(room,)) as running:
        key = PrivateKey.generate()
        identity = running.app.pseudonyms.user("telegram", str(alice.person.id)).key
        await running.app.casework.store.add_staff("Alice", [identity], key.public)
        yield Team(running, alice, room, key)


def in_room(team: Team) -> list[str]:
    world = team.alice.world
    return [m.text or "" for m in world.messages[team.alice.chat.id] if m.sender is world.bot]


def _case(text: str) -> str:
    return next(w.strip("().,") for w in text.split() if w.strip("(").startswith("HRD-"))


async def test_sos_with_a_location_reaches_the_staff_group_without_its_value(
    emu: Emulator, team: Team
) -> None:
    ana = emu.user("Ana")
    menu = await onboard(ana)
    assert menu.buttons[0] == "I am in danger now"
    confirm = await ana.choose("I am in danger now")
    assert "Send an urgent alert" in confirm.text
    raised = await ana.choose("Yes, alert the team now")
    case = _case(raised.text)
    assert f"The protection team has your alert now (case {case})" in raised.text
    assert "send your location" in raised.text
    assert any(f"SOS · new case {case}" in t for t in in_room(team))

    await ana.send_location(4.6097, -74.0817, 30)
    located = await ana.answer()
    assert "Your location is sealed, and the team has been told it came." in located.text
    await ana.send(WORDS)
    assert "Your message is sealed" in (await ana.answer()).text

    room = "\n".join(in_room(team))
    assert f"SOS {case}: the reporter shared a location" in room
    assert f"SOS {case}: the reporter added a message" in room
    assert "4.6097" not in room and "CANARY" not in room, "a Telegram group gets no content"
    bundle = await team.bot.app.casework.store.export_bundle(case)
    opened = {i.field: i.data for i in open_bundle(bundle, team.key).items}
    assert opened["sos.location"] == b"geo:4.609700,-74.081700;u=30"
    assert opened["sos.message"] == WORDS.encode()


async def test_sos_is_delivered_first_under_a_flood_from_the_same_person_and_others(
    emu: Emulator, team: Team
) -> None:
    app = team.bot.app
    ana, others = emu.user("Ana"), [emu.user(f"Other{i}") for i in range(5)]
    for person in (ana, *others):
        await onboard(person)
    notices = [Outgoing(team.room, Reply(f"notice {i}"), "notice") for i in range(QUEUED)]
    await app.outbox.post_many(notices)
    await asyncio.gather(*(p.send(f"flood {i}") for p in (ana, *others) for i in range(40)))
    await ana.send("/sos")

    def confirm_screen() -> Message | None:
        shown = [m for m in ana.from_bot() if "Send an urgent alert" in (m.text or "")]
        return shown[-1] if shown else None

    await emu.world.wait_for(lambda: confirm_screen() is not None, within=60)
    screen = confirm_screen()
    assert screen is not None
    before = sum(t.startswith("notice ") for t in in_room(team))
    assert before < QUEUED, "the staff lane is still busy when the SOS is confirmed"
    await ana.press("Yes, alert the team now", screen)
    await emu.world.wait_for(lambda: any("SOS · new case" in t for t in in_room(team)), within=30)

    texts = in_room(team)
    at = next(i for i, t in enumerate(texts) if "SOS · new case" in t)
    ahead = sum(t.startswith("notice ") for t in texts[:at])
    assert ahead <= before + 1, "only the notice in flight went before the SOS"
    assert ahead < QUEUED, "notices queued before the SOS were still waiting behind it"
    told = await ana.answer()
    assert "has your alert now" in told.text or "keeps trying" in told.text


async def test_an_urgent_send_skips_the_rate_limiters_queue() -> None:
    """One send a second: normal sends wait their turn, an urgent one goes at once."""
    limiter = PriorityLimiter(overall_max_rate=1, max_retries=0)
    await limiter.initialize()
    order: list[str] = []

    def send(name: str) -> Callable[[], Coroutine[Any, Any, bool]]:
        async def call() -> bool:
            order.append(name)
            return True

        return call

    def process(name: str, urgent: bool) -> asyncio.Task[object]:
        data = {"chat_id": 5}
        limits = URGENT if urgent else None
        work = limiter.process_request(send(name), (), {}, "sendMessage", data, limits)
        return asyncio.create_task(work)

    waiting = [process(f"normal {i}", urgent=False) for i in range(4)]
    await asyncio.sleep(0.1)
    await process("sos", urgent=True)
    assert order == ["normal 0", "sos"], "the SOS did not wait for the queued sends"
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    await limiter.shutdown()
