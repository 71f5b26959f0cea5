"""What the bot acts on in a room timeline, as plain records (nio types stay in this package).

Text and emotes become `Said`; a well-formed file (`m.image`, `m.file`, …) becomes
`Said` with its `Media` (fetched only in a private room); a location (`m.location`,
its `geo:` URI) becomes `Said` with its `Location`; other media and unknown
message types become `Said` with no text (the handlers answer that only text is
understood); a reaction becomes `Reacted` (the dispatch acts only on a claim in a
staff room); edits and notices (other bots) are ignored; an encrypted
event nio could not decrypt is `Undecryptable`; membership changes are `Membership`.
An event nio could not make sense of (`BadEvent`, `UnknownBadEvent`), or one this
module cannot convert, is `Unreadable`: skipped and counted, never answered. Events of
types nio does not know (`UnknownEvent`: polls, custom types) are not for the bot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from nio import (
    BadEvent,
    MegolmEvent,
    ReactionEvent,
    RoomEncryptedMedia,
    RoomMemberEvent,
    RoomMessageEmote,
    RoomMessageMedia,
    RoomMessageText,
    RoomMessageUnknown,
    UnknownBadEvent,
    UnknownEncryptedEvent,
)

from bot.model import Location
from bot.transports.matrix.media import Media, describe

__all__ = [
    "Item",
    "Membership",
    "Reacted",
    "Said",
    "Sealed",
    "Undecryptable",
    "Unreadable",
    "parse",
    "read",
    "strip_reply_fallback",
]


@dataclass(frozen=True, slots=True)
class Sealed:
    """The Megolm session a decrypted event came in: what ties it to the sending device."""

    sender_key: str
    session_id: str


@dataclass(frozen=True, slots=True)
class Said:
    """`sealed` is None for an event that was not end-to-end encrypted."""

    event_id: str
    sender: str
    text: str | None
    raw_size: int
    mentions: tuple[str, ...] = ()
    media: Media | None = None
    sealed: Sealed | None = None
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class Reacted:
    """A reaction (`key`, an emoji) to the event `reacts_to`; `sealed` as for `Said`."""

    event_id: str
    sender: str
    reacts_to: str
    key: str
    sealed: Sealed | None = None


@dataclass(frozen=True, slots=True)
class Undecryptable:
    event_id: str
    sender: str
    event: Any = None  # the nio MegolmEvent, kept to retry when its key arrives


@dataclass(frozen=True, slots=True)
class Membership:
    event_id: str
    sender: str
    user_id: str
    membership: str


@dataclass(frozen=True, slots=True)
class Unreadable:
    """An event to skip; `kind` is a phrase from this module, never the event's content."""

    event_id: str
    sender: str
    kind: str


Item = Said | Reacted | Undecryptable | Membership | Unreadable
_GEO = re.compile(
    r"geo:(-?\d{1,3}(?:\.\d{1,12})?),(-?\d{1,3}(?:\.\d{1,12})?)(?:,-?\d{1,6}(?:\.\d{1,6})?)?"
    r"(?:;u=(\d{1,7}(?:\.\d{1,6})?))?(?:;[^;]{0,64}){0,4}"
)
_MESSAGES = (
    RoomMessageText,
    RoomMessageEmote,
    RoomMessageMedia,
    RoomEncryptedMedia,
    RoomMessageUnknown,
)


def strip_reply_fallback(body: str) -> str:
    """Drop the `> <@someone> quoted text` lines clients put before a reply."""
    lines = body.split("\n")
    if not lines or not lines[0].startswith("> "):
        return body
    while lines and lines[0].startswith(">"):
        lines.pop(0)
    return "\n".join(lines).lstrip("\n")


def _valid_unicode(text: str) -> str:
    """`text` with lone surrogates (valid JSON, not valid UTF-8) replaced, so it can be stored."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _content(event: Any) -> dict[str, Any]:
    source: dict[str, Any] = event.source
    content = source.get("content")
    return content if isinstance(content, dict) else {}


def _is_edit(content: dict[str, Any]) -> bool:
    relation = content.get("m.relates_to")
    return isinstance(relation, dict) and relation.get("rel_type") == "m.replace"


def _mentions(content: dict[str, Any]) -> tuple[str, ...]:
    mentions = content.get("m.mentions")
    users = mentions.get("user_ids") if isinstance(mentions, dict) else None
    return tuple(str(u) for u in users) if isinstance(users, list) else ()


def location(content: dict[str, Any]) -> Location | None:
    """The place in an `m.location` event's `geo_uri` (RFC 5870); None if it is not one."""
    found = _GEO.fullmatch(_text(content.get("geo_uri")))
    if found is None:
        return None
    latitude, longitude = float(found[1]), float(found[2])
    if abs(latitude) > 90 or abs(longitude) > 180:
        return None
    return Location(latitude, longitude, None if found[3] is None else float(found[3]))


def _sealed(event: Any) -> Sealed | None:
    sender_key, session_id = event.sender_key, event.session_id
    if not (event.decrypted and isinstance(sender_key, str) and isinstance(session_id, str)):
        return None
    return Sealed(sender_key, session_id)


def _said(event: Any) -> Said | None:
    content = _content(event)
    if _is_edit(content):
        return None
    event_id, sender, sealed = str(event.event_id), str(event.sender), _sealed(event)
    if isinstance(event, RoomMessageText | RoomMessageEmote):
        raw = _valid_unicode(str(event.body))
        text = strip_reply_fallback(raw) if "m.relates_to" in content else raw
        return Said(event_id, sender, text, len(raw.encode()), _mentions(content), sealed=sealed)
    if isinstance(event, RoomMessageMedia | RoomEncryptedMedia):
        return Said(event_id, sender, None, 0, media=describe(content), sealed=sealed)
    if content.get("msgtype") == "m.location":
        return Said(event_id, sender, None, 0, sealed=sealed, location=location(content))
    return Said(event_id, sender, None, 0, sealed=sealed)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _unreadable(event: Any, kind: str) -> Unreadable:
    source = getattr(event, "source", None)
    source = source if isinstance(source, dict) else {}
    return Unreadable(_text(source.get("event_id")), _text(source.get("sender")), kind)


def read(event: Any) -> Item | None:
    """`parse`, except that an event it cannot convert becomes `Unreadable` instead of raising."""
    try:
        return parse(event)
    except Exception as exc:
        return _unreadable(event, f"not convertible, {type(exc).__name__}")


def parse(event: Any) -> Item | None:
    """The record for one timeline event, or None when the bot has nothing to do with it."""
    if isinstance(event, BadEvent):
        return _unreadable(event, "malformed event")
    if isinstance(event, UnknownBadEvent):
        return _unreadable(event, "event without its envelope")
    if isinstance(event, _MESSAGES):
        return _said(event)
    if isinstance(event, ReactionEvent):
        reacts_to, key = _text(event.reacts_to), _text(event.key)
        return Reacted(str(event.event_id), str(event.sender), reacts_to, key, _sealed(event))
    if isinstance(event, MegolmEvent):
        return Undecryptable(str(event.event_id), str(event.sender), event)
    if isinstance(event, UnknownEncryptedEvent):
        return Undecryptable(str(event.event_id), str(event.sender))
    if isinstance(event, RoomMemberEvent):
        return Membership(
            str(event.event_id), str(event.sender), str(event.state_key), str(event.membership)
        )
    return None
