"""Everything the bot puts into or takes out of a Telegram chat, and what it does when refused.

Every message sent is recorded in the chat trail (with its time to live), so the sweeper
and `/forget` can delete it later, after a restart too. A confidential reply (a report's
answers, the protection team's words to a reporter) never goes into a group, whoever
asked for it: it is refused and logged. Rate limits are the
`AIORateLimiter`'s job (it waits out a 429 and retries); here, a server error or a
timeout is retried a few times, a chat that blocked the bot gets nothing more, and a
refused message is logged by kind only, never with text or ids.

A person's own messages expire with the bot's: each is noted with the shortest time to
live of the screen it answered and the replies that answer it (`received_ttl`), so a
typed answer, a photo or a message to the team on a sensitive screen is deleted with
it. A send whose answer was lost leaves a gap (`gaps`) that is deleted by range. After
`/forget` the confirmation is edited to say what was and was not deleted (`Epilogue`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import TypeVar

from telegram import Bot
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.cases.claims import CLAIM
from bot.conversation.chat_trail import ChatTrail
from bot.delivery import Reason, Undelivered
from bot.model import ChatRef, Reply
from bot.transports.telegram.buttons import ButtonBook
from bot.transports.telegram.deleting import Deleter, Erased
from bot.transports.telegram.failures import retry_safe, undelivered
from bot.transports.telegram.gaps import LostSends, is_private
from bot.transports.telegram.priority import request
from bot.transports.telegram.render import Markup, keyboard, split_text

__all__ = ["Outbox"]

log = logging.getLogger("hrd_bot.telegram")
T = TypeVar("T")
SendOne = Callable[[str, str, Markup | None, timedelta | None], Awaitable[int | None]]
Epilogue = Callable[[Reply, Erased], str | None]
"""The confirmation's text after `/forget` and what the erase did: its new text, or None."""
TRIES = 3
_NO_PREVIEW = {"is_disabled": True}
SEND = "sendMessage"
EDIT = "editMessageText"


