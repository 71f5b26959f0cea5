"""Encrypted events the bot could not read: count them, wait briefly, then tell the person.

A room key can arrive a moment after the message it opens (to-device and room
events travel separately), so an undecryptable event first waits `grace` seconds
while the bot asks the sender's devices for the key and retries after every sync.
If it still cannot be read, the sender gets a hint to resend or verify, at most once
per room every `hint_every` seconds. Nothing here can crash the bot.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from nio import EncryptionError, LocalProtocolError

from bot.transports.matrix.inbound import Item, Undecryptable, Unreadable, read

__all__ = ["Undecrypted"]

log = logging.getLogger("hrd_bot.matrix.undecrypted")
MAX_PENDING = 500


@dataclass(frozen=True, slots=True)
class _Waiting:
    room_id: str
    item: Undecryptable
    deadline: float


class Undecrypted:
    def __init__(self, client: Any, grace: float = 5.0, hint_every: float = 60.0) -> None:
        self._client = client
        self._grace = grace
        self._hint_every = hint_every
        self._waiting: dict[str, _Waiting] = {}
        self._hinted: dict[str, float] = {}
        self.count = 0

    @property
    def pending(self) -> bool:
        return bool(self._waiting)

    async def add(self, room_id: str, item: Undecryptable) -> None:
        self.count += 1
        log.warning("could not decrypt an event (%d so far)", self.count)
        if len(self._waiting) < MAX_PENDING:
            self._waiting[item.event_id] = _Waiting(room_id, item, time.monotonic() + self._grace)
        if item.event is not None:
            await self._request_key(item.event)

    async def _request_key(self, event: Any) -> None:
        with contextlib.suppress(LocalProtocolError):  # already asked for this session
            await self._client.request_room_key(event)

    def retry(self) -> tuple[list[tuple[str, Item]], list[tuple[str, str]]]:
        """(room, readable item) pairs now decrypted, and (room, sender) pairs to hint."""
        now = time.monotonic()
        readable: list[tuple[str, Item]] = []
        expired: list[tuple[str, str]] = []
        for event_id, waiting in list(self._waiting.items()):
            opened, item = self._decrypt(waiting.item)
            if opened:
                readable += [(waiting.room_id, item)] if item is not None else []
            elif waiting.deadline > now:
                continue
            elif self._may_hint(waiting.room_id, now):
                expired.append((waiting.room_id, waiting.item.sender))
            del self._waiting[event_id]
        return readable, expired

    def _decrypt(self, item: Undecryptable) -> tuple[bool, Item | None]:
        """(whether the event is done with now, what to act on in it).

        A payload that makes nio raise anything but a decryption error (one that is
        not a JSON object, say) will never open: it is done with, as `Unreadable`.
        """
        if item.event is None:
            return False, None
        try:
            event = self._client.decrypt_event(item.event)
        except (EncryptionError, ValueError, LocalProtocolError):
            return False, None
        except Exception as exc:
            return True, Unreadable(item.event_id, item.sender, f"payload, {type(exc).__name__}")
        parsed = read(event)
        return not isinstance(parsed, Undecryptable), parsed

    def _may_hint(self, room_id: str, now: float) -> bool:
        last = self._hinted.get(room_id)
        if last is not None and now - last < self._hint_every:
            return False
        self._hinted[room_id] = now
        return True
