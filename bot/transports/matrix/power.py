"""Whether an account may redact other people's events, read from a room's state on the server.

nio's `PowerLevels.can_user_redact` looks at `m.room.power_levels` only. Since room
version 12 (MSC4289) the creators, the sender of `m.room.create` and its
`additional_creators`, outrank every power level and are not listed in it; a bot that
created a DM would seem powerless to nio. Reading both events from the server's state,
not from memory, gives the same answer after a restart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["can_redact"]

_LEGACY_VERSIONS = frozenset(str(v) for v in range(1, 12))
_DEFAULT_REDACT = 50


def can_redact(state: Iterable[Any], user_id: str) -> bool:
    """True when `user_id` may redact anyone's events, by the room's state events (which
    the room's other member may have shaped: anything malformed grants nothing)."""
    create = _event(state, "m.room.create")
    if create is None:
        return False
    content = _content(create)
    version = str(content.get("room_version", "1"))
    creator = str(create.get("sender", content.get("creator", "")))
    if version not in _LEGACY_VERSIONS:
        extra = content.get("additional_creators")
        if user_id == creator or (isinstance(extra, list) and user_id in extra):
            return True
    levels = _event(state, "m.room.power_levels")
    if levels is None:
        return version in _LEGACY_VERSIONS and user_id == creator
    granted = _content(levels)
    return _level(granted, user_id) >= _int(granted.get("redact"), _DEFAULT_REDACT)


def _event(state: Iterable[Any], kind: str) -> Mapping[str, Any] | None:
    for event in state:
        if not isinstance(event, Mapping):
            continue
        if event.get("type") == kind and event.get("state_key", "") == "":
            return event
    return None


def _content(event: Mapping[str, Any]) -> Mapping[str, Any]:
    content = event.get("content")
    return content if isinstance(content, Mapping) else {}


def _level(levels: Mapping[str, Any], user_id: str) -> int:
    users = levels.get("users")
    default = _int(levels.get("users_default"), 0)
    if isinstance(users, Mapping) and user_id in users:
        return _int(users[user_id], default)
    return default


def _int(value: Any, default: int) -> int:
    """Power levels are integers; a string or anything odd counts as the default."""
    return value if isinstance(value, int) and not isinstance(value, bool) else default
