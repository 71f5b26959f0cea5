"""Escalation tiers: each tier is reached once at its deadline until someone acknowledges,
across restarts and crashes, and the staff room hears truthfully who was reached."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.app import App
from bot.config import ConfigError, Settings
from bot.content.library import Library
from bot.crypto.keys import PrivateKey
from bot.delivery import Reason, Undelivered
from bot.model import ChatRef
from bot.safety.escalation import Escalation
from bot.safety.jobs import SafetyJobs
from bot.safety.ladder import DEFAULTS, Ladder
from bot.storage import Database
from tests.conftest import CONTENT, TEST_KEY
from tests.conftest_storage import OpenDatabase
from tests.fakes import FakeTransport, FakeUser
from tests.reporting import ONCALL, STAFF_ROOM, room_messages, staff_key, staff_says
from tests.telegram_emulator import Emulator
from tests.telegram_emulator.harness import eventually, onboard, running_bot
from tests.test_telegram_reports import finish_report, start_report

pytestmark = pytest.mark.backends
LEADS = ChatRef("fake", "lead-private-chat", private=False)
MINUTE = 60
URGENCY_LABEL = {
    "critical": "Danger now",
    "high": "Within the next few days",
    "normal": "It can wait",
}


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    """The bot as a process: a restart makes a new one on the same database file."""

    app: App
    transport: FakeTransport
    escalation: Escalation
    db: Database
    stopped: bool = False


async def _start(
    opener: OpenDatabase,
    library: Library,
    clock: Clock,
    *,
    oncall: tuple[ChatRef, ...] = (ONCALL,),
    leads: tuple[ChatRef, ...] = (LEADS,),
) -> World:
    db = await opener("e")
    app = await App.open(db, library, staff_rooms=(STAFF_ROOM,), oncall=oncall)
    transport = FakeTransport()
    app.attach(transport)
    await app.start_delivery()
    escalation = Escalation.of(db, app.casework, leads=leads, clock=clock)
    return World(app, transport, escalation, db)


async def _stop(world: World) -> None:
    if world.stopped:
        return
    world.stopped = True
    await world.app.outbox.close()
    await world.db.close()


@pytest.fixture
async def world(
    open_database: OpenDatabase, library: Library
) -> AsyncIterator[tuple[World, Clock]]:
    clock = Clock()
    started = await _start(open_database, library, clock)
    await started.app.casework.store.add_staff(
        "Alice", [staff_key(started.app, "staff-alice")], PrivateKey.generate().public
    )
    try:
        yield started, clock
    finally:
        await _stop(started)


async def _submit(world: World, who: str, urgency: str = "critical") -> str:
    person = FakeUser(world.app, world.transport, who)
    await person.say("/start")
    await person.press("English")
    await person.press("Report a risk")
    await person.press("Start the report")
    for answer in ("someone follows me", "yesterday", "Colombia", "me"):
        await person.say(answer)
    await person.press(URGENCY_LABEL[urgency])
    await person.say("here")
    await person.press("Yes, if it helps")
    sent = await person.press("Send the report")
    return next(w for w in sent.text.split() if w.startswith("HRD-")).rstrip(".")


async def _tick(world: World) -> int:
    """One run of the job, then every message it queued is sent and reported."""
    taken = await world.escalation.tick()
    for _ in range(2):  # the pages, then the "who has it" notices they lead to
        await world.app.outbox.drain()
    return taken


def _texts(world: World, chat: ChatRef) -> list[str]:
    return [reply.text for reply in room_messages(world.transport, chat)]


def _pages(world: World, chat: ChatRef, case: str) -> int:
    return sum(case in text and "Please check" in text for text in _texts(world, chat))


TIMELINES = {
    "critical": [(15, 2), (30, 3), (60, 3), (90, 3)],
    "high": [(60, 2), (90, 3)],
    "normal": [(480, 2)],
}


@pytest.mark.parametrize("urgency", sorted(TIMELINES))
async def test_each_tier_is_reached_once_at_its_deadline(
    world: tuple[World, Clock], urgency: str
) -> None:
    w, clock = world
    case = await _submit(w, "r-1", urgency)
    start = int(time.time())  # the submission's own time: "for N minutes" is exact
    alert = f"New case {case} · urgency: {urgency}"
    assert any(alert in text for text in _texts(w, STAFF_ROOM)), "tier 1 at once"
    expected = {ONCALL: 0, LEADS: 0}
    for minutes, tier in TIMELINES[urgency]:
        clock.now = start + minutes * MINUTE - 61
        assert await _tick(w) == 0, f"nothing before {minutes} min"
        assert [_pages(w, c, case) for c in expected] == list(expected.values())
        clock.now = start + minutes * MINUTE + 1
        assert await _tick(w) == 1, f"a step at {minutes} min"
        assert await _tick(w) == 0, "and only one"
        expected[ONCALL if tier == 2 else LEADS] += 1
        assert [_pages(w, c, case) for c in expected] == list(expected.values())
        label = "on-call chat 1 (fake)" if tier == 2 else "lead chat 1 (fake)"
        room = _texts(w, STAFF_ROOM)
        assert room[-2].endswith(
            f"has not been acknowledged for {minutes} minutes. Escalating to tier {tier}: "
            f"{label}. This room will hear who has the message."
        )
        assert room[-1] == f"Escalation of {case}: {label} has the message."
    if urgency != "critical":
        clock.now = start + 10 * 24 * 3600
        assert await _tick(w) == 0, "no repeats after the last tier"


@pytest.mark.parametrize("action", ["/ack {case}", "/assign {case} Alice"])
async def test_acknowledging_or_claiming_stops_the_rest(
    world: tuple[World, Clock], action: str
) -> None:
    w, clock = world
    start = clock.now
    case = await _submit(w, "r-2")
    clock.now = start + 16 * MINUTE
    assert await _tick(w) == 1
    await staff_says(w.app, w.transport, "staff-alice", action.format(case=case))
    for minutes in (31, 61, 24 * 60):
        clock.now = start + minutes * MINUTE
        assert await _tick(w) == 0
    assert _pages(w, ONCALL, case) == 1
    assert _pages(w, LEADS, case) == 0


async def test_an_sos_on_an_acknowledged_case_climbs_again_from_the_sos(
    world: tuple[World, Clock],
) -> None:
    """The case needs acknowledging again, and tier 2 is paged 15 minutes after the SOS,
    not at once for the time since submission, nor never because someone had it."""
    w, clock = world
    w.app.casework.sos._clock = clock  # the SOS's time on the test's clock
    start = clock.now
    case = await _submit(w, "r-sos", "high")
    await staff_says(w.app, w.transport, "staff-alice", f"/ack {case}")
    clock.now = start + 3 * 3600
    assert await _tick(w) == 0
    person = FakeUser(w.app, w.transport, "r-sos")
    await person.say("/sos")
    raised = await person.press("Yes, alert the team now")
    assert case in raised.text
    assert (await w.app.casework.store.case(case)).state == "new"
    sos = clock.now
    clock.now = sos + 14 * MINUTE
    assert await _tick(w) == 0, "not at once: the climb starts at the SOS"
    clock.now = sos + 16 * MINUTE
    assert await _tick(w) == 1
    assert _pages(w, ONCALL, case) == 1
    await staff_says(w.app, w.transport, "staff-alice", f"/ack {case}")
    clock.now = sos + 24 * 3600
    assert await _tick(w) == 0, "acknowledging it again stops the new climb"
    assert _pages(w, LEADS, case) == 0


async def test_an_acknowledgement_before_the_first_deadline_sends_nothing(
    world: tuple[World, Clock],
) -> None:
    w, clock = world
    case = await _submit(w, "r-3")
    await staff_says(w.app, w.transport, "staff-alice", f"/ack {case}")
    clock.now += 24 * 3600
    assert await _tick(w) == 0
    assert _pages(w, ONCALL, case) == _pages(w, LEADS, case) == 0


async def test_a_restart_mid_escalation_resumes_with_no_duplicate_and_no_miss(
    world: tuple[World, Clock], open_database: OpenDatabase, library: Library
) -> None:
    w, clock = world
    start = clock.now
    case = await _submit(w, "r-4")
    clock.now = start + 16 * MINUTE
    assert await _tick(w) == 1
    await _stop(w)

    again = await _start(open_database, library, clock)
    try:
        assert await _tick(again) == 0, "tier 2 was taken before the restart"
        clock.now = start + 31 * MINUTE
        assert await _tick(again) == 1
        assert _pages(again, ONCALL, case) == 0, "not paged again after the restart"
        assert _pages(again, LEADS, case) == 1
    finally:
        await _stop(again)


class Killed(Exception):
    """Stands for the process dying at that point."""


async def test_a_crash_after_the_step_committed_sends_it_once_after_the_restart(
    world: tuple[World, Clock],
    open_database: OpenDatabase,
    library: Library,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w, clock = world
    start = clock.now
    case = await _submit(w, "r-5")
    clock.now = start + 16 * MINUTE

    def die(*_: object) -> None:
        raise Killed

    monkeypatch.setattr(w.app.outbox, "launch", die)
    with pytest.raises(Killed):
        await w.escalation.tick()
    assert _pages(w, ONCALL, case) == 0, "it died before anything was sent"
    await _stop(w)

    again = await _start(open_database, library, clock)  # the outbox resumes the step
    try:
        assert await _tick(again) == 0, "the step is not taken twice"
        await again.escalation.report()
        await again.app.outbox.drain()
        assert _pages(again, ONCALL, case) == 1
        room = _texts(again, STAFF_ROOM)
        assert sum("Escalating to tier 2" in text for text in room) == 1
        assert room[-1] == f"Escalation of {case}: on-call chat 1 (fake) has the message."
        assert await again.escalation.report() == 0, "reported once"
    finally:
        await _stop(again)


KILLED_CHILD = """
import asyncio, sys
from pathlib import Path
from bot.app import App
from bot.content.loader import load_library
from bot.safety.escalation import Escalation
from bot.model import ChatRef
from bot.storage import Database, DbKey

