"""Matrix dispatch through the transport port, with the real App (no homeserver): each
message loads its person's session once, and the lines `/forget` adds are in the
language of the handlers' confirmation, though the session that held it is gone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bot.app import App
from bot.conversation.sessions import Session
from bot.model import ChatRef, Reply, UserRef
from bot.transports.matrix.dispatch import Dispatch
from bot.transports.matrix.erase import Tally
from bot.transports.matrix.inbound import Said
from tests.fakes import PrivateRooms

ROOM = "!dm:example.org"
PERSON = "@ana:example.org"


class _Out:
    """The outbound side: answers kept, `/forget` told it deleted three messages."""

    caution: Any = None

    def __init__(self) -> None:
        self.sent: list[Reply] = []

    async def answer(self, chat: ChatRef, reply: Reply) -> None:
        self.sent.append(reply)

    async def forget(self, room_id: str, say: Callable[[Tally], Reply]) -> None:
        self.sent.append(say(Tally(deleted=3, theirs_left=0, failed=0)))


class _Person:
    def __init__(self, app: App) -> None:
        self.out = _Out()
        rooms: Any = PrivateRooms()
        outbound: Any = self.out
        self.dispatch = Dispatch(
            app, None, rooms, outbound, app.chat_trail("matrix"), app.handle, frozenset()
        )
        self._events = 0

    async def say(self, text: str) -> Reply:
        self._events += 1
        await self.dispatch.said(ROOM, Said(f"$e{self._events}", PERSON, text, len(text)))
        return self.out.sent[-1]

    async def choose(self, label: str) -> Reply:
        """Type the number of the choice (Matrix has no buttons)."""
        labels = [choice.label for choice in self.out.sent[-1].choices]
        number = next(i for i, shown in enumerate(labels, 1) if label in shown)
        return await self.say(str(number))


@pytest.fixture
def loads(app: App, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    counted: list[str] = []
    load = app.sessions.load

    async def counting(user: UserRef) -> Session:
        counted.append(user.key)
        return await load(user)

    monkeypatch.setattr(app.sessions, "load", counting)
    return counted


async def test_each_message_loads_the_session_once(app: App, loads: list[str]) -> None:
    ana = _Person(app)
    assert "Which language" in (await ana.say("/start")).text
    await ana.choose("English")
    await ana.say("/help")
    assert len(loads) == 3 and len(set(loads)) == 1


async def test_forget_adds_its_lines_in_the_confirmations_language(app: App) -> None:
    ana = _Person(app)
    await ana.say("/start")
    await ana.choose("Español")
    await ana.say("/forget")
    done = await ana.choose("Sí, borrar todo")
    assert "Mensajes borrados en este chat: 3." in done.text
    assert await app.language(app.pseudonyms.user("matrix", PERSON)) is None
