"""SOS through the fake transport: menu, confirmation, critical case, message, location,
staff rooms (the value of a location only in the encrypted all-staff room), the flood
guard, and the outbox lane's priority."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import sqlcipher3

from bot.app import App
from bot.cases.store import SYSTEM
from bot.content.library import Library
from bot.conversation.flood import FloodGuard
from bot.crypto.bundle import open_bundle
from bot.delivery import Outcome, Reason, Undelivered
from bot.delivery.outbox import Outgoing, Staged
from bot.model import ChatRef, Location, Reply
from bot.storage.database import Connection
from tests.conftest_storage import OpenDatabase
from tests.fakes import FakeTransport, FakeUser
from tests.reporting import STAFF_ROOM, Team, room_messages, staff_key, submit_report

pytestmark = pytest.mark.backends
PLAIN_ROOM = ChatRef("fake", "telegram-like-group", private=False)
PLACE = Location(4.6097, -74.0817, 25.0)
WORDS = "CANARY-SOS two men at the door"


async def _team(app: App) -> Team:
    team = Team()
    store = app.casework.store
    await store.add_staff("Alice", [staff_key(app, "staff-alice")], team.alice.public)
    await store.set_recovery(team.recovery.public)
    return team


@pytest.fixture
async def rooms_app(
    open_database: OpenDatabase, library: Library
) -> AsyncIterator[tuple[App, Team]]:
    """An encrypted all-staff room and a plain one (a Telegram group, say)."""
    db = await open_database()
    app = await App.open(db, library, staff_rooms=(STAFF_ROOM, PLAIN_ROOM))
    try:
        yield app, await _team(app)
    finally:
        await app.outbox.close()
        await db.close()


@pytest.fixture
def activist(rooms_app: tuple[App, Team], transport: FakeTransport) -> FakeUser:
    app, _ = rooms_app
    app.attach(transport)
    return FakeUser(app, transport, "activist-1")


async def _menu(person: FakeUser, language: str = "English") -> Reply:
    await person.say("/start")
    return await person.press(language)


def _case(text: str) -> str:
    return next(w for w in text.replace("(", " ").replace(")", " ").split() if w.startswith("HRD-"))


async def test_sos_is_first_on_the_main_menu_in_every_language(
    app: App, transport: FakeTransport, library: Library
) -> None:
    app.attach(transport)
    for number, pack in enumerate(sorted(library.packs), 1):
        person = FakeUser(app, transport, f"lang-{number}", hint=pack)
        await person.say("/start")
        menu = await person.press_id(f"lang:{pack}")
        assert menu.choices[0].id == "sos:open"
        assert menu.choices[0].label.strip("\u200f\u200e\u2067\u2069") == (
            library.translator(pack)("menu.sos")
        )


async def test_sos_opens_a_critical_case_and_alerts_at_once(
    rooms_app: tuple[App, Team], activist: FakeUser, transport: FakeTransport
) -> None:
    app, team = rooms_app
    await _menu(activist)
    confirm = await activist.press("I am in danger now")
    assert "Send an urgent alert" in confirm.text
    assert next(c.id for c in confirm.choices) == "sos:confirm"
    assert not room_messages(transport, STAFF_ROOM), "nothing is sent before the confirmation"

    raised = await activist.press("Yes, alert the team now")
    case = _case(raised.text)
    assert f"The protection team has your alert now (case {case})" in raised.text
    assert "What happens now" in raised.text and "Meanwhile" in raised.text
    assert "(1/" not in raised.text, "one screen, no pages"
    assert "Front Line Defenders" in raised.text, "physical-protection contacts are shown"
    assert raised.sensitive and raised.urgent and confirm.urgent, "ahead of other messages"

    for room in (STAFF_ROOM, PLAIN_ROOM):
        (alert,) = room_messages(transport, room)
        assert alert.urgent and f"new case {case}" in alert.text and "critical" in alert.text
    meta = await app.casework.store.case(case)
    assert (meta.state, meta.urgency) == ("new", "critical")

    told = await activist.say(WORDS)
    assert "Your message is sealed, and the team has been told it came." in told.text
    located = await activist.deliver(location=PLACE)
    assert "Your location is sealed, and the team has been told it came." in located.text

    plain = "\n".join(r.text for r in room_messages(transport, PLAIN_ROOM))
    assert "added a message" in plain and "shared a location" in plain
    assert WORDS not in plain and "4.6097" not in plain, "a plain room never gets the content"
    relayed = [r for r in room_messages(transport, STAFF_ROOM) if r.sensitive]
    assert any(f"> {WORDS}" in r.text for r in relayed), "quoted for the encrypted room"
    assert any("> geo:4.609700,-74.081700;u=25" in r.text for r in relayed)

    opened = open_bundle(await app.casework.store.export_bundle(case), team.alice)
    items = {item.field: item.data for item in opened.items}
    assert items["sos.message"] == WORDS.encode()
    assert items["sos.location"] == b"geo:4.609700,-74.081700;u=25"
    assert "sos" in items
    actions = [entry.action for entry, _ in opened.audit]
    assert actions.count("case.sos") == 1 and "sos.message" in actions


async def test_sos_with_an_open_case_makes_it_critical(
    rooms_app: tuple[App, Team], activist: FakeUser, transport: FakeTransport
) -> None:
    app, team = rooms_app
    case = await submit_report(activist)
    await app.casework.store.record_action(case, SYSTEM, "case.route", changes={"urgency": "high"})
    await activist.say("/sos")
    raised = await activist.press("Yes, alert the team now")
    assert _case(raised.text) == case, "no second case is opened"
    meta = await app.casework.store.case(case)
    assert meta.urgency == "critical"
    alert = room_messages(transport, PLAIN_ROOM)[-1]
    assert f"SOS on case {case}" in alert.text and "now critical" in alert.text
    opened = open_bundle(await app.casework.store.export_bundle(case), team.alice)
    last_sos = [entry for entry, _ in opened.audit if entry.action == "case.sos"]
    assert len(last_sos) == 1, "the change is audited (and the log checks)"


async def test_sos_from_the_danger_screen(rooms_app: tuple[App, Team], activist: FakeUser) -> None:
    await _menu(activist)
    await activist.press("digital security problem")
    danger = await activist.press("Yes, I may be in danger")
    assert next(c.id for c in danger.choices if c.id != "nav:more") == "sos:open"
    confirm = await activist.press("alert the team")
    assert "Send an urgent alert" in confirm.text


async def test_sos_when_reporting_is_not_set_up(app: App, transport: FakeTransport) -> None:
    app.attach(transport)
    person = FakeUser(app, transport, "alone")
    await _menu(person)
    screen = await person.press("I am in danger now")
    assert "not set up on this server" in screen.text
    assert "Front Line Defenders" in screen.text
    assert "sos:confirm" not in [c.id for c in screen.choices]


async def test_the_sos_screen_shows_local_people_for_the_country_given_before(
    app: App, transport: FakeTransport
) -> None:
    """Never asked there (someone in danger is not stopped by a question), the country
    given earlier for contacts brings local physical protection first."""
    app.attach(transport)
    person = FakeUser(app, transport, "in-nairobi")
    await _menu(person)
    await person.press("People who can help")
    await person.press("Physical")
    await person.say("Kenya")
    await person.say("/menu")
    screen = await person.press("I am in danger now")
    first = screen.text.split("\n\n")[1]
    assert first.startswith(("National Coalition of Human Rights Defenders", "Peace Brigades"))
    assert "Front Line Defenders" not in screen.text.split("\n\n")[1]


async def test_a_location_outside_an_sos_asks_to_confirm_first(
    rooms_app: tuple[App, Team], activist: FakeUser, transport: FakeTransport
) -> None:
    await _menu(activist)
    screen = await activist.deliver(location=PLACE)
    assert "Confirm the alert below, then send your location again." in screen.text
    assert screen.choices[0].id == "sos:confirm"
    assert not room_messages(transport, STAFF_ROOM)


async def test_a_long_message_is_refused_and_kept_nowhere(
    rooms_app: tuple[App, Team], activist: FakeUser, transport: FakeTransport
) -> None:
    await _menu(activist)
    await activist.say("/sos")
    await activist.press("Yes, alert the team now")
    refused = await activist.say("x" * 1001)
    assert "at most 1000 characters" in refused.text
    assert len(room_messages(transport, PLAIN_ROOM)) == 1, "only the alert"


async def test_the_flood_guard_never_drops_an_sos(
    open_database: OpenDatabase, library: Library
) -> None:
    db = await open_database()
    app = await App.open(db, library, staff_rooms=(PLAIN_ROOM,))
    app.flood = FloodGuard(rate=0.001, burst=5)
    transport = FakeTransport()
    app.attach(transport)
    try:
        await _team(app)
        person = FakeUser(app, transport, "flooder")
        await _menu(person)
        for i in range(10):
            await person.say(f"flood {i}")
        assert "very fast" in person.last.text, "the flood guard is dropping their messages"
        confirm = await person.say("/sos")
        assert "Send an urgent alert" in confirm.text
        await person.say("/menu")  # from the SOS screen, through the SOS bucket
        confirm = await person.say("i am in danger now")  # typed, as on Matrix
        assert "Send an urgent alert" in confirm.text
        raised = await person.say("1")
        assert "has your alert now" in raised.text
        told = await person.say(WORDS)
        assert "Your message is sealed" in told.text, "words typed on the SOS screen pass"
        located = await person.deliver(location=PLACE)
        assert "Your location is sealed" in located.text
    finally:
        await app.outbox.close()
        await db.close()


@dataclass
class GatedTransport(FakeTransport):
    """Sends wait for `gate`: the first message of a lane stays in flight meanwhile."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, chat: ChatRef, reply: Reply, key: str = "") -> tuple[str, ...]:
        await self.gate.wait()
        return await super().send(chat, reply, key)