class Stuck:
    name, idempotent = "fake", True

    async def send(self, chat, reply, key=""):
        print("sending", chat.address, flush=True)
        await asyncio.sleep(3600)  # the parent kills the process here

async def main():
    where, key = sys.argv[1], DbKey(sys.argv[2])
    if where.startswith("postgresql:"):
        db = await Database.open_postgres(where, key)
    else:
        db = await Database.open(Path(where), key)
    library, _ = load_library(Path(sys.argv[4]))
    staff, oncall = ChatRef("fake", "staff-room", private=False), ChatRef("fake", "oncall")
    app = await App.open(db, library, staff_rooms=(staff,), oncall=(oncall,))
    app.attach(Stuck())
    escalation = Escalation.of(db, app.casework, clock=lambda: float(sys.argv[3]))
    await escalation.tick()
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_a_process_killed_while_sending_a_step_sends_it_once_after_the_restart(
    world: tuple[World, Clock],
    open_database: OpenDatabase,
    database_url: str | None,
    tmp_path: Path,
    library: Library,
) -> None:
    w, clock = world
    start = clock.now
    case = await _submit(w, "r-kill")
    await _stop(w)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        KILLED_CHILD,
        database_url or str(tmp_path / "data" / "e.db"),
        TEST_KEY.value,
        str(start + 16 * MINUTE),
        str(CONTENT),
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    line = await asyncio.wait_for(child.stdout.readline(), timeout=60)
    child.kill()
    await child.wait()
    assert line.split()[0] == b"sending", "killed while a message of the step was going out"

    clock.now = start + 16 * MINUTE
    again = await _start(open_database, library, clock)  # resumes what was queued
    try:
        await again.app.outbox.drain()
        assert await _tick(again) == 0, "the step is not taken twice"
        assert _pages(again, ONCALL, case) == 1
        room = _texts(again, STAFF_ROOM)
        assert sum("Escalating to tier 2" in text for text in room) == 1
        assert room[-1] == f"Escalation of {case}: on-call chat 1 (fake) has the message."
        clock.now = start + 31 * MINUTE
        assert await _tick(again) == 1, "and the next tier comes on time"
        assert _pages(again, LEADS, case) == 1
    finally:
        await _stop(again)


