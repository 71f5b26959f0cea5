"""Matrix event parsing under hostile input: nothing raises, good events still get through.

Three targets, each fed generated input (no homeserver needed):
- a whole /sync body with hostile events around two good messages, through the
  `Syncer` (raw body → nio's parsing and state handling → our batch) and `read`;
- single events through nio's parser and our conversion;
- Megolm payloads a hostile client could encrypt (not JSON, not an object, wrong
  fields), through nio's real decryption and `Undecrypted`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nio import AsyncClient, Event, SyncResponse
from nio.crypto import Olm
from nio.crypto.sessions import OutboundGroupSession
from nio.events import MegolmEvent
from nio.store import SqliteMemoryStore

from bot.transports.matrix.inbound import Said, Undecryptable, Unreadable, read
from bot.transports.matrix.poison import Poison, read_sync
from bot.transports.matrix.sync import Syncer
from bot.transports.matrix.undecrypted import Undecrypted

ROOM = "!fuzz:example.org"
BOT = "@bot:example.org"
PERSON = "@ana:example.org"
TYPES = (
    "m.room.message",
    "m.room.member",
    "m.room.encrypted",
    "m.room.power_levels",
    "m.room.name",
    "m.room.topic",
    "m.room.create",
    "m.room.join_rules",
    "m.room.history_visibility",
    "m.room.canonical_alias",
    "m.room.avatar",
    "m.room.encryption",
    "m.room.redaction",
    "m.room.tombstone",
    "m.space.parent",
    "m.space.child",
    "m.sticker",
    "m.reaction",
    "m.call.invite",
    "m.call.hangup",
    "m.poll.start",
    "x.custom",
)
MSGTYPES = ("m.text", "m.emote", "m.notice", "m.image", "m.file", "m.audio", "m.video")
KEYS = (
    "body",
    "msgtype",
    "format",
    "formatted_body",
    "m.relates_to",
    "m.new_content",
    "m.mentions",
    "geo_uri",
    "url",
    "file",
    "info",
    "filename",
    "membership",
    "is_direct",
    "displayname",
    "algorithm",
    "ciphertext",
    "session_id",
    "sender_key",
    "device_id",
    "users",
    "name",
    "topic",
    "alias",
    "redacts",
    "call_id",
    "version",
)
ODD_TEXT = st.sampled_from(["", "\ud800", "a\udfffb", "\x00", "x" * 70_000, "①", "/start"])
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | ODD_TEXT,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=6,
)
SPECIAL = st.sampled_from(
    [*MSGTYPES, "m.location", "join", "leave", "invite", "m.megolm.v1.aes-sha2", "m.replace"]
)
CONTENT = st.dictionaries(st.sampled_from(KEYS), JSON | SPECIAL, max_size=7)


@pytest.fixture(autouse=True)
def _quiet_nio() -> Iterator[None]:
    """nio logs every bad event with its whole content (pretty-printed): slow, and kept by pytest."""
    nio_log = logging.getLogger("nio")
    level, nio_log.level = nio_log.level, logging.CRITICAL + 1
    try:
        yield
    finally:
        nio_log.setLevel(level)


def _field(good: Any) -> st.SearchStrategy[Any]:
    """Mostly the well-formed value, sometimes anything, sometimes missing (None)."""
    return st.one_of(st.just(good), st.just(good), JSON, st.none())


@st.composite
def events(draw: st.DrawFn) -> Any:
    """An event envelope and content, each field well-formed or hostile."""
    if draw(st.integers(0, 19)) == 0:
        return draw(JSON)
    event: dict[str, Any] = {}
    fields = {
        "type": draw(st.sampled_from(TYPES) | JSON),
        "event_id": draw(_field(f"${uuid.uuid4().hex}:example.org")),
        "sender": draw(_field(PERSON)),
        "origin_server_ts": draw(_field(1_700_000_000_000)),
        "content": draw(CONTENT | JSON),
        "state_key": draw(st.none() | st.just("") | st.just(BOT) | JSON),
        "unsigned": draw(st.none() | st.just({"redacted_because": {}}) | JSON),
    }
    for key, value in fields.items():
        if value is not None:
            event[key] = value
    return event


def message(text: str) -> dict[str, Any]:
    content = {"msgtype": "m.text", "body": text}
    return {
        "type": "m.room.message",
        "event_id": f"${uuid.uuid4().hex}:example.org",
        "sender": PERSON,
        "origin_server_ts": 1_700_000_000_000,
        "content": content,
    }


class _Reply:
    def __init__(self, body: str) -> None:
        self.status = 200
        self._body = body.encode("utf-8", "surrogatepass")

    async def __aenter__(self) -> _Reply:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def read(self) -> bytes:
        return self._body


class _Homeserver(AsyncClient):  # type: ignore[misc]
    """nio's client with its HTTP replaced by one canned /sync body."""

    body = "{}"

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        return _Reply(self.body)


