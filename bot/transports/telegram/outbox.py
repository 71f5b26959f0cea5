"""Everything the bot puts into or takes out of a Telegram chat, and what it does when refused.

Every message sent is recorded in the chat trail (with its time to live), so the sweeper
and `/forget` can delete it later, after a restart too. A confidential reply (a report's
answers, the protection team's words to a reporter) never goes into a group, whoever
asked for it: it is refused and logged. Rate limits are the
`AIORateLimiter`'s job (it waits out a 429 and retries); here, a server error or a
timeout is retried a few times, a chat that blocked the bot gets nothing more, and a
refused message is logged by kind only, never with text or ids.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import TypeVar

from telegram import Bot
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.warnings import PTBUserWarning

from bot.chat_trail import ChatTrail, Trace
from bot.delivery import Reason, Undelivered
from bot.model import ChatRef, Reply
from bot.transports.telegram.buttons import ButtonBook
from bot.transports.telegram.failures import retry_safe, undelivered
from bot.transports.telegram.priority import request
from bot.transports.telegram.render import Markup, keyboard, split_text

__all__ = ["Outbox"]

log = logging.getLogger("hrd_bot.telegram")
T = TypeVar("T")
SendOne = Callable[[str, str, Markup | None], Awaitable[int | None]]
TRIES = 3
DELETE_BATCH = 100  # deleteMessages takes at most 100 ids
RETRY_SOON = timedelta(seconds=1)
_NO_PREVIEW = {"is_disabled": True}
SEND = "sendMessage"
EDIT = "editMessageText"


class Outbox:
    """Sends replies, deletes messages, and remembers which chats refuse the bot."""

    def __init__(
        self, bot: Bot, trail: ChatTrail, buttons: ButtonBook, *, backoff: float = 0.2
    ) -> None:
        self._bot = bot
        self._trail = trail
        self._buttons = buttons
        self._backoff = backoff
        self._blocked: set[str] = set()
        _quiet_send_hint()

    def reachable(self, chat: str) -> None:
        """The chat just wrote to the bot, so it no longer blocks it."""
        self._blocked.discard(chat)

    async def send(self, chat: ChatRef, reply: Reply, received: Sequence[str] = ()) -> None:
        """An answer to the chat that wrote, as one or more messages; then `erase_chat`.

        `received` are ids of the user's messages this reply answers: they are noted in
        the chat trail with the messages sent, before an erase reads the trail, so
        `/forget` also deletes the message that asked for it. Noting does not wait for
        the database (see `ChatTrail.note`), so the chat's next update need not either."""
        address = chat.address
        sent: list[int] = []
        try:
            if reply.sensitive and _is_group(chat):
                log.warning("telegram: a confidential message for a group was refused")
            elif address not in self._blocked:
                await self._send_pieces(address, reply, sent, self._answer(reply.urgent))
        finally:
            self._note(address, reply, sent, received)
        if reply.erase_chat:
            await self.erase(address, keep={str(message_id) for message_id in sent})

    async def post(self, chat: ChatRef, reply: Reply) -> tuple[str, ...]:
        """A message the bot starts (for `bot.delivery.Outbox`): the ids sent, or
        `Undelivered`. Not retried here: the outbox retries what may be retried, and a
        send whose answer was lost is never repeated (Telegram cannot deduplicate it)."""
        if reply.sensitive and _is_group(chat):
            log.warning("telegram: a confidential message for a group was refused")
            raise Undelivered(Reason.WITHHELD)
        if reply.replaces is not None and await self._edited(chat, reply, reply.replaces):
            return (reply.replaces,)
        sent: list[int] = []
        try:
            await self._send_pieces(chat.address, reply, sent, self._post_one(chat, reply.urgent))
        finally:
            self._note(chat.address, reply, sent)
        return tuple(str(message_id) for message_id in sent)

    async def _edited(self, chat: ChatRef, reply: Reply, message_id: str) -> bool:
        """Update the earlier message in place; False when Telegram will not (too old,
        deleted, too long, with buttons), so the caller sends a new one instead."""
        pieces = split_text(reply.text)
        if len(pieces) > 1 or reply.choices:
            return False
        params = {"chat_id": int(chat.address), "message_id": int(message_id), "text": pieces[0]}
        try:
            await self._bot.do_api_request(EDIT, params)
        except BadRequest as exc:
            return "not modified" in exc.message
        except TelegramError as exc:
            raise undelivered(exc, group=_is_group(chat)) from None
        return True

    def _post_one(self, chat: ChatRef, urgent: bool) -> SendOne:
        async def post_one(address: str, text: str, markup: Markup | None) -> int:
            try:
                return await self._send_one(address, text, markup, urgent=urgent)
            except TelegramError as exc:
                raise undelivered(exc, group=_is_group(chat)) from None

        return post_one

    def _note(
        self, chat: str, reply: Reply, sent: Sequence[int], received: Sequence[str] = ()
    ) -> None:
        kept: list[tuple[str, timedelta | None]] = [(m, None) for m in received]
        kept += [(str(message_id), reply.ttl) for message_id in sent]
        self._trail.note(chat, kept)

    async def _send_pieces(
        self, chat: str, reply: Reply, sent: list[int], send_one: SendOne
    ) -> None:
        pieces = split_text(reply.text)
        nonce = self._buttons.new_nonce()
        markup = None
        if reply.choices:
            payloads = self._buttons.payloads(chat, nonce, len(reply.choices))
            markup = keyboard(reply.choices, payloads)
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            message = await send_one(chat, piece, markup if last else None)
            if message is None:
                break
            sent.append(message)
        if markup is not None and len(sent) == len(pieces):
            self._buttons.shown(chat, sent[-1], nonce, [choice.id for choice in reply.choices])
        else:
            self._buttons.forget(chat)

    async def _send_one(
        self, chat: str, text: str, markup: Markup | None, *, urgent: bool = False
    ) -> int:
        """The new message's id. The answer is read as plain JSON: building PTB objects
        for a message and its keyboard cost more than all the rest of a reply. An urgent
        one (an SOS) skips the rate limiter's queues (`priority`)."""
        params: dict[str, object] = {
            "chat_id": int(chat),
            "text": text,
            "link_preview_options": _NO_PREVIEW,
        }
        if markup is not None:
            params["reply_markup"] = markup
        try:
            result = await request(self._bot, SEND, params, urgent=urgent)
            return int(result["message_id"])
        except (KeyError, TypeError, ValueError):
            log.error("telegram: a sent message's id could not be read; it cannot expire")
            raise Undelivered(Reason.UNCERTAIN, uncertain=True) from None

    def _answer(self, urgent: bool) -> SendOne:
        """An answer to the chat that wrote: server errors retried here, refusals logged.
        An urgent one (an SOS screen) skips the rate limiter's queues too."""

        async def answer_one(chat: str, text: str, markup: Markup | None) -> int | None:
            try:
                return await self._retrying(
                    lambda: self._send_one(chat, text, markup, urgent=urgent)
                )
            except Forbidden:
                self._refused(chat)
            except TelegramError as exc:
                log.warning("telegram: a message was not sent (%s)", _kind(exc))
            except Undelivered:
                pass
            return None

        return answer_one

    async def answer(self, query_id: str) -> None:
        """Stop the spinner on a pressed button; a query too old to answer needs nothing."""
        try:
            await self._retrying(lambda: self._bot.answer_callback_query(query_id))
        except TelegramError as exc:
            log.info("telegram: a button press was not answered (%s)", _kind(exc))

    async def delete(self, chat: str, message_id: str) -> bool:
        """For the sweeper: True once the message is gone or Telegram will never delete it."""
        if chat in self._blocked:
            return False
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

    async def erase(self, chat: str, keep: set[str]) -> None:
        """Delete every message on record in the chat (but `keep`), then forget their ids.

        What cannot be deleted now is handed to the sweeper, due in a second, to be retried.
        """
        traces = [t for t in await self._trail.in_chat(chat) if t.message_id not in keep]
        handed_over = 0
        for start in range(0, len(traces), DELETE_BATCH):
            batch = traces[start : start + DELETE_BATCH]
            if not await self._delete_many(chat, batch):
                retry = [(trace.message_id, RETRY_SOON) for trace in batch]
                await self._trail.record_many(chat, retry)
                handed_over += len(batch)
            await self._trail.drop([trace.row for trace in batch])
        self._buttons.forget(chat)
        log.info(
            "telegram: erased a chat (%d messages, %d left to retry)", len(traces), handed_over
        )

    async def _delete_many(self, chat: str, traces: Sequence[Trace]) -> bool:
        ids = [int(trace.message_id) for trace in traces]
        if chat in self._blocked:
            return False
        try:
            await self._retrying(lambda: self._bot.delete_messages(int(chat), ids))
        except Forbidden:
            self._refused(chat)
            return False
        except BadRequest:
            return True  # none of them can be deleted any more
        except TelegramError:
            return False
        return True

    def _refused(self, chat: str) -> None:
        if chat not in self._blocked:
            self._blocked.add(chat)
            log.info("telegram: a chat blocked the bot; nothing more is sent to it")

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """Retry server errors and timeouts, with backoff; Telegram's refusals are final."""
        for attempt in range(TRIES):
            try:
                return await call()
            except (BadRequest, RetryAfter):
                raise
            except NetworkError as exc:
                if attempt == TRIES - 1 or not retry_safe(exc):
                    raise
                await asyncio.sleep(self._backoff * 2**attempt)
        raise AssertionError("unreachable")


def _quiet_send_hint() -> None:
    """`Bot.do_api_request` suggests `Bot.send_message` for a method PTB wraps; that one
    parses every answer into objects the bot does not use (see `Outbox._send_one`).
    Set when an outbox is made, not at import, as imports may run inside a
    `warnings.catch_warnings` block that would undo it (pytest collects that way)."""
    for method in (SEND, EDIT):
        warnings.filterwarnings("ignore", f"Please use 'Bot.{method}' instead", PTBUserWarning)


def _is_group(chat: ChatRef) -> bool:
    """Groups, supergroups and channels have negative ids on Telegram, people positive
    ones. The id is checked as well as `private`, because a relay to a reporter is
    addressed by the chat stored with the case, not by a chat that just wrote."""
    return not chat.private or chat.address.startswith("-")


def _kind(exc: TelegramError) -> str:
    """A refusal's kind for the log: Telegram's own wording, which names no user or chat."""
    if isinstance(exc, BadRequest):
        return exc.message
    return type(exc).__name__
