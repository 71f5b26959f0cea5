"""Safety check-ins: asked on schedule, answered, missed (staff alerted), stopped, forgotten."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import sqlcipher3

from bot.app import App
from bot.cases.claims import CLAIM
from bot.cases.views import CheckinPlan
from bot.cases.words import CheckinAlert
from bot.content.library import Library
from bot.crypto.bundle import open_bundle
from bot.delivery.outbox import Staged
from bot.model import ChatRef
from bot.safety.checkin_times import next_daily, parse_clock, parse_zone
from bot.safety.checkins import Checkins
from bot.storage.database import Connection
from tests.conftest_storage import OpenDatabase
from tests.fakes import FakeTransport, FakeUser
from tests.reporting import STAFF_ROOM, Team, room_messages, staff_says, submit_report
from tests.test_claim import claim

pytestmark = pytest.mark.backends
NOTE = "CANARY-NOTE: meeting at the lawyer's office, call Sara if I miss this"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def _with_checkins(app: App, transport: FakeTransport) -> tuple[FakeUser, Checkins, Clock]:
    clock = Clock()
    app.checkins = Checkins(app.db, app.casework, app.push, clock=clock)
    person = FakeUser(app, transport, "checked")
    await submit_report(person)
    await person.press("Safety check-ins")
    on = await person.press("Every 2 hours")
    assert "first question comes in 2 hours" in on.text
    return person, app.checkins, clock


async def test_check_in_is_asked_answered_and_rescheduled(
    team_app: tuple[App, Team], reporter: FakeUser, transport: FakeTransport
) -> None:
    app, _ = team_app
    person, checkins, clock = await _with_checkins(app, transport)
    assert await checkins.tick() == (0, 0), "not due yet"
    await app.outbox.drain()
    clock.now += 2 * 3600
    assert await checkins.tick() == (1, 0)
    await app.outbox.drain()
    asked = room_messages(transport, person.chat)[-1]
    assert "are you safe right now?" in asked.text and asked.sensitive
    thanks = await person.press("I am safe")
    assert "The team is not alerted" in thanks.text
    assert "How can I help" in thanks.text, "back where they were"
    clock.now += 3600
    assert await checkins.tick() == (0, 0), "the next one is two hours after the answer"
    await app.outbox.drain()


async def test_a_missed_check_in_alerts_staff_once(
    team_app: tuple[App, Team], reporter: FakeUser, transport: FakeTransport
) -> None:
    app, _ = team_app
    _, checkins, clock = await _with_checkins(app, transport)
    clock.now += 2 * 3600
    await checkins.tick()
    await app.outbox.drain()
    clock.now += 31 * 60
    assert await checkins.tick() == (0, 1)
    await app.outbox.drain()
    alert = room_messages(transport, STAFF_ROOM)[-1].text
    assert "check-in was not answered for 31 minutes" in alert
    assert await checkins.tick() == (0, 0), "alerted once"
    await app.outbox.drain()


async def test_asking_for_help_alerts_staff_and_raises_urgency(
    team_app: tuple[App, Team], reporter: FakeUser, transport: FakeTransport
) -> None:
    app, _ = team_app
    person, checkins, clock = await _with_checkins(app, transport)
    clock.now += 2 * 3600
    await checkins.tick()
    await app.outbox.drain()
    reply = await person.press("I need help now")
    assert "has been alerted" in reply.text
    assert "I need help now" in room_messages(transport, STAFF_ROOM)[-1].text
    cases = await app.casework.open_cases()
    assert cases[0].urgency == "critical"


async def test_closing_the_case_leaves_the_persons_check_ins_running(
    team_app: tuple[App, Team], reporter: FakeUser, transport: FakeTransport
) -> None:
    """Check-ins are the person's, not the case's: staff closing the case must not stop
    them unseen. A later "I need help now" opens a new critical case and is alerted."""
    app, _ = team_app
    person, checkins, clock = await _with_checkins(app, transport)
    case = (await app.casework.open_cases())[0].id
    assert "closed" in await staff_says(app, transport, "staff-alice", f"/close {case} safe")
    left = await app.db.run(lambda c: c.execute("SELECT case_id FROM checkins").fetchall())
    assert [tuple(r) for r in left] == [(None,)], "still running, linked to no case"
    clock.now += 2 * 3600
    await checkins.tick()
    await app.outbox.drain()
    asked = room_messages(transport, person.chat)[-1]
    assert "are you safe right now?" in asked.text
    reply = await person.press_id(next(c.id for c in asked.choices if "help" in c.label))
    assert "could not alert" not in reply.text
    await app.outbox.drain()
    opened = await app.casework.open_cases()
    assert len(opened) == 1 and opened[0].id != case and opened[0].urgency == "critical"
    assert any(opened[0].id in m.text for m in room_messages(transport, STAFF_ROOM))


async def test_check_ins_need_no_report_and_stop_on_request_or_forget(
    team_app: tuple[App, Team], reporter: FakeUser, transport: FakeTransport
) -> None:
    app, _ = team_app
    await reporter.say("/start")
    await reporter.press("English")
    await reporter.press("Safety check-ins")
    started = await reporter.press("Every 6 hours")
    assert "first question comes in 6 hours" in started.text
    assert await app.checkins.every(app.pseudonyms.user("fake", "reporter-1")) == 6
    await reporter.press("Safety check-ins")
    assert "stopped" in (await reporter.press("Stop check-ins")).text
    person, checkins, clock = await _with_checkins(app, transport)
    await person.press("Safety check-ins")
    assert "every 2 hours" in person.last.text
    stopped = await person.press("Stop check-ins")
    assert "stopped" in stopped.text
    assert await checkins.every(app.pseudonyms.user("fake", "checked")) is None
    await person.press("Safety check-ins")
    await person.press("Every 24 hours")
    await person.say("/forget")
    await person.press("Yes, delete everything")
    clock.now += 25 * 3600
    assert await checkins.tick() == (0, 0), "/forget removed the check-ins"
    await app.outbox.drain()


def _at(text: str) -> float:
    """An instant written in UTC, e.g. "2026-03-07 12:00"."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


