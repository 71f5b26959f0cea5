"""Staff `/reply` → delivered, with the bot idle and under the Telegram path bench's load.

hrd-bot runs as in production on the Bot API emulator (App, SQLCipher file, Telegram
transport). A reporter has submitted a case; a staff member types `/reply HRD-… text`
in a staff group. Two latencies per reply, from the moment the command is posted to
the emulator (the bot's long poll takes it at once): until the team's words arrive in
the reporter's chat, and until the staff group gets "Reply to the reporter of …:
delivered." (the outbox has settled the row and the case history records it). Times
are taken where the emulator stores the bot's messages.

Each reply is measured alone (the next is typed once both have arrived), first with
nothing else going on, then while `bench.telegram_path`'s simulated users (each
sending the next message of its script as soon as the answer comes) keep the bot
busy. Telegram holds a group to 20 messages a minute (python-telegram-bot's limiter
does too), so replies are spread over several staff groups, each within that budget:
the figures are the bot's, not the limiter's. Rounds alternate idle and loaded; all
samples of a kind are pooled. No target: the ratio is printed for the issue's record.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.telegram_path import SCRIPT, _person
from bot.conversation.flood import FloodGuard
from bot.crypto.keys import PrivateKey
from bot.model import ChatRef
from tests.telegram_emulator import Emulator, SimUser
from tests.telegram_emulator.harness import RunningBot, running_bot
from tests.telegram_emulator.methods import METHODS
from tests.telegram_emulator.world import Message
from tests.test_telegram_reports import finish_report, start_report

ROUNDS = 2
GROUPS = 3  # staff groups per phase and round
REPLIES = 8  # per group: the alert and 8 × (queued, delivered) stay within 20 a minute
WARM_UP = 1.0  # seconds of load before the first reply is timed


@dataclass
class Stamps:
    """When each of the bot's messages to the `watched` chats reached the emulator."""

    watched: set[int] = field(default_factory=set)
    seen: list[tuple[float, int, str]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def watch(self, emu: Emulator) -> None:
        world = emu.world
        post = world.post

        def stamped(chat: Any, sender: Any, text: str | None, **fields: Any) -> Message:
            message = post(chat, sender, text, **fields)
            if sender is world.bot and chat.id in self.watched:
                self.seen.append((time.perf_counter(), chat.id, text or ""))
                self.changed.set()
            return message

        world.post = stamped  # type: ignore[method-assign]
        edit = METHODS["editmessagetext"]

        async def stamped_edit(world: Any, params: Any) -> Any:
            """The room's "queued" notice becomes "delivered" by an edit."""
            result = await edit(world, params)
            if int(params["chat_id"]) in self.watched:
                self.seen.append((time.perf_counter(), int(params["chat_id"]), params["text"]))
                self.changed.set()
            return result

        METHODS["editmessagetext"] = stamped_edit

    async def first(self, chat: int, after: float, containing: str) -> float:
        """When the first bot message to `chat` holding `containing` arrived after `after`."""
        async with asyncio.timeout(60):
            while True:
                self.changed.clear()
                for at, to, text in self.seen:
                    if at >= after and to == chat and containing in text:
                        return at - after
                await self.changed.wait()


@dataclass
class Samples:
    reporter: list[float] = field(default_factory=list)
    delivered: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)
    """The load's own messages, answered while replies were timed."""


def _staff_groups(emu: Emulator, count: int) -> list[SimUser]:
    return [emu.group(f"Team {n}", f"Staff {n}", supergroup=True)[0] for n in range(count)]


async def _enrol(running: RunningBot, staff: Sequence[SimUser]) -> None:
    store = running.app.casework.store
    for member in staff:
        identity = running.app.pseudonyms.user("telegram", str(member.person.id)).key
        await store.add_staff(member.person.first_name, [identity], PrivateKey.generate().public)
    await store.set_recovery(PrivateKey.generate().public)


async def _replies(
    stamps: Stamps, staff: SimUser, reporter: SimUser, case: str, into: Samples
) -> None:
    for number in range(REPLIES):
        stamps.seen.clear()
        started = time.perf_counter()
        await staff.send(f"/reply {case} Are you safe tonight? ({number})")
        into.reporter.append(await stamps.first(reporter.chat.id, started, "Protection team"))
        into.delivered.append(await stamps.first(staff.chat.id, started, ": delivered."))