class Outbox:
    """Sends replies, deletes messages, and remembers which chats refuse the bot."""

    def __init__(
        self,
        bot: Bot,
        trail: ChatTrail,
        buttons: ButtonBook,
        *,
        backoff: float = 0.2,
        epilogue: Epilogue | None = None,
    ) -> None:
        self._bot = bot
        self._trail = trail
        self._buttons = buttons
        self._backoff = backoff
        self._epilogue = epilogue
        self._blocked: set[str] = set()
        self._screens: dict[str, timedelta] = {}
        """Private chats whose last message from the bot expires: after how long."""
        self.lost = LostSends(trail.note)
        blocked = self._blocked.__contains__
        self.deleter = Deleter(
            bot, trail, self._retrying, blocked, self._refused, bound=self.lost.bound
        )

    def reachable(self, chat: str, message_id: int | None = None) -> None:
        """The chat just wrote to the bot (message `message_id`), so it no longer blocks it."""
        self._blocked.discard(chat)
        if message_id is not None and is_private(chat):
            self.lost.seen(message_id)

    def screen_ttl(self, chat: str) -> timedelta | None:
        """When the bot's last message in the chat expires (None: it stays)."""
        return self._screens.get(chat)

    async def send(
        self,
        chat: ChatRef,
        reply: Reply,
        received: Sequence[str] = (),
        received_ttl: timedelta | None = None,
    ) -> None:
        """An answer to the chat that wrote, as one or more messages; then `erase_chat`.

        `received` are ids of the user's messages this reply answers, noted in the chat
        trail with the messages sent (to expire after `received_ttl`), before an erase
        reads the trail, so `/forget` also deletes the message that asked for it. Noting
        does not wait for the database (see `ChatTrail.note`), nor does the next update."""
        address = chat.address
        sent: list[int] = []
        try:
            if reply.sensitive and _is_group(chat):
                log.warning("telegram: a confidential message for a group was refused")
            elif address not in self._blocked:
                await self._send_pieces(address, reply, sent, self._answer(reply.urgent))
        finally:
            self._note(address, reply, sent, received, received_ttl)
        if reply.erase_chat:
            erased = await self.erase(address, keep={str(message_id) for message_id in sent})
            if sent:
                await self._tell_erased(address, sent[-1], reply, erased)

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
        async def post_one(
            address: str, text: str, markup: Markup | None, ttl: timedelta | None
        ) -> int:
            try:
                return await self._send_one(address, text, markup, ttl, urgent=urgent)
            except TelegramError as exc:
                raise undelivered(exc, group=_is_group(chat)) from None

        return post_one

    def _note(
        self,
        chat: str,
        reply: Reply,
        sent: Sequence[int],
        received: Sequence[str] = (),
        received_ttl: timedelta | None = None,
    ) -> None:
        kept: list[tuple[str, timedelta | None]] = [(m, received_ttl) for m in received]
        kept += [(str(message_id), reply.ttl) for message_id in sent]
        self._trail.note(chat, kept)
        if sent and reply.ttl is not None and is_private(chat):
            self._screens[chat] = reply.ttl
        elif sent:
            self._screens.pop(chat, None)

    async def _send_pieces(
        self, chat: str, reply: Reply, sent: list[int], send_one: SendOne
    ) -> None:
        pieces = split_text(reply.text)
        nonce = self._buttons.new_nonce()
        markup = None
        if claim := _claim_only(reply):
            markup = keyboard(reply.choices, [self._buttons.claim_payload(chat)])
        elif reply.choices:
            payloads = self._buttons.payloads(chat, nonce, len(reply.choices))
            markup = keyboard(reply.choices, payloads)
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            message = await send_one(chat, piece, markup if last else None, reply.ttl)
            if message is None:
                break
            sent.append(message)
        if claim:
            return  # a staff alert: the chat's current screen stays what it was
        if markup is not None and len(sent) == len(pieces):
            self._buttons.shown(chat, sent[-1], nonce, [choice.id for choice in reply.choices])
        else:
            self._buttons.forget(chat)

    async def _send_one(
        self,
        chat: str,
        text: str,
        markup: Markup | None,
        ttl: timedelta | None,
        *,
        urgent: bool = False,
    ) -> int:
        """The new message's id. The answer is read as plain JSON: building PTB objects
        for a message and its keyboard cost more than all the rest of a reply. A send
        whose answer was lost or unreadable leaves a gap (see `gaps`). An urgent one (an
        SOS) skips the rate limiter's queues (`priority`)."""
        params: dict[str, object] = {
            "chat_id": int(chat),
            "text": text,
            "link_preview_options": _NO_PREVIEW,
        }
        if markup is not None:
            params["reply_markup"] = markup
        above, begun = self.lost.begin()
        try:
            result = await request(self._bot, SEND, params, urgent=urgent)
            message_id = int(result["message_id"])
        except NetworkError as exc:
            if not retry_safe(exc):
                self.lost.lost(chat, above, ttl)
            raise
        except (KeyError, TypeError, ValueError):
            log.error("telegram: a sent message's id could not be read; it is deleted by range")
            self.lost.lost(chat, above, ttl)
            raise Undelivered(Reason.UNCERTAIN, uncertain=True) from None
        if is_private(chat):
            self.lost.seen(message_id, begun)
        return message_id

    def _answer(self, urgent: bool) -> SendOne:
        """An answer to the chat that wrote: server errors retried here, refusals logged.
        An urgent one (an SOS screen) skips the rate limiter's queues too."""

        async def answer_one(
            chat: str, text: str, markup: Markup | None, ttl: timedelta | None
        ) -> int | None:
            try:
                return await self._retrying(
                    lambda: self._send_one(chat, text, markup, ttl, urgent=urgent)
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
        """For the sweeper (see `Deleter.delete`)."""
        return await self.deleter.delete(chat, message_id)

    async def erase(self, chat: str, keep: set[str]) -> Erased:
        """Delete every message on record in the chat (but `keep`), lost sends first."""
        erased = await self.deleter.erase(chat, keep)
        self._buttons.forget(chat)
        self._screens.pop(chat, None)
        return erased

    async def _tell_erased(self, chat: str, message_id: int, reply: Reply, erased: Erased) -> None:
        """Edit the confirmation to say what Telegram did; if that fails, the neutral
        confirmation stays, which is true too."""
        text = self._epilogue(reply, erased) if self._epilogue is not None else None
        if text is None:
            return
        params = {"chat_id": int(chat), "message_id": message_id, "text": split_text(text)[0]}
        try:
            await self._retrying(lambda: self._bot.do_api_request(EDIT, params))
        except TelegramError as exc:
            log.warning("telegram: the confirmation was not completed (%s)", _kind(exc))

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


def _claim_only(reply: Reply) -> bool:
    """A staff alert whose one button is Claim (`bot.cases.claims`)."""
    return len(reply.choices) == 1 and reply.choices[0].id == CLAIM
