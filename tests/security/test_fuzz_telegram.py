"""Fuzzing Telegram update reading: good updates, mutated at random places, and arbitrary JSON.

Two targets. The reading path alone (screening, the library's reading of what is left,
the dispatcher): fast, so the long profile runs it 10,000 times. The whole bot against
the emulator, in polling and in webhook mode: each example puts mutated updates in one
batch with a good private message from someone new, which must be answered. Neither may raise, loop
or lose the good message.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import logging
import socket
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from telegram import Update

from bot.conversation.chat_trail import ChatTrail
from bot.conversation.flood import FloodGuard
from bot.conversation.pseudonym import Pseudonymizer
from bot.model import Attachment, ChatRef, Incoming, Reply
from bot.storage import Database
from bot.transports.telegram import WebhookConfig
from bot.transports.telegram.buttons import ButtonBook
from bot.transports.telegram.dispatch import Dispatcher
from bot.transports.telegram.files import Media
from bot.transports.telegram.incoming import from_update
from bot.transports.telegram.outbox import Outbox
from bot.transports.telegram.reading import UpdateReader
from bot.transports.telegram.seen import SeenUpdates
from tests.telegram_emulator import Emulator
from tests.telegram_emulator.harness import TEST_KEY, RunningBot, running_bot
from tests.telegram_emulator.poison import POLL
from tests.telegram_emulator.world import JSON

BOT_NAME = "hrd_test_bot"
USER = {"id": 4242, "is_bot": False, "first_name": "Ana", "language_code": "es"}
PRIVATE = {"id": 4242, "type": "private", "first_name": "Ana"}
GROUP = {"id": -100777, "type": "supergroup", "title": "Team"}
TEXT = {"message_id": 7, "from": USER, "chat": PRIVATE, "date": 1_760_000_000, "text": "hola"}
PHOTO_SIZE = {"file_id": "AgAD1", "file_unique_id": "u1", "width": 90, "height": 60}
TEMPLATES: list[JSON] = [
    {"message": TEXT},
    {
        "message": {
            **TEXT,
            "text": "/start",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        }
    },
    {"message": {**TEXT, "chat": GROUP, "text": f"/help@{BOT_NAME}"}},
    {"message": {**TEXT, "text": None, "photo": [PHOTO_SIZE], "caption": "look"}},
    {
        "message": {
            **TEXT,
            "text": None,
            "document": {"file_id": "BQ1", "file_unique_id": "u2", "file_name": "a.pdf"},
        }
    },
    {"message": {**TEXT, "text": None, "poll": {**POLL, "options": []}}},
    {
        "message": {
            **TEXT,
            "forward_origin": {"type": "hidden_user", "sender_user_name": "X", "date": 1},
        }
    },
    {"message": {**TEXT, "reply_to_message": {**TEXT, "from": {**USER, "is_bot": True}}}},
    {"edited_message": {**TEXT, "edit_date": 1_760_000_100}},
    {
        "callback_query": {
            "id": "88001",
            "from": USER,
            "message": {**TEXT, "from": {**USER, "is_bot": True}},
            "chat_instance": "-7",
            "data": "abc",
        }
    },
]
_json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=20)
)
json_values = st.recursive(
    _json_leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
_fresh = itertools.count(10**12)


def _paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value: a dict key or a list index, nested."""
    found = [here]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*here, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*here, index))
    return found


def _mutate(data: st.DataObject, update: JSON) -> JSON:
    """One change at a random place: a key removed, a value replaced, a key added."""
    place = data.draw(st.sampled_from(_paths(update)))
    op = data.draw(st.sampled_from(["remove", "replace", "add", "stringify"]))
    if not place:
        return update
    parent: Any = update
    for step in place[:-1]:
        parent = parent[step]
    last = place[-1]
    if op == "remove":
        del parent[last]
    elif op == "stringify":
        parent[last] = str(parent[last])
    elif op == "add" and isinstance(parent[last], dict):
        parent[last][data.draw(st.text(max_size=12))] = data.draw(json_values)
    else:
        parent[last] = data.draw(json_values)
    return update


def _template(data: st.DataObject, update_id: int) -> JSON:
    update: JSON = copy.deepcopy(data.draw(st.sampled_from(TEMPLATES)))
    for kind in update.values():
        if isinstance(kind, dict) and kind.get("text", "") is None:
            del kind["text"]
    return {"update_id": update_id, **update}


def _entry(data: st.DataObject, update_id: int) -> object:
    """A mutated good update most of the time, anything at all otherwise."""
    if data.draw(st.integers(0, 9)) == 0:
        return data.draw(json_values)
    update = _template(data, update_id)
    for _ in range(data.draw(st.integers(0, 4))):
        update = _mutate(data, update)
    return update


