"""Deleting messages from a Telegram chat, and knowing exactly what was not deleted.

`deleteMessages` takes up to 100 ids and skips those that are not in the chat (never
there, already gone, in another chat), but refuses the whole call when one it finds
cannot be deleted (a bot cannot delete a message older than 48 hours). A refused batch
is therefore split in halves until each refusal is pinned to its message, so every
other message is still deleted and the refused ones are counted, never claimed.

`erase` (for `/forget`) first deletes the ranges left by sends whose answer was lost
(`gaps`), then every message on record; what fails for now is handed to the sweeper.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from telegram import Bot
from telegram.error import BadRequest, Forbidden, TelegramError

from bot.conversation.chat_trail import ChatTrail
from bot.transports.telegram.gaps import Span, parse_span, span

__all__ = ["Deleter", "Erased"]

log = logging.getLogger("hrd_bot.telegram")
T = TypeVar("T")
Retrying = Callable[[Callable[[], Awaitable[T]]], Awaitable[T]]
DELETE_BATCH = 100  # deleteMessages takes at most 100 ids
MAX_SPAN = 10_000
"""Ids of one lost send's range deleted at most (100 calls): a range wider than this
(a bot busy in other chats for a long while before its next send, or a send lost before
any id was known since the start) is not reconciled, and `/forget` says a message may
remain."""
RETRY_SOON = timedelta(seconds=1)


@dataclass(slots=True)
class Outcome:
    gone: set[int] = field(default_factory=set)
    refused: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Erased:
    """What `/forget` did to the chat, for the words that follow it."""

    gone: int = 0
    """Messages on record that are no longer in the chat."""
    refused: int = 0
    """Messages Telegram refused to delete (older than 48 hours)."""
    retrying: int = 0
    """Messages or lost-send ranges that failed for now: left to the sweeper."""
    unsure: int = 0
    """Lost sends that could not be reconciled (unbounded, or too wide a range)."""


class Deleter:
    """Deletes for the sweeper (`delete`) and for `/forget` (`erase`)."""

    def __init__(
        self,
        bot: Bot,
        trail: ChatTrail,
        retrying: Retrying[bool],
        blocked: Callable[[str], bool],
        refused: Callable[[str], None],
        bound: Callable[[str, int], int | None],
    ) -> None:
        self._bot = bot
        self._trail = trail
        self._retrying = retrying
        self._blocked = blocked
        self._refused = refused
        self._bound = bound

    async def delete(self, chat: str, message_id: str) -> bool:
        """For the sweeper: True once the message (or range) is gone or Telegram will
        never delete it; False to try again at the next sweep."""
        if self._blocked(chat):
            return False
        bounds = parse_span(message_id)
        if bounds is not None:
            return await self._delete_span(chat, bounds)
        try:
            await self._retrying(lambda: self._bot.delete_message(int(chat), int(message_id)))
        except Forbidden:
            self._refused(chat)
            return False
        except BadRequest:
            return True  # already gone, or older than Telegram allows (48 h)
        except TelegramError:
            return False
        return True

    async def _delete_span(self, chat: str, bounds: Span) -> bool:
        low, high = self._bounded(chat, bounds)
        if high is None:
            return False  # its gap is still open: wait for the next send
        if high - low >= MAX_SPAN:
            log.warning("telegram: a lost send's range is too wide to delete; it is let go")
            return True
        return not (await self.delete_ids(chat, _ids(low, high))).failed

    def _bounded(self, chat: str, bounds: Span) -> Span:
        low, high = bounds
        return (low, high) if high is not None else (low, self._bound(chat, low))

    async def erase(self, chat: str, keep: set[str]) -> Erased:
        """Delete every message on record in the chat (but `keep`), lost sends first, then
        forget their ids; what cannot be deleted now is recorded again, due in a second,
        for the sweeper. A lost send whose gap is still open is not claimed."""
        traces = [t for t in await self._trail.in_chat(chat) if t.message_id not in keep]
        spans = [s for t in traces if (s := parse_span(t.message_id)) is not None]
        singles = [t for t in traces if parse_span(t.message_id) is None]
        unsure, retry, refused = 0, [], 0
        for bounds in spans:
            low, high = self._bounded(chat, bounds)
            if high is None or high - low >= MAX_SPAN:
                unsure += 1
                continue
            outcome = await self.delete_ids(chat, _ids(low, high))
            refused += len(outcome.refused)
            retry += [span(low, high)] if outcome.failed else []
        known = [int(t.message_id) for t in singles if t.message_id.isdigit()]
        outcome = await self.delete_ids(chat, known)
        retry += [str(message_id) for message_id in sorted(outcome.failed)]
        await self._trail.drop(traces)
        if retry:
            await self._trail.record_many(chat, [(m, RETRY_SOON) for m in retry])
        erased = Erased(len(outcome.gone), refused + len(outcome.refused), len(retry), unsure)
        log.info(
            "telegram: erased a chat (%d gone, %d refused, %d left to retry, %d unsure)",
            erased.gone,
            erased.refused,
            erased.retrying,
            erased.unsure,
        )
        return erased

    async def delete_ids(self, chat: str, ids: Iterable[int]) -> Outcome:
        """Delete these ids in batches of 100; say which are gone, refused or failed."""
        outcome = Outcome()
        ordered = sorted(set(ids))
        for start in range(0, len(ordered), DELETE_BATCH):
            await self._batch(chat, ordered[start : start + DELETE_BATCH], outcome)
        return outcome

    async def _batch(self, chat: str, ids: Sequence[int], outcome: Outcome) -> None:
        """One call; a refusal is split in halves down to the message it is about."""
        if not ids:
            return
        if self._blocked(chat):
            outcome.failed.update(ids)
            return
        try:
            await self._retrying(lambda: self._bot.delete_messages(int(chat), ids))
        except Forbidden:
            self._refused(chat)
            outcome.failed.update(ids)
        except BadRequest:
            if len(ids) == 1:
                outcome.refused.update(ids)
                return
            middle = len(ids) // 2
            await self._batch(chat, ids[:middle], outcome)
            await self._batch(chat, ids[middle:], outcome)
        except TelegramError:
            outcome.failed.update(ids)
        else:
            outcome.gone.update(ids)


def _ids(low: int, high: int) -> range:
    return range(low, high + 1)
