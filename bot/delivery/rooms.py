"""The staff and on-call rooms the outbox alerts: which cannot be reached now, and the
notices the others get about it (and about messages a stop lost)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from bot.content.library import Translator
from bot.delivery import rows
from bot.delivery.outcome import Reason
from bot.model import ChatRef, Reply

__all__ = ["AlertRooms", "Place", "place"]

log = logging.getLogger("hrd_bot.outbox")
Place = tuple[str, str]
Notify = Callable[[Sequence[ChatRef], Reply], Awaitable[object]]


def place(chat: ChatRef) -> Place:
    return chat.platform, chat.address


class AlertRooms:
    """Staff rooms and on-call chats, numbered as the operator listed them."""

    def __init__(
        self,
        staff: Callable[[], Translator],
        notify: Notify,
        alert_rooms: tuple[ChatRef, ...],
        oncall: tuple[ChatRef, ...],
    ) -> None:
        self._staff = staff
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
        t = self._staff()
        kind, number = self._numbers[at]
        text = t(
            f"delivery.{kind}_down",
            room=number,
            platform=chat.platform,
            reason=t(f"delivery.reason.{reason.value}"),
            hours=max(1, round(window / 3600)),
        )
        log.warning("outbox: an alert room cannot be reached (%s)", reason.value)
        await self.announce(Reply(text), skip={at})

    async def up(self, chat: ChatRef) -> None:
        at = place(chat)
        if self._down.pop(at, None) is None:
            return
        kind, number = self._numbers[at]
        text = self._staff()(f"delivery.{kind}_up", room=number, platform=chat.platform)
        await self.announce(Reply(text), skip={at})

    async def announce(self, reply: Reply, skip: set[Place] | None = None) -> None:
        """A notice for every alert room but `skip` and those known to be down, in one commit."""
        left_out = (skip or set()) | set(self._down)
        await self._notify([room for room in self.all if place(room) not in left_out], reply)

    def stop_notice(self, lost: list[rows.Row], unsure: list[rows.Row]) -> Reply:
        t = self._staff()
        blocks = [
            "\n".join([t(key, count=len(found)), *(_listed(t, row) for row in found)])
            for key, found in (("delivery.lost", lost), ("delivery.unsure", unsure))
            if found
        ]
        return Reply("\n\n".join(blocks))


def _listed(t: Translator, row: rows.Row) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(row.created_at))
    return f"• {t(f'delivery.kind.{row.kind}')} · {row.case_id or '—'} · {when} UTC"
