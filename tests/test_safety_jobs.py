"""Timed safety jobs: old data is really purged (escalation: tests/test_escalation.py)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import bot.safety.retention
from bot.app import App
from bot.content.library import Library
from bot.conversation.sessions import EXPIRED
from bot.crypto.keys import PrivateKey
from bot.safety.jobs import SafetyJobs
from bot.safety.retention import Cutoffs, Purged, Retention
from bot.storage.database import Connection
from tests.conftest_storage import TEST_KEY, OpenDatabase
from tests.fakes import FakeTransport, FakeUser
from tests.reporting import (
    STAFF_ROOM,
    staff_key,
    staff_says,
    start_report,
    submit_report,
)

pytestmark = pytest.mark.backends
DAY = 86_400
EXPIRED_TEXT = "deleted because it was left for too long"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def setup(
    open_database: OpenDatabase, tmp_path: Path, library: Library
) -> AsyncIterator[tuple[App, FakeTransport, SafetyJobs, Clock]]:
    db = await open_database("j")
    app = await App.open(db, library, staff_rooms=(STAFF_ROOM,), exports=tmp_path / "exports")
    transport = FakeTransport()
    app.attach(transport)
    await app.casework.store.add_staff(
        "Alice", [staff_key(app, "staff-alice")], PrivateKey.generate().public
    )
    clock = Clock()
    jobs = SafetyJobs(
        db,
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
    if app.db.sqlite:  # PostgreSQL leaves the space to autovacuum
        assert await _count(app, "PRAGMA freelist_count") == 0, "VACUUM left no free pages"
    clock.now += 200 * DAY
    await jobs.purge()
    assert await _count(app, "SELECT count(*) FROM sessions") == 0, "idle sessions expire"


async def _draft(app: App, transport: FakeTransport, who: str) -> FakeUser:
    """A reporter who answered the first question of a report, then left it."""
    person = FakeUser(app, transport, who)
    await start_report(person)
    assert "Saved and locked" in (await person.say(f"an answer from {who}")).text
    return person


async def _state(app: App, person: FakeUser) -> dict[str, object]:
    key = app.pseudonyms.user("fake", person.platform_id).key

    def read(conn: Connection) -> str:
        row = conn.execute("SELECT state FROM sessions WHERE user_key = ?", (key,)).fetchone()
        return conn.unseal("sessions.state", str(row[0]))

    return dict(json.loads(await app.db.run(read)))


async def test_a_reporter_whose_draft_was_purged_is_told_so_and_nothing_is_saved(
    setup: tuple[App, FakeTransport, SafetyJobs, Clock],
) -> None:
    app, transport, jobs, clock = setup
    person = await _draft(app, transport, "r-5")
    clock.now += 8 * DAY
    assert await jobs.purge() == 1
    reply = await person.say("the second answer, typed after a week")
    assert EXPIRED_TEXT in reply.text
    assert "Saved" not in reply.text
    assert "Report a risk" in " ".join(person.labels()), "back on the menu"
    assert EXPIRED not in await _state(app, person), "told once"
    again = await person.press("Report a risk")
    assert EXPIRED_TEXT not in again.text
    assert "Start the report" in " ".join(person.labels()), "a new report can begin"


async def test_a_press_on_the_purged_reports_review_screen_sends_nothing(
    setup: tuple[App, FakeTransport, SafetyJobs, Clock],
) -> None:
    app, transport, jobs, clock = setup
    person = await _draft(app, transport, "r-6")
    for _ in range(6):
        await person.press("Skip")
    assert "Send the report" in " ".join(person.labels())
    clock.now += 8 * DAY
    assert await jobs.purge() == 1
    reply = await person.press("Send the report")
    assert EXPIRED_TEXT in reply.text
    assert "HRD-" not in reply.text, "no case number: nothing was sent"
    assert await _count(app, "SELECT count(*) FROM cases") == 0


async def test_a_user_elsewhere_in_the_menu_is_told_and_their_message_is_handled(
    setup: tuple[App, FakeTransport, SafetyJobs, Clock],
) -> None:
    app, transport, jobs, clock = setup
    person = await _draft(app, transport, "r-7")
    await person.say("/menu")
    clock.now += 8 * DAY
    await jobs.purge()
    reply = await person.press("Report a risk")
    assert EXPIRED_TEXT in reply.text
    assert "Start the report" in " ".join(person.labels()), "the press was obeyed too"


async def test_a_save_racing_the_purge_cannot_bring_the_draft_back(
    setup: tuple[App, FakeTransport, SafetyJobs, Clock],
) -> None:
    """A message being handled while its draft is purged saves a stale session afterwards."""
    app, transport, jobs, clock = setup
    person = await _draft(app, transport, "r-8")
    stale = await app.sessions.load(app.pseudonyms.user("fake", "r-8"))
    stale.state["page"] = 1  # the handler changed something, so the save is written
    clock.now += 8 * DAY
    await jobs.purge()
    await app.sessions.save(stale)
    state = await _state(app, person)
    assert "report" not in state
    assert state[EXPIRED] is True
    assert EXPIRED_TEXT in (await person.say("hello?")).text


async def test_exports_of_purged_cases_go_with_them_and_check_ins_outlive_them(
    setup: tuple[App, FakeTransport, SafetyJobs, Clock], tmp_path: Path
) -> None:
    app, transport, jobs, clock = setup
    reporter = FakeUser(app, transport, "r-9")
    case = await submit_report(reporter)
    kept = await submit_report(FakeUser(app, transport, "r-10"))
    assert await app.checkins.schedule(app.pseudonyms.user("fake", "r-9"), reporter.chat, 6)
    for one in (case, kept):
        await staff_says(app, transport, "staff-alice", f"/export {one}")
    exports = tmp_path / "exports"
    assert (exports / f"{case}.bundle.json").exists()
    other = exports / "notes.txt"
    other.write_text("not an export")
    await staff_says(app, transport, "staff-alice", f"/close {case} done")
    clock.now += 91 * DAY
    await staff_says(app, transport, "staff-alice", f"/ack {kept}")
    await app.db.run(
        lambda conn: conn.execute("UPDATE cases SET updated_at = ? WHERE id = ?", (clock.now, kept))
    )
    assert await jobs.purge() == 1
    linked = "SELECT count(*) FROM checkins WHERE case_id IS NULL"
    assert await _count(app, linked) == 1, "the person's check-ins run on, linked to nothing"
    assert not (exports / f"{case}.bundle.json").exists(), "the export went with its case"
    assert (exports / f"{kept}.bundle.json").exists(), "an open case keeps its export"
    assert other.exists(), "files that are not exports are not touched"


class Killed(Exception):
    """Stands for the process dying after a batch was committed."""


async def test_a_purge_killed_midway_resumes_where_it_stopped(
    setup: tuple[App, FakeTransport, SafetyJobs, Clock],
    open_database: OpenDatabase,
    tmp_path: Path,
    library: Library,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, transport, jobs, clock = setup
    monkeypatch.setattr(bot.safety.retention, "FIRST_BATCH", 2)
    monkeypatch.setattr(bot.safety.retention, "MAX_BATCH", 2)
    people = [await _draft(app, transport, f"k-{i}") for i in range(5)]
    closed = await submit_report(FakeUser(app, transport, "k-closed"))
    await staff_says(app, transport, "staff-alice", f"/export {closed}")
    await staff_says(app, transport, "staff-alice", f"/close {closed} done")
    stray = tmp_path / "exports" / "HRD-AAAA-AAAA.bundle.json"
    stray.write_text("{}")

    def die(purged: Purged) -> None:
        app.casework.forget_drafts(purged.cases)
        raise Killed

    now = int(clock.now) + 91 * DAY
    cutoffs = Cutoffs(now - 90 * DAY, now - 7 * DAY, now - 180 * DAY)
    with pytest.raises(Killed):
        await Retention(app.db, on_batch=die, exports=tmp_path / "exports").purge(cutoffs)
    assert await _count(app, "SELECT count(*) FROM cases WHERE state = 'draft'") == 3
    expired = [EXPIRED in await _state(app, p) for p in people]
    assert expired.count(True) == 2, "the committed batch ended its sessions' references"

    db = await open_database("j")  # a restart: memory is new
    try:
        restarted = await App.open(db, library, exports=tmp_path / "exports")
        jobs = SafetyJobs(
            db,
            clock=lambda: now,
            casework=restarted.casework,
            sessions=restarted.sessions,
        )
        assert await jobs.purge() == 4, "the three drafts left and the closed case"
        assert await _count(restarted, "SELECT count(*) FROM cases") == 0
        assert not list((tmp_path / "exports").iterdir()), "the export and the stray file went"
        for person in people:
            assert "report" not in await _state(restarted, person)
            person.app = restarted
            assert EXPIRED_TEXT in (await person.say("still there?")).text
    finally:
        await db.close()


KILLED_CHILD = """
import asyncio, sys, time
from pathlib import Path
import bot.safety.retention
from bot.safety.retention import Cutoffs, Retention
from bot.storage import Database, DbKey

