"""The /sync loop: long-poll, keep the end-to-end chores going, hand over whole batches.

Three things keep messages from being lost:
- the sync filter asks for a large timeline, because Synapse otherwise truncates a
  busy room ("limited") and about 12% of a burst never reaches the bot;
- when a timeline still comes back limited, the gap is fetched with `/messages`
  back to the previous sync position;
- the position is saved (in the encrypted store) only after the whole batch was
  handled, so a crash replays the batch; handlers are made idempotent by the
  transport, which drops event ids it has handled before.

A body nio cannot parse does not stop the loop (see `poison`): the events nio raises
on are skipped and counted, the rest of the batch is handled; an exception in nio's
own handling of a sync is logged and its events are still handled.

The first sync on an empty store only learns the rooms: old history is not answered.
The first sync after a restart asks for the full state: nio keeps no room list on
disk, and without it the bot could neither answer nor redact in a quiet room. A
sync from a saved position, full state or not, repeats no invite older than that
position, so `pending_invites` asks once, without a position, for the invites to
the staff rooms the bot is not in yet (an operator may invite before listing one).

With several workers the position is the account's, shared (`position`), not the
device's: another device may have gone further since this one last synced. To-device
messages (room keys among them) stay per device, and Synapse deletes a device's
to-device messages older than the `since` it syncs from, so before going on from the
shared position the device fetches its own, from its own position, with no room in the
filter (`_own_inbox`). Those it fetched after the shared position come again (nio drops
what it cannot decrypt twice); none is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import ClientError
from nio import Api, MessageDirection, RoomMemberEvent, RoomMessagesResponse, SyncResponse
from nio.events import InviteEvent

from bot.errors import OperatorError
from bot.transports.matrix.poison import Poison, read_sync
from bot.transports.matrix.position import Position
from bot.transports.matrix.store import EncryptedStore

__all__ = ["Batch", "RoomEvents", "Syncer"]

log = logging.getLogger("hrd_bot.matrix.sync")
MAX_GAP_EVENTS = 2000
GAP_PAGE = 200
BUSY_POLL_MS = 500
REPLY_SLACK_S = 60.0
FULL_STATE_S = 600.0  # the server answers a full-state sync at once, however long it takes
FATAL_ERRORS = ("M_UNKNOWN_TOKEN", "M_MISSING_TOKEN", "M_FORBIDDEN")
INBOX_ROUNDS = 50  # Synapse sends 100 to-device messages a sync
_NONE = {"not_types": ["*"]}
INBOX_ONLY = {"room": {"rooms": [], "timeline": {"limit": 0}}, "presence": _NONE}
INBOX_ONLY |= {"account_data": _NONE}
"""A filter that leaves a sync nothing but the device's own to-device messages (and keys)."""


class SyncStopped(OperatorError):
    """The homeserver refused the bot's login; the message is safe to print."""


@dataclass(slots=True)
class RoomEvents:
    room_id: str
    events: list[Any]


@dataclass(slots=True)
class Batch:
    """One sync's worth of work, in order; `initial` batches carry history only."""

    initial: bool
    invites: dict[str, list[Any]] = field(default_factory=dict)
    rooms: list[RoomEvents] = field(default_factory=list)


