"""What `hrd-bot doctor` can learn of the Matrix staff rooms without starting a sync.

With the bot's access token, two client-API reads per room: its `m.room.encryption`
state (absent: not encrypted) and its joined members (anyone who is neither listed
staff nor the bot makes the room mixed). A password login would make a new device, so
without a token nothing is asked. Room and user ids are never printed: counts only.
Blocking reads with a short timeout: the doctor runs no event loop.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from bot.cli.doctor import Finding
from bot.config import Settings
from bot.model import ChatRef

__all__ = ["RoomState", "matrix_rooms", "read_room"]

TIMEOUT_S = 10.0
_NOT_CHECKED = (
    "not checked: set MATRIX_ACCESS_TOKEN for the doctor to read them (a password login "
    "would make a new device); the bot sends report content only to rooms it sees are "
    "encrypted with staff alone in them"
)


@dataclass(frozen=True, slots=True)
class RoomState:
    """None where the homeserver would not say (the bot is not in the room, or it failed)."""

    encrypted: bool | None
    members: frozenset[str] | None


def _get(homeserver: str, token: str, path: str) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310  (scheme checked in `matrix_rooms`)
        homeserver.rstrip("/") + path, headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:  # noqa: S310
            return int(answer.status), json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), None


def read_room(homeserver: str, token: str, room_id: str) -> RoomState:
    base = f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}"
    try:
        status, _ = _get(homeserver, token, f"{base}/state/m.room.encryption/")
        encrypted = {200: True, 404: False}.get(status)
        status, body = _get(homeserver, token, f"{base}/joined_members")
    except (OSError, ValueError):
        return RoomState(None, None)
    joined = body.get("joined") if status == 200 and isinstance(body, dict) else None
    members = frozenset(joined) if isinstance(joined, dict) else None
    return RoomState(encrypted, members)


def _items(raw: str) -> frozenset[str]:
    return frozenset(item.strip() for item in raw.split(",") if item.strip())


def matrix_rooms(settings: Settings, rooms: Sequence[ChatRef]) -> list[Finding]:
    """The Matrix staff rooms' findings; empty when there are none."""
    rooms = [room for room in rooms if room.platform == "matrix"]
    if not rooms:
        return []
    homeserver = settings.env.get("MATRIX_HOMESERVER", "").strip()
    token = settings.secret("MATRIX_ACCESS_TOKEN")
    what = f"{len(rooms)} Matrix staff room(s): encryption and members"
    if not token or urlsplit(homeserver).scheme not in ("http", "https"):
        return [Finding("unknown", what, _NOT_CHECKED)]
    allowed = _items(settings.env.get("MATRIX_STAFF_USER_IDS", "")) | {
        settings.env.get("MATRIX_USER_ID", "").strip()
    }
    states = [read_room(homeserver, token, room.address) for room in rooms]
    found: list[Finding] = []
    plain = sum(s.encrypted is False for s in states)
    mixed = sum(s.members is not None and not s.members <= allowed for s in states)
    unread = sum(s.encrypted is None or s.members is None for s in states)
    if plain:
        todo = "create the staff room end-to-end encrypted and put its id in HRD_BOT_STAFF_ROOMS"
        found.append(
            Finding("unsafe", f"{plain} Matrix staff room(s) are not end-to-end encrypted", todo)
        )
    if mixed:
        todo = "remove them, or list them in MATRIX_STAFF_USER_IDS if they are staff"
        found.append(
            Finding("unsafe", f"{mixed} Matrix staff room(s) hold someone who is not staff", todo)
        )
    if unread:
        todo = "could not tell: the bot is not in them, or the homeserver did not answer"
        found.append(Finding("unknown", f"{unread} Matrix staff room(s) could not be read", todo))
    if not found:
        found.append(Finding("ok", f"{len(rooms)} Matrix staff room(s): encrypted, staff only"))
    return found
