"""Files, staff-room invites and withheld replies, without a homeserver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from nio import InviteMemberEvent, RoomEncryptedImage, RoomMessageFile
from nio.crypto.attachments import encrypt_attachment

from bot.files import DEFAULT_TYPE
from bot.model import Attachment
from bot.transports.matrix.inbound import Said, parse
from bot.transports.matrix.media import Media, describe, fetch
from bot.transports.matrix.rooms import Limits, Rooms

BOT = "@hrd:example.org"
STAFF = "@staff:example.org"
OTHER = "@someone:example.org"
URL = "mxc://example.org/abcDEF"
ROOMY = (1000.0, 1000)


def file_content(data: bytes, **info: object) -> tuple[bytes, dict[str, Any]]:
    """What a client puts in an encrypted room: the ciphertext to upload, and the event content."""
    cipher, keys = encrypt_attachment(data)
    content = {
        "msgtype": "m.image",
        "body": "photo.png",
        "info": {"mimetype": "image/png", "size": len(data), **info},
        "file": {"url": URL, **keys},
    }
    return cipher, content


def test_an_encrypted_image_event_is_said_with_its_file() -> None:
    _, content = file_content(b"pixels")
    source = {"event_id": "$e", "sender": OTHER, "origin_server_ts": 1, "content": content}
    event = RoomEncryptedImage.from_dict({**source, "type": "m.room.message"})
    said = parse(event)
    assert isinstance(said, Said) and said.text is None and said.media is not None
    assert said.media.url == URL and said.media.size == 6 and said.media.secret is not None
    plain = {"msgtype": "m.file", "body": "a.pdf", "url": URL}
    event = RoomMessageFile.from_dict({**source, "content": plain, "type": "m.room.message"})
    said = parse(event)
    assert isinstance(said, Said) and said.media == Media(URL, "a.pdf", DEFAULT_TYPE, None)


def test_names_and_types_from_the_sender_are_cleaned() -> None:
    media = describe(
        {
            "msgtype": "m.file",
            "body": "../../etc/pass\nwd\u202e.txt",
            "url": URL,
            "info": {"mimetype": "text/plain\nX-Evil: 1", "size": True},
        }
    )
    assert media is not None
    assert media.name == "passwd.txt" and media.media_type == DEFAULT_TYPE and media.size is None
    assert describe({"msgtype": "m.file", "body": "x", "url": URL, "filename": "f.txt"}) == Media(
        URL, "f.txt", DEFAULT_TYPE, None
    )
    assert describe({"msgtype": "m.text", "body": "x", "url": URL}) is None
    assert describe({"msgtype": "m.image", "body": "x", "file": {"url": URL}}) is None, "no key"
    assert "mxc" not in repr(media) and "pass" not in repr(media)


@dataclass
class Body:
    chunks: list[bytes]

    async def iter_chunked(self, size: int) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


@dataclass
class Response:
    body: bytes
    status: int = 200
    announce_length: bool = True

    @property
    def content_length(self) -> int | None:
        return len(self.body) if self.announce_length else None

    @property
    def content(self) -> Body:
        return Body([self.body[i : i + 1000] for i in range(0, len(self.body), 1000)])

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


@dataclass
class MediaClient:
    """Just what `fetch` touches of nio's client."""

    response: Response
    access_token: str = "token"
    paths: list[str] = field(default_factory=list)

    async def send(self, method: str, path: str, **kw: object) -> Response:
        self.paths.append(path)
        return self.response


async def test_an_encrypted_file_is_downloaded_and_decrypted() -> None:
    cipher, content = file_content(b"pixels" * 100)
    media = describe(content)
    assert media is not None
    client = MediaClient(Response(cipher))
    got = await fetch(client, media, limit=1000)
    assert got == Attachment("photo.png", "image/png", 600, b"pixels" * 100)
    assert client.paths == [
        "/_matrix/client/v1/media/download/example.org/abcDEF?allow_remote=true"
    ]


async def test_a_declared_size_over_the_limit_is_never_downloaded() -> None:
    cipher, content = file_content(b"x" * 100, size=5000)
    media = describe(content)
    assert media is not None
    client = MediaClient(Response(cipher))
    got = await fetch(client, media, limit=1000)
    assert got is not None and got.data is None and got.size == 5000
    assert client.paths == []