class Syncer:
    """Drives /sync by hand so the saved position trails the handled events."""

    def __init__(
        self,
        client: Any,
        store: EncryptedStore,
        timeline_limit: int,
        poll_ms: int = 30_000,
        poison: Poison | None = None,
        position: Position | None = None,
    ) -> None:
        self._client = client
        self._poison = poison or Poison()
        self._store = store
        self._position: Position = position or store
        self._filter = {
            "room": {"timeline": {"limit": timeline_limit}},
            "presence": {"not_types": ["*"]},
        }
        self._poll_ms = poll_ms
        self._stopping = asyncio.Event()
        self._poll: asyncio.Task[Any] | None = None
        self.batches = 0
        self.gaps = 0
        self.unapplied = 0
        self.failures = 0
        """Syncs failed in a row (0 while the homeserver answers): readiness reads it."""

    async def run(
        self,
        handle: Callable[[Batch], Awaitable[None]],
        between: Callable[[], Awaitable[bool]],
    ) -> None:
        """Sync until `stop`; `between` runs after every batch and returns True when busy.

        Busy (invites or undecryptable events waiting) shortens the long poll to
        `BUSY_POLL_MS` so their timers are checked, without spinning on the server.
        """
        since = await self._start()
        wait_ms = 0  # the first sync returns at once, so start-up is quick
        while (response := await self._answer(since, wait_ms, not self.batches)) is not None:
            await self._chores()
            await handle(await self._batch(response, since))
            since = str(response.next_batch)
            await self._commit(since)
            self.batches += 1
            wait_ms = min(BUSY_POLL_MS, self._poll_ms) if await between() else self._poll_ms

    async def _start(self) -> str | None:
        """Where the first sync goes on from: the device's own position, or the shared one
        once this device's own to-device messages are in."""
        own = await self._store.sync_token()
        if self._position is self._store:
            return own
        shared = await self._position.sync_token()
        if shared is None:  # the first of several workers to lead: its device's position
            return own
        await self._own_inbox(own)
        self._client.next_batch = ""  # nio ignores a sync ending where the last one did
        return shared

    async def _own_inbox(self, since: str | None) -> None:
        """This device's to-device messages up to now, from its own position (see above)."""
        for _ in range(INBOX_ROUNDS):
            if (response := await self._answer(since, 0, False, INBOX_ONLY)) is None:
                return
            since = str(response.next_batch)
            await self._store.commit_sync_token(since)
            if not response.to_device_events:
                return
        log.warning("more to-device messages than %d syncs bring; going on", INBOX_ROUNDS)

    async def _answer(
        self, since: str | None, wait_ms: int, full_state: bool, only: Any = None
    ) -> SyncResponse | None:
        """A sync, tried again (waiting longer each time) until it succeeds; None at a stop."""
        while not self._stopping.is_set():
            response = await self._sync(since, wait_ms, full_state=full_state, only=only)
            if response is not None:
                self.failures = 0
                return response
            self.failures += 1
            await self._pause(min(30.0, 0.5 * 2**self.failures))
        return None

    async def _commit(self, token: str) -> None:
        """Save the position; a shared one also in the device's own store (its to-device)."""
        await self._position.commit_sync_token(token)
        if self._position is not self._store:
            await self._store.commit_sync_token(token)

    async def stop(self) -> None:
        self._stopping.set()
        if self._poll is not None:
            self._poll.cancel()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _sync(
        self, since: str | None, wait_ms: int, *, full_state: bool, only: Any = None
    ) -> SyncResponse | None:
        self._poll = asyncio.ensure_future(
            self._fetch(since, wait_ms, full_state, only or self._filter)
        )
        try:
            status, text = await self._poll
        except asyncio.CancelledError:
            if self._stopping.is_set():
                return None
            raise
        except (ClientError, TimeoutError) as exc:
            log.warning("sync failed (%s); retrying", type(exc).__name__)
            return None
        finally:
            self._poll = None
        if status != 200:
            _refused(text)
            return None
        response = read_sync(text, self._poison)
        if response is None:
            log.warning("sync failed (a body without a position); retrying")
            return None
        try:
            await self._client.receive_response(response)
        except Exception as exc:  # nio's own handling of one event must not stop the loop
            self.unapplied += 1  # its events are still handled; one that cannot be is counted then
            log.warning("nio could not apply a sync (%s); handling its events", type(exc).__name__)
        return response

    async def _fetch(
        self, since: str | None, wait_ms: int, full_state: bool, only: Any
    ) -> tuple[int, str]:
        """The raw /sync answer: nio's `sync` would raise on a body it cannot parse."""
        client = self._client
        method, path = Api.sync(
            client.access_token,
            since=since,
            timeout=wait_ms or None,
            filter=only,
            full_state=full_state,
        )
        headers = {"Authorization": f"Bearer {client.access_token}"}
        limit = FULL_STATE_S if full_state else wait_ms / 1000 + REPLY_SLACK_S
        response = await client.send(method, _without_token(path), headers=headers, timeout=limit)
        async with response:
            return response.status, (await response.read()).decode("utf-8", "replace")

    async def _chores(self) -> None:
        """What `sync_forever` would do: device keys and to-device messages.

        A reply nio cannot take (a hostile device's keys, say) is logged and the next
        sync tries again: key upkeep must not stop the loop.
        """
        try:
            await self._keys()
        except (ClientError, TimeoutError) as exc:
            log.warning("key upkeep failed (%s); retrying after the next sync", type(exc).__name__)
        except Exception as exc:
            log.error("key upkeep failed (%s); retrying after the next sync", type(exc).__name__)

    async def _keys(self) -> None:
        client = self._client
        await client.send_to_device_messages()
        if client.should_upload_keys:
            await client.keys_upload()
        if client.should_query_keys:
            await client.keys_query()
        if client.should_claim_keys:
            await client.keys_claim(client.get_users_for_key_claiming())

    async def _batch(self, response: SyncResponse, since: str | None) -> Batch:
        batch = Batch(initial=since is None)
        for room_id, info in response.rooms.invite.items():
            batch.invites[room_id] = list(info.invite_state)
        for room_id, info in response.rooms.join.items():
            events = list(info.timeline.events)
            if since is not None and self._missed(info.timeline):
                events = await self._gap(room_id, info.timeline.prev_batch, since) + events
            batch.rooms.append(RoomEvents(room_id, events))
        return batch

    def _missed(self, timeline: Any) -> bool:
        """A truncated timeline hides events, unless the bot only just joined (then: history)."""
        if not (timeline.limited and timeline.prev_batch):
            return False
        own = self._client.user_id
        return not any(
            isinstance(e, RoomMemberEvent) and e.state_key == own and e.membership == "join"
            for e in timeline.events
        )

    async def _gap(self, room_id: str, start: str, end: str) -> list[Any]:
        """Events between the last sync and the truncated timeline, oldest first."""
        self.gaps += 1
        found: list[Any] = []
        token: str | None = start
        while token and len(found) < MAX_GAP_EVENTS:
            try:
                response = await self._client.room_messages(
                    room_id, start=token, end=end, direction=MessageDirection.back, limit=GAP_PAGE
                )
            except (ClientError, TimeoutError):
                break
            except Exception as exc:  # an event in the gap nio cannot parse: keep what we have
                self._poison.skip(f"a timeline gap nio could not read, {type(exc).__name__}")
                break
            if not isinstance(response, RoomMessagesResponse) or not response.chunk:
                break
            found += response.chunk
            token = response.end if response.end != token else None
        log.info("fetched a timeline gap (%d events)", len(found))
        return found[::-1]

    async def pending_invites(self, room_ids: frozenset[str]) -> dict[str, list[Any]]:
        """The invite state of each of `room_ids` the bot is invited to and has not joined.

        A one-off sync filtered to those rooms, with no timeline; the to-device messages
        it may carry are left to the main loop, which acknowledges them in order.
        """
        if not room_ids:
            return {}
        none = {"not_types": ["*"]}
        room = {"rooms": sorted(room_ids), "timeline": {"limit": 0}, "state": none}
        room |= {"ephemeral": none, "account_data": none}
        only = {"room": room, "presence": none, "account_data": none}
        method, path = Api.sync(self._client.access_token, timeout=0, filter=only)
        response = await self._client.send(method, path)
        async with response:
            body: Any = await response.json() if response.status == 200 else {}
        invited = body.get("rooms", {}).get("invite", {}) if isinstance(body, dict) else {}
        found: dict[str, list[Any]] = {}
        for room_id, info in invited.items() if isinstance(invited, dict) else ():
            events = info.get("invite_state", {}).get("events", [])
            if room_id in room_ids and isinstance(events, list):
                read = (_invite_event(e, self._poison) for e in events)
                found[room_id] = [e for e in read if e is not None]
        log.info("pending staff-room invites from before this start: %d", len(found))
        return found


def _refused(text: str) -> None:
    """Raise `SyncStopped` when the login is gone; otherwise log and let the loop retry."""
    try:
        body: Any = json.loads(text)
    except (ValueError, RecursionError):
        body = {}
    code = body.get("errcode") if isinstance(body, dict) else None
    if code in FATAL_ERRORS:
        raise SyncStopped(f"the homeserver refused the bot's login ({code})")
    log.warning("sync failed (%s); retrying", code if isinstance(code, str) else "HTTP error")


def _invite_event(event: Any, poison: Poison) -> Any:
    try:
        return InviteEvent.parse_event(event) if isinstance(event, dict) else None
    except Exception as exc:
        poison.skip(f"invite state, {type(exc).__name__}")
        return None


def _without_token(path: str) -> str:
    """`path` without its `access_token` query parameter (it goes in a header instead)."""
    parts = urlsplit(path)
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "access_token"
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))
