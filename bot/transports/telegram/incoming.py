"""Telegram updates as the neutral model; what the bot does not serve becomes `None`.

Only two update kinds are asked for (`ALLOWED_UPDATES`): new messages and button
presses. Edits, channel posts and service messages (someone joined a group, a pinned
message) are not conversation and get no answer, so nothing is echoed into a group.
In a group (a staff room among them) only text meant for the bot is passed on; in a
private chat a file comes with its description (`Arrival.media`), fetched later, in
the chat's turn.

A forwarded message is never a command: someone forwarding "/forget" is passing on
text, not asking to erase their chat. In a private chat it reaches the handlers as
plain text (`Incoming.forwarded`); in a group it is not meant for the bot.

python-telegram-bot does not check the types of the values it reads, so a value of a
type the Bot API never sends (a number for a text) raises `Unreadable` here, and the
update is skipped like one the library could not read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from telegram import CallbackQuery, Chat, Message, Update, User

from bot.conversation.pseudonym import Pseudonymizer
from bot.model import ChatRef, Incoming, Location
from bot.transports.telegram.buttons import ButtonBook, Press
from bot.transports.telegram.files import Media, describe

__all__ = [
    "ALLOWED_UPDATES",
    "PLATFORM",
    "STALE_CHOICE",
    "Arrival",
    "Unreadable",
    "chat_ref",
    "from_update",
    "unreadable",
]

PLATFORM = "telegram"
ALLOWED_UPDATES = ("message", "callback_query")
STALE_CHOICE = "telegram:refused"
"""Handed to the handlers for a refused press: it is never on a screen, so they answer
"That option is from an earlier message" and show the current screen again."""


class Unreadable(Exception):
    """An update with a value of a type the Bot API never sends there."""


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise Unreadable


def _number(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise Unreadable


def _degrees(value: object, limit: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) <= limit:
        return float(value)
    raise Unreadable


def _location(msg: Message) -> Location | None:
    """A location shared in a private chat (an SOS takes it); only its coordinates."""
    found = msg.location
    if found is None:
        return None
    accuracy = found.horizontal_accuracy
    return Location(
        _degrees(found.latitude, 90),
        _degrees(found.longitude, 180),
        None if accuracy is None else _degrees(accuracy, 1500),
    )


@dataclass(frozen=True, slots=True)
class Arrival:
    """One update to handle. A press is resolved only in the chat's turn (`resolve`),
    after the previous answer's buttons became current."""

    incoming: Incoming
    message_id: int | None = None
    query_id: str | None = None
    pressed: int | None = None
    payload: str | None = None
    media: Media | None = None

    def resolve(self, buttons: ButtonBook) -> tuple[Incoming, Press | None]:
        """The message for the handlers, and why a press was refused (if it was)."""
        if self.pressed is None:
            return self.incoming, None
        chat = self.incoming.chat
        if buttons.is_claim(self.payload):
            if chat.private or not buttons.claim(chat.address, self.payload):
                return self.incoming, Press.FORGED
            return replace(self.incoming, choice=None, claim_of=str(self.pressed)), None
        choice = buttons.resolve(chat.address, self.pressed, self.payload)
        if isinstance(choice, Press):
            return replace(self.incoming, choice=STALE_CHOICE), choice
        return replace(self.incoming, choice=choice), None


def chat_ref(chat: Chat) -> ChatRef:
    return ChatRef(PLATFORM, str(_number(chat.id)), private=chat.type == Chat.PRIVATE)


def _command(text: str, username: str | None) -> str | None:
    """A command with this bot's `@username` taken off; None for another bot's command.

    In a group, Telegram clients write `/cmd@botname` so that several bots can share
    it, and a bot whose privacy mode is off sees the other bots' commands too."""
    head = text.split(maxsplit=1)[0]
    command, at, name = head.partition("@")
    if not at:
        return text
    if username is None or name.casefold() != username.casefold():
        return None
    return command + text[len(head) :]


