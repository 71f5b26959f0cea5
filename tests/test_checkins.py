"""Safety check-ins: asked on schedule, answered, missed (staff alerted), stopped, forgotten."""

from __future__ import annotations

import time

from bot.app import App
from bot.checkins import Checkins
from tests.fakes import FakeTransport, FakeUser
from tests.reporting import STAFF_ROOM, Team, room_messages, staff_says, submit_report


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


async def test_asking_for_help_after_the_case_closed_never_claims_an_alert(
    team_app: tuple[App, Team], reporter: FakeUser, transport: FakeTransport
) -> None:
    """The question was asked, then staff closed the case (its check-ins go with it):
    "I need help now" reaches nobody, so the person is told so and where to turn."""
    app, _ = team_app
    person, checkins, clock = await _with_checkins(app, transport)
    clock.now += 2 * 3600
    await checkins.tick()
    await app.outbox.drain()
    case = (await app.casework.open_cases())[0].id
    assert "closed" in await staff_says(app, transport, "staff-alice", f"/close {case} safe")
    left = await app.db.run(lambda c: c.execute("SELECT count(*) FROM checkins").fetchone())
    assert left == (0,), "the check-in and its chat address went with the close"
    await checkins.tick()
    await app.outbox.drain()
    staff_before = len(room_messages(transport, STAFF_ROOM))
    asked = room_messages(transport, person.chat)[-1]
    assert "are you safe right now?" in asked.text
    reply = await person.press_id(next(c.id for c in asked.choices if "help" in c.label))
    assert "has been alerted" not in reply.text
    assert "could not alert the protection team" in reply.text
    assert "People who can help" in reply.text
    assert len(room_messages(transport, STAFF_ROOM)) == staff_before


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
