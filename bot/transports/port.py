"""What a transport may ask of the bot, besides the handler its `run` is given.

A transport turns platform updates into `Incoming` and replies back into messages. For
that it needs a pseudonym for each platform id, the content (a command menu, the lines
a transport adds to a reply), a person's stored language (for the transport's own
notices), the chat trail (to delete what the bot sent), the database worker (for the
transport's own rows: its login, the updates it took) and which chats are staff rooms
and on-call. `bot.app.App` implements this port; a transport never sees the App itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from bot.content.library import Library
from bot.conversation.chat_trail import ChatTrail
from bot.conversation.pseudonym import Pseudonymizer
from bot.model import ChatRef, UserRef
from bot.scheduler import Scheduler
from bot.storage.database import Connection

__all__ = ["Storage", "TransportPort"]

T = TypeVar("T")


class Storage(Protocol):
    """The database worker: every call runs off the event loop, in its thread."""

    async def run(self, work: Callable[[Connection], T]) -> T: ...

    async def transaction(self, work: Callable[[Connection], T], *, durable: bool = False) -> T:
        """`run`, inside one transaction."""
        ...

    async def secret(self, name: str) -> bytes:
        """A random secret kept under `name`, made on first use."""
        ...

    async def read_setting(self, name: str) -> bytes | None: ...

    async def put_setting(self, name: str, value: bytes) -> None: ...


class TransportPort(Protocol):
    """The bot as a transport sees it."""

    @property
    def pseudonyms(self) -> Pseudonymizer: ...

    @property
    def library(self) -> Library:
        """The content now (a reload swaps it): read it when it is needed, not once."""
        ...

    @property
    def storage(self) -> Storage: ...

    @property
    def staff_rooms(self) -> tuple[ChatRef, ...]: ...

    @property
    def oncall(self) -> tuple[ChatRef, ...]: ...

    @property
    def scheduler(self) -> Scheduler:
        """The bot's one timer: a transport's sweeper runs on it."""
        ...

    async def language(self, user: UserRef) -> str | None:
        """The language the person chose, if any."""
        ...

    def chat_trail(self, platform: str) -> ChatTrail:
        """The record of one platform's messages, for the sweeper and `/forget`."""
        ...
