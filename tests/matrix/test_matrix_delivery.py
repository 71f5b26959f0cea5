"""What staff are told matches what arrived, on a real Synapse, under faults.

The bot's client reaches Synapse through `FaultyProxy` (tests/matrix/faulty_proxy.py),
which breaks chosen event sends to one room: 5xx, 429 with retry_after, an answer lost
after the send arrived, a minute in which no connection is taken. The reporter and the
staff member talk to Synapse directly. Exactly-once is judged on Synapse's own tables:
the bot's events in each room, against what the person's client decrypted and read.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from nio import Event, MatrixRoom, RoomKickResponse

from bot.content.library import Library
from bot.delivery import RetryPolicy
from tests.matrix.activist import Activist, Chat
from tests.matrix.faulty_proxy import FaultyProxy
from tests.matrix.fixtures import Bot, unique
from tests.matrix.homeserver import Synapse
from tests.matrix.staff import Desk, invite, joined, room_holds
from tests.matrix.test_matrix_flows import homeserver_rows
from tests.matrix.test_matrix_reports import WITHHELD

POLICY = RetryPolicy(window=600.0, first=0.1, cap=2.0, attempt=10.0)
BOT_EVENTS = (
    "SELECT event_id FROM events WHERE room_id = ? AND sender = ? "
    "AND type IN ('m.room.message', 'm.room.encrypted') ORDER BY stream_ordering"
)
MEMBERSHIP = "SELECT membership FROM local_current_membership WHERE room_id = ? AND user_id = ?"
WAIT = 30.0


@pytest.fixture
async def proxy(synapse: Synapse) -> AsyncIterator[FaultyProxy]:
    running = await FaultyProxy(synapse.url).start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def bot(
    synapse: Synapse, proxy: FaultyProxy, tmp_path: Path, library: Library
) -> AsyncIterator[Bot]:
    """The bot behind the proxy, retrying within seconds rather than minutes."""
    account = synapse.register(unique("bot"))
    folder = tmp_path / "bot"
    running = Bot(synapse, account, folder, library, homeserver=proxy.url, delivery=POLICY)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
def staff(desk: Desk, synapse: Synapse) -> Seen:
    return Seen(desk.staff, synapse, (desk.room.room_id, desk.plain.room_id))


class Seen:
    """The bot's events one person's client receives from now on, by room: each one's
    body, or "" (a file, or an event it could not decrypt)."""

    def __init__(self, person: Activist, synapse: Synapse, rooms: tuple[str, ...]) -> None:
        self.bot_id = person.bot_id
        self.synapse = synapse
        self.since = {room: len(bot_events(synapse, self.bot_id, room)) for room in rooms}
        self.rooms: dict[str, dict[str, str]] = {}
        person.client.add_event_callback(self._on_event, Event)

    async def _on_event(self, room: MatrixRoom, event: Any) -> None:
        if event.sender == self.bot_id:
            body = getattr(event, "body", "")
            self.rooms.setdefault(room.room_id, {})[event.event_id] = str(body)

    async def view(self, room_id: str) -> list[str]:
        """The bodies of the messages the bot has put in the room since, once this client
        has them all; the list is Synapse's, so a message stored twice shows twice."""
        stored = bot_events(self.synapse, self.bot_id, room_id)[self.since.get(room_id, 0) :]
        await until(lambda: all(e in self.rooms.get(room_id, {}) for e in stored))
        return [self.rooms[room_id][event_id] for event_id in stored]


def bot_events(synapse: Synapse, bot_id: str, room_id: str) -> list[str]:
    return [row[0] for row in homeserver_rows(synapse, BOT_EVENTS, room_id, bot_id)]


async def until(check: Callable[[], bool], wait: float = WAIT) -> None:
    """Wait until `check()` holds, looking again every tenth of a second (it reads Synapse's
    tables or the proxy's log, which signal nothing)."""
    async with asyncio.timeout(wait):
        while not check():  # noqa: ASYNC110 - nothing to wait on but time
            await asyncio.sleep(0.1)


async def drain(chat: Chat, count: int) -> list[str]:
    return [await chat.reply() for _ in range(count)]


async def submit(dm: Chat) -> str:
    """A whole report, without files; returns the case reference."""
    await dm.pick("English")
    await dm.pick("Report a risk")
    assert "Question 1 of 7" in await dm.pick("Start the report")
    for answer in ("CANARY-WHAT they followed me", "yesterday evening", "Colombia", "us"):
        await dm.say(answer)
    await dm.pick("Danger now")
    await dm.say("here, evenings")
    await dm.pick("Yes, if it helps")
    found = re.search(r"HRD-[0-9A-Z]{4}-[0-9A-Z]{4}", await dm.pick("Send the report"))
    assert found, dm.last
    return found.group(0)


