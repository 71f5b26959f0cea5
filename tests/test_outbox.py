"""The outbox on SQLCipher and PostgreSQL: states, retries, restarts, and what reaches the disk."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from bot.app import App
from bot.content.library import Library
from bot.delivery import Reason, RetryPolicy, Undelivered, rows
from bot.model import ChatRef, Reply
from bot.storage.database import Connection
from tests.conftest_storage import OpenDatabase
from tests.fakes import FakeTransport

pytestmark = pytest.mark.backends

ROOM_A = ChatRef("fake", "room-a", private=False)
ROOM_B = ChatRef("fake", "room-b", private=False)
PERSON = ChatRef("fake", "chat-ana")
QUICK = RetryPolicy(window=5.0, first=0.01, cap=0.05, attempt=2.0)


async def _app(open_database: OpenDatabase, library: Library, transport: FakeTransport) -> App:
    db = await open_database()
    app = await App.open(db, library, staff_rooms=(ROOM_A, ROOM_B), delivery=QUICK)
    app.attach(transport)
    await app.start_delivery()
    return app


async def _close(app: App) -> None:
    await app.outbox.close()
    await app.db.close()


async def _states(app: App) -> list[tuple[str, str | None, int]]:
    def read(c: Connection) -> list[tuple[str, str | None, int]]:
        found = c.execute("SELECT state, reason, attempts FROM outbox ORDER BY id").fetchall()
        return [(state, c.unseal(rows.REASON, reason), n) for state, reason, n in found]

    return await app.db.run(read)


def _texts(transport: FakeTransport, chat: ChatRef) -> list[str]:
    return [reply.text for to, reply in transport.sent if to.address == chat.address]


async def test_transient_failures_are_retried_and_the_message_arrives_once(
    open_database: OpenDatabase, library: Library
) -> None:
    transient = Undelivered(Reason.UNREACHABLE, transient=True)
    transport = FakeTransport(faults=[transient] * 5)
    app = await _app(open_database, library, transport)
    outcome = await (await app.deliver(PERSON, Reply("hello"), kind="notice"))
    assert outcome.delivered and outcome.message_ids == ("1",)
    assert _texts(transport, PERSON) == ["hello"]
    assert await _states(app) == [("delivered", None, 6)]
    await _close(app)


async def test_a_final_refusal_is_not_retried_and_says_why(
    open_database: OpenDatabase, library: Library
) -> None:
    transport = FakeTransport(refuse={PERSON.address: Undelivered(Reason.BLOCKED)})
    app = await _app(open_database, library, transport)
    outcome = await (await app.deliver(PERSON, Reply("hello"), kind="reply"))
    assert outcome.reason is Reason.BLOCKED
    assert await _states(app) == [("failed", "blocked", 1)]
    await _close(app)


async def test_an_uncertain_send_is_retried_only_where_the_platform_deduplicates(
    open_database: OpenDatabase, library: Library
) -> None:
    lost = Undelivered(Reason.UNREACHABLE, transient=True, uncertain=True)
    once = FakeTransport(idempotent=False, faults=[lost])
    app = await _app(open_database, library, once)
    assert (await (await app.deliver(PERSON, Reply("x")))).reason is Reason.UNCERTAIN
    assert once.sent == []
    await _close(app)

    again = FakeTransport(idempotent=True, faults=[lost, lost])
    app = await _app(open_database, library, again)
    assert (await (await app.deliver(PERSON, Reply("x")))).delivered
    assert len(set(again.keys)) == 1, "every try carried the same key"
    await _close(app)


async def test_after_the_window_a_message_is_reported_unreachable(
    open_database: OpenDatabase, library: Library
) -> None:
    transport = FakeTransport(
        refuse={PERSON.address: Undelivered(Reason.UNREACHABLE, transient=True)}
    )
    app = await _app(open_database, library, transport)
    app.outbox.policy = RetryPolicy(window=0.2, first=0.02, cap=0.05)
    outcome = await asyncio.wait_for(await app.deliver(PERSON, Reply("x")), 5)
    assert outcome.reason is Reason.UNREACHABLE
    await _close(app)


async def test_a_failing_staff_room_holds_up_nothing_and_the_other_room_is_told(
    open_database: OpenDatabase, library: Library
) -> None:
    transport = FakeTransport(refuse={ROOM_A.address: Undelivered(Reason.REMOVED)})
    app = await _app(open_database, library, transport)
    app.outbox.policy = RetryPolicy(window=60.0, first=0.02, cap=0.05)
    stuck = await app.deliver(ROOM_A, Reply("New case HRD-1"), kind="alert")
    arrived = await app.deliver(ROOM_B, Reply("New case HRD-1"), kind="alert")
    assert (await asyncio.wait_for(arrived, 5)).delivered
    await transport.tries(ROOM_A.address, 3)
    assert not stuck.done(), "a staff room is retried through the window, even after a 403"
    del transport.refuse[ROOM_A.address]
    assert (await asyncio.wait_for(stuck, 5)).delivered
    await app.outbox.drain()
    said = _texts(transport, ROOM_B)
    assert said[0] == "New case HRD-1"
    assert said[1].startswith("Staff room 1 (fake) cannot be reached: the bot is no longer")
    assert said[2] == "Staff room 1 (fake) can be reached again."
    assert _texts(transport, ROOM_A) == ["New case HRD-1"]
    await _close(app)


async def test_an_unreachable_on_call_chat_is_named_as_one_not_as_a_staff_room(
    open_database: OpenDatabase, library: Library
) -> None:
    oncall = ChatRef("fake", "chat-oncall-person")
    transport = FakeTransport(refuse={oncall.address: Undelivered(Reason.BLOCKED)})
    db = await open_database()
    app = await App.open(db, library, staff_rooms=(ROOM_A,), oncall=(oncall,), delivery=QUICK)
    app.attach(transport)
    await app.start_delivery()
    app.outbox.policy = RetryPolicy(window=60.0, first=0.02, cap=0.05)
    paged = await app.deliver(oncall, Reply("Case HRD-1 needs someone"), kind="alert")
    await transport.tries(oncall.address, 3)
    assert not paged.done(), "an on-call chat is retried through the window"
    del transport.refuse[oncall.address]
    assert (await asyncio.wait_for(paged, 5)).delivered
    await app.outbox.drain()
    said = _texts(transport, ROOM_A)
    assert said[0].startswith("On-call chat 1 (fake) cannot be reached: ")
    assert said[1] == "On-call chat 1 (fake) can be reached again."
    await _close(app)


async def test_after_a_stop_metadata_is_resent_once_and_lost_content_is_named_to_staff(
    open_database: OpenDatabase, library: Library
) -> None:
    """Queued alerts survive a stop; a sensitive message (held only in memory) cannot,
    and staff are told exactly which to send again. Its text never reached the disk."""
    down = FakeTransport(refuse={PERSON.address: Undelivered(Reason.UNREACHABLE, transient=True)})
    down.refuse[ROOM_A.address] = down.refuse[PERSON.address]
    app = await _app(open_database, library, down)
    app.outbox.policy = RetryPolicy(window=60.0, first=10.0, cap=10.0)
    alert = await app.deliver(
        ROOM_A, Reply("New case HRD-AAAA-BBBB"), kind="alert", case_id="HRD-AAAA-BBBB"
    )
    reply = Reply("Protection team: CANARY-SECRET come at six", sensitive=True)
    await app.deliver(PERSON, reply, kind="reply", case_id="HRD-AAAA-BBBB", person="fake:x")
    bodies = await app.db.run(lambda c: c.execute("SELECT body FROM outbox").fetchall())
    assert not any("CANARY-SECRET" in (body or "") for (body,) in bodies)
    cleared = "SELECT count(*) FROM outbox WHERE kind = 'reply' AND attempts = 0"
    for _ in range(500):  # the refusal, then its note: surely not sent, so lost
        if PERSON.address in down.tried and await app.db.run(
            lambda c: c.execute(cleared).fetchone()[0]
        ):
            break
        await asyncio.sleep(0.01)
    assert not alert.done()
    await _close(app)

    up = FakeTransport()
    app = await _app(open_database, library, up)
    await app.outbox.drain()
    assert _texts(up, ROOM_A)[0] == "New case HRD-AAAA-BBBB", "once, after the restart"
    notice = _texts(up, ROOM_B)[0]
    assert _texts(up, ROOM_A)[1:] == [notice], "every alert room is told"
    assert notice.startswith("After a restart, 1 message had not gone out.")
    assert "team reply to the reporter · HRD-AAAA-BBBB" in notice
    assert _texts(up, PERSON) == [], "nothing of the lost reply is invented"
    states = await _states(app)
    assert states[:2] == [("delivered", None, 1), ("failed", "lost", 0)]
    assert {state for state, _, _ in states[2:]} == {"delivered"}
    await _close(app)


async def test_forget_takes_what_was_queued_for_the_person(
    open_database: OpenDatabase, library: Library
) -> None:
    transport = FakeTransport()
    app = await _app(open_database, library, transport)
    user = app.pseudonyms.user("fake", "ana")
    await (await app.deliver(PERSON, Reply("x", sensitive=True), kind="reply", person=user.key))
    await app.sessions.forget(user)
    assert await app.db.run(lambda c: c.execute("SELECT count(*) FROM outbox").fetchone()[0]) == 0
    await _close(app)


async def test_settled_rows_go_after_a_week_and_queued_ones_stay(
    open_database: OpenDatabase, library: Library
) -> None:
    app = await _app(open_database, library, FakeTransport())
    await (await app.deliver(PERSON, Reply("old")))
    week_ago = "UPDATE outbox SET updated_at = updated_at - 8 * 86400, created_at = 0"
    await app.db.run(lambda c: c.execute(week_ago))
    await app.db.run(
        lambda c: c.execute(
            "INSERT INTO outbox (platform, address, private, encrypted, kind, body, state,"
            " created_at, updated_at) VALUES ('fake', ?, 1, 0, 'notice', NULL, 'queued', 0, 0)",
            (c.seal(rows.ADDRESS, "x"),),
        )
    )
    await app.db.transaction(rows.prune)
    left = await app.db.run(lambda c: c.execute("SELECT state FROM outbox").fetchall())
    assert left == [("queued",)]
    await _close(app)


@dataclass
class _Hanging(FakeTransport):
    """A platform that takes the request and never answers."""

    async def send(self, chat: ChatRef, reply: Reply, key: str = "") -> tuple[str, ...]:
        self.tried.append(chat.address)
        await asyncio.Event().wait()
        return ()


async def test_a_message_that_may_have_left_before_a_stop_is_not_resent_where_it_could_double(
    open_database: OpenDatabase, library: Library
) -> None:
    hanging = _Hanging(idempotent=False)
    app = await _app(open_database, library, hanging)
    await app.deliver(PERSON, Reply("Check-in: are you safe?"), kind="checkin", case_id="HRD-X")
    for _ in range(500):  # until the try has left (its note is written before it)
        if PERSON.address in hanging.tried:
            break
        await asyncio.sleep(0.01)
    await _close(app)

    after = FakeTransport(idempotent=False)
    app = await _app(open_database, library, after)
    await app.outbox.drain()
    assert _texts(after, PERSON) == [], "not resent: it may have arrived"
    notice = _texts(after, ROOM_A)[0]
    assert notice.startswith("After a restart, 1 message may or may not have gone out")
    assert "check-in · HRD-X" in notice
    assert (await _states(app))[0][:2] == ("failed", "uncertain")
    await _close(app)


async def test_a_row_to_a_person_keeps_their_address_only_while_queued(
    open_database: OpenDatabase, library: Library
) -> None:
    """Delivered or failed, a row to a reporter no longer says where they are; a staff
    room's row keeps its address (it is no secret)."""
    transport = FakeTransport()
    transport.refuse = {"chat-bea": Undelivered(Reason.BLOCKED)}
    app = await _app(open_database, library, transport)
    bea = ChatRef("fake", "chat-bea")
    for chat, name in ((PERSON, "ana"), (bea, "bea")):
        person = app.pseudonyms.user("fake", name).key
        await (await app.deliver(chat, Reply("x", sensitive=True), kind="reply", person=person))
    await (await app.deliver(ROOM_A, Reply("alert")))

    def read(c: Connection) -> list[tuple[str, str]]:
        found = c.execute("SELECT state, address FROM outbox ORDER BY id").fetchall()
        return [(state, address and c.unseal(rows.ADDRESS, address)) for state, address in found]

    found = await app.db.run(read)
    assert found == [("delivered", ""), ("failed", ""), ("delivered", "room-a")]
    await _close(app)