async def test_a_crash_before_the_step_committed_takes_it_at_the_next_tick(
    world: tuple[World, Clock], monkeypatch: pytest.MonkeyPatch
) -> None:
    w, clock = world
    start = clock.now
    case = await _submit(w, "r-6")
    clock.now = start + 16 * MINUTE
    real = w.app.outbox.stage

    def die(*_: object, **__: object) -> None:
        raise Killed

    monkeypatch.setattr(w.app.outbox, "stage", die)
    with pytest.raises(Killed):
        await w.escalation.tick()
    monkeypatch.setattr(w.app.outbox, "stage", real)
    assert await _tick(w) == 1, "rolled back, so not missed"
    assert _pages(w, ONCALL, case) == 1


async def test_a_long_stop_reaches_each_tier_once_not_every_missed_repeat(
    world: tuple[World, Clock],
) -> None:
    w, clock = world
    start = clock.now
    case = await _submit(w, "r-7")
    clock.now = start + 3 * 3600 + 1
    assert await _tick(w) == 2
    assert (_pages(w, ONCALL, case), _pages(w, LEADS, case)) == (1, 1)
    clock.now += 29 * MINUTE
    assert await _tick(w) == 0
    clock.now += MINUTE
    assert await _tick(w) == 1, "then every 30 minutes"
    assert _pages(w, LEADS, case) == 2