def _addressed(msg: Message, text: str, username: str | None) -> bool:
    """In a group only what is meant for the bot counts: a command, a mention, a reply
    to it. (With privacy mode on, Telegram sends nothing else; with it off, everything.)"""
    if text.startswith("/"):
        return True
    if username is None:
        return False
    replied = msg.reply_to_message
    author = replied.from_user if replied is not None else None
    if author is not None and author.is_bot and author.username == username:
        return True
    return f"@{username}".casefold() in text.casefold()


def _message(
    msg: Message, user: User, pseudonyms: Pseudonymizer, username: str | None
) -> Arrival | None:
    chat = chat_ref(msg.chat)
    text = _text(msg.text)
    forwarded = msg.forward_origin is not None
    if forwarded and not chat.private:
        return None
    media: Media | None = None
    location = _location(msg) if chat.private and not forwarded else None
    if text is not None and text.startswith("/") and not forwarded:
        command = _command(text, username)
        if command is None and not chat.private:
            return None
        text = command or text
    if not chat.private:
        if text is None or not _addressed(msg, text, username):
            return None
    elif text is None and location is None:
        media = _checked(describe(msg))
        if media is None and not _is_content(msg):
            return None
        text = _text(msg.caption) if media is not None else None
    incoming = Incoming(
        user=pseudonyms.user(PLATFORM, str(_number(user.id))),
        chat=chat,
        text=text,
        language_hint=_text(user.language_code),
        message_id=str(_number(msg.message_id)),
        raw_size=len(text.encode("utf-8")) if text else 0,
        forwarded=forwarded,
        location=location,
    )
    return Arrival(incoming, message_id=msg.message_id, media=media)


def unreadable(update: Update, pseudonyms: Pseudonymizer) -> Arrival | None:
    """A message the reader could not read, as its sender with nothing in it: the handlers
    ask for text instead of leaving the person in silence."""
    msg, user = update.message, update.effective_user
    if msg is None or user is None:
        return None
    incoming = Incoming(
        user=pseudonyms.user(PLATFORM, str(_number(user.id))),
        chat=chat_ref(msg.chat),
        text=None,
        message_id=str(_number(msg.message_id)),
    )
    return Arrival(incoming, message_id=msg.message_id)


def _checked(media: Media | None) -> Media | None:
    """A file whose id is text and whose size (if stated) is a number."""
    if media is not None:
        _text(media.file_id)
        if media.size is not None:
            _number(media.size)
    return media


def _is_content(msg: Message) -> bool:
    """Something a person sent (a sticker, a location), as opposed to a service notice."""
    return msg.effective_attachment is not None or msg.caption is not None


def _press(query: CallbackQuery, pseudonyms: Pseudonymizer) -> Arrival | None:
    """A press on a message too old to be sent with it is answered and dropped; one
    without a sender (the library lets it be missing) is unreadable."""
    sender: User | None = query.from_user
    if sender is None:
        raise Unreadable
    if query.message is None:
        return None
    data = _text(query.data)
    incoming = Incoming(
        user=pseudonyms.user(PLATFORM, str(_number(sender.id))),
        chat=chat_ref(query.message.chat),
        choice=STALE_CHOICE,
        language_hint=_text(sender.language_code),
        raw_size=len((data or "").encode("utf-8")),
    )
    pressed = _number(query.message.message_id)
    return Arrival(incoming, query_id=_text(query.id), pressed=pressed, payload=data)


def from_update(
    update: Update, pseudonyms: Pseudonymizer, username: str | None = None
) -> Arrival | None:
    """`username` is the bot's own (from getMe): it tells which group messages are meant for it."""
    if update.callback_query is not None:
        return _press(update.callback_query, pseudonyms)
    msg = update.message
    if msg is None or msg.from_user is None or msg.from_user.is_bot:
        return None
    return _message(msg, msg.from_user, pseudonyms, username)
