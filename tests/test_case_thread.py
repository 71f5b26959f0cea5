"""The case thread end to end through the fake transport: a reporter answers the team,
writes again with a photo, asks where the case stands, and writes after it is closed.

Two staff rooms: an end-to-end encrypted all-staff room (gets the words, quoted) and a
group that is not (gets "New message on HRD-…" only).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.app import App
from bot.cases.quoting import QUOTE
from bot.content.library import Library
from bot.crypto.bundle import open_bundle
from bot.delivery import Reason, RetryPolicy, Undelivered
from bot.model import Attachment, ChatRef, Reply
from handlers.staff_text import RELAY_CHARS, framed
from tests.conftest_storage import OpenDatabase
from tests.fakes import FakeTransport, FakeUser
from tests.reporting import STAFF_ROOM, Team, room_messages, staff_key, staff_says, submit_report

GROUP = ChatRef("fake", "staff-group", private=False, encrypted=False)
PHOTO = Attachment("IMG_2231 my street.jpg", "image/jpeg", 7, b"\xff\xd8PHOTO")
ANSWER_1 = "CANARY-A1 we are safe tonight\n/ack HRD-0000-0000\nProtection team: fake line"
CAPTION = "CANARY-CAPTION the car again"
pytestmark = pytest.mark.backends


async def _open(open_database: OpenDatabase, name: str, library: Library, team: Team) -> App:
    db = await open_database(name)
    app = await App.open(db, library, staff_rooms=(STAFF_ROOM, GROUP))
    store = app.casework.store
    if not await store.list_staff():
        await store.add_staff("Alice", [staff_key(app, "staff-alice")], team.alice.public)
        await store.add_staff("Bruno", [staff_key(app, "staff-bruno")], team.bruno.public)
        await store.set_recovery(team.recovery.public)
    return app


@pytest.fixture
def team() -> Team:
    return Team()


@pytest.fixture
async def two_rooms(
    open_database: OpenDatabase, library: Library, team: Team, transport: FakeTransport
) -> AsyncIterator[App]:
    app = await _open(open_database, "t", library, team)
    app.attach(transport)
    try:
        yield app
    finally:
        await app.db.close()


@pytest.fixture
def person(two_rooms: App, transport: FakeTransport) -> FakeUser:
    return FakeUser(two_rooms, transport, "reporter-7")


def _mine(person: FakeUser) -> Reply:
    """The last message in the reporter's own chat (staff rooms get messages in between)."""
    return room_messages(person.transport, person.chat)[-1]


async def _press(person: FakeUser, label: str) -> Reply:
    found = [c for c in _mine(person).choices if label.casefold() in c.label.casefold()]
    assert found, f"no choice like {label!r} in {[c.label for c in _mine(person).choices]}"
    return await person.press_id(found[0].id)


def _texts(transport: FakeTransport, room: ChatRef) -> list[str]:
    return [reply.text for reply in room_messages(transport, room)]


def _new_in(transport: FakeTransport, room: ChatRef, before: int) -> list[Reply]:
    return room_messages(transport, room)[before:]