async def test_an_sos_goes_ahead_of_everything_waiting_in_the_lane(
    open_database: OpenDatabase, library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await open_database()
    app = await App.open(db, library, staff_rooms=(PLAIN_ROOM,))
    transport = GatedTransport(settle=False)
    app.attach(transport)
    queued = asyncio.Event()
    launch = app.outbox.launch

    def launched(staged: Staged) -> asyncio.Future[Outcome]:
        outcome = launch(staged)  # the parcel is in its lane when this returns
        if staged.kind == "sos":
            queued.set()
        return outcome

    monkeypatch.setattr(app.outbox, "launch", launched)
    try:
        await _team(app)
        person = FakeUser(app, transport, "in-danger")
        transport.gate.set()
        await _menu(person)
        transport.gate.clear()
        notices = [Outgoing(PLAIN_ROOM, Reply(f"notice {i}"), "notice") for i in range(10)]
        await app.outbox.post_many(notices)
        await person.say("/sos")
        pressing = asyncio.create_task(person.press("Yes, alert the team now"))
        await asyncio.wait_for(queued.wait(), 30)  # the SOS is queued behind the notice in flight
        transport.gate.set()
        await pressing
        await app.outbox.drain()
        texts = [r.text for r in room_messages(transport, PLAIN_ROOM)]
        assert texts[0] == "notice 0", "the message in flight is not overtaken"
        assert "SOS" in texts[1], texts[:3]
        assert texts[2:] == [f"notice {i}" for i in range(1, 10)]
    finally:
        await app.outbox.close()
        await db.close()


async def test_an_sos_that_fails_midway_leaves_no_case_and_no_alert(
    rooms_app: tuple[App, Team],
    activist: FakeUser,
    transport: FakeTransport,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The case, its audit and its alerts are one transaction: all or nothing."""
    app, _ = rooms_app
    await _menu(activist)
    await activist.say("/sos")

    def broken(self: Staged, conn: Connection) -> None:
        raise sqlcipher3.OperationalError("disk I/O error")

    monkeypatch.setattr(Staged, "write", broken)
    failed = await activist.press("Yes, alert the team now")
    assert "went wrong" in failed.text or "storage" in failed.text.lower()
    monkeypatch.undo()

    def counts(conn: Connection) -> tuple[int, int, int]:
        cases = conn.execute("SELECT count(*) FROM cases").fetchone()[0]
        audit = conn.execute("SELECT count(*) FROM audit WHERE case_id IS NOT NULL").fetchone()
        queued = conn.execute("SELECT count(*) FROM outbox WHERE kind = 'sos'").fetchone()
        return int(cases), int(audit[0]), int(queued[0])

    assert await app.db.run(counts) == (0, 0, 0)
    assert not room_messages(transport, PLAIN_ROOM)
    await activist.say("/sos")
    raised = await activist.press("Yes, alert the team now")
    assert "has your alert now" in raised.text, "the next try goes through"


async def test_an_sos_row_keeps_its_priority_after_a_restart(
    open_database: OpenDatabase, library: Library
) -> None:
    """A restart reads rows back without `Reply.urgent`: the kind keeps them first."""
    db = await open_database()
    app = await App.open(db, library, staff_rooms=(PLAIN_ROOM,))
    transport = GatedTransport(settle=False)
    app.attach(transport)
    try:
        await app.outbox.post_many(
            [Outgoing(PLAIN_ROOM, Reply(f"n{i}"), "notice") for i in range(3)]
        )
        await app.outbox.post(PLAIN_ROOM, Reply("as read back"), kind="sos")
        transport.gate.set()
        await app.outbox.drain()
        texts = [r.text for r in room_messages(transport, PLAIN_ROOM)]
        assert texts == ["n0", "as read back", "n1", "n2"]
    finally:
        await app.outbox.close()
        await db.close()


async def test_the_console_is_not_asked_for_a_location(
    open_database: OpenDatabase, library: Library
) -> None:
    db = await open_database()
    room = ChatRef("console", "staff", private=False)
    app = await App.open(db, library, staff_rooms=(room,))
    transport = FakeTransport(name="console")
    app.attach(transport)
    try:
        await _team(app)
        person = FakeUser(app, transport, "operator-terminal")
        await _menu(person)
        await person.say("/sos")
        raised = await person.press("Yes, alert the team now")
        assert "type a short message for the team here" in raised.text
        assert "location" not in raised.text
        assert "SOS · new case" in room_messages(transport, room)[0].text
    finally:
        await app.outbox.close()
        await db.close()


def test_the_sos_bucket_is_apart_from_the_ordinary_one_and_finite() -> None:
    guard = FloodGuard(rate=0.0, burst=2, sos_rate=0.0, sos_burst=3, clock=lambda: 0.0)
    assert [guard.check("k")[0] for _ in range(3)] == [True, True, False]
    assert [guard.check_sos("k")[0] for _ in range(4)] == [True, True, True, False]
    assert guard.check("k")[0] is False, "SOS presses refill nothing"
    assert guard.check_sos("other")[0] is True, "each sender has their own"
    assert not guard.in_sos("k")
    guard.note_sos("k", True)
    assert guard.in_sos("k")
    guard.note_sos("k", False)
    assert not guard.in_sos("k")


async def test_the_activist_is_told_only_what_is_true_when_no_room_has_it_yet(
    rooms_app: tuple[App, Team], activist: FakeUser, transport: FakeTransport
) -> None:
    app, _ = rooms_app
    app.casework.sos.told_within = 0.3
    transport.settle = False  # the rooms stay unreachable; nothing waits for the outbox
    down = Undelivered(Reason.UNREACHABLE, transient=True)
    transport.refuse = {STAFF_ROOM.address: down, PLAIN_ROOM.address: down}
    await _menu(activist)
    await activist.say("/sos")
    raised = await activist.press("Yes, alert the team now")
    assert "could not be reached just now. The bot keeps trying" in raised.text
    assert "has your alert now" not in raised.text
    assert "Front Line Defenders" in raised.text, "contacts to use meanwhile"
    told = await activist.say(WORDS)
    assert "Your message is sealed. The team's room could not be reached just now" in told.text
    transport.refuse = {}
    await app.outbox.drain()
    assert any("SOS · new case" in r.text for r in room_messages(transport, PLAIN_ROOM))


async def test_a_location_where_sos_is_not_set_up_only_shows_the_contacts(
    app: App, transport: FakeTransport
) -> None:
    app.attach(transport)
    person = FakeUser(app, transport, "alone")
    await _menu(person)
    screen = await person.deliver(location=PLACE)
    assert "not set up on this server" in screen.text
    assert "Confirm the alert" not in screen.text
