"""A protection team around the app: staff keys, a staff room, and a reporter who reports.

Shared by the report, check-in, safety-job and seized-server tests (fixtures are
registered for every test through `pytest_plugins` in conftest.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import App
from bot.content.library import Library
from bot.crypto.keys import PrivateKey
from bot.model import ChatRef, Incoming, Reply
from tests.conftest_storage import OpenDatabase
from tests.fakes import FakeTransport, FakeUser

STAFF_ROOM = ChatRef("fake", "staff-room", private=False, encrypted=True)
ONCALL = ChatRef("fake", "oncall", private=False)
WHAT = "CANARY-WHAT: they followed me after the meeting"


def staff_key(app: App, platform_id: str) -> str:
    """How `hrd-bot staff add --identity fake:ID` stores a member: as a pseudonym."""
    return app.pseudonyms.user("fake", platform_id).key


class Team:
    """Two staff members and a recovery key, each with a private key on 'their machine'."""

    def __init__(self) -> None:
        self.alice, self.bruno, self.recovery = (PrivateKey.generate() for _ in range(3))


@pytest.fixture
async def team_app(
    open_database: OpenDatabase, tmp_path: Path, library: Library
) -> AsyncIterator[tuple[App, Team]]:
    db = await open_database("r")
    app = await App.open(
        db, library, staff_rooms=(STAFF_ROOM,), oncall=(ONCALL,), exports=tmp_path / "exports"
    )
    team = Team()
    store = app.casework.store
    await store.add_staff("Alice", [staff_key(app, "staff-alice")], team.alice.public)
    await store.add_staff("Bruno", [staff_key(app, "staff-bruno")], team.bruno.public)
    await store.set_recovery(team.recovery.public)
    try:
        yield app, team
    finally:
        await app.outbox.close()
        await db.close()


def room_messages(transport: FakeTransport, chat: ChatRef) -> list[Reply]:
    return [reply for sent_to, reply in transport.sent if sent_to.address == chat.address]


async def staff_says(
    app: App, transport: FakeTransport, who: str, text: str, room: ChatRef = STAFF_ROOM
) -> str:
    user = app.pseudonyms.user("fake", who)  # the fake platform proves its devices
    msg = Incoming(user=user, chat=room, text=text, verified_device=True)
    replies = await app.handle(msg)
    for reply in replies:
        transport.answer(room, reply)
    if transport.settle:
        await app.outbox.drain()
    return "\n".join(r.text for r in replies)


async def start_report(person: FakeUser) -> Reply:
    await person.say("/start")
    await person.press("English")
    await person.press("Report a risk")
    return await person.press("Start the report")


async def submit_report(person: FakeUser) -> str:
    await person.say("/start")
    await person.press("English")
    intro = await person.press("Report a risk")
    assert "encrypted" in intro.text
    assert "Question 1 of 7" in (await person.press("Start the report")).text
    await person.say(WHAT)
    await person.say("yesterday evening")
    await person.say("Colombia")
    assert "Saved and locked" in (await person.say("me and two colleagues")).text
    await person.press("Danger now")
    await person.say("here, evenings")
    review = await person.press("Yes, if it helps")
    assert "Before you send" in review.text
    assert WHAT in review.text
    sent = await person.press("Send the report")
    assert sent.sensitive
    case = next(word for word in sent.text.split() if word.startswith("HRD-")).rstrip(".")
    assert "never asks for your passwords" in sent.text
    return case


@pytest.fixture
def reporter(team_app: tuple[App, Team], transport: FakeTransport) -> FakeUser:
    app, _ = team_app
    app.attach(transport)
    return FakeUser(app, transport, "reporter-1")
