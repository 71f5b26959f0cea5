"""After `/forget` over Matrix, no file of the bot holds the activist's Matrix user id, device
id or DM room id: not the bot's database, not nio's key store, each decrypted with its key
page by page (free space and WAL frames included) and read through SQLite.

nio keeps a room's Megolm sessions and every device it saw (user and device ids) for good;
the bot deletes the forgotten room's and person's from the store when it leaves the room.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from bot.storage import DbKey
from bot.storage.opening import keyed
from bot.transports.matrix.store import STORE_FILE
from tests.matrix.activist import Activist
from tests.matrix.fixtures import DB_KEY, PASSPHRASE, Bot, MakeActivist
from tests.security.test_seized_bundles import _database_pages, _encodings, _wal_frames

KDF_ITERATIONS = 256_000  # SQLCipher 4 defaults: PBKDF2-HMAC-SHA512, a 16-byte salt first


def _pages(path: Path, key: bytes) -> bytes:
    """Every page of the file and of its WAL, decrypted (as `test_seized_bundles`)."""
    pages = list(_database_pages(key, path.read_bytes()))
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        pages += _wal_frames(key, wal.read_bytes())
    return b"".join(pages)


def _store_key(path: Path) -> bytes:
    salt = path.read_bytes()[:16]
    return hashlib.pbkdf2_hmac("sha512", PASSPHRASE.encode(), salt, KDF_ITERATIONS, 32)


def _rows(path: Path, key: DbKey) -> str:
    """Every value of every table, read through SQLite."""
    conn = keyed(str(path), key)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return repr([list(conn.execute(f'SELECT * FROM "{table}"')) for table in tables])
    finally:
        conn.close()


async def test_a_forgotten_activist_leaves_no_matrix_id_in_the_bots_files(
    bot: Bot, activist: Activist, make_activist: MakeActivist
) -> None:
    other = await (await make_activist()).open_dm()
    await other.pick("English")
    chat = await activist.open_dm()
    await chat.pick("English")
    await chat.pick("People who can help")
    await chat.pick("Legal aid")
    await chat.pick("Anywhere")  # a sensitive reply: its room goes in the chat trail
    ids = [activist.account.user_id, activist.account.device_id, chat.room_id]
    store = bot.data / "matrix" / STORE_FILE
    assert activist.account.user_id in _rows(store, DbKey(PASSPHRASE)), "the store sees ids"
    await chat.say("/forget")
    await chat.pick("Yes, delete everything")
    await asyncio.wait_for(chat.log.bot_left.wait(), 30)
    assert "How can I help?" in await other.say("/menu"), "another DM goes on"
    await bot.stop()

    database = bot.data / "x.db"
    views = {
        "database rows": _rows(database, DB_KEY).encode(),
        "database pages": _pages(database, DB_KEY.raw_bytes() or b""),
        "store rows": _rows(store, DbKey(PASSPHRASE)).encode(),
        "store pages": _pages(store, _store_key(store)),
        "raw files": b"".join(p.read_bytes() for p in bot.data.rglob("*") if p.is_file()),
    }
    assert b"megolminboundsessions" in views["store pages"], "the pages decrypted"
    assert other.activist.account.user_id.encode() in views["store rows"], "who is still here"
    for name, view in views.items():
        for found in ids:
            for form in _encodings(found):
                assert form not in view, f"{name} hold {found!r}"
    await bot.start()
