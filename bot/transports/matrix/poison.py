"""Events nobody can read are skipped once, counted, and logged as a kind without content.

nio turns most malformed events into `BadEvent`/`UnknownBadEvent`, but some shapes
make it raise while parsing a whole /sync (an `origin_server_ts` that is not a
number, an encrypted payload that is not a JSON object, …). One such event must not
stop the bot for everyone or be fetched again forever, so a sync body nio cannot
take is taken apart: each event is tried on its own, the ones that raise are
dropped, and the rest of the batch is handled. If even that fails, the batch is
skipped past its `next_batch`, so the loop always moves on.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

from nio import AccountDataEvent, EphemeralEvent, Event, SyncResponse, ToDeviceEvent
from nio.events import InviteEvent

__all__ = ["Poison", "read_sync"]

log = logging.getLogger("hrd_bot.matrix.poison")
_TOKEN = re.compile(r'"next_batch"\s*:\s*"([A-Za-z0-9_.~=-]{1,255})"')
Parser = Callable[[Any], Any]


class Poison:
    """The count of events skipped as unreadable, for the transport's health figures."""

    def __init__(self) -> None:
        self.count = 0

    def skip(self, kind: str) -> None:
        """Count one unreadable event; `kind` is a constant phrase from our code, never content."""
        self.count += 1
        log.warning("skipped an unreadable Matrix event (%s); %d so far", kind, self.count)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _readable(events: Any, parse: Parser, where: str, poison: Poison) -> list[Any]:
    """The events of a list that `parse` takes without raising; the others are skipped."""
    kept: list[Any] = []
    for event in events if isinstance(events, list) else ():
        try:
            if not isinstance(event, dict):
                raise TypeError
            parse(event)
        except Exception as exc:
            poison.skip(f"{where}, {type(exc).__name__}")
            continue
        kept.append(event)
    return kept


def _section(
    parent: dict[str, Any], key: str, parse: Parser, where: str, poison: Poison
) -> dict[str, Any]:
    """`parent[key]` as an object whose `events` nio can all parse."""
    section = dict(_dict(parent.get(key)))
    section["events"] = _readable(section.get("events"), parse, where, poison)
    return section


def _room(room: Any, poison: Poison, invite: bool) -> dict[str, Any]:
    cleaned = dict(_dict(room))
    if invite:
        invites = _section(cleaned, "invite_state", InviteEvent.parse_event, "invite", poison)
        cleaned["invite_state"] = invites
        return cleaned
    cleaned["timeline"] = _section(cleaned, "timeline", Event.parse_event, "timeline", poison)
    cleaned["state"] = _section(cleaned, "state", Event.parse_event, "room state", poison)
    cleaned["ephemeral"] = _section(
        cleaned, "ephemeral", EphemeralEvent.parse_event, "ephemeral", poison
    )
    cleaned["account_data"] = _section(
        cleaned, "account_data", AccountDataEvent.parse_event, "room account data", poison
    )
    for key in ("summary", "unread_notifications", "unread_thread_notifications"):
        cleaned[key] = _dict(cleaned.get(key))
    return cleaned


def _cleaned(body: dict[str, Any], poison: Poison) -> dict[str, Any]:
    """`body` with every event nio raises on removed and every container of the right type."""
    rooms = _dict(body.get("rooms"))
    cleaned = dict(body)
    cleaned["rooms"] = {
        kind: {
            room_id: _room(room, poison, kind == "invite")
            for room_id, room in _dict(rooms.get(kind)).items()
        }
        for kind in ("invite", "join", "leave")
    }
    cleaned["to_device"] = _section(
        body, "to_device", ToDeviceEvent.parse_event, "to-device", poison
    )
    cleaned["account_data"] = _section(
        body, "account_data", AccountDataEvent.parse_event, "account data", poison
    )
    cleaned.pop("presence", None)  # the sync filter asks for none
    return cleaned


def _parse(body: dict[str, Any]) -> SyncResponse | None:
    try:
        response = SyncResponse.from_dict(body)
    except Exception:
        return None
    return response if isinstance(response, SyncResponse) else None


def _skipped(token: str | None, poison: Poison, kind: str) -> SyncResponse | None:
    """An empty batch that moves past `token`, when a whole body cannot be read."""
    if token is None:
        return None
    poison.skip(kind)
    return _parse({"next_batch": token})


def read_sync(text: str, poison: Poison) -> SyncResponse | None:
    """A /sync body as nio's `SyncResponse`, without the events nobody can read.

    None only when not even the position to move on to can be found.
    """
    try:
        body: Any = json.loads(text)
    except (ValueError, RecursionError):
        found = _TOKEN.findall(text)  # Synapse writes the top-level position last
        return _skipped(found[-1] if found else None, poison, "a sync body that is not JSON")
    if not isinstance(body, dict):
        return None
    token = body.get("next_batch")
    token = token if isinstance(token, str) else None
    response = _parse(body)
    if response is None and token is not None:
        response = _parse(_cleaned(body, poison))
    return response or _skipped(token, poison, "a sync body nio cannot take")
