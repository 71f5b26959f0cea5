"""Retention leaves nothing of a purged draft: not in the database (by SQL; on SQLCipher
also in the raw file, in every decrypted page, free ones included, and in the WAL), not
in any cache, and nowhere in the process's object graph. On PostgreSQL the space of
deleted rows is autovacuum's; what they held was sealed."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

import bot.safety.retention
from bot.app import App
from bot.content.library import Library
from bot.crypto.keys import PrivateKey
from bot.safety.jobs import SafetyJobs
from bot.storage.database import Connection
from tests.conftest_storage import TEST_KEY, OpenDatabase
from tests.fakes import FakeTransport, FakeUser
from tests.memory import copies_in_memory
from tests.reporting import STAFF_ROOM, staff_key, start_report

pytestmark = pytest.mark.backends
DAY = 86_400
DRAFTS = 40
OTHER_SESSIONS = 5_000
IDLE_SESSIONS = 1_000
PAGE, RESERVE = 4096, 80  # SQLCipher 4 defaults: a page ends with IV (16) and HMAC (64)


def decrypted_pages(path: Path, key_hex: str) -> bytes:
    """Every page of a SQLCipher 4 file (raw key) decrypted, as SQLite would see it."""
    raw, key = path.read_bytes(), bytes.fromhex(key_hex)
    out = []
    for number in range(len(raw) // PAGE):
        page = raw[number * PAGE : (number + 1) * PAGE]
        iv = page[PAGE - RESERVE : PAGE - RESERVE + 16]
        body = page[16 if number == 0 else 0 : PAGE - RESERVE]
        decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        out.append(decryptor.update(body) + decryptor.finalize())
    return b"".join(out)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def world(
    open_database: OpenDatabase,
    tmp_path: Path,
    library: Library,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[App, FakeTransport, SafetyJobs, Clock]]:
    monkeypatch.setattr(bot.safety.retention, "FIRST_BATCH", 4)
    monkeypatch.setattr(bot.safety.retention, "MAX_BATCH", 8)  # many batches, even here
    db = await open_database("r")
    app = await App.open(db, library, staff_rooms=(STAFF_ROOM,), exports=tmp_path / "exports")
    transport = FakeTransport()
    app.attach(transport)
    staff = [staff_key(app, "staff-alice")]
    await app.casework.store.add_staff("Alice", staff, PrivateKey.generate().public)
    clock = Clock()
    jobs = SafetyJobs(
        db,
        clock=clock,
        casework=app.casework,
        sessions=app.sessions,
        checkins=app.checkins,
    )
    try:
        yield app, transport, jobs, clock
    finally:
        await db.close()


async def _many_sessions(app: App, now: float) -> None:
    state = json.dumps({"at": ["guide", {"guide": "phishing", "node": "start"}], "back": []})
    rows = [
        (f"bench:{i:016x}", "en", state, int(now) - (200 * DAY if i < IDLE_SESSIONS else 0))
        for i in range(OTHER_SESSIONS)
    ]

    def insert(conn: Connection) -> None:
        conn.executemany(
            "INSERT INTO sessions (user_key, language, state, updated_at) VALUES (?, ?, ?, ?)",
            [(k, lang, conn.seal("sessions.state", s), at) for k, lang, s, at in rows],
        )

    await app.db.transaction(insert)


async def _drafts(app: App, transport: FakeTransport, mark: str) -> list[FakeUser]:
    people = []
    for i in range(DRAFTS):
        person = FakeUser(app, transport, f"reporter-{i}")
        await start_report(person)
        await person.say(f"{mark} what happened to reporter {i}")
        await person.say(f"{mark} since last week, {i}")
        await person.press("Skip")
        await person.say(f"{mark} me and colleague {i}")
        people.append(person)
    return people


async def _all_values(app: App) -> list[object]:
    def read(conn: Connection) -> list[object]:
        listed = (
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            if conn.sqlite
            else "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema()"
        )
        tables = [r[0] for r in conn.execute(listed)]
        values: list[object] = []
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                values.extend(row)
        return values

    return await app.db.run(read)


def _nothing_in_the_file(db_file: Path, mark: str, sealed: list[bytes]) -> None:
    """SQLCipher: no trace in the WAL, the raw file, or any decrypted page."""
    wal = db_file.with_name(db_file.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0, "the WAL was checkpointed and truncated"
    assert mark.encode() not in db_file.read_bytes()
    pages = decrypted_pages(db_file, TEST_KEY.value)
    assert b"CREATE TABLE sessions" in pages, "the pages were decrypted"
    assert mark.encode() not in pages
    assert not [blob for blob in sealed if blob in pages], "no sealed answer left in any page"


async def test_a_purge_of_many_drafts_leaves_no_draft_text_anywhere(
    world: tuple[App, FakeTransport, SafetyJobs, Clock], tmp_path: Path
) -> None:
    app, transport, jobs, clock = world
    mark = "".join(["draft-canary-", secrets.token_hex(6)])
    await _many_sessions(app, clock.now)
    people = await _drafts(app, transport, mark)
    sealed = await app.db.run(
        lambda conn: [bytes(r[0]) for r in conn.execute("SELECT sealed FROM case_items")]
    )
    cases = await app.db.run(lambda conn: [r[0] for r in conn.execute("SELECT id FROM cases")])
    assert len(sealed) == 3 * DRAFTS
    assert copies_in_memory(mark) >= 3 * DRAFTS, "the probe sees the drafts held in memory"

    clock.now += 8 * DAY
    removed = await jobs.purge()
    assert removed == DRAFTS + IDLE_SESSIONS
    assert jobs.retention.last.batches > DRAFTS // 8, "in many short batches"

    assert app.casework._drafts == {}
    cached = " ".join(payload for _, payload in app.sessions._cache.values())
    assert not any(case in cached for case in cases), "no cached session points at a draft"
    values = await _all_values(app)
    assert not any(isinstance(v, str) and mark in v for v in values)
    assert not any(isinstance(v, bytes) and (v in sealed or mark.encode() in v) for v in values)
    if app.db.sqlite:
        _nothing_in_the_file(tmp_path / "data" / "r.db", mark, sealed)
        assert await app.db.run(lambda c: c.execute("PRAGMA secure_delete").fetchone()[0]) == 1
        assert await app.db.run(lambda c: c.execute("PRAGMA freelist_count").fetchone()[0]) == 0

    for person in people:
        reply = await person.say("the next answer")
        assert "deleted because it was left for too long" in reply.text
        assert "Saved" not in reply.text
    transport.sent.clear()
    assert copies_in_memory(mark) == 0
