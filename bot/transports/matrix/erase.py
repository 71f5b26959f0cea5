"""`/forget` in a Matrix room: redact what the bot may, and count exactly what is left.

The chat trail knows the events the bot recorded, but not a reply whose send response
was lost, nor anything older than the trail keeps. So the room's history, as the
homeserver serves it to the bot, is read back (newest first, up to `MAX_SCAN` events):
every message event not yet redacted is the bot's own (always redacted) or the
person's (redacted only where the bot has the power; otherwise counted as left). Ids
on the trail that the scan did not reach are redacted as well. The counts are what
the bot tells the person, so each one is of redactions the server accepted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientError
from nio import Api, MessageDirection

__all__ = ["MAX_SCAN", "Tally", "erase", "scan"]

log = logging.getLogger("hrd_bot.matrix.erase")
MAX_SCAN = 5000
PAGE = 500
_PARALLEL = 4
_NOT_MESSAGES = frozenset({"m.room.redaction"})

Redact = Callable[[str], Awaitable[bool]]
"""`redact(event_id)`: True once the server accepted the redaction."""


@dataclass(slots=True)
class History:
    """The room's message events the bot can see: unredacted ones by sender, and all ids."""

    live: list[tuple[str, str]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    complete: bool = True


@dataclass(frozen=True, slots=True)
class Tally:
    """What `/forget` did in one room. `theirs_left`: the person's messages the bot had no
    power to redact; `failed`: redactions the server refused or that did not get through;
    `complete`: False when the room had more history than was read."""

    deleted: int
    theirs_left: int
    failed: int
    complete: bool = True


async def scan(client: Any, room_id: str, limit: int = MAX_SCAN) -> History:
    """Page back through the room's timeline from its newest event."""
    history = History()
    start: str | None = None
    read = 0
    while read < limit:
        page = await _page(client, room_id, start, min(PAGE, limit - read))
        chunk = page.get("chunk") if isinstance(page, dict) else None
        if not isinstance(chunk, list) or not chunk:
            return history
        read += len(chunk)
        for event in chunk:
            _file(history, event)
        start = page.get("end") if isinstance(page.get("end"), str) else None
        if start is None:
            return history
    history.complete = False
    return history


async def _page(client: Any, room_id: str, start: str | None, limit: int) -> Any:
    method, path = Api.room_messages(
        client.access_token, room_id, start, direction=MessageDirection.back, limit=limit
    )
    response = await client.send(method, path)
    if response.status != 200:
        raise ClientError(f"reading the room's history failed ({response.status})")
    return await response.json()


def _file(history: History, event: Any) -> None:
    if not isinstance(event, dict) or not isinstance(event.get("event_id"), str):
        return
    history.seen.add(event["event_id"])
    if "state_key" in event or event.get("type") in _NOT_MESSAGES:
        return
    unsigned = event.get("unsigned")
    if not event.get("content") or (isinstance(unsigned, dict) and "redacted_because" in unsigned):
        return
    history.live.append((event["event_id"], str(event.get("sender", ""))))


async def erase(
    history: History,
    own_id: str,
    may_redact_others: bool,
    recorded: Iterable[str],
    redact: Redact,
) -> Tally:
    """Redact the bot's events, the person's where allowed, and recorded ids not seen."""
    wanted = [e for e, sender in history.live if sender == own_id or may_redact_others]
    wanted += [e for e in dict.fromkeys(recorded) if e not in history.seen]
    theirs_left = sum(1 for _, sender in history.live if sender != own_id) * (not may_redact_others)
    gate = asyncio.Semaphore(_PARALLEL)

    async def one(event_id: str) -> bool:
        async with gate:
            return await redact(event_id)

    done = await asyncio.gather(*(one(e) for e in wanted))
    tally = Tally(sum(done), theirs_left, len(done) - sum(done), history.complete)
    log.info(
        "erased a chat: %d redacted, %d not the bot's to redact, %d failed",
        tally.deleted,
        tally.theirs_left,
        tally.failed,
    )
    return tally