@pytest.mark.parametrize("announce", [True, False])
async def test_a_body_over_the_limit_is_cut_off(announce: bool) -> None:
    cipher, content = file_content(b"x" * 5000, size=10)
    media = describe(content)
    assert media is not None
    got = await fetch(MediaClient(Response(cipher, announce_length=announce)), media, limit=1000)
    assert got is not None and got.data is None and got.size > 1000


async def test_a_tampered_or_missing_file_cannot_be_had() -> None:
    cipher, content = file_content(b"pixels")
    media = describe(content)
    assert media is not None
    assert await fetch(MediaClient(Response(b"X" + cipher[1:])), media, limit=1000) is None
    assert await fetch(MediaClient(Response(b"", status=404)), media, limit=1000) is None
    elsewhere = Media("https://example.org/file", "f", DEFAULT_TYPE, 1)
    assert await fetch(MediaClient(Response(cipher)), elsewhere, limit=1000) is None


@dataclass
class User:
    user_id: str
    invited: bool = False


@dataclass
class Room:
    room_id: str
    encrypted: bool
    users: dict[str, User]

    @property
    def member_count(self) -> int:
        return len(self.users)


@dataclass
class RoomsClient:
    """Just what `Rooms` touches of nio's client for invites and the withheld check."""

    rooms: dict[str, Room] = field(default_factory=dict)
    user_id: str = BOT
    calls: list[str] = field(default_factory=list)

    async def join(self, room_id: str) -> Any:
        self.calls.append(f"join {room_id}")
        return type("Joined", (), {"room_id": room_id})()

    async def room_leave(self, room_id: str) -> None:
        self.calls.append(f"leave {room_id}")


def invite_from(sender: str, direct: bool = False) -> InviteMemberEvent:
    content = {"membership": "invite", **({"is_direct": True} if direct else {})}
    source = {"type": "m.room.member", "sender": sender, "state_key": BOT, "content": content}
    event = InviteMemberEvent.from_dict(source)
    assert isinstance(event, InviteMemberEvent)
    return event


def limits() -> Limits:
    return Limits(joins=ROOMY, joins_per_inviter=ROOMY, offers=ROOMY, offers_per_user=ROOMY)


async def test_a_staff_room_is_joined_only_on_a_staff_invite() -> None:
    client = RoomsClient()
    rooms = Rooms(client, frozenset({STAFF}), limits(), frozenset({"!staff", "!staff2"}))
    rooms.on_invite("!staff", [invite_from(STAFF)])
    rooms.on_invite("!staff2", [invite_from(OTHER, direct=True)])
    rooms.on_invite("!later", [invite_from(STAFF)])
    rooms.on_invite("!group", [invite_from(OTHER)])
    rooms.on_invite("!dm", [invite_from(OTHER, direct=True)])
    await rooms.take_invites()
    assert client.calls == ["join !staff", "leave !staff2", "leave !group", "join !dm"]
    assert not rooms.backlog, "a staff invite to a room not listed yet stays pending"
    assert rooms.greet_due("!staff") is None, "staff rooms get no start screen"


def test_sensitive_replies_go_only_to_encrypted_private_chats_and_all_staff_rooms() -> None:
    people = {BOT: User(BOT), STAFF: User(STAFF)}
    client = RoomsClient(
        {
            "!dm": Room("!dm", True, {BOT: User(BOT), OTHER: User(OTHER)}),
            "!plain": Room("!plain", False, {BOT: User(BOT), OTHER: User(OTHER)}),
            "!group": Room("!group", True, {**people, OTHER: User(OTHER)}),
            "!staff": Room("!staff", True, dict(people)),
            "!mixed": Room("!mixed", True, {**people, OTHER: User(OTHER, invited=True)}),
        }
    )
    rooms = Rooms(client, frozenset({STAFF}), limits(), frozenset({"!staff", "!mixed"}))
    assert rooms.withheld("!dm") is None and rooms.withheld("!staff") is None
    assert rooms.withheld("!plain") == "is not end-to-end encrypted"
    assert rooms.withheld("!group") == "is not a private chat"
    assert rooms.withheld("!mixed") == "has members who are not on the staff list"
    assert rooms.withheld("!gone") == "is not end-to-end encrypted"
    assert not rooms.is_private("!staff") and rooms.is_private("!dm")