async def _talk(emu: Emulator, person: SimUser, stop: asyncio.Event, answered: list[float]) -> None:
    """The Telegram path bench's user: the next message of its script once answered."""
    number = 0
    while not stop.is_set():
        await _person(emu, person, [SCRIPT[number % len(SCRIPT)]], answered)
        number += 1


async def _loaded(
    emu: Emulator, people: Sequence[SimUser], work: Coroutine[Any, Any, None], into: Samples
) -> float:
    """Run `work` while every person talks to the bot; return the load's answers a second,
    and keep its own latencies. The people stop after their current exchange (not
    cancelled: the next phase is idle)."""
    answered: list[float] = []
    stop = asyncio.Event()
    load = [asyncio.create_task(_talk(emu, p, stop, answered)) for p in people]
    await asyncio.sleep(WARM_UP)
    before, started = len(answered), time.perf_counter()
    try:
        await work
    finally:
        stop.set()
        elapsed = time.perf_counter() - started
        await asyncio.gather(*load)
    into.load += answered[before:]
    return (len(answered) - before) / elapsed


async def _measure(users: int) -> dict[str, Any]:
    idle, busy = Samples(), Samples()
    load_rates: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        async with Emulator() as emu:
            stamps = Stamps()
            stamps.watch(emu)
            staff = _staff_groups(emu, 2 * ROUNDS * GROUPS)
            rooms = tuple(ChatRef("telegram", str(s.chat.id), private=False) for s in staff)
            flood = FloodGuard(rate=1e9, burst=10**9)
            path = Path(folder) / "bench.db"
            async with running_bot(
                emu, path, flood=flood, max_rate=0, staff_rooms=rooms, staff_without_device="all"
            ) as bot:
                await _enrol(bot, staff)
                reporter = emu.user("Ana")
                stamps.watched = {reporter.chat.id, *(member.chat.id for member in staff)}
                await start_report(reporter)
                case = await finish_report(reporter)
                await bot.app.outbox.drain()
                people = [emu.user(f"P{i}", "en") for i in range(users)]
                await asyncio.gather(*(_person(emu, p, ["/start", "1"], []) for p in people))
                groups = iter(staff)
                for number in range(ROUNDS):
                    for _ in range(GROUPS):
                        await _replies(stamps, next(groups), reporter, case, idle)
                    chosen = [next(groups) for _ in range(GROUPS)]
                    timed = _in_turn(stamps, chosen, reporter, case, busy)
                    load_rates.append(await _loaded(emu, people, timed, busy))
                    print(f"  round {number + 1}: done", file=sys.stderr, flush=True)
    return {"idle": idle, "busy": busy, "load_msgs_per_s": statistics.mean(load_rates)}


async def _in_turn(
    stamps: Stamps, staff: Sequence[SimUser], reporter: SimUser, case: str, into: Samples
) -> None:
    for member in staff:
        await _replies(stamps, member, reporter, case, into)


def run(users: int) -> dict[str, Any]:
    """Measure both; returns the samples (no assertion: the machine decides them)."""
    return asyncio.run(_measure(users))


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(len(ordered) * share))] * 1000

    return {"p50": statistics.median(ordered) * 1000, "p95": at(0.95), "p99": at(0.99)}


def _line(name: str, figures: dict[str, float]) -> str:
    return (
        f"    {name:<10} p50 {figures['p50']:7.1f} ms   p95 {figures['p95']:7.1f} ms   "
        f"p99 {figures['p99']:7.1f} ms"
    )


def main(argv: Sequence[str]) -> int:
    users = int(argv[0]) if argv else 100
    result = run(users)
    idle, busy = result["idle"], result["busy"]
    print(
        f"staff /reply latency: {len(idle.reporter)} replies idle, {len(busy.reporter)} under "
        f"the Telegram path load ({users} users, {result['load_msgs_per_s']:.0f} msg/s answered)"
    )
    for what, label in (("reporter", "→ reporter's chat"), ("delivered", "→ 'delivered' notice")):
        calm = _percentiles(getattr(idle, what))
        loaded = _percentiles(getattr(busy, what))
        print(f"  /reply {label}:")
        print(_line("idle", calm))
        print(_line("loaded", loaded))
        print(f"    ratio loaded/idle at p50 {loaded['p50'] / calm['p50']:.1f}×")
    print("  the load's own messages meanwhile (message → answer):")
    print(_line("loaded", _percentiles(busy.load)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
