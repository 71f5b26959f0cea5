"""A transport double that records every reply, and a user who reads and presses like a person."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.app import App
from bot.delivery import Undelivered
from bot.model import ChatRef, Choice, Handler, Incoming, Reply


@dataclass
class FakeTransport:
    """Implements the Transport protocol; `sent` keeps (chat, reply) in order.

    `faults` are raised, one per send, before anything is recorded; `refuse` maps a
    chat address to the failure every send to it raises."""

    name: str = "fake"
    sent: list[tuple[ChatRef, Reply]] = field(default_factory=list)
    idempotent: bool = True
    connected: bool = True
    faults: list[Undelivered] = field(default_factory=list)
    refuse: dict[str, Undelivered] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    tried: list[str] = field(default_factory=list)
    """The address of every send asked for, refused ones too."""
    _try: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    settle: bool = True
    """Whether a person's message waits until the outbox has nothing left to send (off
    when a test keeps messages queued on purpose)."""

    async def run(self, handle: Handler) -> None:
        return None

    async def tries(self, address: str, times: int) -> None:
        """Until a send to `address` has been asked for `times` times (retries seen, not
        slept through)."""
        async with asyncio.timeout(10):
            while self.tried.count(address) < times:
                self._try.clear()
                await self._try.wait()

    async def send(self, chat: ChatRef, reply: Reply, key: str = "") -> tuple[str, ...]:
        self.tried.append(chat.address)
        self._try.set()
        if self.faults:
            raise self.faults.pop(0)
        if chat.address in self.refuse:
            raise self.refuse[chat.address]
        self.sent.append((chat, reply))
        self.keys.append(key)
        return (str(len(self.sent)),)

    async def stop(self) -> None:
        return None

    def answer(self, chat: ChatRef, reply: Reply) -> None:
        """An answer to the chat that wrote (the transport's own path, not the outbox's)."""
        self.sent.append((chat, reply))


@dataclass
class FakeUser:
    """One person in a private chat with the bot."""

    app: App
    transport: FakeTransport
    platform_id: str = "1001"
    hint: str | None = "en"
    private: bool = True

    @property
    def chat(self) -> ChatRef:
        return ChatRef(self.transport.name, f"chat-{self.platform_id}", private=self.private)

    @property
    def last(self) -> Reply:
        """The last message in this person's chat (alerts to staff rooms go elsewhere)."""
        mine = [reply for chat, reply in self.transport.sent if chat == self.chat]
        return mine[-1]

    async def deliver(self, **fields: object) -> Reply:
        user = self.app.pseudonyms.user(self.transport.name, self.platform_id)
        msg = Incoming(user=user, chat=self.chat, language_hint=self.hint, **fields)  # type: ignore[arg-type]
        replies: Sequence[Reply] = await self.app.handle(msg)
        for reply in replies:
            self.transport.answer(self.chat, reply)
        if self.transport.settle:
            await self.app.outbox.drain()
        return self.last

    async def say(self, text: str, raw_size: int | None = None) -> Reply:
        size = len(text.encode()) if raw_size is None else raw_size
        return await self.deliver(text=text, raw_size=size)

    async def press(self, label: str) -> Reply:
        """Press the first choice whose label contains `label` (as a finger would)."""
        return await self.deliver(choice=self.find(label).id)

    async def press_id(self, choice_id: str) -> Reply:
        return await self.deliver(choice=choice_id)

    def find(self, label: str) -> Choice:
        for choice in self.last.choices:
            if label.casefold() in choice.label.casefold():
                return choice
        labels = [c.label for c in self.last.choices]
        raise AssertionError(f"no choice like {label!r} in {labels}")

    def labels(self) -> list[str]:
        return [c.label for c in self.last.choices]
