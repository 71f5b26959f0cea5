"""Sessions on SQLCipher and PostgreSQL: group commits (a user twice in one statement),
and `report_case` kept equal to the state's draft, which is how drafts and retention find
a reporter's session without reading its (on PostgreSQL sealed) state."""

from __future__ import annotations

import asyncio

import pytest

from bot.conversation.sessions import (
    EXPIRED,
    SENT,
    Session,
    SessionStore,
    expire_reports,
    let_go_of_draft,
    report_sent,
)
from bot.model import UserRef
from bot.storage import Database
from bot.storage.database import Connection
from tests.conftest_storage import OpenDatabase

pytestmark = pytest.mark.backends
CASES = ("HRD-SENT-0001", "HRD-GONE-0002", "HRD-KEEP-0003", "HRD-LOST-0004")


async def test_saves_made_together_are_all_written_the_last_one_winning(
    open_database: OpenDatabase,
) -> None:
    db = await open_database()
    try:
        store = SessionStore(db)
        users = [UserRef("test", f"u{number}") for number in range(250)]
        first = [Session(user, "en", {"step": 1}) for user in users]
        again = Session(users[7], "fr", {"step": 2})
        await asyncio.gather(*(store.save(s) for s in first), store.save(again))
        loaded = [await SessionStore(db).load(user) for user in users]  # empty caches
        assert all(s.known for s in loaded)
        assert [s.state["step"] for s in loaded].count(1) == 249
        assert (loaded[7].language, loaded[7].state) == ("fr", {"step": 2})
        twice = [Session(users[0], "es", {"step": n}) for n in (3, 4)]  # in one statement
        await asyncio.gather(*(store.save(s) for s in twice))
        assert (await SessionStore(db).load(users[0])).state == {"step": 4}
    finally:
        await db.close()


def _cases(conn: Connection) -> None:
    for seq, case in enumerate(CASES[:3], 1):
        conn.execute(
            "INSERT INTO cases (id, public_key, created_at, updated_at, state, seq) "
            "VALUES (?, ?, 0, 0, 'draft', ?)",
            (case, b"\x00", seq),
        )
        conn.execute(
            "INSERT INTO case_reporters (case_id, user_key, platform, chat, language) "
            "VALUES (?, ?, 'test', ?, 'en')",
            (case, f"test:{case}", conn.seal("case_reporters.chat", "chat")),
        )


async def _columns(db: Database) -> dict[str, str | None]:
    rows = await db.run(
        lambda c: c.execute("SELECT user_key, report_case FROM sessions").fetchall()
    )
    return {str(key): case for key, case in rows}


async def test_drafts_find_their_session_by_report_case(open_database: OpenDatabase) -> None:
    db = await open_database()
    try:
        await db.transaction(_cases)
        store = SessionStore(db)
        users = {case: UserRef("test", case) for case in CASES}
        for case, user in users.items():
            await store.save(Session(user, "en", {"report": {"case": case, "step": 2}, "x": 1}))
        assert await _columns(db) == {f"test:{c}": c for c in CASES[:3]} | {
            f"test:{CASES[3]}": None
        }, "a draft that does not exist is not pointed at"
        await db.transaction(lambda c: report_sent(c, CASES[0]))
        await db.transaction(lambda c: let_go_of_draft(c, CASES[1]))
        expired = await db.transaction(lambda c: expire_reports(c, [CASES[2], "HRD-NONE"]))
        assert expired == [f"test:{CASES[2]}"]
        assert set((await _columns(db)).values()) == {None}
        fresh = SessionStore(db)
        states = [(await fresh.load(users[case])).state for case in CASES]
        assert states == [
            {"x": 1, SENT: CASES[0]},
            {"x": 1},
            {"x": 1, EXPIRED: True},
            {"x": 1, EXPIRED: True},
        ]
    finally:
        await db.close()
