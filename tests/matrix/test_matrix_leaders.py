"""Matrix as leadership moves between two workers (two data folders, one PostgreSQL, the
same settings): each signs in as its own device of the bot account, every message is
answered once, none is skipped.

Worker B's device exists from B's start, though B never led (`matrix.enrol`), so the
person's client shares its room keys with both devices; while A leads, B's to-device
messages wait on the homeserver, and B must fetch them before it goes on from A's
position, or it could not read what the person wrote meanwhile.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from bot.content.library import Library
from bot.storage import Database
from bot.transports.matrix.enrol import enrol
from bot.transports.matrix.store import check_passphrase
from tests.matrix.activist import Activist, Chat
from tests.matrix.fixtures import DB_KEY, PASSPHRASE, Bot, unique
from tests.matrix.homeserver import Synapse
from tests.postgres_server import PgServer, fresh_schema


async def _enrol(bot: Bot, url: str) -> str | None:
    """What a worker does at its start, before it competes for leadership; its device."""
    db = await Database.open_postgres(url, DB_KEY)
    try:
        assert await enrol(bot.config, db)
    finally:
        await db.close()
    return check_passphrase(bot.config.store_dir, PASSPHRASE, bot.account.user_id)


def _nothing_more(chat: Chat) -> None:
    """Every message the bot sent so far was a reply the test took: none came twice."""
    assert chat.log.messages.empty()
    assert chat.log.undecryptable == 0


async def test_each_message_is_answered_once_as_leadership_moves(
    synapse: Synapse, pg_server: PgServer, tmp_path: Path, library: Library
) -> None:
    url = pg_server.schema_url(fresh_schema(pg_server))
    account = synapse.register(unique("bot"))
    a = Bot(synapse, account, tmp_path / "a", library, database_url=url)
    b = Bot(synapse, account, tmp_path / "b", library, database_url=url)
    enrolled = await _enrol(b, url)  # B never leads before A stops
    await a.start()
    person = Activist(synapse.url, synapse.register(unique("p")), tmp_path / "p", account.user_id)
    await person.start()
    try:
        chat = await person.open_dm()
        assert "How can I help?" in await chat.pick("English")  # A answers
        await a.stop()
        await person.send(chat.room_id, "/language")  # while nobody leads
        await b.start()
        assert "Which language do you want to use?" in await chat.reply()  # B's first lead
        assert "Language set to English." in await chat.pick("English")
        _nothing_more(chat)  # B did not answer A's messages again
        await b.stop()
        await a.start()
        menu = await chat.say("/menu")
        assert "How can I help?" in menu
        assert "Language set" not in menu  # A did not answer B's messages again
        _nothing_more(chat)
        assert a.starts[0] == a.starts[1] != b.starts[0] == enrolled  # a device each
    finally:
        await person.stop()
        await a.stop()


async def test_a_worker_that_cannot_enrol_says_so_and_goes_on(
    synapse: Synapse,
    pg_server: PgServer,
    tmp_path: Path,
    library: Library,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A refused login: no exception (the worker enrols when it leads), one log line
    that names neither the account nor a device."""
    url = pg_server.schema_url(fresh_schema(pg_server))
    account = synapse.register(unique("bot"))
    wrong = replace(account, password="not the password")
    caplog.set_level(logging.DEBUG, logger="hrd_bot")
    db = await Database.open_postgres(url, DB_KEY)
    try:
        assert not await enrol(Bot(synapse, wrong, tmp_path / "w", library).config, db)
    finally:
        await db.close()
    said = [r.getMessage() for r in caplog.records if r.name.startswith("hrd_bot.matrix")]
    assert said == ["could not enrol this worker's Matrix device (ConfigError)"]
    assert account.user_id not in caplog.text


async def test_a_worker_with_a_fixed_token_enrols_nothing(
    synapse: Synapse, tmp_path: Path, library: Library
) -> None:
    """The token's device may be another worker's: its published keys must stay."""
    account = synapse.register(unique("bot"))
    fixed = Bot(synapse, account, tmp_path / "t", library, with_token=True)
    db = await Database.open(tmp_path / "t.db", DB_KEY)
    try:
        assert not await enrol(fixed.config, db)
    finally:
        await db.close()
    assert check_passphrase(fixed.config.store_dir, PASSPHRASE, account.user_id) is None


async def test_a_folder_whose_key_store_was_lost_signs_in_as_a_new_device(bot: Bot) -> None:
    """Its old device's keys are gone with the store: coming back as it would leave
    people's clients encrypting to keys nobody holds."""
    first = bot.starts[-1]
    await bot.stop()
    shutil.rmtree(bot.data / "matrix")
    await bot.start()
    assert bot.starts[-1] != first
