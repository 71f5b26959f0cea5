"""The Telegram parts behind reports and the staff group, on their own or against the emulator."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from telegram import Bot, Message

from bot.content.library import Library
from bot.conversation.chat_trail import ChatTrail
from bot.conversation.pseudonym import Pseudonymizer
from bot.delivery import Reason, Undelivered
from bot.delivery.outbox import Outbox as DeliveryOutbox
from bot.model import Attachment, ChatRef, Handler, Incoming, Reply
from bot.storage import Database
from bot.transports.telegram.buttons import ButtonBook
from bot.transports.telegram.dispatch import Dispatcher
from bot.transports.telegram.files import Media, describe
from bot.transports.telegram.outbox import Outbox
from bot.transports.telegram.reading import UpdateReader
from bot.transports.telegram.seen import SeenUpdates
from handlers.staff_text import StaffText
from tests.telegram_emulator import Emulator
from tests.telegram_emulator.harness import TEST_KEY, RunningBot

POINTER = "I only help in a private chat"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "u.db", TEST_KEY)
    try:
        yield database
    finally:
        await database.close()


async def test_in_a_group_only_what_is_meant_for_the_bot_is_answered(
    emu: Emulator, tg: RunningBot
) -> None:
    emu.world.privacy = False
    ana, ben = emu.group("Neighbours", "Ana", "Ben")
    await ana.send("hello everyone, see @someone_else")
    await ben.send("/start@other_bot")
    await ben.send_photo()
    await ana.send("/help@hrd_test_bot")
    first = await ana.answer(count=1)
    assert POINTER in first.text
    await ben.send("thanks!", reply_to=first.last)
    assert POINTER in (await ben.answer(count=1)).text
    await ana.send("what does @HRD_test_bot do?")
    assert POINTER in (await ana.answer(count=1)).text
    await asyncio.sleep(0.2)
    assert len(ana.from_bot()) == 3, "chatter, another bot's command and a photo: no answer"
    assert not emu.calls("getFile"), "files in groups are never fetched"


async def test_a_confidential_reply_never_goes_into_a_group(
    emu: Emulator, tg: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hrd_bot")
    (ana,) = emu.group("Staff", "Ana", supergroup=True)
    group = str(ana.chat.id)
    for chat in (ChatRef("telegram", group), ChatRef("telegram", group, private=False)):
        with pytest.raises(Undelivered) as refused:
            await tg.transport.send(chat, Reply("CANARY report answers", sensitive=True))
        assert refused.value.reason is Reason.WITHHELD
    await tg.transport.send(ChatRef("telegram", group, private=False), Reply("New case"))
    assert [m.text for m in (await ana.answer(count=1)).messages] == ["New case"]
    assert [m.text for m in ana.from_bot()] == ["New case"]
    refusals = [r.getMessage() for r in caplog.records if "confidential" in r.getMessage()]
    assert len(refusals) == 2
    assert not any(group in line or "CANARY" in line for line in refusals)


class _Recorder(Outbox):
    """An outbox that only notes what it would send."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(
        self,
        chat: ChatRef,
        reply: Reply,
        received: Sequence[str] = (),
        received_ttl: timedelta | None = None,
    ) -> None:
        await asyncio.sleep(0)
        self.sent.append((chat.address, reply.text))

    async def post(self, chat: ChatRef, reply: Reply) -> tuple[str, ...]:
        await self.send(chat, reply)
        return (str(len(self.sent)),)

    def screen_ttl(self, chat: str) -> timedelta | None:
        """Nothing it sends expires."""


@dataclass
class _Through:
    """The Telegram side of `Transport`, straight onto the dispatcher."""

    dispatcher: Dispatcher
    name: str = "telegram"
    idempotent: bool = False
    connected: bool = True

    async def run(self, handle: Handler) -> None:
        return None

    async def send(self, chat: ChatRef, reply: Reply, key: str = "") -> tuple[str, ...]:
        return await self.dispatcher.send(chat, reply)

    async def stop(self) -> None:
        return None


async def _no_file(media: Media) -> Attachment | None:
    return None


async def _no_answer(msg: Incoming) -> Sequence[Reply]:
    return ()


