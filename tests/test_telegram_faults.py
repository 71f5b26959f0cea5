"""What Telegram throws at the bot: flood limits, server errors, blocks, old or forged buttons, groups."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

import aiohttp
import pytest
from telegram import Bot
from telegram.error import BadRequest

from bot.delivery import Reason, Undelivered
from bot.model import Choice, Reply
from bot.transports.telegram import WebhookConfig
from bot.transports.telegram.render import MAX_TEXT, utf16_len
from tests.telegram_emulator import Emulator, SimUser
from tests.telegram_emulator.harness import RunningBot, chat_of, onboard, running_bot

EARLIER = "That option is from an earlier message."


def _attempts(emu: Emulator, user: SimUser, method: str = "sendMessage") -> list[int]:
    return [c.status for c in emu.calls(method) if c.params.get("chat_id") == user.chat.id]


async def test_a_429_burst_is_waited_out_and_the_message_arrives(
    emu: Emulator, tg: RunningBot
) -> None:
    ana = emu.user()
    await onboard(ana)
    emu.fail("sendMessage", 429, times=2, retry_after=1)
    started = time.monotonic()
    screen = await ana.ask("/help")
    assert "/forget" in screen.text
    assert time.monotonic() - started >= 2, "retry_after was honoured"
    assert _attempts(emu, ana)[-3:] == [429, 429, 200]


async def test_server_errors_are_retried(emu: Emulator, tg: RunningBot) -> None:
    ana = emu.user()
    await onboard(ana)
    emu.fail("sendMessage", 500, times=2)
    assert "/forget" in (await ana.ask("/help")).text
    assert _attempts(emu, ana)[-3:] == [500, 500, 200]
    emu.fail("getUpdates", 502)
    assert "How can I help" in (await ana.ask("/menu")).text


async def test_a_user_who_blocked_the_bot_is_reported_blocked_each_time_without_retries(
    emu: Emulator, tg: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    """Each message the bot starts is tried (the person may have unblocked it) once; a
    403 is final for that message and says why, and is never resent."""
    caplog.set_level(logging.INFO, logger="hrd_bot")
    ana = emu.user("Ana")
    await onboard(ana)
    ana.block()
    sent_before = len(_attempts(emu, ana))
    for _ in range(3):
        with pytest.raises(Undelivered) as refused:
            await tg.transport.send(chat_of(ana), Reply("A message from the team"))
        assert refused.value.reason is Reason.BLOCKED and not refused.value.transient
    assert _attempts(emu, ana)[sent_before:] == [403, 403, 403], "one try each, no retry"
    assert str(ana.chat.id) not in caplog.text and "Ana" not in caplog.text
    ana.unblock()
    assert "How can I help" in (await ana.ask("/menu")).text, "writing again unblocks"


async def test_a_403_on_a_reply_is_not_retried(emu: Emulator, tg: RunningBot) -> None:
    ana = emu.user()
    await onboard(ana)
    emu.fail("sendMessage", 403)
    await ana.send("/help")
    await ana.send("/menu")
    assert "How can I help" in (await ana.answer()).text
    assert _attempts(emu, ana)[-2:] == [403, 200]


async def test_a_button_from_an_earlier_message_is_refused(emu: Emulator, tg: RunningBot) -> None:
    ana = emu.user()
    menu = (await onboard(ana)).last
    await ana.choose("Legal information")
    countries = ana.from_bot()[-1]
    await ana.choose("Colombia")
    query = await ana.press("Help", message=menu)
    stale = await ana.answer()
    assert stale.text.startswith(EARLIER)
    assert "Choose a topic" in stale.text, "the current screen is shown again"
    assert query.answered
    query = await ana.press("Main menu", message=countries)
    again = await ana.answer()
    assert again.text.startswith(EARLIER), "a choice on both screens is still not obeyed"
    assert "Choose a topic" in again.text
    assert query.answered


async def test_a_group_gets_only_a_pointer_even_for_buttons(emu: Emulator, tg: RunningBot) -> None:
    ana, ben = emu.group("Activists", "Ana", "Ben")
    await ana.send("/start")
    pointer = await ana.answer(count=1)
    assert "private chat" in pointer.text
    await ben.send_photo()
    await ben.send("/help@hrd_test_bot")
    assert "private chat" in (await ben.answer(count=1)).text, "the photo got no answer"
    await ana.press_data(pointer.last, "menu:legal")
    assert "private chat" in (await ana.answer(count=1)).text
    in_group = ana.from_bot()
    assert len(in_group) == 3
    assert all(not m.buttons and "private chat" in (m.text or "") for m in in_group)


async def test_a_photo_or_sticker_in_a_private_chat_gets_a_clear_answer(
    emu: Emulator, tg: RunningBot
) -> None:
    ana = emu.user()
    await onboard(ana)
    await ana.send_photo(caption="my passport")
    assert "Files can only be sent with the first question" in (await ana.answer()).text
    await ana.send_sticker()
    assert "I can only read text messages" in (await ana.answer()).text


async def test_a_long_reply_is_split_with_buttons_under_the_last_part(
    emu: Emulator, tg: RunningBot
) -> None:
    ana = emu.user()
    await onboard(ana)
    paragraph = "Ünïcode 🙂 text that goes on. " * 20
    text = "\n\n".join([paragraph] * 30)
    await tg.transport.send(chat_of(ana), Reply(text, (Choice("nav:menu", "Main menu"),)))
    parts = (await ana.answer()).messages
    assert len(parts) > 1
    assert all(utf16_len(m.text or "") <= MAX_TEXT for m in parts)
    assert [bool(m.buttons) for m in parts] == [False] * (len(parts) - 1) + [True]
    assert " ".join(m.text or "" for m in parts).split() == text.split(), "nothing lost"


async def test_the_emulator_refuses_what_telegram_refuses(emu: Emulator) -> None:
    ana = emu.user()
    bot = Bot(emu.token, base_url=emu.api_base_url)
    async with bot:
        with pytest.raises(BadRequest, match="too long"):
            await bot.send_message(ana.chat.id, "x" * (MAX_TEXT + 1))
        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await bot.send_message(424242, "hello")
        message = await bot.send_message(ana.chat.id, "hello")
        emu.advance(49 * 3600)
        with pytest.raises(BadRequest, match="can't be deleted"):
            await bot.delete_message(ana.chat.id, message.message_id)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_webhook_mode_takes_only_requests_with_the_secret(
    emu: Emulator, tmp_path: Path
) -> None:
    port = _free_port()
    hook = WebhookConfig(
        f"http://127.0.0.1:{port}/telegram/hook", "s3cret-token-for-tests_0123", port=port
    )
    async with running_bot(emu, tmp_path / "x.db", webhook=hook):
        ana = emu.user()
        menu = await onboard(ana)
        assert "How can I help" in menu.text
        assert not emu.calls("getUpdates")
        fake = {"update_id": 1, "message": {"message_id": 1, "date": 0, "chat": {"id": 1}}}
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong-token-0123456789"}):
                async with http.post(hook.url, json=fake, headers=headers) as response:
                    assert response.status == 403
        assert "How can I help" in (await ana.ask("/menu")).text


async def test_after_a_restart_old_buttons_are_refused_then_fresh_ones_work(
    emu: Emulator, tmp_path: Path
) -> None:
    ana = emu.user()
    async with running_bot(emu, tmp_path / "x.db"):
        await onboard(ana)
        await ana.choose("Legal information")
    async with running_bot(emu, tmp_path / "x.db"):
        refused = await ana.choose("Colombia")
        assert refused.text.startswith(EARLIER)
        assert "Which country?" in refused.text, "the screen survived; its buttons did not"
        assert "Choose a topic" in (await ana.choose("Colombia")).text
