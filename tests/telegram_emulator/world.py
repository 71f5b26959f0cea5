"""What the emulated Telegram knows: people, chats, messages, pending updates, a clock.

Shapes follow the Bot API (https://core.telegram.org/bots/api): a private chat's id is
the user's id, group ids are negative (supergroups' start with -100), and `date` is Unix
time from the emulator's clock, which
tests can move forward. Files people send are kept here (`StoredFile`) so `getFile`
and the file download can serve them.

Message ids count up for both sides of a chat, but where they count is Telegram's: a
supergroup or channel has its own counter, while private chats and basic groups take
their ids from one counter of the bot's account (its "message box"; MTProto: ids are
"unique per channel and otherwise unique per account"). So in a private chat the ids
increase but skip the numbers other chats took meanwhile, as a busy bot sees them.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]
DELETE_WINDOW = 48 * 3600  # a message older than this can no longer be deleted


class ApiError(Exception):
    """An error answer: `{"ok": false, "error_code": code, "description": ...}`."""

    def __init__(self, code: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def body(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(what: str) -> ApiError:
    return ApiError(400, f"Bad Request: {what}")


@dataclass(slots=True)
class Person:
    id: int
    first_name: str
    language_code: str | None = None
    is_bot: bool = False
    username: str | None = None

    def to_json(self) -> JSON:
        data: JSON = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        return data


@dataclass(slots=True)
class Chat:
    id: int
    type: str
    title: str
    blocked: bool = False
    next_message_id: int = 1
    """Used only by supergroups and channels: other chats count in the bot's box."""

    def to_json(self) -> JSON:
        if self.type == "private":
            return {"id": self.id, "type": "private", "first_name": self.title}
        return {"id": self.id, "type": self.type, "title": self.title}


@dataclass(slots=True)
class Message:
    message_id: int
    chat: Chat
    sender: Person
    date: int
    text: str | None = None
    reply_markup: JSON | None = None
    parse_mode: str | None = None
    extra: JSON = field(default_factory=dict)
    edit_date: int | None = None
    deleted: bool = False

    @property
    def buttons(self) -> list[JSON]:
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [button for row in rows for button in row]

    def to_json(self) -> JSON:
        data: JSON = {
            "message_id": self.message_id,
            "from": self.sender.to_json(),
            "chat": self.chat.to_json(),
            "date": self.date,
            **self.extra,
        }
        if self.text is not None:
            data["text"] = self.text
        if self.reply_markup:
            data["reply_markup"] = self.reply_markup
        if self.edit_date is not None:
            data["edit_date"] = self.edit_date
        return data