async def _fresh(app: App, transport: FakeTransport, at: str) -> tuple[FakeUser, Clock]:
    """Someone with no report at the main menu; check-ins on a fixed clock."""
    clock = Clock()
    clock.now = _at(at)
    app.checkins = Checkins(app.db, app.casework, app.push, clock=clock)
    app.attach(transport)
    person = FakeUser(app, transport, "no-report")
    await person.say("/start")
    await person.press("English")
    return person, clock


async def _plan(app: App, person: FakeUser) -> CheckinPlan:
    found = await app.checkins.plan(app.pseudonyms.user("fake", person.platform_id))
    assert found is not None
    return found


async def test_a_daily_time_in_the_activists_time_zone(
    team_app: tuple[App, Team], transport: FakeTransport
) -> None:
    app, _ = team_app
    person, clock = await _fresh(app, transport, "2026-03-10 12:00")
    await person.press("Safety check-ins")
    asked = await person.press("Every day at a time I choose")
    assert "Which time zone are you in?" in asked.text
    assert "I do not know that time zone" in (await person.say("Mars/Olympus")).text
    timed = await person.say("asia/kolkata")
    assert "At what time each day" in timed.text and "Asia/Kolkata" in timed.text
    assert "Please type a time like 18:00" in (await person.say("25:99")).text
    on = await person.say("18:00")
    assert "every day at 18:00 (Asia/Kolkata)" in on.text
    plan = await _plan(app, person)
    assert plan.next_at == _at("2026-03-10 12:30"), "18:00 in India is 12:30 UTC"
    clock.now = _at("2026-03-10 12:29")
    assert await app.checkins.tick() == (0, 0)
    clock.now = _at("2026-03-10 12:30")
    assert await app.checkins.tick() == (1, 0)
    await app.outbox.drain()
    clock.now = _at("2026-03-10 12:40")
    assert "The team is not alerted" in (await person.press("I am safe")).text
    assert (await _plan(app, person)).next_at == _at("2026-03-11 12:30"), "the next evening"


