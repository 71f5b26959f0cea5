"""Where the message of a send whose answer was lost must be, so it can still be deleted.

When the connection breaks after a `sendMessage` left, the message may be in the chat
while its id is unknown. Telegram numbers the messages of private chats (and basic
groups) with one counter of the bot's account, increasing with time (MTProto: message
ids are "unique per channel and otherwise unique per account"). So the lost message's
id is above every id the bot knew before the send began, and below the id of any
message whose send began after the loss was noticed. Between those two bounds,
`deleteMessages` on that chat removes it and skips every id that is not in the chat.

A gap is open until such a later send tells its upper bound; it is then noted in the
chat trail as a range row (`"low-high"`, see `span`) with the lost reply's time to
live, so the sweeper and `/forget` delete it like any message. Open gaps live in
memory only: a bot stopped before any later send succeeded cannot bound them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

__all__ = ["LostSends", "Note", "is_private", "parse_span", "span"]

log = logging.getLogger("hrd_bot.telegram")
Note = Callable[[str, Sequence[tuple[str, timedelta | None]]], None]


def span(low: int, high: int) -> str:
    """A trail row standing for every id from `low` to `high` in its chat."""
    return f"{low}-{high}"


def parse_span(message_id: str) -> tuple[int, int] | None:
    """`(low, high)` for a range row; None for the id of one message."""
    low, dash, high = message_id.partition("-")
    if not dash or not low.isdigit() or not high.isdigit():
        return None
    return int(low), int(high)


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

    def begin(self) -> tuple[int, int]:
        """Before a send: the lower bound for its message, and the send's turn number."""
        self._clock += 1
        return self._newest, self._clock

    def seen(self, message_id: int, begun: int | None = None) -> None:
        """A message id learned: from an update (`begun` None), or the answer to a send
        that began at `begun`, which closes every gap noticed before it began."""
        self._newest = max(self._newest, message_id)
        if begun is None or not self._open:
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
        log.info("telegram: a send's answer was lost; its message is deleted by range")

    def open_in(self, chat: str) -> int:
        """How many lost sends in the chat are still unbounded."""
        return sum(1 for gap in self._open if gap.chat == chat)