def _good(update_id: int, person: int) -> JSON:
    user = {"id": person, "is_bot": False, "first_name": "Bea", "language_code": "en"}
    chat = {"id": person, "type": "private", "first_name": "Bea"}
    message = {"message_id": 1, "from": user, "chat": chat, "date": 1_760_000_000}
    return {"update_id": update_id, "message": {**message, "text": "hello"}}


class _Recorder(Outbox):
    """Notes what would be sent; nothing leaves the process."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(
        self,
        chat: ChatRef,
        reply: Reply,
        received: Sequence[str] = (),
        received_ttl: timedelta | None = None,
    ) -> None:
        self.sent.append(chat.address)

    async def answer(self, query_id: str) -> None:
        """Nothing to stop spinning."""

    def reachable(self, chat: str, message_id: int | None = None) -> None:
        """Every chat is."""

    def screen_ttl(self, chat: str) -> timedelta | None:
        """Nothing it sends expires."""


async def _answer_all(msg: Incoming) -> Sequence[Reply]:
    return [Reply("ok")]


async def _no_file(media: Media) -> Attachment | None:
    return None


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "fuzz.db", TEST_KEY)
    try:
        yield database
    finally:
        await database.close()


@given(data=st.data())
async def test_reading_never_raises_and_the_good_message_is_answered(
    db: Database, data: st.DataObject
) -> None:
    seen = SeenUpdates(db)
    reader = UpdateReader(seen.seen)
    pseudonyms = Pseudonymizer(b"p" * 32)
    reader.convert = lambda update: from_update(update, pseudonyms, BOT_NAME)
    outbox = _Recorder()
    dispatcher = Dispatcher(
        _answer_all,
        pseudonyms,
        ButtonBook(b"k" * 32),
        ChatTrail(db, "telegram"),
        outbox,
        fetch=_no_file,
        reader=reader,
        seen=seen,
    )
    good_id, person = next(_fresh), next(_fresh)
    batch = [_entry(data, next(_fresh)) for _ in range(data.draw(st.integers(1, 4)))]
    batch.insert(data.draw(st.integers(0, len(batch))), _good(good_id, person))
    assume(sum(isinstance(u, dict) and u.get("update_id") == good_id for u in batch) == 1)
    screened, _ = reader.screen(copy.deepcopy(batch))
    updates = Update.de_list(screened, None)
    assert all(type(u.update_id) is int for u in updates)
    parties = [p for u in updates for p in (u.effective_chat, u.effective_user) if p is not None]
    assert all(type(p.id) is int for p in parties), "the application files updates by them"
    for update in updates:
        await dispatcher.on_update(update, None)
    assert str(person) in outbox.sent
    await seen.flush()
    stored = await db.run(
        lambda conn: conn.execute(
            "SELECT count(*) FROM telegram_updates WHERE update_id = ?", (good_id,)
        ).fetchone()[0]
    )
    assert stored == 1, "its id is kept, so a second delivery is not handled again"


@pytest.fixture(params=["polling", "webhook"])
async def fuzz_bot(
    request: pytest.FixtureRequest, emu: Emulator, tmp_path: Path
) -> AsyncIterator[RunningBot]:
    unlimited = FloodGuard(rate=1e9, burst=10**9)
    webhook = None
    if request.param == "webhook":
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        url = f"http://127.0.0.1:{port}/hook"
        webhook = WebhookConfig(url, "fuzz-secret-token-0123456789", port=port)
    async with running_bot(
        emu, tmp_path / "x.db", flood=unlimited, max_rate=0, webhook=webhook
    ) as running:
        yield running


@given(data=st.data())
async def test_fuzzed_batches_through_the_emulator_leave_the_bot_answering(
    emu: Emulator, fuzz_bot: RunningBot, data: st.DataObject, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    caplog.clear()  # one fixture for every example
    bea = emu.user("Bea")
    async with emu.batch():
        for _ in range(data.draw(st.integers(1, 3))):
            update_id = emu.world.next_update_id()
            entry = _entry(data, update_id)
            if isinstance(entry, dict):  # Telegram numbers its updates, whatever they hold
                await emu.inject({**entry, "update_id": update_id})
        await bea.send("/start")
    assert "English" in (await bea.answer(within=10)).buttons
    assert not fuzz_bot.task.done()
    failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert all("an update failed: BadRequest" in line for line in failures), failures
    await asyncio.sleep(0)
