"""A report's file reaches staff on a real Synapse: the file itself, end-to-end encrypted,
in the encrypted all-staff room only; the unencrypted staff room gets its kind and size.

The staff client downloads what the bot uploaded and opens it with the key from the
Megolm-decrypted event, as Element would; the homeserver holds only ciphertext, with
neither the sender's file name nor the generated one.
"""

from __future__ import annotations

import asyncio

import pytest
from nio import MatrixRoom, MemoryDownloadResponse, RoomEncryptedMedia, RoomMessageMedia
from nio.crypto.attachments import decrypt_attachment

from bot.model import Attachment, Reply
from tests.matrix.activist import Activist
from tests.matrix.fixtures import Bot
from tests.matrix.homeserver import Synapse
from tests.matrix.staff import Desk
from tests.matrix.test_matrix_flows import homeserver_rows
from tests.matrix.test_matrix_reports import IMAGE, WHAT, WITHHELD, interview

WAIT = 30.0


def collect_media(
    person: Activist,
) -> dict[str, asyncio.Queue[RoomEncryptedMedia | RoomMessageMedia]]:
    """File events this client sees, by room (the test client files only text otherwise)."""
    found: dict[str, asyncio.Queue[RoomEncryptedMedia | RoomMessageMedia]] = {}

    async def on_media(room: MatrixRoom, event: RoomEncryptedMedia | RoomMessageMedia) -> None:
        if event.sender == person.bot_id:
            found.setdefault(room.room_id, asyncio.Queue()).put_nowait(event)

    person.client.add_event_callback(on_media, (RoomEncryptedMedia, RoomMessageMedia))
    return found


async def test_the_encrypted_staff_room_gets_the_file_and_staff_can_open_it(
    bot: Bot, desk: Desk, activist: Activist, synapse: Synapse, monkeypatch: pytest.MonkeyPatch
) -> None:
    media = collect_media(desk.staff)
    dm = await activist.open_dm()
    case = await interview(dm)
    room, plain = desk.room, desk.plain

    alert = await room.reply()
    assert case in alert and "Files: photo (2.9 KB)" in alert and "evidence" not in alert
    assert WHAT in await room.reply()
    listed = await room.reply()
    name = f"{case}-attachment-1.png"
    assert f"Files sent with {case}" in listed and f"• {name}: photo (2.9 KB)" in listed
    assert "evidence" not in listed

    events = media.setdefault(room.room_id, asyncio.Queue())
    event = await asyncio.wait_for(events.get(), WAIT)
    assert isinstance(event, RoomEncryptedMedia), "sent as an encrypted file, never plain"
    assert event.body == name and event.mimetype == "image/png"
    assert event.source["content"]["msgtype"] == "m.image"
    assert event.source["content"]["info"] == {"mimetype": "image/png", "size": len(IMAGE)}
    downloaded = await desk.staff.client.download(mxc=event.url)
    assert isinstance(downloaded, MemoryDownloadResponse), downloaded
    assert IMAGE[8:64] not in downloaded.body, "the homeserver serves ciphertext"
    opened = decrypt_attachment(downloaded.body, event.key["k"], event.hashes["sha256"], event.iv)
    assert opened == IMAGE

    head = await plain.reply()
    assert case in head and "Files: photo (2.9 KB)" in head
    for _ in range(2):  # the answers, then the files: each withheld, nothing of either
        held = await plain.reply()
        assert WITHHELD in held and "evidence" not in held and case not in held
    assert plain.room_id not in media, "no file event reached the unencrypted room"

    stored = homeserver_rows(
        synapse,
        "SELECT media_type, coalesce(upload_name, '') FROM local_media_repository "
        "WHERE media_id = ?",
        event.url.rsplit("/", 1)[-1],
    )
    assert stored == [("application/octet-stream", "")], "no name, no type: just ciphertext"
    types = {row[0] for row in homeserver_rows(synapse, EVENT_TYPES, room.room_id)}
    assert "m.room.encrypted" in types and "m.room.message" not in types

    async def refused(client: object, data: bytes) -> None:
        return None

    monkeypatch.setattr("bot.transports.matrix.outbound.upload_encrypted", refused)
    assert bot.transport is not None
    lost = Attachment(name, "image/png", len(IMAGE), IMAGE)
    await bot.transport.send(desk.ref(room), Reply("", files=(lost,), sensitive=True))
    told = await room.reply()
    assert f"The file {name} could not be uploaded" in told and "--save-files" in told
    assert events.empty()


EVENT_TYPES = "SELECT type FROM events WHERE room_id = ?"
