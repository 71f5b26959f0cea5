"""What the bot tells a person about deletion in a Matrix room, so that it is true.

In a DM the person created, the bot usually may redact only its own events. Before
the first sensitive reply in such a room (a report's questions, the team's message, a
check-in) it says so once per room and run, tells how the person removes theirs, and
invites them to a new DM it creates, where it is a creator and may redact everything.
After `/forget` it counts what it redacted and what is left (see `erase`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from bot.content.library import Translator
from bot.transports.matrix.erase import Tally
from bot.transports.matrix.rooms import Rooms

__all__ = ["Candour", "forget_tail"]

log = logging.getLogger("hrd_bot.matrix.candour")
Hint = Callable[[str, str, tuple[str, ...]], Awaitable[None]]
"""`hint(room_id, person, keys)`: the strings, in the person's language, as one message."""


class Candour:
    def __init__(self, rooms: Rooms, hint: Hint) -> None:
        self._rooms = rooms
        self._hint = hint
        self._cautioned: set[str] = set()

    async def caution(self, room_id: str) -> None:
        """Before a sensitive reply: the notice, where due (once per room and run)."""
        rooms = self._rooms
        if room_id in self._cautioned or not rooms.is_private(room_id):
            return
        power = await rooms.redact_power(room_id)
        if power is None or room_id in self._cautioned:
            return  # unknown for now: asked again before the next sensitive reply
        self._cautioned.add(room_id)
        if power:
            return
        people = rooms.others_joined(room_id)
        if len(people) != 1:
            return
        person = people[0]
        invited = not rooms.has_other_dm(person, room_id) and await rooms.offer_dm(
            person, fresh=True
        )
        log.info("told a person the bot cannot delete their messages (new DM: %s)", invited)
        keys = ("matrix.own_only", "matrix.own_only_invited") if invited else ("matrix.own_only",)
        await self._hint(room_id, person, keys)

    def forget(self, room_id: str) -> None:
        self._cautioned.discard(room_id)


def forget_tail(t: Translator, tally: Tally) -> str:
    """The Matrix-true part of the last message after `/forget`."""
    lines = [t("matrix.forget_deleted", count=tally.deleted)]
    if tally.theirs_left:
        lines.append(t("matrix.forget_theirs_left", count=tally.theirs_left))
    if tally.failed:
        lines.append(t("matrix.forget_failed", count=tally.failed))
    if not tally.complete:
        lines.append(t("matrix.forget_unchecked"))
    lines.append(t("matrix.forget_leaving"))
    return "\n\n".join(lines)