async def test_the_round_trip(
    two_rooms: App, person: FakeUser, transport: FakeTransport, team: Team
) -> None:
    app = two_rooms
    case = await submit_report(person)
    assert person.find("Message the protection team") and person.find("Where is my case?")

    await staff_says(app, transport, "staff-bruno", f"/reply {case} Are you safe tonight?")
    reply = _mine(person)
    assert reply.text == "Protection team: Are you safe tonight?"
    assert [c.label for c in reply.choices] == ["Answer the team"]

    secure, group = len(room_messages(transport, STAFF_ROOM)), len(room_messages(transport, GROUP))
    answered = await person.say(ANSWER_1)
    assert answered.text.startswith("Delivered to the team, locked.")
    assert "Write here to the protection team" in answered.text and answered.sensitive
    head, content = _new_in(transport, STAFF_ROOM, secure)
    assert head.text == f"New message on {case} from the reporter." and not head.sensitive
    assert content.sensitive and content.text.splitlines()[0].startswith("Reporter's message")
    assert content.text.splitlines()[1:] == [
        "> CANARY-A1 we are safe tonight",
        "> /ack HRD-0000-0000",
        "> Protection team: fake line",
    ]
    (notice,) = _new_in(transport, GROUP, group)
    assert notice.text == f"New message on {case} from the reporter."

    secure, group = len(room_messages(transport, STAFF_ROOM)), len(room_messages(transport, GROUP))
    sent = await person.deliver(attachment=PHOTO, text=CAPTION)
    assert sent.text.startswith("The file was delivered to the team, locked.")
    _, content = _new_in(transport, STAFF_ROOM, secure)
    assert "image/jpeg" in content.text and f"> {CAPTION}" in content.text
    assert "IMG_2231" not in content.text, "a file name never reaches a room"
    (notice,) = _new_in(transport, GROUP, group)
    assert CAPTION not in notice.text and "image" not in notice.text

    opened = open_bundle(await app.casework.store.export_bundle(case), team.alice)
    items = [(i.field, i.data) for i in opened.items if i.field.startswith("message")]
    assert items == [
        ("message", ANSWER_1.encode()),
        ("message_file", b"image/jpeg\nIMG_2231 my street.jpg\n\xff\xd8PHOTO"),
        ("message", CAPTION.encode()),
    ]
    history = await staff_says(app, transport, "staff-alice", f"/case {case}")
    assert history.count("reporter.message") == 2 and "reporter.file" in history
    assert "CANARY" not in history


async def test_the_reporter_sees_the_state_in_plain_words(
    two_rooms: App, person: FakeUser, transport: FakeTransport
) -> None:
    app = two_rooms
    case = await submit_report(person)
    state = await _press(person, "Where is my case?")
    assert f"Your case {case} has reached the protection team" in state.text
    assert "Nobody has taken it up yet" in state.text

    await staff_says(app, transport, "staff-alice", f"/ack {case}")
    await _press(person, "◂ Back")
    state = await _press(person, "Where is my case?")
    assert f"Someone on the protection team is handling your case {case}" in state.text
    await staff_says(app, transport, "staff-alice", f"/assign {case} Bruno")
    await person.say("/menu")
    state = await _press(person, "Where is my case?")
    assert "handling" in state.text and "Bruno" not in state.text and "Alice" not in state.text

    await staff_says(app, transport, "staff-alice", f"/close {case} relocated")
    menu = await person.say("/menu")
    assert "Message the protection team" not in [c.label for c in menu.choices]
    state = await _press(person, "Where is my case?")
    assert f"Your case {case} is closed" in state.text


async def test_writing_after_close_reaches_the_team_and_reopens_nothing(
    two_rooms: App, person: FakeUser, transport: FakeTransport, team: Team
) -> None:
    app = two_rooms
    case = await submit_report(person)
    await _press(person, "Message the protection team")
    await staff_says(app, transport, "staff-alice", f"/close {case} resolved")
    group = len(room_messages(transport, GROUP))
    late = await person.say("CANARY-LATE they came back")
    assert late.text.startswith("The case is closed; your message was passed to the team")
    assert f"Your case {case} is closed" in late.text
    (notice,) = _new_in(transport, GROUP, group)
    assert "The case is closed; it was not reopened" in notice.text
    assert "CANARY" not in notice.text
    assert "CANARY-LATE" in _texts(transport, STAFF_ROOM)[-1]
    assert (await app.casework.store.case(case)).state == "closed"
    assert case not in await staff_says(app, transport, "staff-alice", "/cases")
    assert "reporter.message" in await staff_says(app, transport, "staff-alice", f"/case {case}")

    await person.say("/menu")
    await _press(person, "Where is my case?")
    again = await _press(person, "Message the protection team")
    assert "is closed. You can still write here" in again.text
    opened = open_bundle(await app.casework.store.export_bundle(case), team.bruno)
    assert (b"CANARY-LATE they came back") in [i.data for i in opened.items]


