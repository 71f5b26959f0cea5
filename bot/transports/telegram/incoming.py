"""Telegram updates as the neutral model; what the bot does not serve becomes `None`.

Only two update kinds are asked for (`ALLOWED_UPDATES`): new messages and button
presses. Edits, channel posts and service messages (someone joined a group, a pinned
message) are not conversation and get no answer, so nothing is echoed into a group.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from telegram import CallbackQuery, Chat, Message, Update, User

from bot.model import ChatRef, Incoming
from bot.pseudonym import Pseudonymizer
from bot.transports.telegram.buttons import ButtonBook, Press

__all__ = ["ALLOWED_UPDATES", "PLATFORM", "STALE_CHOICE", "Arrival", "chat_ref", "from_update"]

PLATFORM = "telegram"
ALLOWED_UPDATES = ("message", "callback_query")
STALE_CHOICE = "telegram:refused"
"""Handed to the handlers for a refused press: it is never on a screen, so they answer
"That option is from an earlier message" and show the current screen again."""


@dataclass(frozen=True, slots=True)
class Arrival:
    """One update to handle. A press is resolved only in the chat's turn (`resolve`),
    after the previous answer's buttons became current."""

    incoming: Incoming
    message_id: int | None = None
    query_id: str | None = None
    pressed: int | None = None
    payload: str | None = None

    def resolve(self, buttons: ButtonBook) -> tuple[Incoming, Press | None]:
        """The message for the handlers, and why a press was refused (if it was)."""
        if self.pressed is None:
            return self.incoming, None
        choice = buttons.resolve(self.incoming.chat.address, self.pressed, self.payload)
        if isinstance(choice, Press):
            return replace(self.incoming, choice=STALE_CHOICE), choice
        return replace(self.incoming, choice=choice), None


def chat_ref(chat: Chat) -> ChatRef:
    return ChatRef(PLATFORM, str(chat.id), private=chat.type == Chat.PRIVATE)


def _message(msg: Message, user: User, pseudonyms: Pseudonymizer) -> Arrival | None:
    chat = chat_ref(msg.chat)
    text = msg.text
    if text is None and (not chat.private or not _is_content(msg)):
        return None
    incoming = Incoming(
        user=pseudonyms.user(PLATFORM, str(user.id)),
        chat=chat,
        text=text,
        language_hint=user.language_code,
        message_id=str(msg.message_id),
        raw_size=len(text.encode("utf-8")) if text else 0,
    )
    return Arrival(incoming, message_id=msg.message_id)


def _is_content(msg: Message) -> bool:
    """Something a person sent (a photo, a voice note), as opposed to a service notice."""
    return msg.effective_attachment is not None or msg.caption is not None


def _press(query: CallbackQuery, pseudonyms: Pseudonymizer) -> Arrival | None:
    if query.message is None:
        return None
    incoming = Incoming(
        user=pseudonyms.user(PLATFORM, str(query.from_user.id)),
        chat=chat_ref(query.message.chat),
        choice=STALE_CHOICE,
        language_hint=query.from_user.language_code,
        raw_size=len((query.data or "").encode("utf-8")),
    )
    return Arrival(
        incoming, query_id=query.id, pressed=query.message.message_id, payload=query.data
    )


def from_update(update: Update, pseudonyms: Pseudonymizer) -> Arrival | None:
    if update.callback_query is not None:
        return _press(update.callback_query, pseudonyms)
    msg = update.message
    if msg is None or msg.from_user is None or msg.from_user.is_bot:
        return None
    return _message(msg, msg.from_user, pseudonyms)