async def test_a_daily_time_keeps_the_local_hour_across_dst_changes(
    team_app: tuple[App, Team], transport: FakeTransport
) -> None:
    """New York moves to summer time on 8 March 2026 and back on 1 November 2026: the
    question stays at 18:00 local, so its UTC moment moves by an hour each time."""
    app, _ = team_app
    person, clock = await _fresh(app, transport, "2026-03-07 12:00")
    user = app.pseudonyms.user("fake", person.platform_id)
    await app.checkins.schedule(user, person.chat, daily_at=18 * 60, zone="America/New_York")
    expected = [
        "2026-03-07 23:00",  # EST, UTC-5
        "2026-03-08 22:00",  # EDT, UTC-4, the day the clocks change
        "2026-03-09 22:00",
    ]
    for due in expected:
        assert (await _plan(app, person)).next_at == _at(due)
        clock.now = _at(due) - 60
        assert await app.checkins.tick() == (0, 0)
        clock.now = _at(due)
        assert await app.checkins.tick() == (1, 0)
        clock.now += 300
        await app.checkins.answered(user, safe=True)
    await app.outbox.drain()
    clock.now = _at("2026-10-31 23:00")
    await app.checkins.pause(user, False)
    assert (await _plan(app, person)).next_at == _at("2026-11-01 23:00"), "EST again"


async def test_every_n_hours_and_a_zone_typed_as_an_offset_remembered_and_forgotten(
    team_app: tuple[App, Team], transport: FakeTransport
) -> None:
    app, _ = team_app
    person, clock = await _fresh(app, transport, "2026-06-01 08:00")
    await person.press("Safety check-ins")
    assert "first question comes in 6 hours" in (await person.press("Every 6 hours")).text
    assert (await _plan(app, person)).next_at == clock.now + 6 * 3600
    await person.press("Safety check-ins")
    await person.press("Every day at a time I choose")
    await person.say("UTC+3")
    on = await person.press("Every day at 21:00")
    assert "every day at 21:00 (UTC+03:00)" in on.text
    assert (await _plan(app, person)).next_at == _at("2026-06-01 18:00")
    await person.press("Safety check-ins")
    again = await person.press("Every day at a time I choose")
    assert "At what time each day" in again.text, "the time zone is remembered"
    await person.press("Back")
    await person.press("Change time zone")
    changed = await person.press("UTC")
    assert "Time zone set: UTC." in changed.text and "every day at 21:00 (UTC)" in changed.text
    assert (await _plan(app, person)).next_at == _at("2026-06-01 21:00"), "moved with the zone"
    await person.say("/forget")
    await person.press("Yes, delete everything")
    await person.say("/start")
    await person.press("English")
    await person.press("Safety check-ins")
    forgotten = await person.press("Every day at a time I choose")
    assert "Which time zone are you in?" in forgotten.text, "/forget took the zone"


async def test_pause_and_resume(team_app: tuple[App, Team], transport: FakeTransport) -> None:
    app, _ = team_app
    person, clock = await _fresh(app, transport, "2026-06-01 08:00")
    await person.press("Safety check-ins")
    await person.press("Every 2 hours")
    await person.press("Safety check-ins")
    paused = await person.press("Pause check-ins")
    assert "Check-ins are paused" in paused.text and "They are paused" in paused.text
    clock.now += 5 * 3600
    assert await app.checkins.tick() == (0, 0), "nothing is asked while paused"
    resumed = await person.press("Resume check-ins")
    assert "Check-ins are on again." in resumed.text
    assert (await _plan(app, person)).next_at == clock.now + 2 * 3600, "from the resume"
    clock.now += 2 * 3600
    assert await app.checkins.tick() == (1, 0)
    await app.outbox.drain()


async def test_a_missed_check_in_without_a_case_opens_a_critical_case(
    team_app: tuple[App, Team], transport: FakeTransport
) -> None:
    app, team = team_app
    person, clock = await _fresh(app, transport, "2026-06-01 08:00")
    await person.press("Safety check-ins")
    await person.press("Every 2 hours")
    assert await app.casework.open_cases() == []
    clock.now += 2 * 3600
    assert await app.checkins.tick() == (1, 0)
    clock.now += 31 * 60

    def queued(conn: Connection) -> list[tuple[str, str]]:
        found = conn.execute("SELECT kind, case_id FROM outbox WHERE kind = 'checkin'")
        return [(str(k), str(c)) for k, c in found.fetchall() if c is not None]

    assert await app.checkins.tick() == (0, 1)
    cases = await app.casework.open_cases()
    assert len(cases) == 1 and cases[0].urgency == "critical"
    rooms = len(app.casework.alert_rooms)
    assert await app.db.run(queued) == [("checkin", cases[0].id)] * rooms, "queued with it"
    await app.outbox.drain()
    alert = room_messages(transport, STAFF_ROOM)[-1]
    assert f"New case {cases[0].id}" in alert.text and "31 minutes" in alert.text
    assert alert.urgent
    opened = open_bundle(await app.casework.store.export_bundle(cases[0].id), team.alice)
    assert "checkin.missed" in [entry.action for entry, _ in opened.audit]
    assert await app.checkins.tick() == (0, 0), "alerted once"
    await app.outbox.drain()


