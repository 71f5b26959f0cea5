"""What became of a message the bot started: the words staff and the case history use.

A transport's `send` returns the platform's message ids or raises `Undelivered`; the
outbox (`bot.delivery.outbox`) turns that into a state per destination.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.errors import InternalSignal

__all__ = ["Outcome", "Reason", "Undelivered"]


class Reason(StrEnum):
    """Why a message did not arrive, in words a person understands (`delivery.reason.*`)."""

    BLOCKED = "blocked"  # the person blocked the bot or left the chat
    REMOVED = "removed"  # the bot is no longer in that room or group
    GONE = "gone"  # the chat no longer exists
    WITHHELD = "withheld"  # confidential content this room may not receive
    REFUSED = "refused"  # the platform refused this message
    UNREACHABLE = "unreachable"  # the platform could not be reached within the window
    UNCERTAIN = "uncertain"  # the request left, its answer was lost; the platform cannot tell
    LOST = "lost"  # the bot stopped before it left; its content was never stored
    NO_TRANSPORT = "no_transport"  # that platform is not running here
    NOT_JOINED = "not_joined"  # the person has not yet joined the DM the bot opened for them


class Undelivered(InternalSignal):
    """Raised by `Transport.send`. `transient` failures are retried; `retry_after` is the
    platform's own wait; `uncertain` means the request may have arrived."""

    def __init__(
        self,
        reason: Reason,
        *,
        transient: bool = False,
        retry_after: float | None = None,
        uncertain: bool = False,
    ) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.transient = transient
        self.retry_after = retry_after
        self.uncertain = uncertain


@dataclass(frozen=True, slots=True)
class Outcome:
    """Delivered with the platform's message ids, or not, with the reason."""

    message_ids: tuple[str, ...] = ()
    reason: Reason | None = None

    @property
    def delivered(self) -> bool:
        return self.reason is None
