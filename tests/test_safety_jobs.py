"""Timed safety jobs: staff are reminded of unacknowledged cases; old data is really purged."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import App
from bot.content.library import Library
from bot.crypto.keys import PrivateKey
from bot.safety_jobs import SafetyJobs
from bot.storage import Database
from tests.conftest import TEST_KEY
from tests.fakes import FakeTransport, FakeUser
from tests.reporting import (
    STAFF_ROOM,
    room_messages,
    staff_key,
    staff_says,
    start_report,
    submit_report,
)

DAY = 86_400


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def setup(
    tmp_path: Path, library: Library
) -> AsyncIterator[tuple[App, FakeTransport, SafetyJobs, Clock]]:
    db = await Database.open(tmp_path / "j.db", TEST_KEY)
    app = await App.open(db, library, staff_rooms=(STAFF_ROOM,))
    transport = FakeTransport()
    app.attach(transport)
    await app.casework.store.add_staff(
        "Alice", [staff_key(app, "staff-alice")], PrivateKey.generate().public
    )
    clock = Clock()
    jobs = SafetyJobs(
        db,
        lambda: app.library,
        app.deliver,
        (STAFF_ROOM,),
        clock=clock,
        casework=app.casework,
        sessions=app.sessions,
    )
    try:
        yield app, transport, jobs, clock
    finally:
        await db.close()


async def _count(app: App, sql: str) -> int:
    return int(await app.db.run(lambda conn: conn.execute(sql).fetchone()[0]))


async def test_an_unacknowledged_critical_case_reminds_staff_once(
    setup: tuple[App, FakeTransport, SafetyJobs, Clock],
) -> None:
    app, transport, jobs, clock = setup
    case = await submit_report(FakeUser(app, transport, "r-1"))
    assert await jobs.remind() == 0, "not yet overdue"
    clock.now += 16 * 60
    assert await jobs.remind() == 1
    assert (
        f"Case {case} (critical) has not been acknowledged"
        in room_messages(transport, STAFF_ROOM)[-1].text
    )
    clock.now += 60 * 60
    assert await jobs.remind() == 0, "a case is reminded once"


async def test_an_acknowledged_case_is_not_reminded(
    setup: tuple[App, FakeTransport, SafetyJobs, Clock],
) -> None:
    app, transport, jobs, clock = setup
    case = await submit_report(FakeUser(app, transport, "r-2"))
    await staff_says(app, transport, "staff-alice", f"/ack {case}")
    clock.now += DAY
    assert await jobs.remind() == 0


async def test_retention_deletes_closed_cases_drafts_and_idle_sessions_then_vacuums(
    setup: tuple[App, FakeTransport, SafetyJobs, Clock],
) -> None:
    app, transport, jobs, clock = setup
    case = await submit_report(FakeUser(app, transport, "r-3"))
    await staff_says(app, transport, "staff-alice", f"/close {case} done")
    drafter = FakeUser(app, transport, "r-4")
    await start_report(drafter)
    await drafter.say("an abandoned answer")
    assert await _count(app, "SELECT count(*) FROM cases") == 2

    assert await jobs.purge() == 0, "nothing is old yet"
    clock.now += 8 * DAY
    assert await jobs.purge() == 1, "the abandoned draft goes after a week"
    await drafter.say("/start")
    assert "Continue the report" not in drafter.labels(), "its session forgot the draft"
    clock.now += 90 * DAY
    assert await jobs.purge() >= 1
    assert await _count(app, "SELECT count(*) FROM cases") == 0
    assert await _count(app, "SELECT count(*) FROM case_items") == 0
    assert await _count(app, "SELECT count(*) FROM case_reporters") == 0
    assert await _count(app, "PRAGMA freelist_count") == 0, "VACUUM left no free pages"
    clock.now += 200 * DAY
    await jobs.purge()
    assert await _count(app, "SELECT count(*) FROM sessions") == 0, "idle sessions expire"