async def reported(activist: Activist, desk: Desk) -> tuple[Chat, str]:
    """A report in a new DM; the staff rooms have read its alert, and answers or why not."""
    dm = await activist.open_dm()
    case = await submit(dm)
    assert case in (await drain(desk.room, 2))[0]
    assert case in (await drain(desk.plain, 2))[0]
    return dm, case


async def history(bot: Bot, case: str) -> list[str]:
    assert bot.app is not None
    return [entry.action for entry in await bot.app.casework.store.audit(case)]


async def told_once(
    bot: Bot, staff: Seen, desk: Desk, case: str, *notices: str, told: Chat | None = None
) -> None:
    """Once the outbox is idle: each staff room has the case's alert once, and `told`
    (the encrypted one unless said) each notice once."""
    assert bot.app is not None
    await bot.app.outbox.drain()
    await bot.app.outbox.drain()  # what the confirmations queued
    for chat in (desk.room, desk.plain):
        seen = await staff.view(chat.room_id)
        assert len([text for text in seen if f"New case {case}" in text]) == 1, seen
    seen = await staff.view((told or desk.room).room_id)
    assert [seen.count(notice) for notice in notices] == [1] * len(notices), seen


def delivered(case: str) -> str:
    """The room's "queued" notice, edited (the "* " body of an `m.replace`)."""
    return f"* Reply to the reporter of {case}: delivered."


def team(text: str) -> str:
    return f"Protection team: {text}\n\n1. Answer the team"


async def test_a_reply_to_a_reporter_who_left_the_room_says_not_delivered_and_why(
    bot: Bot,
    desk: Desk,
    staff: Seen,
    activist: Activist,
    synapse: Synapse,
    proxy: FaultyProxy,
) -> None:
    """The bot then leaves the DM too. (In a DM the bot and the reporter have equal power,
    so the reporter cannot remove the bot; leaving is how a reporter shuts it out.)"""
    dm, case = await reported(activist, desk)
    bot_id = bot.account.user_id
    await activist.client.room_leave(dm.room_id)
    await until(lambda: homeserver_rows(synapse, MEMBERSHIP, dm.room_id, bot_id) == [("leave",)])
    stored, tried = bot_events(synapse, bot_id, dm.room_id), proxy.sends(dm.room_id)

    assert "queued" in await desk.room.say(f"/reply {case} CANARY-GONE are you safe?")
    failed = (
        f"* Reply to the reporter of {case}: not delivered: the person blocked the bot or left "
        f"the chat. /case {case} shows the history."
    )
    assert await desk.room.reply() == failed
    await told_once(bot, staff, desk, case, failed)
    assert "case.reply.failed" in await history(bot, case)
    assert "case.reply.delivered" not in await history(bot, case)
    assert bot_events(synapse, bot_id, dm.room_id) == stored, "nothing arrived"
    assert proxy.sends(dm.room_id) == tried, "nothing was sent to a room nobody reads"


async def test_five_server_errors_in_a_row_then_the_reply_arrives_once(
    bot: Bot,
    desk: Desk,
    staff: Seen,
    activist: Activist,
    synapse: Synapse,
    proxy: FaultyProxy,
) -> None:
    dm, case = await reported(activist, desk)
    stored, tried = bot_events(synapse, bot.account.user_id, dm.room_id), proxy.sends(dm.room_id)
    proxy.fail(dm.room_id, 502, times=5)

    assert "queued" in await desk.room.say(f"/reply {case} CANARY-5XX hello")
    assert await dm.reply() == team("CANARY-5XX hello")
    assert await desk.room.reply() == delivered(case)
    sends = proxy.sends(dm.room_id)[len(tried) :]
    assert [s.status for s in sends] == [502] * 5 + [200]
    assert len({s.txn for s in sends}) == 1, "every try under one transaction id"
    new = bot_events(synapse, bot.account.user_id, dm.room_id)[len(stored) :]
    assert new == [sends[-1].event_id], "one event in the room"
    await told_once(bot, staff, desk, case, delivered(case))
    assert "case.reply.delivered" in await history(bot, case)


