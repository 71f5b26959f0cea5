"""Restarts, bursts, replays and unreadable events: the bot keeps its device and its word."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os

from bot.model import ChatRef, Reply
from bot.transports.matrix.store import STORE_FILE, EncryptedStore
from tests.matrix.activist import Activist
from tests.matrix.fixtures import PASSPHRASE, TUNING, Bot, unique
from tests.matrix.homeserver import Synapse
from tests.matrix.test_matrix_flows import homeserver_rows


def bot_store(bot: Bot) -> EncryptedStore:
    assert bot.starts, "the bot never started"
    store_dir = str(bot.data / "matrix")
    return EncryptedStore(bot.account.user_id, bot.starts[-1], store_dir, PASSPHRASE, STORE_FILE)


def bot_devices(synapse: Synapse, bot: Bot) -> list[tuple[str, ...]]:
    sql = "SELECT device_id FROM devices WHERE user_id = ? AND NOT hidden"
    return homeserver_rows(synapse, sql, bot.account.user_id)


async def test_restart_keeps_the_device_and_loses_no_message(
    bot: Bot, activist: Activist, synapse: Synapse
) -> None:
    chat = await activist.open_dm()
    await chat.pick("English")
    devices = bot_devices(synapse, bot)
    await bot.stop()
    for _ in range(6):
        await activist.send(chat.room_id, "/help")
    await bot.start(dataclasses.replace(TUNING, timeline_limit=2))
    replies = [await chat.reply() for _ in range(6)]
    assert all("/forget" in reply for reply in replies)
    assert bot.starts[0] == bot.starts[1], "a restart must not create a new device"
    assert bot_devices(synapse, bot) == devices
    assert bot.transport is not None
    assert bot.transport.stats()["gaps"] >= 1, "the truncated timeline was fetched"
    assert "Stopped." in await chat.say("/cancel")


async def test_after_a_restart_the_bot_still_writes_to_a_quiet_room(
    bot: Bot, activist: Activist
) -> None:
    chat = await activist.open_dm()
    await chat.pick("English")
    await bot.restart()
    assert bot.transport is not None
    relayed = "A reply from the protection team."
    await bot.transport.send(ChatRef("matrix", chat.room_id), Reply(relayed, sensitive=True))
    assert await chat.reply() == relayed


async def test_a_replayed_batch_is_not_answered_twice(bot: Bot, activist: Activist) -> None:
    chat = await activist.open_dm()
    await chat.pick("English")
    await bot.stop()
    store = bot_store(bot)
    before = await store.sync_token()
    await store.close()
    await bot.start()
    assert "/forget" in await chat.say("/help")
    await bot.stop()
    store = bot_store(bot)
    assert before is not None
    await store.commit_sync_token(before)  # as if the bot died before saving its position
    await store.close()
    await bot.start()
    assert "Stopped." in await chat.say("/cancel"), "the /help was answered a second time"


async def test_an_access_token_login_keeps_the_token_device(
    bot: Bot, activist: Activist, synapse: Synapse
) -> None:
    await bot.stop()
    token_bot = Bot(synapse, synapse.register(unique("bot")), bot.data.parent / "t", bot.library)
    token_bot.with_token = True
    await token_bot.start()
    try:
        activist.bot_id = token_bot.account.user_id
        chat = await activist.open_dm()
        await token_bot.restart()
        assert token_bot.starts == [token_bot.account.device_id] * 2
        assert "Language set to English." in await chat.pick("English")
    finally:
        await token_bot.stop()


def garbage_megolm(activist: Activist) -> dict[str, str]:
    """Well-formed Megolm content whose session the bot can never have."""
    olm = activist.client.olm
    assert olm is not None
    return {
        "algorithm": "m.megolm.v1.aes-sha2",
        "sender_key": olm.account.identity_keys["curve25519"],
        "device_id": activist.account.device_id,
        "session_id": base64.b64encode(os.urandom(32)).decode().rstrip("="),
        "ciphertext": base64.b64encode(os.urandom(96)).decode().rstrip("="),
    }


async def test_an_undecryptable_message_gets_a_hint(bot: Bot, activist: Activist) -> None:
    chat = await activist.open_dm()
    await chat.pick("English")
    await activist.send_raw(chat.room_id, "m.room.encrypted", garbage_megolm(activist))
    hint = await chat.reply()
    assert "could not decrypt your last message" in hint
    assert bot.transport is not None
    assert bot.transport.stats()["undecryptable"] == 1
    assert "/forget" in await chat.say("/help"), "the bot keeps answering"


async def test_a_burst_is_answered_in_full(bot: Bot, activist: Activist) -> None:
    chat = await activist.open_dm()
    await chat.pick("English")
    count = 25
    await asyncio.gather(*(activist.send(chat.room_id, "/help") for _ in range(count)))
    replies = [await chat.reply() for _ in range(count)]
    assert all("/forget" in reply for reply in replies)


def not_an_object(activist: Activist, room_id: str) -> dict[str, str]:
    """Megolm content the bot can decrypt, around the payload `5`.

    The sender's own copy of the session is dropped first: its nio would raise on the
    payload too, and the test needs this client to keep syncing.
    """
    olm = activist.client.olm
    assert olm is not None
    session = olm.outbound_group_sessions[room_id]
    curve = olm.account.identity_keys["curve25519"]
    del olm.inbound_group_store._entries[room_id][curve][session.id]
    return {
        "algorithm": "m.megolm.v1.aes-sha2",
        "sender_key": curve,
        "device_id": activist.account.device_id,
        "session_id": session.id,
        "ciphertext": session.encrypt("5"),
    }


async def test_malformed_events_are_skipped_and_the_next_message_answered(
    bot: Bot, activist: Activist
) -> None:
    """A plain and an encrypted message with wrong-typed fields, an unknown type, and a
    Megolm payload that is not a JSON object (nio itself raises on it)."""
    chat = await activist.open_dm()
    await chat.pick("English")
    plain = {"msgtype": "m.image", "body": "x.png", "url": 5}  # Synapse checks only the body
    await activist.send_raw(chat.room_id, "m.room.message", plain)
    wrong = {"msgtype": "m.text", "body": 5}  # Synapse cannot see inside
    sent = await activist.client.room_send(
        chat.room_id, "m.room.message", wrong, ignore_unverified_devices=True
    )
    assert hasattr(sent, "event_id"), sent
    await activist.send_raw(chat.room_id, "x.custom.event", {"body": 5})  # not for the bot
    await activist.send_raw(chat.room_id, "m.room.encrypted", not_an_object(activist, chat.room_id))
    assert "/forget" in await chat.say("/help"), "the good message after them is answered"
    assert bot.transport is not None
    await chat.until(lambda: bot.transport is not None and bot.transport.stats()["unreadable"] >= 3)
    assert bot.transport.stats()["unreadable"] == 3
    assert bot.transport.stats()["unapplied"] >= 1, "nio raised on the payload inside its sync"
    assert "/forget" in await chat.say("/help"), "the bot keeps answering"
