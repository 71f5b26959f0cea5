"""The staff and on-call rooms the outbox alerts: which cannot be reached now, and the
notices the others get about it (and about messages a stop lost)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from bot.delivery import rows
from bot.delivery.outcome import Reason
from bot.model import ChatRef, Reply

__all__ = ["AlertRooms", "Place", "RoomWords", "Unsent", "place"]

log = logging.getLogger("hrd_bot.outbox")
Place = tuple[str, str]
Notify = Callable[[Sequence[ChatRef], Reply], Awaitable[object]]


Unsent = tuple[str, str | None, float]
"""A message a stop lost or left uncertain: its kind, case and when it was made."""


class RoomWords(Protocol):
    """The words of these notices, in the staff rooms' language (`handlers.staff_text`)."""

    def room_down(self, kind: str, number: int, platform: str, reason: str, hours: int) -> str:
        """Staff room or on-call chat `number` cannot be reached (`reason`: a `Reason` value);
        it is retried for `hours`."""
        ...

    def room_up(self, kind: str, number: int, platform: str) -> str: ...

    def stopped(self, lost: Sequence[Unsent], unsure: Sequence[Unsent]) -> str: ...


def place(chat: ChatRef) -> Place:
    return chat.platform, chat.address


class AlertRooms:
    """Staff rooms and on-call chats, numbered as the operator listed them."""

    def __init__(
        self,
        words: RoomWords,
        notify: Notify,
        alert_rooms: tuple[ChatRef, ...],
        oncall: tuple[ChatRef, ...],
    ) -> None:
        self._words = words
        self._notify = notify
        self._numbers = {place(room): ("room", i) for i, room in enumerate(alert_rooms, 1)}
        self._numbers |= {place(chat): ("oncall", i) for i, chat in enumerate(oncall, 1)}
        self.all = alert_rooms + oncall
        self._down: dict[Place, Reason] = {}

    def __contains__(self, chat: ChatRef) -> bool:
        return place(chat) in self._numbers

    async def down(self, chat: ChatRef, reason: Reason, window: float) -> None:
        """The first failure of an alert room: the others are told, once."""
        at = place(chat)
        if at not in self._numbers or at in self._down:
            return
        self._down[at] = reason
        kind, number = self._numbers[at]
        hours = max(1, round(window / 3600))
        text = self._words.room_down(kind, number, chat.platform, reason.value, hours)
        log.warning("outbox: an alert room cannot be reached (%s)", reason.value)
        await self.announce(Reply(text), skip={at})

    async def up(self, chat: ChatRef) -> None:
        at = place(chat)
        if self._down.pop(at, None) is None:
            return
        kind, number = self._numbers[at]
        text = self._words.room_up(kind, number, chat.platform)
        await self.announce(Reply(text), skip={at})

    async def announce(self, reply: Reply, skip: set[Place] | None = None) -> None:
        """A notice for every alert room but `skip` and those known to be down, in one commit."""
        left_out = (skip or set()) | set(self._down)
        await self._notify([room for room in self.all if place(room) not in left_out], reply)

    def stop_notice(self, lost: list[rows.Row], unsure: list[rows.Row]) -> Reply:
        return Reply(self._words.stopped(_unsent(lost), _unsent(unsure)))


def _unsent(found: list[rows.Row]) -> list[Unsent]:
    return [(row.kind, row.case_id, row.created_at) for row in found]
