"""Telegram updates that must not stop the bot: shapes the library cannot read, the same
update twice, a forwarded command. Each unreadable update is skipped once (the offset
moves past it), counted, and logged as its kind only; the rest of its batch is handled."""

from __future__ import annotations

import asyncio
import copy
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from telegram import Update

from bot.logs import redact
from bot.transports.telegram import WebhookConfig
from bot.transports.telegram.dispatch import GROUP_BACKLOG
from bot.transports.telegram.reading import kind_of
from tests.telegram_emulator import Emulator, SimUser
from tests.telegram_emulator.harness import RunningBot, eventually, onboard, running_bot
from tests.telegram_emulator.poison import MISTYPED, REJECTED, Shape
from tests.telegram_emulator.world import JSON, Person

CANARY = "Canary-Zq7Xw"
NAME = "Namecanary-Qp4"
CANARY_ID = 731_337_424_242
SKIPPED = "skipped an unreadable update"
HELP = "delete everything the bot keeps about you"
SECRET = "s3cret-token-for-tests_0123"
GOOD: JSON = {
    "update_id": 1,
    "message": {
        "message_id": 1,
        "from": {"id": CANARY_ID, "is_bot": False, "first_name": CANARY, "language_code": "en"},
        "chat": {"id": CANARY_ID, "type": "private", "first_name": CANARY},
        "date": 1_760_000_000,
        "text": f"my secret is {CANARY}",
    },
}


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_each_rejected_shape_makes_the_library_raise(name: str) -> None:
    Update.de_json(copy.deepcopy(GOOD), None)
    with pytest.raises(Exception):  # noqa: B017, PT011 - any exception: that is the point
        Update.de_json(REJECTED[name](copy.deepcopy(GOOD)), None)


@pytest.mark.parametrize("name", sorted(MISTYPED))
def test_each_mistyped_shape_is_read_by_the_library(name: str) -> None:
    """Why the bot checks types itself: the library lets these through."""
    assert Update.de_json(MISTYPED[name](copy.deepcopy(GOOD)), None) is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _hook() -> WebhookConfig:
    port = _free_port()
    return WebhookConfig(f"http://127.0.0.1:{port}/telegram/hook", SECRET, port=port)


@pytest.fixture(params=["polling", "webhook"])
async def bot(
    request: pytest.FixtureRequest, emu: Emulator, tmp_path: Path
) -> AsyncIterator[RunningBot]:
    webhook = _hook() if request.param == "webhook" else None
    async with running_bot(emu, tmp_path / "x.db", webhook=webhook) as running:
        yield running


def _canary_person(emu: Emulator) -> SimUser:
    """Someone whose name and id (their chat's id too) are the canary."""
    person = Person(CANARY_ID, NAME, "en")
    return SimUser(emu.world, person, emu.world.private_chat(person))


def _poisoned(emu: Emulator, shapes: dict[str, Shape]) -> list[JSON]:
    canary = _canary_person(emu)
    return [shape(canary.compose(f"{name}: {CANARY}")) for name, shape in shapes.items()]


def _said(record: logging.LogRecord) -> str:
    return record.getMessage() + (record.exc_text or "") + str(record.exc_info or "")


def _assert_no_canary(caplog: pytest.LogCaptureFixture) -> None:
    """No text of a skipped update reaches any logger, even unredacted. Its sender's
    name and id do (the library logs the answer they get at DEBUG, as for everyone), so
    they are checked in what the bot's log redaction lets out."""
    for record in caplog.records:
        assert CANARY not in _said(record), record.name
        redacted = _said(redact(copy.copy(record)))
        assert NAME not in redacted and str(CANARY_ID) not in redacted, record.name


async def _all_confirmed(emu: Emulator) -> None:
    """Nothing left pending: the bad updates were confirmed (polling) or accepted (webhook)."""

    async def empty() -> bool:
        return not emu.world.updates

    await eventually(empty)