@dataclass(slots=True)
class StoredFile:
    """A file someone sent: `file_id` names it in messages, `path` in the download URL."""

    file_id: str
    unique_id: str
    path: str
    data: bytes

    def to_json(self) -> JSON:
        """The Bot API `File` object, as `getFile` returns it."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.unique_id,
            "file_size": len(self.data),
            "file_path": self.path,
        }


@dataclass(slots=True)
class Query:
    """A pressed button, until the bot answers it."""

    id: str
    message: Message
    answered: bool = False
    answer_text: str | None = None


@dataclass(slots=True)
class Call:
    """One request the bot made, for tests to inspect (never part of any answer)."""

    method: str
    params: JSON
    status: int = 200


class World:
    """All state, touched only from the event loop; `changed` wakes anyone waiting on it."""

    def __init__(self, bot_id: int = 7_000_000_001) -> None:
        self.bot = Person(bot_id, "HRD Test Bot", is_bot=True, username="hrd_test_bot")
        self.offset = 0.0
        self.chats: dict[int, Chat] = {}
        self.messages: dict[int, list[Message]] = {}
        self.updates: list[JSON] = []
        self.history: dict[int, JSON] = {}
        """Every update ever queued, by id (to deliver one again)."""
        self.redelivered: set[int] = set()
        """Ids queued again as if their confirmation had been lost: getUpdates returns them
        whatever the offset says."""
        self.holding = False
        """While True nothing is delivered, so updates queued meanwhile go out as one batch."""
        self.allowed_updates: list[str] | None = None
        self.queries: dict[str, Query] = {}
        self.commands: dict[tuple[str, str], list[JSON]] = {}
        self.calls: list[Call] = []
        self.files: dict[str, StoredFile] = {}
        self.downloads: list[str] = []
        self.privacy = True
        """The bot's group privacy mode (on by default, as BotFather sets it)."""
        self.changed = asyncio.Condition()
        self._watchers: dict[int, list[asyncio.Future[Message]]] = {}
        self._update_ids = itertools.count(500_000_001)
        self._query_ids = itertools.count(880_000_000_000)
        self._people = itertools.count(100_000_001)
        self._groups = itertools.count(1_000_000_001)
        self._files = itertools.count(1)
        self._box = itertools.count(1)
        """Message ids of private chats and basic groups (see the module)."""

    def now(self) -> int:
        return int(time.time() + self.offset)

    def advance(self, seconds: float) -> None:
        """Move the clock forward: messages age (the 48-hour delete rule) without waiting."""
        self.offset += seconds

    async def notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def wait_for(self, check: Callable[[], bool], within: float = 10.0) -> None:
        async with asyncio.timeout(within), self.changed:
            await self.changed.wait_for(check)

    def new_person(self, first_name: str, language_code: str | None) -> Person:
        return Person(next(self._people), first_name, language_code)

    def private_chat(self, person: Person) -> Chat:
        chat = self.chats.setdefault(person.id, Chat(person.id, "private", person.first_name))
        self.messages.setdefault(chat.id, [])
        return chat

    def new_group(self, title: str, *, supergroup: bool = False) -> Chat:
        number = next(self._groups)
        if supergroup:
            chat = Chat(-1_000_000_000_000 - number, "supergroup", title)
        else:
            chat = Chat(-number, "group", title)
        self.chats[chat.id] = chat
        self.messages[chat.id] = []
        return chat

    def chat(self, chat_id: object) -> Chat:
        if not isinstance(chat_id, int) or chat_id not in self.chats:
            raise bad_request("chat not found")
        return self.chats[chat_id]

    def post(self, chat: Chat, sender: Person, text: str | None, **fields: Any) -> Message:
        message = Message(self._message_id(chat), chat, sender, self.now(), text, **fields)
        self.messages[chat.id].append(message)
        if sender is self.bot:
            for watcher in self._watchers.pop(chat.id, []):
                if not watcher.done():
                    watcher.set_result(message)
        return message

    def _message_id(self, chat: Chat) -> int:
        if chat.type in ("private", "group"):
            return next(self._box)
        chat.next_message_id += 1
        return chat.next_message_id - 1

    def next_from_bot(self, chat: Chat) -> asyncio.Future[Message]:
        """The bot's next message in this chat; one chat's waiters are not woken by others."""
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._watchers.setdefault(chat.id, []).append(future)
        return future

    def find(self, chat: Chat, message_id: object) -> Message | None:
        for message in self.messages[chat.id]:
            if message.message_id == message_id and not message.deleted:
                return message
        return None

    def visible(self, chat: Chat) -> list[Message]:
        return [m for m in self.messages[chat.id] if not m.deleted]

    def push(self, kind: str, payload: JSON) -> None:
        """Queue an update; one of a kind the bot did not ask for is dropped, as Telegram does."""
        if self.allowed_updates and kind not in self.allowed_updates:
            return
        self.queue_raw({"update_id": self.next_update_id(), kind: payload})

    def next_update_id(self) -> int:
        return next(self._update_ids)

    def queue_raw(self, update: Any) -> None:
        """Queue anything as an update, exactly as given (a test's bad shapes)."""
        self.updates.append(update)
        if isinstance(update, dict) and isinstance(update.get("update_id"), int):
            self.history[update["update_id"]] = update

    def queue_again(self, update_id: int) -> None:
        """Deliver an update once more, as Telegram does when its receipt was not confirmed
        (a webhook answer lost, a bot that crashed before the next getUpdates)."""
        self.updates.append(self.history[update_id])
        self.updates.sort(key=lambda u: u["update_id"] if isinstance(u, dict) else 0)
        self.redelivered.add(update_id)

    def store_file(self, data: bytes, folder: str, suffix: str) -> StoredFile:
        """Keep a sent file; ids are opaque and long, as Telegram's are."""
        number = next(self._files)
        stored = StoredFile(
            file_id="BQACAgIAAxkBAAI" + secrets.token_urlsafe(40),
            unique_id="AgAD" + secrets.token_urlsafe(9),
            path=f"{folder}/file_{number}.{suffix}",
            data=data,
        )
        self.files[stored.file_id] = stored
        return stored

    def sees(self, chat: Chat, text: str | None, reply_to: Message | None) -> bool:
        """Whether the bot receives a message: everything in a private chat; in a group,
        with privacy mode on, only commands meant for it and replies to its messages.
        (Telegram also sends general commands only if this bot spoke last among the
        group's bots; the emulated world has one bot, so they always reach it.)"""
        if chat.type == "private" or not self.privacy:
            return True
        if reply_to is not None and reply_to.sender is self.bot:
            return True
        if text is None or not text.startswith("/"):
            return False
        _, at, name = text.split(maxsplit=1)[0].partition("@")
        return not at or name == self.bot.username

    def new_query_id(self) -> str:
        return str(next(self._query_ids))
