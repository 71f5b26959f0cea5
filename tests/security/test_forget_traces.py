"""After `/forget`, no copy of the person's rows is left in the database file or its WAL,
decrypted with the database key: the WAL is emptied at once, not at the next checkpoint."""

from __future__ import annotations

import secrets
from pathlib import Path

from bot.app import App
from bot.content.library import Library
from bot.storage import Database, DbKey
from tests.fakes import FakeTransport, FakeUser
from tests.security.test_seized_bundles import _keyed_view


async def test_forget_leaves_no_copy_of_the_session_in_the_file_or_the_wal(
    tmp_path: Path, library: Library
) -> None:
    key = secrets.token_bytes(32)
    data = tmp_path / "data"
    db = await Database.open(data / "hrd-bot.db", DbKey(key.hex()))
    try:
        app = await App.open(db, library)
        transport = FakeTransport()
        app.attach(transport)
        person = FakeUser(app, transport, "forgetful")
        await person.say("/start")
        await person.press("English")
        for _ in range(5):  # several saved versions of the session
            await person.press("Legal information")
            await person.press("Back")
        trace = app.pseudonyms.user(transport.name, "forgetful").key.encode()
        assert trace in _keyed_view(data, key), "the session is on disk before"
        await person.say("/forget")
        done = await person.press("Yes, delete everything")
        assert done.erase_chat
        assert trace not in _keyed_view(data, key)
        assert (data / "hrd-bot.db-wal").stat().st_size == 0
    finally:
        await app.outbox.close()
        await db.close()
