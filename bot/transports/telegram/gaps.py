"""Where the message of a send whose answer was lost must be, so it can still be deleted.

When the connection breaks after a `sendMessage` left, the message may be in the chat
while its id is unknown. Telegram numbers the messages of private chats (and basic
groups) with one counter of the bot's account, increasing with time (MTProto: message
ids are "unique per channel and otherwise unique per account"). So the lost message's
id is above every id the bot knew before the send began, and below the id of any
message whose send began after the loss was noticed. Between those two bounds,
`deleteMessages` on that chat removes it and skips every id that is not in the chat.

At once the loss is noted in the chat trail as an open range (`"low-"`), with the lost
reply's time to live, so it survives a restart. The next send that succeeds closes it:
a closed range (`"low-high"`) is noted beside it, and the sweeper and `/forget` delete
it like any message. An open range whose gap is no longer open in memory (closed, or
left by an earlier run) is bounded by the first send of this run (`bound`): that send
began after every loss of an earlier run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

__all__ = ["LostSends", "Note", "Span", "is_private", "parse_span", "span"]
Span = tuple[int, int | None]

log = logging.getLogger("hrd_bot.telegram")
Note = Callable[[str, Sequence[tuple[str, timedelta | None]]], None]


def span(low: int, high: int | None = None) -> str:
    """A trail row standing for every id from `low` to `high` (None: not known yet)."""
    return f"{low}-{'' if high is None else high}"


def parse_span(message_id: str) -> Span | None:
    """`(low, high)` for a range row (`high` None while open); None for one message."""
    low, dash, high = message_id.partition("-")
    if not dash or not low.isdigit() or not (high.isdigit() or not high):
        return None
    return int(low), int(high) if high else None


def is_private(chat: str) -> bool:
    """A person's chat: positive ids (groups and channels are negative)."""
    return chat.isdigit()


@dataclass(frozen=True, slots=True)
class _Gap:
    chat: str
    above: int
    ttl: timedelta | None
    noticed: int


class LostSends:
    """The newest message id known in private chats, and the gaps left by lost sends."""

    def __init__(self, note: Note) -> None:
        self._note = note
        self._newest = 0
        self._clock = 0
        self._open: list[_Gap] = []
        self._first: int | None = None
        """The id of this run's first send that succeeded (to a private chat)."""

    def begin(self) -> tuple[int, int]:
        """Before a send: the lower bound for its message, and the send's turn number."""
        self._clock += 1
        return self._newest, self._clock

    def seen(self, message_id: int, begun: int | None = None) -> None:
        """A message id learned: from an update (`begun` None), or the answer to a send
        that began at `begun`, which closes every gap noticed before it began."""
        self._newest = max(self._newest, message_id)
        if begun is None:
            return
        self._first = message_id if self._first is None else self._first
        if not self._open:
            return
        closing = [gap for gap in self._open if gap.noticed < begun]
        self._open = [gap for gap in self._open if gap.noticed >= begun]
        for gap in closing:
            if message_id - 1 > gap.above:
                self._note(gap.chat, [(span(gap.above + 1, message_id - 1), gap.ttl)])

    def lost(self, chat: str, above: int, ttl: timedelta | None) -> None:
        """A send to `chat` may have posted a message whose id is above `above`."""
        if not is_private(chat):
            return  # a group gets nothing that must expire (see `Outbox`)
        self._clock += 1
        self._open.append(_Gap(chat, above, ttl, self._clock))
        self._note(chat, [(span(above + 1), ttl)])
        log.info("telegram: a send's answer was lost; its message is deleted by range")

    def bound(self, chat: str, low: int) -> int | None:
        """The highest id an open range row starting at `low` may cover; None while its
        gap is open in memory, or before this run's first send succeeded."""
        if any(gap.chat == chat and gap.above + 1 == low for gap in self._open):
            return None
        return None if self._first is None else self._first - 1