bot.safety.retention.FIRST_BATCH = bot.safety.retention.MAX_BATCH = 2

def told(purged):
    print("committed", len(purged.cases), flush=True)
    time.sleep(60)  # the parent kills the process here, after the first batch

async def main():
    where, key = sys.argv[1], DbKey(sys.argv[2])
    if where.startswith("postgresql:"):
        db = await Database.open_postgres(where, key)
    else:
        db = await Database.open(Path(where), key)
    await Retention(db, on_batch=told).purge(Cutoffs(0, int(sys.argv[3]), 0))

asyncio.run(main())
"""


async def test_a_purge_process_killed_after_a_batch_resumes_at_the_next_start(
    open_database: OpenDatabase, database_url: str | None, tmp_path: Path, library: Library
) -> None:
    db = await open_database("kill")
    app = await App.open(db, library)
    transport = FakeTransport()
    app.attach(transport)
    await app.casework.store.add_staff(
        "Alice", [staff_key(app, "staff-alice")], PrivateKey.generate().public
    )
    people = [await _draft(app, transport, f"sk-{i}") for i in range(6)]
    await db.close()

    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        KILLED_CHILD,
        database_url or str(tmp_path / "data" / "kill.db"),
        TEST_KEY.value,
        str(int(time.time()) + 10),
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    line = await asyncio.wait_for(child.stdout.readline(), timeout=60)
    child.kill()
    await child.wait()
    assert line.split() == [b"committed", b"2"]

    db = await open_database("kill")
    try:
        app = await App.open(db, library)
        assert await _count(app, "SELECT count(*) FROM cases WHERE state = 'draft'") == 4
        expired = [EXPIRED in await _state(app, p) for p in people]
        assert expired.count(True) == 2, "the killed run's batch is whole: cases and sessions"
        jobs = SafetyJobs(
            db,
            clock=lambda: time.time() + 8 * DAY,
            casework=app.casework,
            sessions=app.sessions,
        )
        assert await jobs.purge() == 4
        for person in people:
            state = await _state(app, person)
            assert "report" not in state and state[EXPIRED] is True
    finally:
        await db.close()


async def test_a_message_during_a_purge_waits_behind_one_batch_at_most(
    setup: tuple[App, FakeTransport, SafetyJobs, Clock], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, transport, jobs, clock = setup
    monkeypatch.setattr(bot.safety.retention, "FIRST_BATCH", 2)
    monkeypatch.setattr(bot.safety.retention, "MAX_BATCH", 2)
    for i in range(10):
        await _draft(app, transport, f"w-{i}")
    clock.now += 8 * DAY
    purge = asyncio.create_task(jobs.purge())
    await asyncio.sleep(0)
    behind = []
    while not purge.done():  # a message's work: several trips, one after another
        trips = len(jobs.retention.last.trips)
        for _ in range(3):
            await app.db.run(lambda conn: conn.execute("SELECT 1").fetchone())
        behind.append(len(jobs.retention.last.trips) - trips)
        await asyncio.sleep(0.002)
    assert await purge == 10
    assert jobs.retention.last.batches >= 5
    assert len(behind) > 5 and max(behind) <= 1, "it waited behind one batch at most"


async def test_a_database_made_before_incremental_vacuum_is_switched_by_its_first_purge(
    setup: tuple[App, FakeTransport, SafetyJobs, Clock], backend: str
) -> None:
    if backend == "postgres":
        pytest.skip("auto_vacuum is a SQLite file setting; PostgreSQL has autovacuum")
    app, transport, jobs, clock = setup

    def as_before(conn: Connection) -> None:
        conn.execute("PRAGMA auto_vacuum = NONE")
        conn.execute("VACUUM")

    await app.db.run(as_before)
    assert await _count(app, "PRAGMA auto_vacuum") == 0
    await _draft(app, transport, "old-db")
    clock.now += 8 * DAY
    assert await jobs.purge() == 1
    assert await _count(app, "PRAGMA auto_vacuum") == 2
    assert await _count(app, "PRAGMA freelist_count") == 0