async def test_with_no_on_call_or_leads_the_staff_room_is_told_nobody_was_reached(
    open_database: OpenDatabase, library: Library
) -> None:
    clock = Clock()
    w = await _start(open_database, library, clock, oncall=(), leads=())
    try:
        await w.app.casework.store.add_staff(
            "Alice", [staff_key(w.app, "staff-alice")], PrivateKey.generate().public
        )
        case = await _submit(w, "r-8")
        start = int(time.time())  # the submission's own time: "for 16 minutes" is exact
        clock.now = start + 16 * MINUTE
        assert await _tick(w) == 1
        room = _texts(w, STAFF_ROOM)
        assert room[-1].startswith(f"Case {case} (critical) has not been acknowledged for 16")
        assert room[-1].endswith(
            "Nobody further could be reached: tier 2 has no chat configured (HRD_BOT_ONCALL). "
            "Call someone directly."
        )
        clock.now = start + 31 * MINUTE
        assert await _tick(w) == 1
        room = _texts(w, STAFF_ROOM)
        assert "tier 3 has no chat configured (HRD_BOT_LEADS)" in room[-1]
        assert not any("has the message" in text for text in room), "nobody claimed told"
        assert await w.escalation.report() == 0
    finally:
        await _stop(w)


async def test_a_chat_that_cannot_be_reached_is_reported_as_such(
    world: tuple[World, Clock],
) -> None:
    w, clock = world
    start = clock.now
    case = await _submit(w, "r-9")
    w.transport.refuse[LEADS.address] = Undelivered(Reason.BLOCKED)
    clock.now = start + 31 * MINUTE
    assert await _tick(w) == 2
    room = _texts(w, STAFF_ROOM)
    assert f"Escalation of {case}: on-call chat 1 (fake) has the message." in room
    assert room[-1] == (
        f"Escalation of {case}: lead chat 1 (fake) could not be reached "
        "(the person blocked the bot or left the chat). Call them directly."
    )
    assert not any("lead chat 1 (fake) has the message" in text for text in room)


async def test_the_safety_job_runs_the_escalation(world: tuple[World, Clock]) -> None:
    w, clock = world
    jobs = SafetyJobs(w.db, clock=clock, casework=w.app.casework, escalation=w.escalation)
    case = await _submit(w, "r-10")
    assert await jobs.escalate() == 0
    clock.now += 16 * MINUTE
    assert await jobs.escalate() == 1
    await w.app.outbox.drain()
    assert _pages(w, ONCALL, case) == 1
    assert await SafetyJobs(w.db).escalate() == 0, "without an escalation it does nothing"


@pytest.mark.parametrize(
    ("text", "ladder"),
    [
        ("15,30,every 30", Ladder((15, 30), 30)),
        (" 60 , 90 ", Ladder((60, 90))),
        ("480", Ladder((480,))),
        ("off", Ladder()),
    ],
)
def test_ladders_are_read_from_the_settings(text: str, ladder: Ladder) -> None:
    assert Ladder.parse(text) == ladder
    settings = Settings.from_env({"HRD_BOT_ESCALATION_HIGH": text})
    assert settings.ladders.high == ladder
    assert settings.ladders.critical == DEFAULTS.critical


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("30,15", "each tier must come later"),
        ("15,30,45", "at most 2 tiers"),
        ("every 30", "needs the minutes of a tier"),
        ("15,soon", "whole number of minutes"),
        ("0", "between 1 and"),
    ],
)
def test_a_bad_ladder_stops_the_bot_with_one_line(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=f"HRD_BOT_ESCALATION_CRITICAL: .*{problem}"):
        Settings.from_env({"HRD_BOT_ESCALATION_CRITICAL": text})


