"""Matrix: a message the flood guard drops leaves no trail row; an answered one does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.app import App
from bot.conversation.flood import Dropped
from bot.model import ChatRef, Incoming, Reply
from bot.transports.matrix.dispatch import Dispatch
from bot.transports.matrix.inbound import Said
from tests.fakes import PrivateRooms


class _Recorder:
    def __init__(self) -> None:
        self.recorded: list[str] = []
        self.sent: list[Reply] = []

    async def record(self, room_id: str, event_id: str, delete_after: object = None) -> None:
        self.recorded.append(event_id)

    async def answer(self, chat: ChatRef, reply: Reply) -> None:
        self.sent.append(reply)


def _dispatch(app: App, seen: _Recorder, replies: Sequence[Reply]) -> Dispatch:
    async def handle(incoming: Incoming) -> Sequence[Reply]:
        return replies

    trail: Any = seen
    return Dispatch(app, None, PrivateRooms(), seen, trail, handle, frozenset())  # type: ignore[arg-type]


async def test_a_dropped_message_writes_no_trail_row(app: App) -> None:
    seen = _Recorder()
    await _dispatch(app, seen, Dropped()).said("!dm:example.org", Said("$e1", "@a:x", "hi", 2))
    assert seen.recorded == []
    assert seen.sent == []


async def test_an_answered_message_is_noted_for_erasure(app: App) -> None:
    seen = _Recorder()
    answer = [Reply(text="hello")]
    await _dispatch(app, seen, answer).said("!dm:example.org", Said("$e2", "@a:x", "hi", 2))
    assert seen.recorded == ["$e2"]
    assert [r.text for r in seen.sent] == ["hello"]