async def test_messages_started_in_two_chats_turns_for_each_other_do_not_wait_for_ever(
    db: Database, library: Library
) -> None:
    """A reporter sends (alerting the staff group) while staff reply to them: each holds
    its own chat's turn and queues a message for the other's, through the outbox."""
    outbox = _Recorder()
    dispatcher = Dispatcher(
        _no_answer,
        Pseudonymizer(b"p" * 32),
        ButtonBook(b"k" * 32),
        ChatTrail(db, "telegram"),
        outbox,
        fetch=_no_file,
        reader=UpdateReader(),
        seen=SeenUpdates(db),
    )
    inside = {"7": asyncio.Event(), "-100": asyncio.Event()}

    transport = _Through(dispatcher)
    delivery = DeliveryOutbox(db, {"telegram": transport}, StaffText(lambda: library, "en"))

    async def in_turn(chat: str, other: str) -> None:
        async with dispatcher.turn(chat):
            inside[chat].set()
            await inside[other].wait()
            there = await delivery.post(ChatRef("telegram", other), Reply(f"to {other}"), kind="t")
            here = await delivery.post(ChatRef("telegram", chat), Reply(f"to {chat}"), kind="t")
        assert (await there).delivered and (await here).delivered

    await asyncio.wait_for(asyncio.gather(in_turn("7", "-100"), in_turn("-100", "7")), 5)
    assert sorted(outbox.sent) == sorted(
        [("7", "to 7"), ("-100", "to -100"), ("-100", "to -100"), ("7", "to 7")]
    )


async def test_noted_ids_are_read_back_at_once_and_a_zero_ttl_is_due_at_once(
    db: Database,
) -> None:
    trail = ChatTrail(db, "telegram")
    trail.note("5", [("1", None), ("2", timedelta(hours=1))])
    trail.note("5", [("3", timedelta(0))])
    assert [t.message_id for t in await trail.in_chat("5")] == ["3", "2", "1"]
    await trail.record("5", "4", timedelta(0))
    due = [t.message_id for t in await trail.due(time.time())]
    assert due == ["3", "4"], "a zero time to live is not 'keep for ever'"
    assert [t.message_id for t in await trail.due(time.time() + 3601)] == ["3", "4", "2"]


def _message(bot: Bot, **content: object) -> Message:
    data = {
        "message_id": 1,
        "date": 0,
        "chat": {"id": 5, "type": "private", "first_name": "A"},
        "from": {"id": 5, "is_bot": False, "first_name": "A"},
        **content,
    }
    message = Message.de_json(data, bot)
    assert message is not None
    return message


def test_files_are_described_with_clean_names_and_types() -> None:
    bot = Bot("1:a")
    sizes = [
        {"file_id": f"f{w}", "file_unique_id": f"u{w}", "width": w, "height": w, "file_size": w}
        for w in (90, 1280, 320)
    ]
    photo = describe(_message(bot, photo=sizes))
    assert photo == Media("f1280", "photo.jpg", "image/jpeg", 1280)
    sneaky = {
        "file_id": "d",
        "file_unique_id": "u",
        "file_name": "../../etc/pass\nwd.pdf",
        "mime_type": "text/html\nX-Evil: 1",
    }
    document = describe(_message(bot, document=sneaky))
    assert document == Media("d", "passwd.pdf", "application/octet-stream", None)
    bare = describe(_message(bot, document={"file_id": "d", "file_unique_id": "u"}))
    assert bare is not None and (bare.name, bare.media_type) == ("file", "application/octet-stream")
    voice = {"file_id": "v", "file_unique_id": "u", "duration": 3, "file_size": 9}
    assert describe(_message(bot, voice=voice)) == Media("v", "voice.ogg", "audio/ogg", 9)
    sticker = {
        "file_id": "s",
        "file_unique_id": "u",
        "width": 1,
        "height": 1,
        "is_animated": False,
        "is_video": False,
        "type": "regular",
    }
    assert describe(_message(bot, sticker=sticker)) is None
    assert "passwd" not in repr(document)


async def test_a_file_telegram_will_not_give_gets_the_text_only_answer(
    emu: Emulator, tg: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hrd_bot")
    ana = emu.user()
    await ana.ask("/start")
    emu.fail("getFile", 400)
    await ana.send_document(b"%PDF-1.7 x", "evidence.pdf")
    assert "I can only read text messages" in (await ana.answer()).text
    assert "could not be downloaded" in caplog.text
    assert "evidence" not in caplog.text and str(ana.chat.id) not in caplog.text
