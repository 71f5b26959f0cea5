"""What a Telegram error means for a message the bot started: `bot.delivery.Undelivered`.

PTB raises `TimedOut` or `NetworkError`; the request class (`request.py`) gives the ones
where no byte left the cause `NotSent`. A connection that was never made cannot have
carried the request, so it may be tried again; once the
request may have left (read timeout, a dropped connection), repeating it could post the
message twice, and Telegram has no way to ask whether it arrived.
"""

from __future__ import annotations

from datetime import timedelta

from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)

from bot.delivery import Reason, Undelivered
from bot.transports.telegram.request import NotSent

__all__ = ["retry_safe", "retry_seconds", "undelivered"]

_GONE = ("chat not found", "user not found", "group chat was deactivated", "peer_id_invalid")


def retry_safe(exc: NetworkError) -> bool:
    """True when the request surely did not reach Telegram, or Telegram answered (5xx)."""
    cause = exc.__cause__
    return cause is None or isinstance(cause, NotSent)


def undelivered(exc: TelegramError, *, group: bool) -> Undelivered:
    if isinstance(exc, Forbidden):
        return Undelivered(Reason.REMOVED if group else Reason.BLOCKED)
    if isinstance(exc, RetryAfter):
        return Undelivered(Reason.UNREACHABLE, transient=True, retry_after=retry_seconds(exc))
    if isinstance(exc, ChatMigrated):
        return Undelivered(Reason.GONE)
    if isinstance(exc, BadRequest):
        text = exc.message.casefold()
        return Undelivered(Reason.GONE if any(g in text for g in _GONE) else Reason.REFUSED)
    if isinstance(exc, NetworkError):
        return Undelivered(Reason.UNREACHABLE, transient=True, uncertain=not retry_safe(exc))
    return Undelivered(Reason.REFUSED)


def retry_seconds(exc: RetryAfter) -> float:
    wait: int | float | timedelta = exc.retry_after
    return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