async def _through_syncer(body: str) -> tuple[list[Any], Poison]:
    client = _Homeserver("http://127.0.0.1:1", BOT)
    client.access_token = "token"
    poison = Poison()
    syncer = Syncer(client, cast(Any, None), 1000, poison=poison)
    client.body = body
    response = await syncer._sync("s0", 0, full_state=False)
    assert response is not None, "the loop must always be able to move on"
    assert response.next_batch == "s1"
    batch = await syncer._batch(response, "s0")
    await client.close()
    return [item for room in batch.rooms for item in map(read, room.events)], poison


def _said(items: list[Any]) -> list[str | None]:
    return [item.text for item in items if isinstance(item, Said)]


@given(
    timeline=st.lists(events(), max_size=5),
    state=st.lists(events(), max_size=2),
    invite=st.lists(events(), max_size=2),
    to_device=st.lists(events(), max_size=2),
)
def test_hostile_events_in_a_sync_are_skipped_and_the_good_ones_answered(
    timeline: list[Any], state: list[Any], invite: list[Any], to_device: list[Any]
) -> None:
    first, last = message("first good message"), message("last good message")
    room = {"timeline": {"events": [first, *timeline, last]}, "state": {"events": state}}
    body = {
        "next_batch": "s1",
        "rooms": {"join": {ROOM: room}, "invite": {"!inv:x": {"invite_state": {"events": invite}}}},
        "to_device": {"events": to_device},
    }
    text = json.dumps(body)  # \u escapes, so lone surrogates reach the parsers
    items, _ = asyncio.run(_through_syncer(text))
    said = _said(items)
    assert said[0] == "first good message" and said[-1] == "last good message"


@given(body=JSON)
def test_a_sync_body_of_any_shape_never_stops_the_loop(body: Any) -> None:
    shaped = body if isinstance(body, dict) else {"rooms": body}
    text = json.dumps(shaped | {"next_batch": "s1"})
    asyncio.run(_through_syncer(text))


def test_a_body_too_deep_to_parse_is_skipped_past_its_position() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    text = (
        '{"rooms": {"join": {"!a:x": {"timeline": {"events": ['
        + deep
        + ']}}}}, "next_batch": "s1"}'
    )
    poison = Poison()
    response = read_sync(text, poison)
    assert response is not None and response.next_batch == "s1"
    assert poison.count == 1


@given(event=events())
def test_any_single_event_is_converted_or_skipped(event: Any) -> None:
    try:
        parsed = Event.parse_event(event)
    except Exception:
        return  # the sync reader drops such an event (tested above)
    item = read(parsed)
    assert item is None or isinstance(item, Said | Undecryptable | Unreadable) or item.event_id


class _Sender:
    """A hostile client's Megolm session, shared with the bot's real Olm machine."""

    def __init__(self) -> None:
        self.olm = Olm(BOT, "BOTDEVICE", SqliteMemoryStore(BOT, "BOTDEVICE", "pickle"))
        self.curve, self.ed = "c" * 43, "e" * 43
        self.session = self._rotate()

    def _rotate(self) -> OutboundGroupSession:
        """A new shared session (nio refuses to encrypt more than 100 messages with one)."""
        session = OutboundGroupSession()
        session.mark_as_shared()
        self.olm.create_group_session(self.curve, self.ed, ROOM, session.id, session.session_key)
        return session

    def event(self, plaintext: str) -> MegolmEvent:
        if self.session.message_index >= 90:
            self.session = self._rotate()
        content = {
            "algorithm": "m.megolm.v1.aes-sha2",
            "ciphertext": self.session.encrypt(plaintext),
            "sender_key": self.curve,
            "session_id": self.session.id,
            "device_id": "HOSTILEDEV",
        }
        event_id = f"${uuid.uuid4().hex}:example.org"
        source = {"type": "m.room.encrypted", "event_id": event_id, "sender": PERSON}
        event = MegolmEvent.from_dict(source | {"origin_server_ts": 1, "content": content})
        assert isinstance(event, MegolmEvent)
        event.room_id = ROOM
        return event

    def decrypt_event(self, event: MegolmEvent) -> Any:
        return self.olm.decrypt_megolm_event(event)

    async def request_room_key(self, event: MegolmEvent) -> None:
        return None


SENDER = _Sender()
PAYLOADS = st.one_of(
    st.text(max_size=30),
    JSON.map(json.dumps),
    st.builds(
        lambda t, c, r: json.dumps({"type": t, "content": c, "room_id": r}),
        st.sampled_from(TYPES) | JSON,
        CONTENT | JSON,
        st.just(ROOM) | JSON,
    ),
)


@given(plaintext=PAYLOADS)
def test_any_megolm_payload_is_opened_or_skipped(plaintext: str) -> None:
    undecrypted = Undecrypted(SENDER, grace=0.0)
    event = SENDER.event(plaintext)
    item = read(event)
    assert isinstance(item, Undecryptable)
    asyncio.run(undecrypted.add(ROOM, item))
    readable, _ = undecrypted.retry()
    assert not undecrypted.pending
    for _, opened in readable:
        assert opened is None or isinstance(opened, Said | Unreadable) or opened.event_id


