"""Simulated people: they write, press buttons, block the bot, and read their chat.

A test reads what a person's phone would show (`seen`), so "the message was deleted"
means it is gone from the chat, not that a delete call was made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.telegram_emulator.world import JSON, Chat, Message, Person, Query, StoredFile, World

PHOTO = b"\xff\xd8\xff\xe0 emulated JPEG " + bytes(range(256)) * 16


def _photo_size(stored: StoredFile, width: int, height: int) -> JSON:
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.unique_id,
        "file_size": len(stored.data),
        "width": width,
        "height": height,
    }


def _with_caption(extra: JSON, caption: str | None) -> JSON:
    return extra if caption is None else {**extra, "caption": caption}


@dataclass(frozen=True, slots=True)
class Screen:
    """The bot's answer as shown: every new message, and the buttons under the last one."""

    messages: tuple[Message, ...]

    @property
    def text(self) -> str:
        return "\n".join(m.text or "" for m in self.messages)

    @property
    def last(self) -> Message:
        return self.messages[-1]

    @property
    def buttons(self) -> list[str]:
        return [str(b["text"]) for b in self.last.buttons]


class SimUser:
    """One person in one chat (their private chat with the bot, or a group)."""

    def __init__(self, world: World, person: Person, chat: Chat) -> None:
        self.world = world
        self.person = person
        self.chat = chat
        self._read_up_to = 0

    def seen(self) -> list[Message]:
        """What the chat shows now: deleted messages are gone."""
        return self.world.visible(self.chat)

    def from_bot(self) -> list[Message]:
        return [m for m in self.seen() if m.sender is self.world.bot]

    async def send(self, text: str, reply_to: Message | None = None) -> Message:
        extra: JSON = {}
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            extra["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        if reply_to is not None:
            extra["reply_to_message"] = reply_to.to_json()
        return await self._post(text, extra, reply_to)

    async def forward(self, text: str, origin: str = "Somebody") -> Message:
        """A message passed on from elsewhere (here a user who hides their account)."""
        extra: JSON = {
            "forward_origin": {"type": "hidden_user", "sender_user_name": origin, "date": 0}
        }
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            extra["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return await self._post(text, extra)

    def compose(self, text: str, extra: JSON | None = None) -> JSON:
        """The update Telegram would send for `text`, with a fresh id, not queued: a test
        breaks it, then `inject`s it. The message is in the chat, as it would be."""
        message = self.world.post(self.chat, self.person, text, extra=extra or {})
        self._read_up_to = message.message_id
        return {"update_id": self.world.next_update_id(), "message": message.to_json()}

    async def send_photo(self, data: bytes = PHOTO, caption: str | None = None) -> Message:
        """A photo as Telegram delivers it: several sizes, the last one the full picture."""
        thumbnail = self.world.store_file(data[:64], "thumbnails", "jpg")
        full = self.world.store_file(data, "photos", "jpg")
        photo = [
            _photo_size(thumbnail, 90, 68),
            _photo_size(full, 1280, 960),
        ]
        return await self._post(None, _with_caption({"photo": photo}, caption))

    async def send_document(
        self,
        data: bytes,
        file_name: str | None = "document.pdf",
        mime_type: str | None = "application/pdf",
        caption: str | None = None,
    ) -> Message:
        stored = self.world.store_file(data, "documents", (file_name or "file").rpartition(".")[2])
        document: JSON = {
            "file_id": stored.file_id,
            "file_unique_id": stored.unique_id,
            "file_size": len(data),
        }
        if file_name is not None:
            document["file_name"] = file_name
        if mime_type is not None:
            document["mime_type"] = mime_type
        return await self._post(None, _with_caption({"document": document}, caption))

    async def send_sticker(self) -> Message:
        """Something a person sends that is not text and not a file a report can hold."""
        stored = self.world.store_file(b"RIFF webp sticker", "stickers", "webp")
        sticker = {
            **_photo_size(stored, 512, 512),
            "type": "regular",
            "is_animated": False,
            "is_video": False,
        }
        return await self._post(None, {"sticker": sticker})

    async def send_location(self, latitude: float, longitude: float, accuracy: float) -> Message:
        """A location shared from the attachment menu (not a live one)."""
        place = {"latitude": latitude, "longitude": longitude, "horizontal_accuracy": accuracy}
        return await self._post(None, {"location": place})

    async def _post(
        self, text: str | None, extra: JSON | None = None, reply_to: Message | None = None
    ) -> Message:
        message = self.world.post(self.chat, self.person, text, extra=extra or {})
        self._read_up_to = message.message_id
        if self.world.sees(self.chat, text, reply_to):
            self.world.push("message", message.to_json())
        await self.world.notify()
        return message

    async def press(self, label: str, message: Message | None = None) -> Query:
        """Press the button with this label on `message`, else on the newest message that has it."""
        candidates = [message] if message else reversed(self.from_bot())
        for candidate in candidates:
            for button in candidate.buttons:
                if button["text"] == label:
                    return await self.press_data(candidate, str(button["callback_data"]))
        raise LookupError(f"no button {label!r} in the chat")

    async def press_data(self, message: Message, data: str) -> Query:
        """What a modified client can do: send any payload for any message with buttons."""
        query = Query(self.world.new_query_id(), message)
        self.world.queries[query.id] = query
        self._read_up_to = max(self._read_up_to, self._newest_id())
        payload: dict[str, Any] = {
            "id": query.id,
            "from": self.person.to_json(),
            "message": message.to_json(),
            "chat_instance": str(-self.chat.id * 7),
            "data": data,
        }
        self.world.push("callback_query", payload)
        await self.world.notify()
        return query

    def _newest_id(self) -> int:
        messages = self.world.messages[self.chat.id]
        return messages[-1].message_id if messages else 0

    async def answer(self, count: int | None = None, within: float = 10.0) -> Screen:
        """Wait for the bot's next answer: `count` messages, else up to one with buttons.

        Messages deleted since (an expired reply) still count: they were shown."""

        def fresh() -> list[Message]:
            everything = self.world.messages[self.chat.id]
            bot = self.world.bot
            return [m for m in everything if m.sender is bot and m.message_id > self._read_up_to]

        def complete() -> bool:
            new = fresh()
            if count is not None:
                return len(new) >= count
            return any(m.buttons for m in new)

        await self.world.wait_for(complete, within)
        new = fresh()
        if count is None:
            new = new[: next(i for i, m in enumerate(new) if m.buttons) + 1]
        self._read_up_to = new[-1].message_id
        return Screen(tuple(new))

    async def ask(self, text: str) -> Screen:
        await self.send(text)
        return await self.answer()

    async def choose(self, label: str) -> Screen:
        await self.press(label)
        return await self.answer()

    def block(self) -> None:
        self.chat.blocked = True

    def unblock(self) -> None:
        self.chat.blocked = False
