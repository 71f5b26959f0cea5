"""The platform-neutral message model.

Transports turn platform updates into `Incoming` and render `Reply`; handlers see
nothing else, so a conversation behaves the same on Telegram, Matrix and the console.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

__all__ = [
    "Attachment",
    "ChatRef",
    "Choice",
    "Incoming",
    "Location",
    "Reply",
    "Transport",
    "UserRef",
]


@dataclass(frozen=True, slots=True)
class UserRef:
    """A person, known only by a keyed pseudonym of their platform id."""

    platform: str
    pseudonym: str

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.pseudonym}"


@dataclass(frozen=True, slots=True)
class ChatRef:
    """Where to answer. `address` is the transport's own opaque id and never logged.

    `encrypted` marks a room known to be end-to-end encrypted (a Matrix staff room), the
    only kind of group that may receive report content.
    """

    platform: str
    address: str
    private: bool = True
    encrypted: bool = False

    def __repr__(self) -> str:
        return f"ChatRef(platform={self.platform!r}, private={self.private})"


@dataclass(frozen=True, slots=True)
class Choice:
    """One option offered to the user; `id` comes back in `Incoming.choice` when pressed."""

    id: str
    label: str


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file or photo the user sent. `data` is None when it was over the download limit."""

    name: str
    media_type: str
    size: int
    data: bytes | None = None

    def __repr__(self) -> str:
        return f"Attachment(size={self.size})"


@dataclass(frozen=True, slots=True)
class Location:
    """A place the user shared (Telegram location, Matrix `m.location`), in degrees.

    Only the SOS screens take one; it is sealed to the case and never logged."""

    latitude: float
    longitude: float
    accuracy: float | None = None

    def __repr__(self) -> str:
        return "Location(…)"

    @property
    def geo(self) -> str:
        """An RFC 5870 `geo:` URI, the form Matrix uses and maps apps open."""
        uri = f"geo:{self.latitude:.6f},{self.longitude:.6f}"
        return uri + (f";u={self.accuracy:.0f}" if self.accuracy is not None else "")


@dataclass(frozen=True, slots=True)
class Incoming:
    """What a user sent: typed text, or a pressed choice (never both).

    `forwarded` marks text the user passed on from elsewhere: it is never a command or
    a choice, only text where the screen asks for some (evidence in a report, say).
    `verified_device` says whether the transport proved the message came from a device
    the operator listed for staff (True: a listed Matrix device, or the local console;
    False: any other device, or a message that cannot show its device); None where the
    platform has no device identity (Telegram). Staff authority depends on it.
    `location` is a place the user shared (a message with no text).
    `claim_of` is the id of the bot's own message (a staff alert) that a staff member
    claimed with a reaction or a Claim button; the transport vouches only for that id.
    """

    user: UserRef
    chat: ChatRef
    text: str | None = None
    choice: str | None = None
    language_hint: str | None = None
    message_id: str | None = None
    raw_size: int = 0
    attachment: Attachment | None = None
    forwarded: bool = False
    verified_device: bool | None = None
    location: Location | None = None
    claim_of: str | None = None

    def __repr__(self) -> str:
        return f"Incoming(user={self.user.pseudonym[:8]}…, chat={self.chat!r})"


@dataclass(frozen=True, slots=True)
class Reply:
    """What the bot says back: one screen of text and the choices under it.

    `ttl` asks the transport to delete the message after that long; `sensitive`
    marks a message whose content must not linger on a seized phone or in a group.
    `rtl` tells transports that render plain text to keep right-to-left order.
    `erase_chat` (after `/forget`) asks the transport to delete what it still can of
    this chat once the reply is shown, then let the reply itself expire; `language`
    then names the text's language, for the lines the transport adds to it (the
    session that held it is gone).
    `files` go after the text, and only where the transport can send them end-to-end
    encrypted to a room where `sensitive` content may go; elsewhere nothing of them is sent.
    `urgent` (an SOS alert) goes ahead of every other message waiting to be sent.
    """

    text: str
    choices: tuple[Choice, ...] = ()
    ttl: timedelta | None = None
    sensitive: bool = False
    rtl: bool = False
    erase_chat: bool = False
    language: str | None = None
    replaces: str | None = None
    files: tuple[Attachment, ...] = ()
    urgent: bool = False

    def __repr__(self) -> str:
        return f"Reply(choices={len(self.choices)}, sensitive={self.sensitive})"


Handler = Callable[[Incoming], Awaitable[Sequence[Reply]]]
"""What a transport calls for every incoming message: the whole bot, seen from outside."""


class Transport(Protocol):
    """A platform connection. `run` returns when the transport is finished (end of input, stop).

    `send` returns the platform's ids of the messages it posted, or raises
    `bot.delivery.Undelivered`. `key` names this message across retries: a transport
    whose platform deduplicates by it (Matrix transaction ids) is `idempotent`, and a
    send whose answer was lost may then simply be repeated. `connected` says whether it
    can take and send messages now (readiness, `bot.health`).
    """

    name: str
    idempotent: bool

    @property
    def connected(self) -> bool: ...

    async def run(self, handle: Handler) -> None: ...

    async def send(self, chat: ChatRef, reply: Reply, key: str = "") -> tuple[str, ...]: ...

    async def stop(self) -> None: ...