async def test_a_429_with_retry_after_is_waited_out_and_the_reply_arrives_once(
    bot: Bot,
    desk: Desk,
    staff: Seen,
    activist: Activist,
    synapse: Synapse,
    proxy: FaultyProxy,
) -> None:
    dm, case = await reported(activist, desk)
    stored, tried = bot_events(synapse, bot.account.user_id, dm.room_id), proxy.sends(dm.room_id)
    proxy.fail(dm.room_id, 429, times=3, retry_after_ms=1000)

    assert "queued" in await desk.room.say(f"/reply {case} CANARY-429 hello")
    assert await dm.reply() == team("CANARY-429 hello")
    assert await desk.room.reply() == delivered(case)
    sends = proxy.sends(dm.room_id)[len(tried) :]
    assert [s.status for s in sends] == [429, 429, 429, 200]
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(sends)]
    assert min(gaps) >= 0.95, "no try sooner than the homeserver asked"
    new = bot_events(synapse, bot.account.user_id, dm.room_id)[len(stored) :]
    assert new == [sends[-1].event_id]
    await told_once(bot, staff, desk, case, delivered(case))


async def test_a_lost_answer_is_retried_and_synapse_keeps_the_message_once(
    bot: Bot,
    desk: Desk,
    staff: Seen,
    activist: Activist,
    synapse: Synapse,
    proxy: FaultyProxy,
) -> None:
    """The send arrived and its answer was lost. nio sends again at once and gets a 502;
    the outbox then tries again itself. Every try carries the same transaction id, so
    Synapse answers with the event it already has instead of storing a second."""
    dm, case = await reported(activist, desk)
    stored, tried = bot_events(synapse, bot.account.user_id, dm.room_id), proxy.sends(dm.room_id)
    proxy.lose_answer(dm.room_id)
    proxy.fail(dm.room_id, 502, times=1)

    assert "queued" in await desk.room.say(f"/reply {case} CANARY-LOST hello")
    assert await dm.reply() == team("CANARY-LOST hello")
    assert await desk.room.reply() == delivered(case)
    lost, refused, retried = proxy.sends(dm.room_id)[len(tried) :]
    assert (lost.status, refused.status, retried.status) == (0, 502, 200)
    assert lost.txn == refused.txn == retried.txn
    assert lost.event_id == retried.event_id is not None
    new = bot_events(synapse, bot.account.user_id, dm.room_id)[len(stored) :]
    assert new == [retried.event_id], "stored once"
    await told_once(bot, staff, desk, case, delivered(case))


async def test_a_send_that_hangs_after_it_arrived_is_given_up_and_stored_once(
    bot: Bot,
    desk: Desk,
    staff: Seen,
    activist: Activist,
    synapse: Synapse,
    proxy: FaultyProxy,
) -> None:
    """Synapse stored the event, its answer never comes: the outbox gives the try up after
    `RetryPolicy.attempt` and sends again under the same transaction id."""
    assert bot.app is not None
    dm, case = await reported(activist, desk)
    stored, tried = bot_events(synapse, bot.account.user_id, dm.room_id), proxy.sends(dm.room_id)
    bot.app.outbox.policy = RetryPolicy(window=600.0, first=0.1, cap=2.0, attempt=2.0)
    proxy.hold_answer(dm.room_id)

    assert "queued" in await desk.room.say(f"/reply {case} CANARY-HUNG hello")
    assert await dm.reply() == team("CANARY-HUNG hello")
    assert await desk.room.reply() == delivered(case)
    held, answered = proxy.sends(dm.room_id)[len(tried) :]
    assert (held.status, answered.status) == (0, 200)
    assert held.txn == answered.txn and held.event_id == answered.event_id is not None
    assert answered.at - held.at >= 2.0, "given up after the attempt bound, not before"
    new = bot_events(synapse, bot.account.user_id, dm.room_id)[len(stored) :]
    assert new == [answered.event_id], "stored once"
    await told_once(bot, staff, desk, case, delivered(case))


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
async def test_a_staff_room_refusing_then_recovering_gets_the_alert_once_and_the_other_is_told(
    encrypted: bool,
    bot: Bot,
    desk: Desk,
    staff: Seen,
    activist: Activist,
    synapse: Synapse,
    proxy: FaultyProxy,
) -> None:
    """The bot is removed from one staff room before a report and invited back after.
    Synapse refuses the bot's sends there (the plain room) or its member list (the
    encrypted room, which the bot must list before it can share its key)."""
    bot_id = bot.account.user_id
    shut, other = (desk.room, desk.plain) if encrypted else (desk.plain, desk.room)
    name = f"Staff room {1 if encrypted else 2} (matrix)"
    kicked = await desk.staff.client.room_kick(shut.room_id, bot_id)
    assert isinstance(kicked, RoomKickResponse), kicked
    case = await submit(await activist.open_dm())
    said = await drain(other, 3)  # the alert, the answers (or why not), the notice
    assert any(f"{name} cannot be reached" in text for text in said)

    await invite(desk.staff, shut.room_id, bot_id)
    await room_holds(desk.staff, shut.room_id, joined(bot_id))
    up = f"{name} can be reached again."
    assert await other.reply() == up
    down = (
        f"{name} cannot be reached: the bot is no longer in that room or group. "
        "Alerts still go to the other rooms; the bot keeps trying that room for 1 h."
    )
    await told_once(bot, staff, desk, case, down, up, told=other)

    statuses = [s.status for s in proxy.sends(shut.room_id)]
    assert statuses[-2:] == [200, 200] and set(statuses[:-2]) <= {403}
    alert, answers = (await staff.view(shut.room_id))[-2:]
    assert f"New case {case}" in alert, "the alert, once the room took it again"
    if encrypted:
        assert "CANARY-WHAT they followed me" in answers, "decrypted after the rejoin"
    else:
        assert WITHHELD in answers and "CANARY" not in answers
    assert [t for t in await staff.view(other.room_id) if name in t] == [down, up]