LADDERS = st.builds(
    lambda first, gap, every: Ladder((first, first + gap) if gap else (first,), every),
    st.integers(1, 600),
    st.integers(0, 600),
    st.integers(0, 120),
)


@given(LADDERS, st.lists(st.integers(0, 50_000 * 60), max_size=40))
def test_any_tick_times_reach_each_tier_once_never_early_and_miss_nothing(
    ladder: Ladder, ticks: list[int]
) -> None:
    taken: list[tuple[int, int]] = []  # (step, elapsed seconds when taken)
    for elapsed in sorted(ticks):
        first = taken[-1][0] + 1 if taken else 0
        due = ladder.due(first, elapsed)
        taken += [(index, elapsed) for index in due]
        repeats = [i for i in due if i >= len(ladder.minutes)]
        assert len(repeats) <= 1, "missed repeats collapse into one"
        assert not ladder.due(taken[-1][0] + 1 if taken else 0, elapsed), "nothing due is left"
    for index, elapsed in taken:
        step = ladder.step(index)
        assert step is not None and step[1] * 60 <= elapsed, "never before its time"
    tiers = [ladder.step(i)[0] for i, _ in taken]  # type: ignore[index]
    end = max(ticks, default=-1)
    for tier, minutes in enumerate(ladder.minutes, 2):
        assert tiers.count(tier) >= (1 if minutes * 60 <= end else 0)
        if tier < len(ladder.minutes) + 1 or not ladder.every:
            assert tiers.count(tier) <= 1, "a tier below the last is reached once"


def test_leads_are_a_chat_list_like_on_call() -> None:
    settings = Settings.from_env({"HRD_BOT_LEADS": "telegram:4242, matrix:@lead:example.org"})
    assert [c.platform for c in settings.chats("HRD_BOT_LEADS")] == ["telegram", "matrix"]
    with pytest.raises(ConfigError, match="HRD_BOT_LEADS: unknown platform"):
        Settings.from_env({"HRD_BOT_LEADS": "sms:+15550100"})


def _bot_texts(emu: Emulator, chat_id: int) -> list[str]:
    world = emu.world
    return [m.text or "" for m in world.messages.get(chat_id, []) if m.sender is world.bot]


async def test_on_telegram_on_call_is_reached_in_the_private_chat_of_a_person_who_started_the_bot(
    emu: Emulator, tmp_path: Path
) -> None:
    (alice,) = emu.group("Protection team", "Alice", supergroup=True)
    oscar = emu.user("Oscar")  # on call: starts the bot below, so it may write to him
    lena = emu.world.new_person("Lena", "en")  # a lead who never started the bot
    settings = Settings.from_env(
        {
            "HRD_BOT_DATA_DIR": str(tmp_path),
            "HRD_BOT_STAFF_ROOMS": f"telegram:{alice.chat.id}",
            "HRD_BOT_ONCALL": f"telegram:{oscar.person.id}",
            "HRD_BOT_LEADS": f"telegram:{lena.id}",
        }
    )
    async with running_bot(
        emu,
        tmp_path / "t.db",
        staff_rooms=settings.chats("HRD_BOT_STAFF_ROOMS"),
        oncall=settings.chats("HRD_BOT_ONCALL"),
    ) as running:
        app = running.app
        await onboard(oscar)
        identity = app.pseudonyms.user("telegram", str(alice.person.id)).key
        await app.casework.store.add_staff("Alice", [identity], PrivateKey.generate().public)
        activist = emu.user("Ana")
        await start_report(activist)
        case = await finish_report(activist)
        clock = Clock()
        leads = settings.chats("HRD_BOT_LEADS")
        escalation = Escalation.of(app.db, app.casework, leads=leads, clock=clock)
        clock.now += 31 * MINUTE
        assert await escalation.tick() == 2
        reached = f"Escalation of {case}: on-call chat 1 (telegram) has the message."
        missed = (
            f"Escalation of {case}: lead chat 1 (telegram) could not be reached "
            "(the chat no longer exists). Call them directly."
        )

        async def told() -> bool:
            room = " ".join(_bot_texts(emu, alice.chat.id))
            return reached in room and missed in room

        await eventually(told)
        pages = [t for t in _bot_texts(emu, oscar.chat.id) if case in t]
        assert len(pages) == 1 and "Please check the staff room" in pages[0]
        assert lena.id not in emu.world.messages, "nothing claims the lead was told"