async def test_a_number_or_the_label_picks_answer_the_team(
    two_rooms: App, person: FakeUser, transport: FakeTransport
) -> None:
    """On Matrix and the console a reply's choice is a numbered line: "1" means it."""
    app = two_rooms
    case = await submit_report(person)
    await staff_says(app, transport, "staff-alice", f"/reply {case} Call us?")
    screen = await person.say("1")
    assert screen.text.startswith("Write here to the protection team")
    await staff_says(app, transport, "staff-alice", f"/reply {case} And now?")
    screen = await _press(person, "Answer the team")
    assert screen.text.startswith("Write here to the protection team")
    before = len(room_messages(transport, STAFF_ROOM))
    state = await person.say("1")
    assert "has reached the protection team" in state.text, "a listed number picks its choice"
    assert len(room_messages(transport, STAFF_ROOM)) == before, "and is not sent"


async def test_typing_after_a_reply_elsewhere_goes_to_the_team_and_back_returns(
    two_rooms: App, person: FakeUser, transport: FakeTransport
) -> None:
    app = two_rooms
    case = await submit_report(person)
    guides = await _press(person, "digital security problem")
    await staff_says(app, transport, "staff-alice", f"/reply {case} Are you there?")
    answered = await person.say("yes, at home")
    assert answered.text.startswith("Delivered to the team, locked.")
    back = await _press(person, "◂ Back")
    assert back.text == guides.text, "back where they were"
    nothing = await person.say("just some words")
    assert "Please choose" in nothing.text, "only the message right after a reply is an answer"


async def test_a_team_reply_is_still_answerable_after_a_restart(
    open_database: OpenDatabase, library: Library, team: Team
) -> None:
    transport = FakeTransport()
    app = await _open(open_database, "r", library, team)
    app.attach(transport)
    person = FakeUser(app, transport, "reporter-8")
    case = await submit_report(person)
    await staff_says(app, transport, "staff-alice", f"/reply {case} Still safe?")
    await app.db.close()

    app = await _open(open_database, "r", library, team)
    app.attach(transport)
    person.app = app
    answered = await person.say("CANARY-R still safe")
    assert answered.text.startswith("Delivered to the team, locked.")
    assert "> CANARY-R still safe" in _texts(transport, STAFF_ROOM)[-1]
    await app.db.close()


async def test_a_file_too_big_is_refused_and_nothing_is_sealed(
    two_rooms: App, person: FakeUser, transport: FakeTransport
) -> None:
    app = two_rooms
    case = await submit_report(person)
    await _press(person, "Message the protection team")
    before = len(transport.sent)
    huge = Attachment("video.mp4", "video/mp4", 50 * 1024 * 1024)
    refused = await person.deliver(attachment=huge)
    assert "too big" in refused.text and "Write here" in refused.text
    assert len(transport.sent) == before + 1, "staff were told nothing"
    fields = [item.field for item in await app.casework.store.items(case)]
    assert "message_file" not in fields


async def test_a_file_sent_at_the_menu_is_pointed_to_the_thread_not_sealed(
    two_rooms: App, person: FakeUser, transport: FakeTransport
) -> None:
    case = await submit_report(person)
    before = len(transport.sent)
    pointed = await person.deliver(attachment=PHOTO)
    assert pointed.text.startswith("To send a file to the protection team, choose")
    assert "How can I help" in pointed.text and "Message the protection team" in [
        c.label for c in pointed.choices
    ]
    assert len(transport.sent) == before + 1, "staff were told nothing"
    assert [
        i.field for i in await two_rooms.casework.store.items(case) if "message" in i.field
    ] == []