async def test_i_need_help_without_a_case_raises_an_urgent_alert(
    team_app: tuple[App, Team], transport: FakeTransport
) -> None:
    app, _ = team_app
    person, clock = await _fresh(app, transport, "2026-06-01 08:00")
    await person.press("Safety check-ins")
    await person.press("Every 2 hours")
    clock.now += 2 * 3600
    await app.checkins.tick()
    await app.outbox.drain()
    reply = await person.press("I need help now")
    assert "has been alerted" in reply.text
    cases = await app.casework.open_cases()
    assert len(cases) == 1 and cases[0].urgency == "critical"
    assert "SOS" in room_messages(transport, STAFF_ROOM)[-1].text


async def test_a_note_for_the_team_is_sealed_to_the_case(
    team_app: tuple[App, Team], reporter: FakeUser, transport: FakeTransport
) -> None:
    app, team = team_app
    person, _, _ = await _with_checkins(app, transport)
    await person.press("Safety check-ins")
    asked = await person.press("Add a note for the team")
    assert "sealed to your case" in asked.text
    assert "too long" in (await person.say("x" * 1001)).text
    saved = await person.say(NOTE)
    case = (await app.casework.open_cases())[0].id
    assert f"Your note is sealed to case {case}" in saved.text
    opened = open_bundle(await app.casework.store.export_bundle(case), team.alice)
    assert NOTE.encode() in [item.data for item in opened.items if item.field == "checkin.note"]
    await app.outbox.drain()
    assert not any(NOTE in r.text for r in room_messages(transport, STAFF_ROOM))

    other, _ = await _fresh(app, transport, "2026-06-01 08:00")
    await other.press("Safety check-ins")
    await other.press("Every 2 hours")
    await other.press("Safety check-ins")
    await other.press("Add a note for the team")
    refused = await other.say(NOTE)
    assert "you have no open case, so nothing was saved" in refused.text


async def test_a_restart_keeps_schedules(open_database: OpenDatabase, library: Library) -> None:
    clock = Clock()
    clock.now = _at("2026-06-01 08:00")
    transport = FakeTransport()
    db = await open_database()
    app = await App.open(db, library)
    app.attach(transport)
    person = FakeUser(app, transport, "k-1")
    user = app.pseudonyms.user("fake", person.platform_id)
    app.checkins = Checkins(app.db, app.casework, app.push, clock=clock)
    await app.checkins.schedule(user, person.chat, daily_at=9 * 60, zone="Europe/Madrid")
    await app.checkins.set_duress(user, "Kingfisher")
    await app.outbox.close()
    await db.close()

    db = await open_database()
    app = await App.open(db, library)
    app.attach(transport)
    try:
        checkins = Checkins(app.db, app.casework, app.push, clock=clock)
        plan = await checkins.plan(user)
        assert plan is not None and plan.daily_at == 9 * 60 and plan.duress
        assert plan.zone == "Europe/Madrid" and plan.next_at == _at("2026-06-02 07:00")
    finally:
        await app.outbox.close()
        await db.close()


async def test_the_time_zone_screen_offers_the_zones_of_the_persons_country(
    team_app: tuple[App, Team], transport: FakeTransport
) -> None:
    app, _ = team_app
    person, _ = await _fresh(app, transport, "2026-06-01 08:00")
    await person.press("People who can help")
    await person.press_id("need:physical")
    await person.say("Mexico")
    await person.press("Main menu")
    await person.press("Safety check-ins")
    offered = await person.press("Every day at a time I choose")
    assert "America/Mexico_City" in person.labels() and "UTC" in person.labels()
    assert "Which time zone are you in?" in offered.text
    timed = await person.press("America/Mexico_City")
    assert "time zone: America/Mexico_City" in timed.text


def test_typed_zones_and_times() -> None:
    assert parse_zone("europe/istanbul") == "Europe/Istanbul"
    assert parse_zone("America/Sao Paulo") == "America/Sao_Paulo"
    assert parse_zone("UTC+3") == "UTC+03:00"
    assert parse_zone("gmt -4:30") == "UTC-04:30"
    assert parse_zone("+0545") == "UTC+05:45"
    assert parse_zone("utc") == "UTC"
    assert parse_zone("UTC+15") is None and parse_zone("Nowhere/City") is None
    assert [parse_clock(t) for t in ("18:00", "7", "18h30", "07.05")] == [1080, 420, 1110, 425]
    assert parse_clock("24:00") is None and parse_clock("six") is None