async def test_alerts_and_team_replies_pass_ordinary_screens_at_the_platform(
    open_database: OpenDatabase, library: Library
) -> None:
    """Issue 16: handed to the transport as urgent (past the rate limiter's queue), while
    a notice is not; the parcel itself keeps its place behind an SOS in its lane."""
    transport = FakeTransport()
    app = await _app(open_database, library, transport)
    for chat, kind in ((ROOM_A, "alert"), (PERSON, "reply"), (ROOM_B, "notice")):
        await asyncio.wait_for(await app.deliver(chat, Reply(kind), kind=kind), 5)
    assert [(reply.text, reply.urgent) for _, reply in transport.sent] == [
        ("alert", True),
        ("reply", True),
        ("notice", False),
    ]
    await _close(app)


async def test_an_alert_is_found_from_its_message_id_in_its_own_room_only(
    open_database: OpenDatabase, library: Library
) -> None:
    """`outbox_messages` holds the ids a row settled with: a claim finds the case from
    them, in the room the alert went to, and from no other room or message."""
    app = await _app(open_database, library, FakeTransport())
    alert = Reply("New case HRD-AAAA-BBBB")
    await (await app.deliver(ROOM_A, alert, kind="alert", case_id="HRD-AAAA-BBBB"))
    await (await app.deliver(ROOM_A, Reply("notice"), kind="notice", case_id="HRD-AAAA-BBBB"))

    async def find(room: ChatRef, message_id: str) -> str | None:
        return await app.db.run(
            lambda c: rows.alerted_case(c, room.platform, room.address, message_id)
        )

    assert await find(ROOM_A, "1") == "HRD-AAAA-BBBB"
    assert await find(ROOM_B, "1") is None, "another room's message with the same id"
    assert await find(ROOM_A, "2") is None, "a notice claims nothing"
    assert await find(ROOM_A, "3") is None
    await _close(app)
