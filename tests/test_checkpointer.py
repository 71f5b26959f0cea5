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


async def _grows(path: Path, size: int) -> bool:
    """Polls the file: nothing else can tell when another thread's checkpoint is done."""
    for _ in range(100):
        if await asyncio.to_thread(os.path.getsize, path) >= size:
            return True
        await asyncio.sleep(0.05)
    return False


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
        assert await _grows(path, before + PAGES * 3_000), "copied back within 5 s"
    finally:
        await db.close()
    assert not [t for t in threading.enumerate() if t.name == "checkpoint"], "stopped on close"
    wal = path.with_name("c.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0