def test_a_daily_time_on_the_days_the_clocks_change() -> None:
    """A time the spring change skips comes an hour later that day; a time the autumn
    change repeats comes once, the first time."""
    ny = "America/New_York"
    assert next_daily(_at("2026-03-08 05:00"), 150, ny) == _at("2026-03-08 07:30")
    assert next_daily(_at("2026-11-01 04:00"), 90, ny) == _at("2026-11-01 05:30")
    assert next_daily(_at("2026-11-01 05:30"), 90, ny) == _at("2026-11-02 06:30")
    assert next_daily(_at("2026-06-01 08:00"), 9 * 60, "UTC-04:30") == _at("2026-06-01 13:30")


async def test_a_missed_check_in_that_fails_midway_opens_nothing_and_is_retried(
    team_app: tuple[App, Team], transport: FakeTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The case, its audit, its alerts and "alerted" are one transaction: all or nothing."""
    app, _ = team_app
    person, clock = await _fresh(app, transport, "2026-06-01 08:00")
    await person.press("Safety check-ins")
    await person.press("Every 2 hours")
    clock.now += 2 * 3600
    await app.checkins.tick()
    await app.outbox.drain()
    clock.now += 40 * 60

    def broken(self: Staged, conn: Connection) -> None:
        raise sqlcipher3.OperationalError("disk I/O error")

    monkeypatch.setattr(Staged, "write", broken)
    with pytest.raises(sqlcipher3.OperationalError):
        await app.checkins.tick()
    monkeypatch.undo()

    def counts(conn: Connection) -> tuple[int, int, int]:
        cases = conn.execute("SELECT count(*) FROM cases").fetchone()[0]
        queued = conn.execute("SELECT count(*) FROM outbox WHERE case_id IS NOT NULL").fetchone()
        alerted = conn.execute("SELECT count(*) FROM checkins WHERE alerted_at IS NOT NULL")
        return int(cases), int(queued[0]), int(alerted.fetchone()[0])

    assert await app.db.run(counts) == (0, 0, 0)
    assert await app.checkins.tick() == (0, 1), "the next run goes through"
    assert await app.db.run(counts) == (1, len(app.casework.alert_rooms), 1)
    await app.outbox.drain()


async def test_pausing_check_ins_that_ended_meanwhile_says_they_are_stopped(
    team_app: tuple[App, Team], reporter: FakeUser, transport: FakeTransport
) -> None:
    app, _ = team_app
    person, _, _ = await _with_checkins(app, transport)
    await person.press("Safety check-ins")
    await app.db.run(lambda c: c.execute("DELETE FROM checkins"))  # ended by another path
    reply = await person.press("Pause check-ins")
    assert "Check-ins are stopped." in reply.text and "paused" not in reply.text


async def test_a_missed_check_in_alert_is_claimed_with_one_tap(
    team_app: tuple[App, Team], reporter: FakeUser, transport: FakeTransport
) -> None:
    app, _ = team_app
    _, checkins, clock = await _with_checkins(app, transport)
    clock.now += 2 * 3600
    await checkins.tick()
    clock.now += 31 * 60
    await checkins.tick()
    await app.outbox.drain()
    alert = next(
        str(index + 1)
        for index, (chat, reply) in enumerate(transport.sent)
        if chat == STAFF_ROOM and "check-in was not answered" in reply.text
    )
    said = await claim(app, "staff-alice", alert)
    assert "claimed by Alice" in said


async def test_a_missed_check_in_alert_offers_the_claim_button_only_in_staff_rooms(
    open_database: OpenDatabase, library: Library
) -> None:
    group = ChatRef("telegram", "-1001234", private=False)
    oncall = ChatRef("telegram", "5550001")
    db = await open_database()
    app = await App.open(db, library, staff_rooms=(group,), oncall=(oncall,))
    try:
        checkins = Checkins(app.db, app.casework, app.push)
        said = CheckinAlert("HRD-TEST", "help")
        offered = {
            room.address: [c.id for c in checkins._worded(said, room).choices]
            for room in (group, oncall)
        }
        assert offered == {group.address: [CLAIM], oncall.address: []}
    finally:
        await app.outbox.close()
        await db.close()
