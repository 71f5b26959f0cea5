"""After `/forget`, no copy of the person's rows is left in the database file or its WAL,
decrypted with the database key: the WAL is emptied at once, not at the next checkpoint."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import App
from bot.content.library import Library
from bot.crypto.keys import PrivateKey
from bot.storage import Database, DbKey
from tests.fakes import FakeTransport, FakeUser
from tests.reporting import start_report
from tests.security.test_seized_bundles import _keyed_view

KEY = secrets.token_bytes(32)


@dataclass
class Server:
    app: App
    transport: FakeTransport
    data: Path

    def view(self) -> bytes:
        """The data folder's file and WAL, decrypted with the database key."""
        return _keyed_view(self.data, KEY)


@pytest.fixture
async def server(tmp_path: Path, library: Library) -> AsyncIterator[Server]:
    """A server that can take reports (a recovery key), talking to one fake transport."""
    data = tmp_path / "data"
    db = await Database.open(data / "hrd-bot.db", DbKey(KEY.hex()))
    app = await App.open(db, library)
    try:
        await app.casework.store.set_recovery(PrivateKey.generate().public)
        transport = FakeTransport()
        app.attach(transport)
        yield Server(app, transport, data)
    finally:
        await app.outbox.close()
        await db.close()


async def test_forget_leaves_no_copy_of_the_session_in_the_file_or_the_wal(
    server: Server,
) -> None:
    app, transport = server.app, server.transport
    person = FakeUser(app, transport, "forgetful")
    await person.say("/start")
    await person.press("English")
    for _ in range(5):  # several saved versions of the session
        await person.press("Legal information")
        await person.press("Back")
    trace = app.pseudonyms.user(transport.name, "forgetful").key.encode()
    assert trace in server.view(), "the session is on disk before"
    await person.say("/forget")
    done = await person.press("Yes, delete everything")
    assert done.erase_chat
    assert trace not in server.view()
    assert (server.data / "hrd-bot.db-wal").stat().st_size == 0


async def test_a_cancelled_report_leaves_no_copy_of_its_draft_in_the_file_or_the_wal(
    server: Server,
) -> None:
    app = server.app
    person = FakeUser(app, server.transport, "cancel-reporter-7731")
    await start_report(person)
    await person.say("they followed me home")
    case = (await app.db.run(lambda c: c.execute("SELECT id FROM cases").fetchone()))[0]
    assert b"cancel-reporter-7731" in server.view(), "the reporter link before"
    await person.say("/cancel")
    assert b"cancel-reporter-7731" not in server.view()
    assert await app.db.run(lambda c: c.execute("SELECT * FROM cases").fetchall()) == []
    audit = "SELECT action FROM audit WHERE case_id = ?"
    left = await app.db.run(lambda c: c.execute(audit, (case,)).fetchall())
    assert {a for (a,) in left} == {"case.create", "case.draft"}, (
        "only the append-only audit keeps that a draft was made, linked to nobody"
    )


async def test_a_replaced_link_key_leaves_the_file_and_the_wal_within_moments(
    server: Server,
) -> None:
    """`bot.crypto.caselog`: a seized server must hold no earlier link key of a case, or
    it could rewrite the entries recorded since; the WAL kept old ones until a checkpoint
    happened to restart it."""
    app = server.app
    person = FakeUser(app, server.transport, "linked-reporter")
    await start_report(person)
    read = "SELECT log_key FROM cases"
    earlier = [(await app.db.run(lambda c: c.execute(read).fetchone()))[0]]
    for answer in ("they followed me home", "last night", "Colombia"):
        await person.say(answer)
        earlier.append((await app.db.run(lambda c: c.execute(read).fetchone()))[0])
    current = earlier.pop()
    for _ in range(40):
        view = server.view()
        if not any(bytes(k) in view for k in earlier):
            break
        await asyncio.sleep(0.05)
    assert not [k for k in earlier if bytes(k) in view], "an earlier link key is readable"
    assert bytes(current) in view
