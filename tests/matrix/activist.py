"""The person on the other side: a real matrix-nio client with end-to-end encryption on.

It syncs in the background and files what the bot does per room: the messages it
decrypted, the bot events it saw redacted, whether the bot left. `Chat.say` sends a
line and returns the bot's next message, like someone typing on a phone.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nio import (
    Api,
    AsyncClient,
    AsyncClientConfig,
    InviteMemberEvent,
    MatrixRoom,
    MegolmEvent,
    MessageDirection,
    RedactionEvent,
    RoomCreateResponse,
    RoomMemberEvent,
    RoomMessageNotice,
    RoomMessageText,
    RoomPreset,
    RoomSendResponse,
    SyncResponse,
    UploadResponse,
)

from tests.matrix.homeserver import Account

__all__ = ["Activist", "Chat"]

ENCRYPTION = {
    "type": "m.room.encryption",
    "state_key": "",
    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
}
FILTER = {"room": {"timeline": {"limit": 1000}}}
WAIT = 30.0


@dataclass
class RoomLog:
    """What one room showed this client, in order."""

    messages: asyncio.Queue[tuple[str, str]] = field(default_factory=asyncio.Queue)
    bot_events: list[str] = field(default_factory=list)
    own_events: list[str] = field(default_factory=list)
    redacted: set[str] = field(default_factory=set)
    undecryptable: int = 0
    bot_left: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class Activist:
    def __init__(self, homeserver: str, account: Account, store: Path, bot_id: str) -> None:
        store.mkdir(parents=True, exist_ok=True)
        self.account = account
        self.bot_id = bot_id
        self.client = AsyncClient(
            homeserver,
            account.user_id,
            device_id=account.device_id,
            store_path=str(store),
            config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True),
        )
        self.client.restore_login(account.user_id, account.device_id, account.access_token)
        self.rooms: dict[str, RoomLog] = {}
        self.invites: asyncio.Queue[str] = asyncio.Queue()
        self.synced = asyncio.Event()
        """Set after every sync this client handles; room state is current then."""
        self._task: asyncio.Task[Any] | None = None
        self.client.add_event_callback(self._on_event, (RoomMessageNotice, RoomMessageText))
        self.client.add_event_callback(self._on_redaction, RedactionEvent)
        self.client.add_event_callback(self._on_member, RoomMemberEvent)
        self.client.add_event_callback(self._on_undecryptable, MegolmEvent)
        self.client.add_event_callback(self._on_invite, InviteMemberEvent)
        self.client.add_response_callback(self._on_sync, SyncResponse)

    def log(self, room_id: str) -> RoomLog:
        return self.rooms.setdefault(room_id, RoomLog())

    async def start(self) -> Activist:
        await self.client.sync(timeout=0, sync_filter=FILTER, full_state=True)
        self._task = asyncio.create_task(
            self.client.sync_forever(timeout=30_000, sync_filter=FILTER)
        )
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.client.close()

    async def _on_sync(self, response: SyncResponse) -> None:
        self.synced.set()

    async def _on_event(self, room: MatrixRoom, event: Any) -> None:
        log = self.log(room.room_id)
        if event.sender == self.bot_id:
            log.bot_events.append(event.event_id)
            log.messages.put_nowait((event.event_id, event.body))
        else:
            log.own_events.append(event.event_id)
        log.changed.set()

    async def _on_redaction(self, room: MatrixRoom, event: RedactionEvent) -> None:
        self.log(room.room_id).redacted.add(event.redacts)
        self.log(room.room_id).changed.set()

    async def _on_member(self, room: MatrixRoom, event: RoomMemberEvent) -> None:
        if event.state_key == self.bot_id and event.membership == "leave":
            self.log(room.room_id).bot_left.set()

    async def _on_undecryptable(self, room: MatrixRoom, event: MegolmEvent) -> None:
        self.log(room.room_id).undecryptable += 1

    async def _on_invite(self, room: MatrixRoom, event: InviteMemberEvent) -> None:
        if event.state_key == self.account.user_id and event.membership == "invite":
            self.invites.put_nowait(room.room_id)

    async def create_room(
        self,
        *,
        encrypted: bool = True,
        direct: bool = True,
        preset: RoomPreset = RoomPreset.trusted_private_chat,
    ) -> str:
        """`preset=private_chat` leaves the bot at power level 0, as some clients do."""
        response = await self.client.room_create(
            is_direct=direct,
            preset=preset,
            invite=[self.bot_id],
            initial_state=[ENCRYPTION] if encrypted else [],
        )
        assert isinstance(response, RoomCreateResponse), response
        return str(response.room_id)

    async def open_dm(
        self, *, encrypted: bool = True, preset: RoomPreset = RoomPreset.trusted_private_chat
    ) -> Chat:
        """Create a DM, invite the bot, and wait for its first screen."""
        chat = Chat(self, await self.create_room(encrypted=encrypted, preset=preset))
        await chat.reply()
        return chat

    async def accept_next_invite(self) -> Chat:
        room_id = await asyncio.wait_for(self.invites.get(), WAIT)
        await self.client.join(room_id)
        chat = Chat(self, room_id)
        await chat.reply()
        return chat

    async def send(self, room_id: str, text: str) -> str:
        response = await self.client.room_send(
            room_id,
            "m.room.message",
            {"msgtype": "m.text", "body": text},
            ignore_unverified_devices=True,
        )
        assert isinstance(response, RoomSendResponse), response
        return str(response.event_id)

    async def send_file(
        self,
        room_id: str,
        data: bytes,
        name: str,
        media_type: str,
        *,
        msgtype: str = "m.image",
        declared_size: int | None = None,
    ) -> str:
        """Upload `data` as a client would (encrypted when the room is) and post the event."""
        encrypted = bool(self.client.rooms[room_id].encrypted)
        response, keys = await self.client.upload(
            io.BytesIO(data),
            content_type=media_type,
            filename=name,
            encrypt=encrypted,
            filesize=len(data),
        )
        assert isinstance(response, UploadResponse), response
        size = len(data) if declared_size is None else declared_size
        content: dict[str, Any] = {
            "msgtype": msgtype,
            "body": name,
            "info": {"mimetype": media_type, "size": size},
        }
        if encrypted:
            assert keys is not None
            content["file"] = {"url": response.content_uri, "mimetype": media_type, **keys}
        else:
            content["url"] = response.content_uri
        sent = await self.client.room_send(
            room_id, "m.room.message", content, ignore_unverified_devices=True
        )
        assert isinstance(sent, RoomSendResponse), sent
        return str(sent.event_id)

    async def history(self, room_id: str) -> list[dict[str, Any]]:
        """Every event of the room as the homeserver serves it to this account, newest first
        (a redacted event comes back with empty content and `redacted_because`)."""
        events: list[dict[str, Any]] = []
        start: str | None = None
        while True:
            method, path = Api.room_messages(
                self.account.access_token,
                room_id,
                start,
                direction=MessageDirection.back,
                limit=500,
            )
            body = await (await self.client.send(method, path)).json()
            events += body.get("chunk", [])
            start = body.get("end")
            if not body.get("chunk") or start is None:
                return events

    async def send_raw(self, room_id: str, event_type: str, content: dict[str, Any]) -> str:
        """An event exactly as given, bypassing this client's own encryption."""
        token = self.account.access_token
        method, path, data = Api.room_send(token, room_id, event_type, content, uuid.uuid4())
        response = await self.client.send(method, path, data)
        body = await response.json()
        assert "event_id" in body, body
        return str(body["event_id"])


@dataclass
class Chat:
    """One room with the bot, from the person's side."""

    activist: Activist
    room_id: str
    last: str = ""

    @property
    def log(self) -> RoomLog:
        return self.activist.log(self.room_id)

    async def reply(self, wait: float = WAIT) -> str:
        _, body = await asyncio.wait_for(self.log.messages.get(), wait)
        self.last = body
        return body

    async def say(self, text: str) -> str:
        await self.activist.send(self.room_id, text)
        return await self.reply()

    def number_of(self, label: str) -> str:
        """The number in front of the first listed choice containing `label`."""
        for line in self.last.splitlines():
            match = re.match(r"^\u200f?(\d+)\. (.*)$", line)
            if match and label.casefold() in match.group(2).casefold():
                return match.group(1)
        raise AssertionError(f"no choice like {label!r} in:\n{self.last}")

    async def pick(self, label: str) -> str:
        return await self.say(self.number_of(label))

    async def until(self, check: Callable[[], bool], wait: float = WAIT) -> None:
        """Wait until `check()` holds, re-checking whenever this room changes."""
        async with asyncio.timeout(wait):
            while not check():
                self.log.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.log.changed.wait(), 0.5)
