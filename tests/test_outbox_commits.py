"""The outbox's group commit on SQLCipher and PostgreSQL: rows are on disk before `post` and
`post_many` return, writes made together share one transaction, and order holds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from bot.content.library import Library
from bot.delivery.commits import GroupCommit
from bot.delivery.outbox import Outbox, Outgoing
from bot.delivery.rows import ADDRESS, BODY
from bot.model import ChatRef, Reply
from bot.storage import Database
from bot.storage.database import Connection
from handlers.staff_text import StaffText
from tests.conftest_storage import OpenDatabase
from tests.fakes import FakeTransport

pytestmark = pytest.mark.backends

ROOMS = [ChatRef("fake", f"room-{n}", private=False) for n in range(10)]


class Gated(FakeTransport):
    """Sends nothing until `gate` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def send(self, chat: ChatRef, reply: Reply, key: str = "") -> tuple[str, ...]:
        await self.gate.wait()
        return await super().send(chat, reply, key)


def _counted(db: Database, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every transaction the database is asked for, from now on."""
    commits: list[object] = []
    transaction = db.transaction

    async def counted(work: Callable[[Connection], Any]) -> Any:
        commits.append(work)
        return await transaction(work)

    monkeypatch.setattr(db, "transaction", counted)
    return commits


async def _states(db: Database) -> list[tuple[str, str, str | None]]:
    def read(conn: Connection) -> list[tuple[str, str, str | None]]:
        found = conn.execute("SELECT address, state, body FROM outbox ORDER BY id")
        return [(conn.unseal(ADDRESS, str(a)), str(s), conn.unseal(BODY, b)) for a, s, b in found]

    return await db.run(read)


async def test_post_many_has_every_row_on_disk_before_it_returns(
    open_database: OpenDatabase, library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await open_database()
    commits = _counted(db, monkeypatch)
    transport = Gated()
    outbox = Outbox(db, {"fake": transport}, StaffText(lambda: library, "en"))
    sent = await outbox.post_many(
        [Outgoing(room, Reply("New case HRD-1"), "alert") for room in ROOMS]
    )
    rows = await _states(db)
    assert [address for address, _, _ in rows] == [room.address for room in ROOMS]
    assert {state for _, state, _ in rows} == {"queued"}
    assert all("New case HRD-1" in (body or "") for _, _, body in rows)
    transport.gate.set()
    outcomes = await asyncio.gather(*sent)
    assert all(outcome.delivered for outcome in outcomes)
    assert len(commits) == 2, "one for the rows, one for ten lanes settling at once"
    assert {state for _, state, _ in await _states(db)} == {"delivered"}
    await outbox.close()
    await db.close()


async def test_writes_made_together_share_one_commit_and_keep_their_order(
    open_database: OpenDatabase, library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await open_database()
    commits = _counted(db, monkeypatch)
    transport = Gated()
    outbox = Outbox(db, {"fake": transport}, StaffText(lambda: library, "en"))
    room = ROOMS[0]
    posts = [outbox.post(room, Reply(f"notice {n}"), kind="notice") for n in range(10)]
    sent = await asyncio.gather(*posts)
    assert len(commits) == 1, "ten posts made at once: one commit"
    transport.gate.set()
    await asyncio.gather(*sent)
    assert [reply.text for _, reply in transport.sent] == [f"notice {n}" for n in range(10)]
    await outbox.close()
    await db.close()


async def test_a_failed_commit_fails_its_writes_and_the_next_commit_goes_on(
    open_database: OpenDatabase,
) -> None:
    db = await open_database()
    writes = GroupCommit(db)

    def broken(conn: Connection) -> int:
        raise ValueError("no")

    def fine(conn: Connection) -> int:
        return int(conn.execute("SELECT 1").fetchone()[0])

    first, second = await asyncio.gather(
        writes.write(fine), writes.write(broken), return_exceptions=True
    )
    assert isinstance(first, ValueError) and isinstance(second, ValueError)
    assert await writes.write(fine) == 1
    await db.close()
