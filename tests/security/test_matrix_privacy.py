"""Unencrypted rooms get a refusal, sensitive replies expire, the bot's disk and logs say nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import ConfigError
from bot.transports.matrix.rooms import Limits
from bot.transports.matrix.store import check_passphrase
from tests.matrix.activist import Activist, Chat
from tests.matrix.fixtures import TUNING, Bot

POINTER = "I only help in a private chat"
OFFER = "invited you to a private, end-to-end encrypted chat"


async def test_an_unencrypted_room_gets_a_refusal_and_an_encrypted_dm(
    bot: Bot, activist: Activist
) -> None:
    plain = await activist.open_dm(encrypted=False)
    assert POINTER in plain.last
    assert OFFER in await plain.reply()
    refused = await plain.say("/help")
    assert POINTER in refused
    assert "/forget" not in refused, "nothing but the pointer in an unencrypted room"
    private = await activist.accept_next_invite()
    assert activist.client.rooms[private.room_id].encrypted
    assert "Which language do you want to use?" in private.last
    assert "How can I help?" in await private.pick("English")


async def test_an_invite_to_a_group_room_is_declined(bot: Bot, activist: Activist) -> None:
    room_id = await activist.create_room(direct=False)
    chat = Chat(activist, room_id)
    await asyncio.wait_for(chat.log.bot_left.wait(), 30)
    assert chat.log.messages.empty()


async def test_a_sensitive_reply_is_redacted_after_its_time_to_live_even_across_a_restart(
    bot: Bot, activist: Activist
) -> None:
    bot.sensitive_ttl = timedelta(seconds=1)
    await bot.restart()
    chat = await activist.open_dm()
    await chat.pick("English")
    menu_event = chat.log.bot_events[-1]
    await chat.pick("People who can help")
    await chat.pick("Legal aid")
    results = await chat.pick("Anywhere")
    assert "Best matches first" in results or "no contact" in results
    sensitive = chat.log.bot_events[-1]
    await bot.stop()
    await asyncio.sleep(1.5)  # the reply expires while the bot is down
    await bot.start()
    await chat.until(lambda: sensitive in chat.log.redacted, wait=20)
    assert menu_event not in chat.log.redacted, "only sensitive replies expire"


async def test_an_invite_flood_from_one_account_is_cut_short(bot: Bot, activist: Activist) -> None:
    strict = dataclasses.replace(TUNING.limits, joins_per_inviter=(0.001, 2))
    await bot.restart(dataclasses.replace(TUNING, limits=strict))
    rooms = [Chat(activist, await activist.create_room()) for _ in range(5)]

    def greeted() -> int:
        return sum(not chat.log.messages.empty() for chat in rooms)

    await rooms[0].until(lambda: greeted() >= 2)
    await asyncio.sleep(1.5)  # room for a wrongly accepted third join to show up
    assert greeted() == 2


def test_default_limits_are_finite() -> None:
    limits = Limits()
    assert limits.joins[0] <= 1 and limits.joins_per_inviter[1] <= 5
    assert limits.offers_per_user[1] == 1


def store_files(bot: Bot) -> list[Path]:
    return [path for path in (bot.data / "matrix").iterdir() if path.is_file()]


async def test_the_key_store_is_encrypted_and_names_nobody(bot: Bot, activist: Activist) -> None:
    chat = await activist.open_dm()
    await chat.pick("English")
    await chat.say("/help")
    assert bot.transport is not None
    await bot.stop()
    secrets = [
        bot.account.user_id,
        bot.account.user_id.split(":")[0][1:],
        activist.account.user_id,
        activist.account.user_id.split(":")[0][1:],
        chat.room_id,
        bot.starts[-1],
        activist.account.device_id,
    ]
    files = [*store_files(bot), bot.data / "x.db"]
    assert files
    for path in files:
        data = path.read_bytes()
        assert not data.startswith(b"SQLite format 3"), path.name
        for secret in secrets:
            assert secret.encode() not in data, f"{path.name} holds an id in clear"
            assert secret not in path.name
    await bot.start()


async def test_a_wrong_store_passphrase_is_refused(bot: Bot) -> None:
    await bot.stop()
    with pytest.raises(ConfigError, match="MATRIX_STORE_PASSPHRASE"):
        check_passphrase(bot.data / "matrix", "not the passphrase")
    await bot.start()


async def test_logs_hold_no_ids_and_no_text(
    bot: Bot, activist: Activist, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hrd_bot")
    chat = await activist.open_dm(encrypted=False)
    await chat.reply()
    private = await activist.accept_next_invite()
    await private.pick("English")
    await private.pick("Legal information")
    await private.say("Kenya")
    await activist.send_raw(private.room_id, "m.room.encrypted", {"algorithm": "x"})
    await private.say("/forget")
    await private.pick("Yes, delete everything")
    await asyncio.wait_for(private.log.bot_left.wait(), 30)
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("hrd_bot")]
    assert any("joined a direct room" in line for line in ours)
    for line in ours:
        for secret in ("@", "!", "$", "Kenya", activist.account.device_id):
            assert secret not in line, line
