"""Reading updates one by one (`reading`) and remembering which were taken (`seen`)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from telegram.error import TelegramError

from bot.storage import Database
from bot.transports.telegram.reading import QuietRequest, ScreeningRequest, UpdateReader
from bot.transports.telegram.seen import SeenUpdates
from tests.telegram_emulator.harness import TEST_KEY

SECRET_TEXT = "Dissident-Notes-55"
GOOD = {
    "update_id": 11,
    "message": {
        "message_id": 1,
        "date": 1_760_000_000,
        "chat": {"id": 5, "type": "private"},
        "text": "hi",
    },
}


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "r.db", TEST_KEY)
    try:
        yield database
    finally:
        await database.close()


def _payload(result: object) -> bytes:
    return json.dumps({"ok": True, "result": result}).encode()


def test_a_batch_the_library_can_read_is_passed_on_untouched() -> None:
    payload = _payload([GOOD])
    assert UpdateReader().screen_payload(payload) == (payload, False)


def test_an_unreadable_update_becomes_its_bare_id_in_place() -> None:
    bad = {"update_id": 12, "message": {"text": SECRET_TEXT, "date": "x"}}
    reader = UpdateReader()
    screened, stalled = reader.screen_payload(_payload([GOOD, bad, {**GOOD, "update_id": 13}]))
    assert not stalled
    ids = [u["update_id"] for u in json.loads(screened)["result"]]
    assert ids == [11, 12, 13]
    assert json.loads(screened)["result"][1] == {"update_id": 12}
    assert SECRET_TEXT.encode() not in screened
    assert reader.skipped == {"message": 1}


def test_one_already_seen_is_not_read_again() -> None:
    reader = UpdateReader(seen=lambda update_id: update_id == 11)
    screened, _ = reader.screen_payload(_payload([GOOD]))
    assert json.loads(screened)["result"] == [{"update_id": 11}]
    assert not reader.skipped, "a repeat is not an unreadable update"


@pytest.mark.parametrize(
    "result",
    [
        [{"message": {"text": SECRET_TEXT}}],
        [{"update_id": -1, "message": {}}],
        [{"update_id": 2**64, "message": {}}],
        [{"update_id": True}],
        [SECRET_TEXT],
        {"update_id": 1},
        None,
    ],
)
def test_nothing_that_can_be_confirmed_asks_for_a_pause(
    result: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    reader = UpdateReader()
    for _ in range(3):
        screened, stalled = reader.screen_payload(_payload(result))
        assert stalled
        assert json.loads(screened)["result"] == []
    assert sum(reader.skipped.values()) <= 1, "the same entry is counted once"
    assert len([r for r in caplog.records if "waiting" in r.getMessage()]) == 1
    assert SECRET_TEXT not in caplog.text


def test_an_answer_that_is_not_json_is_refused_without_being_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for parse in (ScreeningRequest.parse_json_payload, QuietRequest.parse_json_payload):
        for payload in (SECRET_TEXT.encode(), b"[" * 50_000, b"[1, 2]"):
            with pytest.raises(TelegramError, match="Invalid server response"):
                parse(payload)
    assert SECRET_TEXT not in caplog.text
    assert UpdateReader().screen_payload(SECRET_TEXT.encode()) == (SECRET_TEXT.encode(), False)


async def test_an_id_is_taken_once_and_remembered_after_a_restart(db: Database) -> None:
    seen = SeenUpdates(db)
    await seen.load(bot_id=1)
    assert seen.admit(500)
    assert not seen.admit(500)
    assert seen.duplicates == 1
    await seen.flush()
    again = SeenUpdates(db)
    await again.load(bot_id=1)
    assert again.seen(500)
    assert not again.admit(500)
    other_bot = SeenUpdates(db)
    await other_bot.load(bot_id=2)
    assert not other_bot.seen(500), "another bot account numbers its updates anew"


async def test_ids_older_than_the_window_are_forgotten_and_deleted(db: Database) -> None:
    old = int(time.time()) - 3 * 24 * 3600
    await db.run(
        lambda conn: conn.execute(
            "INSERT INTO telegram_updates (bot, update_id, seen_at) VALUES (1, 7, ?)", (old,)
        )
    )
    seen = SeenUpdates(db, keep=timedelta(hours=48))
    await seen.load(bot_id=1)
    assert not seen.seen(7)
    rows = await db.run(
        lambda conn: conn.execute("SELECT count(*) FROM telegram_updates").fetchone()[0]
    )
    assert rows == 0


async def test_many_ids_taken_at_once_are_all_written(db: Database) -> None:
    seen = SeenUpdates(db)
    await seen.load(bot_id=1)
    assert all(seen.admit(n) for n in range(2500))
    await seen.flush()
    rows = await db.run(
        lambda conn: conn.execute("SELECT count(*) FROM telegram_updates").fetchone()[0]
    )
    assert rows == 2500