async def test_an_alert_waiting_for_a_refusing_room_survives_a_restart_and_arrives_once(
    bot: Bot,
    desk: Desk,
    staff: Seen,
    activist: Activist,
    synapse: Synapse,
) -> None:
    """The bot restarts while a staff room refuses it. The alert waited on disk (it holds
    no report content) and arrives once when the room takes the bot back; the answers
    were kept only in memory, and the staff rooms are told so."""
    bot_id, plain, name = bot.account.user_id, desk.plain.room_id, "Staff room 2 (matrix)"
    assert isinstance(await desk.staff.client.room_kick(plain, bot_id), RoomKickResponse)
    case = await submit(await activist.open_dm())
    said = await drain(desk.room, 3)  # the alert, the answers, the notice
    assert any(f"{name} cannot be reached" in text for text in said)

    await bot.restart()
    lost = await desk.room.reply()
    assert lost.startswith("After a restart, 1 message had not gone out.")
    assert f"report answers for the staff room · {case}" in lost
    assert f"{name} cannot be reached" in await desk.room.reply(), "still refusing"
    await invite(desk.staff, plain, bot_id)
    await room_holds(desk.staff, plain, joined(bot_id))
    assert await desk.room.reply() == f"{name} can be reached again."

    await told_once(bot, staff, desk, case, lost, f"{name} can be reached again.")
    alert, *rest = await staff.view(plain)
    assert f"New case {case}" in alert
    assert rest in ([], [lost]), "the notice skips a room already known to refuse"
    assert bot.app is not None
    assert await _queued(bot) == 0


async def test_a_minute_without_the_homeserver_delays_a_reply_and_loses_or_doubles_nothing(
    bot: Bot,
    desk: Desk,
    staff: Seen,
    activist: Activist,
    synapse: Synapse,
    proxy: FaultyProxy,
) -> None:
    """The reply is queued the way `/reply` queues it (a staff command could not reach the
    bot while its homeserver is away); the staff room learns the outcome afterwards."""
    assert bot.app is not None
    dm, case = await reported(activist, desk)
    stored = bot_events(synapse, bot.account.user_id, dm.room_id)
    await proxy.outage()
    actor = bot.app.pseudonyms.user("matrix", desk.staff.account.user_id)
    await bot.app.casework.reply(case, actor, "CANARY-OUTAGE are you safe?", desk.ref(desk.room))
    await asyncio.sleep(60)
    assert await _queued(bot) >= 1, "still being tried"
    assert bot_events(synapse, bot.account.user_id, dm.room_id) == stored

    await proxy.restore()
    assert await dm.reply(wait=60) == team("CANARY-OUTAGE are you safe?")
    assert "queued" in await desk.room.reply(wait=60), "the room's notice waited too"
    assert await desk.room.reply(wait=60) == delivered(case)
    new = bot_events(synapse, bot.account.user_id, dm.room_id)[len(stored) :]
    assert len(new) == 1, "arrived once"
    assert "case.reply.delivered" in await history(bot, case)
    await told_once(bot, staff, desk, case, delivered(case))


async def _queued(bot: Bot) -> int:
    assert bot.app is not None
    return int(
        await bot.app.db.run(
            lambda c: c.execute("SELECT count(*) FROM outbox WHERE state = 'queued'").fetchone()[0]
        )
    )