async def test_a_batch_mixing_good_and_unreadable_updates_is_handled_but_for_the_bad_ones(
    emu: Emulator, bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ana, bea = emu.user("Ana"), emu.user("Bea")
    await onboard(ana)
    shapes = {**REJECTED, **MISTYPED}
    del shapes["update id as text"]  # cannot be confirmed: see the test after the next
    bad = _poisoned(emu, shapes)
    polls_before = len(emu.calls("getUpdates"))
    async with emu.batch():
        await ana.send("/help")
        for update in bad:
            await emu.inject(update)
        await bea.send("/start")
    assert "/forget" in (await ana.answer()).text
    assert "English" in (await bea.answer()).buttons
    await _all_confirmed(emu)
    skipped = [r for r in caplog.records if SKIPPED in r.getMessage()]
    assert len(skipped) == len(bad), "each bad update logged once"
    assert sum(bot.transport.skipped_updates.values()) == len(bad)
    assert bot.transport.skipped_updates["callback_query"] == 2
    if emu.server.webhook is None:
        assert len(emu.calls("getUpdates")) - polls_before < 10, "no fetch loop"
    else:
        assert all(status == 200 for _, status in emu.deliveries)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    _assert_no_canary(caplog)
    assert "How can I help" in (await ana.ask("/menu")).text


async def test_the_same_update_delivered_twice_is_handled_once(
    emu: Emulator, bot: RunningBot
) -> None:
    ana = emu.user()
    await onboard(ana)
    update = ana.compose("/help")
    await emu.inject(update)
    assert "/forget" in (await ana.answer()).text
    await emu.redeliver(update["update_id"])
    await _all_confirmed(emu)
    assert "How can I help" in (await ana.ask("/menu")).text
    assert len(_helps(ana)) == 1
    assert bot.transport.duplicate_updates == 1


def _helps(user: SimUser) -> list[str]:
    return [m.text for m in user.from_bot() if m.text and HELP in m.text]


async def test_an_update_delivered_again_after_a_restart_is_not_handled_again(
    emu: Emulator, tmp_path: Path
) -> None:
    ana = emu.user()
    async with running_bot(emu, tmp_path / "x.db"):
        await onboard(ana)
        update = ana.compose("/help")
        await emu.inject(update)
        await ana.answer()
    async with running_bot(emu, tmp_path / "x.db") as restarted:
        await emu.redeliver(update["update_id"])
        await _all_confirmed(emu)

        async def counted() -> bool:
            return restarted.transport.duplicate_updates == 1

        await eventually(counted)
        assert "How can I help" in (await ana.ask("/menu")).text
    assert len(_helps(ana)) == 1


async def test_a_bad_update_delivered_again_is_skipped_and_logged_once(
    emu: Emulator, bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hrd_bot")
    ana = emu.user()
    await onboard(ana)
    bad = REJECTED["old server poll"](ana.compose("a poll"))
    await emu.inject(bad)
    await _all_confirmed(emu)
    await emu.redeliver(bad["update_id"])
    await _all_confirmed(emu)
    assert "How can I help" in (await ana.ask("/menu")).text
    assert len([r for r in caplog.records if SKIPPED in r.getMessage()]) == 1
    assert bot.transport.skipped_updates == {"message": 1}


async def test_a_forwarded_command_is_plain_text(emu: Emulator, bot: RunningBot) -> None:
    ana = emu.user()
    await onboard(ana)
    await ana.forward("/forget")
    screen = await ana.answer()
    assert "Delete everything now?" not in screen.text
    assert "Please choose one of the options" in screen.text
    assert "Delete everything now?" in (await ana.ask("/forget")).text


async def test_a_forwarded_command_in_a_group_is_not_for_the_bot(
    emu: Emulator, tg: RunningBot
) -> None:
    ana, bea = emu.group("Team", "Ana", "Bea")
    await ana.forward("/help")
    await bea.send("/help")
    await bea.answer(count=1)
    assert len(bea.from_bot()) == 1, "one answer: to the command typed, not the forwarded one"


async def test_webhook_bodies_that_are_no_update_never_give_a_500(
    emu: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hook = _hook()
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    bodies: list[tuple[bytes, int]] = [
        (f'[{{"update_id": 5, "message": "{CANARY}"}}]'.encode(), 200),
        (f'{{"message": {{"text": "{CANARY}"}}}}'.encode(), 200),
        (b'"just a string"', 200),
        (b"null", 200),
        (f"not json {CANARY}".encode(), 400),
        (b"\xff\xfe" + CANARY.encode(), 400),
        (b"[" * 100_000 + b"]" * 100_000, 400),
        (b'{"update_id": 9007199254740993, "message": {"date": "x"}}', 200),
    ]
    async with running_bot(emu, tmp_path / "x.db", webhook=hook) as running:
        ana = emu.user()
        await onboard(ana)
        async with aiohttp.ClientSession() as http:
            for body, status in bodies:
                async with http.post(hook.url, data=body, headers=headers) as response:
                    assert response.status == status, body[:40]
        assert "How can I help" in (await ana.ask("/menu")).text
        assert sum(running.transport.skipped_updates.values()) == len(bodies)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    _assert_no_canary(caplog)


async def test_a_batch_of_nothing_with_an_id_does_not_spin(
    emu: Emulator, tg: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    """Entries without an id cannot be confirmed; the bot waits instead of asking at once."""
    caplog.set_level(logging.INFO, logger="hrd_bot")
    ana = emu.user()
    await onboard(ana)
    polls_before = len(emu.calls("getUpdates"))
    await emu.inject(MISTYPED["update id as text"](_canary_person(emu).compose(CANARY)))
    await emu.inject({"message": {"text": CANARY}})
    await asyncio.sleep(2.5)
    assert len(emu.calls("getUpdates")) - polls_before <= 5
    assert len([r for r in caplog.records if SKIPPED in r.getMessage()]) == 2
    assert tg.transport.skipped_updates == {"message": 2}
    emu.world.updates.clear()
    assert "How can I help" in (await ana.ask("/menu")).text
    _assert_no_canary(caplog)


@pytest.mark.parametrize("name", sorted(REJECTED))
async def test_a_library_parse_failure_leaks_nothing_into_any_log(
    name: str, emu: Emulator, bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    """The canary is the text, the first name and the user's and chat's id of an update
    the library raises on; every logger is captured, DEBUG included."""
    caplog.set_level(logging.DEBUG)
    ana = emu.user()
    await onboard(ana)
    bad = REJECTED[name](_canary_person(emu).compose(f"my secret is {CANARY}"))
    assert CANARY in str(bad) and NAME in str(bad) and str(CANARY_ID) in str(bad)
    await emu.inject(bad)
    assert "How can I help" in (await ana.ask("/menu")).text
    await _all_confirmed(emu)
    assert bot.transport.skipped_updates == {kind_of(bad): 1}
    library_debug = [r for r in caplog.records if r.name.startswith("telegram.")]
    assert any(r.levelno == logging.DEBUG for r in library_debug), "DEBUG was captured"
    _assert_no_canary(caplog)


async def test_a_flooded_group_cannot_stall_private_chats(
    emu: Emulator, tg: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    """Telegram allows 20 messages a minute in a group: 300 commands there would hold
    every concurrent slot for a quarter of an hour if they all waited for their turn."""
    caplog.set_level(logging.WARNING, logger="hrd_bot")
    members = emu.group("Crowd", *[f"m{i}" for i in range(300)])
    async with emu.batch():
        for member in members:
            await member.send("/help@hrd_test_bot")
    ana = emu.user()
    await ana.send("/start")
    assert "English" in (await ana.answer(within=5)).buttons

    def dropped() -> int:
        return len([r for r in caplog.records if "too many updates waiting" in r.getMessage()])

    async def each_answered_or_dropped() -> bool:
        return len(members[0].from_bot()) + dropped() == len(members)

    await eventually(each_answered_or_dropped)
    assert dropped() > len(members) - 3 * GROUP_BACKLOG


async def test_the_sender_of_an_unreadable_private_message_is_answered(
    emu: Emulator, bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    """Skipped for the library, not for the person: they are asked for text, and nothing
    they sent (beyond who they are) reaches the bot."""
    caplog.set_level(logging.DEBUG)
    canary = _canary_person(emu)
    await onboard(canary)
    await emu.inject(REJECTED["old server poll"](canary.compose(f"poll: {CANARY}")))
    assert "I can only read text messages" in (await canary.answer()).text
    assert bot.transport.skipped_updates == {"message": 1}
    _assert_no_canary(caplog)


async def test_an_unreadable_update_from_a_group_gets_no_answer(
    emu: Emulator, bot: RunningBot
) -> None:
    ana = emu.user()
    await onboard(ana)
    update = ana.compose("hello")
    update["message"]["chat"] = {"id": -100_123, "type": "supergroup", "title": "x"}
    await emu.inject(REJECTED["old server poll"](update))
    await _all_confirmed(emu)
    assert "How can I help" in (await ana.ask("/menu")).text
    assert not [m for m in ana.from_bot() if m.text and "only read text" in m.text]