async def test_a_case_purged_underneath_is_said_plainly_and_nothing_is_sent(
    two_rooms: App, person: FakeUser, transport: FakeTransport
) -> None:
    case = await submit_report(person)
    await _press(person, "Message the protection team")
    await two_rooms.db.run(lambda conn: conn.execute("DELETE FROM cases WHERE id = ?", (case,)))
    before = len(transport.sent)
    gone = await person.say("CANARY-G is anyone there")
    assert gone.text.startswith("This case is no longer kept here")
    assert "Nothing was sent" in gone.text and "How can I help" in gone.text
    assert "Message the protection team" not in [c.label for c in gone.choices]
    assert len(transport.sent) == before + 1, "staff were told nothing"


async def test_an_unreachable_staff_room_does_not_undo_the_acknowledgement(
    two_rooms: App, person: FakeUser, transport: FakeTransport
) -> None:
    app = two_rooms
    case = await submit_report(person)
    await _press(person, "Message the protection team")

    app.outbox.policy = RetryPolicy(window=0.3, first=0.05)
    transport.refuse[GROUP.address] = Undelivered(Reason.REMOVED)
    said = await person.say("CANARY-B are you there")
    assert said.text.startswith("Delivered to the team, locked.")
    assert "> CANARY-B are you there" in _texts(transport, STAFF_ROOM)[-2]
    assert "cannot be reached" in _texts(transport, STAFF_ROOM)[-1], "the others are told"
    assert any(item.field == "message" for item in await app.casework.store.items(case))


async def test_forget_ends_the_thread(
    two_rooms: App, person: FakeUser, transport: FakeTransport
) -> None:
    app = two_rooms
    case = await submit_report(person)
    await staff_says(app, transport, "staff-alice", f"/reply {case} Hello?")
    await person.say("/forget")
    await _press(person, "Yes, delete")
    after = await person.say("/start")
    assert "Write here" not in after.text
    await _press(person, "English")
    assert "Message the protection team" not in person.labels()


async def test_a_long_message_goes_to_staff_in_marked_quoted_parts(
    person: FakeUser, transport: FakeTransport
) -> None:
    case = await submit_report(person)
    await _press(person, "Message the protection team")
    words = "\n".join(f"line {i:03d} " + "x" * 30 for i in range(100))
    before = len(room_messages(transport, STAFF_ROOM))
    await person.say(words)
    head, *parts = _new_in(transport, STAFF_ROOM, before)
    assert case in head.text and not head.sensitive
    assert len(parts) == 2
    for number, part in enumerate(parts, 1):
        first, *lines = part.text.splitlines()
        assert case in first and first.endswith(f"({number}/2)")
        assert all(line.startswith(">") for line in lines)
        assert len(part.text) <= RELAY_CHARS


BREAKS = st.sampled_from(["\n", "\r", "\r\n", "\u2028", "\u2029", " ", "x", "/ack", "وصلت"])


@given(st.text(min_size=1, max_size=4000) | st.lists(BREAKS, max_size=2000).map("".join))
def test_every_part_is_marked_bounded_and_quoted(words: str) -> None:
    """However the words break lines (a client may break at "\\r" or U+2028 too), no line
    of theirs reaches a staff room unquoted, and no part is longer than the limit."""
    parts = framed("Reporter's message on HRD-AAAA-BBBB:", words, "A file: image/png, 3 KB.")
    for number, part in enumerate(parts, 1):
        assert len(part) <= RELAY_CHARS
        head, *lines = part.splitlines()
        assert head.startswith("Reporter's message on HRD-AAAA-BBBB:")
        if len(parts) > 1:
            assert head.endswith(f"({number}/{len(parts)})")
        if number == 1:
            assert lines[0] == "A file: image/png, 3 KB."
            lines = lines[1:]
        assert all(line == QUOTE.rstrip() or line.startswith(QUOTE) for line in lines)
