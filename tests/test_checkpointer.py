"""WAL checkpoints run on a connection and thread of their own, not in a message's commit."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

from bot.storage import Database
from bot.storage.checkpointer import BACKSTOP_PAGES
from bot.storage.database import Connection
from tests.conftest import TEST_KEY

PAGES = 2_000


def _write(conn: Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS filler (data BLOB)")
    conn.executemany("INSERT INTO filler VALUES (?)", [(os.urandom(3_000),) for _ in range(PAGES)])


async def _checkpointed(db: Database) -> None:
    """Until a whole checkpoint has run on the background thread since now: the pass under
    way now (if one is) may have begun before the last commit, the one after it has not."""
    checkpointer = db._checkpointer
    assert checkpointer is not None, "the background connection opened"
    after = checkpointer.passes + 2
    assert await asyncio.to_thread(checkpointer.wait_passes, after, 30), "no checkpoint in 30 s"


async def test_the_wal_is_copied_back_by_the_background_connection(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.db"
    db = await Database.open(path, TEST_KEY)
    try:
        backstop = await db.run(lambda c: c.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
        assert backstop == BACKSTOP_PAGES > PAGES, "this test's pages are copied by the thread"
        before = path.stat().st_size
        await db.transaction(_write)
        await _checkpointed(db)
        assert path.stat().st_size >= before + PAGES * 3_000, "copied back by the thread"
    finally:
        await db.close()
    assert not [t for t in threading.enumerate() if t.name == "checkpoint"], "stopped on close"
    wal = path.with_name("c.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0