def test_a_good_megolm_payload_is_said() -> None:
    content = {"msgtype": "m.text", "body": "hello"}
    payload = json.dumps({"type": "m.room.message", "content": content, "room_id": ROOM})
    undecrypted = Undecrypted(SENDER, grace=0.0)
    item = read(SENDER.event(payload))
    assert isinstance(item, Undecryptable)
    asyncio.run(undecrypted.add(ROOM, item))
    readable, _ = undecrypted.retry()
    assert [(room, said.text) for room, said in readable if isinstance(said, Said)] == [
        (ROOM, "hello")
    ]


# The shapes named in the issue, each once.


def _sync_with(*events: Any) -> str:
    room = {"timeline": {"events": [*events, message("still answered")]}}
    return json.dumps({"next_batch": "s1", "rooms": {"join": {ROOM: room}}})


def test_a_timestamp_that_is_not_a_number_no_longer_stops_the_whole_sync() -> None:
    bad = message("poison") | {"origin_server_ts": "yesterday"}
    with pytest.raises(TypeError):
        SyncResponse.from_dict(json.loads(_sync_with(bad)))  # what nio alone does
    items, poison = asyncio.run(_through_syncer(_sync_with(bad, {"type": "m.room.message"})))
    assert _said(items) == ["still answered"]
    assert poison.count == 1, "dropped while reading the sync"
    assert [i.kind for i in items if isinstance(i, Unreadable)] == ["event without its envelope"]


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ({"msgtype": "m.text", "body": 5}, None),
        ({"msgtype": "m.text", "body": "a", "formatted_body": "x" * 60_000}, "a"),
        ({"msgtype": "m.text", "body": "> <@x:y> q\n\nhi", "m.relates_to": "garbage"}, "hi"),
        ({"msgtype": "m.text", "body": "hi", "m.relates_to": {"rel_type": 5}}, "hi"),
        ({"msgtype": "m.text", "body": "a\ud800b"}, "a?b"),
        ({"msgtype": "m.location", "body": "here"}, ""),
        ({"msgtype": "m.image", "body": "x.png", "url": 5}, None),
        ({"msgtype": "m.text", "body": "hi", "m.mentions": {"user_ids": "@bot:x"}}, "hi"),
    ],
)
def test_wrong_typed_fields_are_answered_or_skipped(
    content: dict[str, Any], said: str | None
) -> None:
    event = message("") | {"content": content}
    items, poison = asyncio.run(_through_syncer(_sync_with(event)))
    texts = [text or "" for text in _said(items)]
    assert texts == ([said] if said is not None else []) + ["still answered"]
    skipped = [item for item in items if isinstance(item, Unreadable)]
    assert len(skipped) == (1 if said is None else 0) and poison.count == 0


def test_a_sync_nio_cannot_apply_is_still_handled() -> None:
    class Failing(_Homeserver):
        async def receive_response(self, response: Any) -> None:
            raise RuntimeError("inside nio's state handling")

    async def run() -> tuple[Any, Syncer]:
        client = Failing("http://127.0.0.1:1", BOT)
        client.access_token, client.body = "token", _sync_with()
        syncer = Syncer(client, cast(Any, None), 1000)
        response = await syncer._sync("s0", 0, full_state=False)
        await client.close()
        return response, syncer

    response, syncer = asyncio.run(run())
    assert response is not None and response.next_batch == "s1"
    assert syncer.unapplied == 1


def test_a_payload_that_is_not_an_object_is_skipped_not_retried() -> None:
    event = SENDER.event("5")
    with pytest.raises(TypeError):
        SENDER.decrypt_event(event)  # nio raises outside its EncryptionError
    undecrypted = Undecrypted(SENDER, grace=60.0)
    asyncio.run(undecrypted.add(ROOM, Undecryptable(event.event_id, PERSON, event)))
    readable, hints = undecrypted.retry()
    assert [type(item) for _, item in readable] == [Unreadable] and hints == []
    assert not undecrypted.pending


def test_a_skipped_event_is_logged_as_its_kind_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="hrd_bot")
    event = message("Kenya-canary") | {"origin_server_ts": "yesterday"}
    asyncio.run(_through_syncer(_sync_with(event)))
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("hrd_bot")]
    assert ours == ["skipped an unreadable Matrix event (timeline, TypeError); 1 so far"]


def test_key_upkeep_nio_cannot_take_does_not_stop_the_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class HostileKeys(_Homeserver):
        should_upload_keys = should_claim_keys = False
        should_query_keys = True

        async def send_to_device_messages(self) -> list[Any]:
            return []

        async def keys_query(self) -> None:
            raise TypeError("a device's keys nio cannot take")

    async def run() -> None:
        client = HostileKeys("http://127.0.0.1:1", BOT)
        await Syncer(client, cast(Any, None), 1000)._chores()
        await client.close()

    asyncio.run(run())
    assert "key upkeep failed (TypeError)" in caplog.text
