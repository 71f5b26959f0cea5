"""Outbox benchmark: messages to 10 rooms through `Outbox.post`, against a bare send loop.

The outbox writes a row per message in SQLCipher before `post` returns, sends it from
the room's lane, then settles the row; the bare loop is one task per room calling the
same transport's `send` from an in-memory queue, nothing written: the floor. Both get
the same messages in the same run: `fanouts` alerts, each for every room in turn, as
`Casework.submit` posts them (one producer, one `post` after another).

Two transports: `instant` completes a send after one `asyncio.sleep(0)`, so the
figures are the outbox's own cost; `telegram` is hrd-bot's Telegram transport sending
to the Bot API emulator over loopback HTTP (the emulator runs in this process, so its
cost is in both figures); its rooms are ten private chats (on-call people), as
python-telegram-bot's limiter holds a group to 20 messages a minute, as Telegram does.
Two loads: a burst (every message queued at once: messages
per second, and latency from the burst's start) and a paced load (one alert to every
room each `interval`: latency from the moment it is posted, queue to delivered).
Each is run with the database as it is opened (`synchronous=NORMAL`) and with
`synchronous=FULL` (an fsync at every commit, as the durability change may set).
Rounds alternate between the outbox and the bare loop; the best round of each counts.
No target: the ratio is printed for the issue's record.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.conversation.flood import FloodGuard
from bot.delivery import Outcome
from bot.delivery.outbox import Outbox, Outgoing
from bot.model import ChatRef, Handler, Reply, Transport
from bot.storage import Database
from handlers.staff_text import StaffText
from tests.telegram_emulator import Emulator
from tests.telegram_emulator.harness import TEST_KEY, library, running_bot

ROOMS = 10
ROUNDS = 2
MODES = ("NORMAL", "FULL")


class Instant:
    """A transport whose every send completes after one pass of the event loop."""

    name = "bench"
    idempotent = True
    connected = True

    def __init__(self) -> None:
        self.sent = 0

    async def run(self, handle: Handler) -> None:
        return None

    async def send(self, chat: ChatRef, reply: Reply, key: str = "") -> tuple[str, ...]:
        await asyncio.sleep(0)
        self.sent += 1
        return (str(self.sent),)

    async def stop(self) -> None:
        return None


@dataclass(slots=True)
class Setup:
    """One round's outbox, its transport and the rooms, on a fresh database file."""

    outbox: Outbox
    transport: Transport
    rooms: list[ChatRef]
    db: Database


Opener = Callable[[Path, str], Any]
"""Opens a round's `Setup` on a file with the given `synchronous` (an async context manager)."""


@asynccontextmanager
async def instant_setup(path: Path, synchronous: str) -> AsyncIterator[Setup]:
    db = await Database.open(path, TEST_KEY)
    try:
        await db.run(lambda conn: conn.execute(f"PRAGMA synchronous = {synchronous}"))
        transport = Instant()
        outbox = Outbox(db, {transport.name: transport}, StaffText(library, "en"))
        rooms = [ChatRef(transport.name, f"room-{i}", private=False) for i in range(ROOMS)]
        try:
            yield Setup(outbox, transport, rooms, db)
        finally:
            await outbox.close()
    finally:
        await db.close()


def telegram_setup(emu: Emulator) -> Opener:
    @asynccontextmanager
    async def opened(path: Path, synchronous: str) -> AsyncIterator[Setup]:
        flood = FloodGuard(rate=1e9, burst=10**9)
        async with running_bot(emu, path, flood=flood, max_rate=0) as running:
            await running.db.run(lambda conn: conn.execute(f"PRAGMA synchronous = {synchronous}"))
            people = [emu.user(f"Staff {i}") for i in range(ROOMS)]
            rooms = [ChatRef("telegram", str(p.chat.id)) for p in people]
            yield Setup(running.app.outbox, running.transport, rooms, running.db)

    return opened


class Clock:
    """When each message was handed over and when it was delivered."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.latencies: list[float] = []
        self.last = self.started

    def on_delivery(self, issued: float) -> Callable[[asyncio.Future[Outcome]], None]:
        return lambda _: self.delivered(issued)

    def delivered(self, issued: float) -> None:
        self.last = time.perf_counter()
        self.latencies.append(self.last - issued)


async def _until(moment: float) -> None:
    wait = moment - time.perf_counter()
    if wait > 0:
        await asyncio.sleep(wait)


async def run_outbox(setup: Setup, fanouts: int, interval: float) -> Clock:
    """One producer posts each alert to every room in turn, as `Casework.submit` does."""
    clock = Clock()
    outcomes: list[asyncio.Future[Outcome]] = []
    for number in range(fanouts):
        issued = clock.started + number * interval
        await _until(issued)
        if interval == 0:
            issued = clock.started
        reply = Reply(f"New case HRD-{number:04d} · urgency high · CO")
        for room in setup.rooms:
            done = await setup.outbox.post(room, reply, kind="alert")
            done.add_done_callback(clock.on_delivery(issued))
            outcomes.append(done)
    results = await asyncio.gather(*outcomes)
    assert all(result.delivered for result in results)
    return clock


async def run_outbox_many(setup: Setup, fanouts: int, interval: float) -> Clock:
    """The same alerts, each queued for every room in one `post_many` (one commit)."""
    clock = Clock()
    outcomes: list[asyncio.Future[Outcome]] = []
    for number in range(fanouts):
        issued = clock.started + number * interval
        await _until(issued)
        if interval == 0:
            issued = clock.started
        reply = Reply(f"New case HRD-{number:04d} · urgency high · CO")
        batch = [Outgoing(room, reply, "alert") for room in setup.rooms]
        for done in await setup.outbox.post_many(batch):
            done.add_done_callback(clock.on_delivery(issued))
            outcomes.append(done)
    results = await asyncio.gather(*outcomes)
    assert all(result.delivered for result in results)
    return clock


async def run_bare(setup: Setup, fanouts: int, interval: float) -> Clock:
    """The floor: a task per room sends what its in-memory queue holds, in order."""
    clock = Clock()
    queues: list[asyncio.Queue[tuple[Reply, float] | None]] = [asyncio.Queue() for _ in setup.rooms]

    async def lane(room: ChatRef, queue: asyncio.Queue[tuple[Reply, float] | None]) -> None:
        while (item := await queue.get()) is not None:
            await setup.transport.send(room, item[0], "")
            clock.delivered(item[1])

    lanes = [asyncio.create_task(lane(r, q)) for r, q in zip(setup.rooms, queues, strict=True)]
    for number in range(fanouts):
        issued = clock.started + number * interval
        await _until(issued)
        if interval == 0:
            issued = clock.started
        reply = Reply(f"New case HRD-{number:04d} · urgency high · CO")
        for queue in queues:
            queue.put_nowait((reply, issued))
    for queue in queues:
        queue.put_nowait(None)
    await asyncio.gather(*lanes)
    return clock


def _figures(clock: Clock) -> dict[str, float]:
    ordered = sorted(clock.latencies)
    return {
        "msgs_per_s": len(ordered) / (clock.last - clock.started),
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    }


Runner = Callable[[Setup, int, float], Awaitable[Clock]]


async def _best(
    opener: Opener,
    synchronous: str,
    fanouts: int,
    interval: float,
    folder: Path,
) -> dict[str, dict[str, float]]:
    """Alternate rounds, each on a fresh file; the round with most messages per second
    (a burst) or the lowest p50 (a paced load) counts."""
    runners: dict[str, Runner] = {"bare": run_bare, "outbox": run_outbox}
    if hasattr(Outbox, "post_many"):
        runners["post_many"] = run_outbox_many
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in runners}
    for number in range(ROUNDS):
        order = list(runners) if number % 2 == 0 else list(reversed(runners))
        for name in order:
            path = folder / f"{name}-{synchronous}-{interval}-{number}.db"
            async with opener(path, synchronous) as setup:
                clock = await runners[name](setup, fanouts, interval)
                await setup.outbox.drain()
            rounds[name].append(_figures(clock))
    if interval == 0:
        return {k: max(v, key=lambda r: r["msgs_per_s"]) for k, v in rounds.items()}
    return {k: min(v, key=lambda r: r["p50_ms"]) for k, v in rounds.items()}


async def _measure(
    fanouts: int, interval: float, only: str | None
) -> list[tuple[str, str, str, Any]]:
    results: list[tuple[str, str, str, Any]] = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        async with Emulator() as emu:
            openers: dict[str, Opener] = {"instant": instant_setup, "telegram": telegram_setup(emu)}
            for transport, opener in openers.items():
                if only is not None and transport != only:
                    continue
                for synchronous in MODES:
                    for load, pace in (("burst", 0.0), ("paced", interval)):
                        best = await _best(opener, synchronous, fanouts, pace, folder)
                        results.append((transport, synchronous, load, best))
                        print(f"  {transport} {synchronous} {load}: done", file=sys.stderr)
    return results


def run(fanouts: int, interval: float, only: str | None = None) -> list[tuple[str, str, str, Any]]:
    """Measure every combination (or those of one transport); returns the figures."""
    return asyncio.run(_measure(fanouts, interval, only))


def _line(name: str, figures: dict[str, float]) -> str:
    return (
        f"    {name:<10} {figures['msgs_per_s']:8.0f} msg/s   "
        f"p50 {figures['p50_ms']:7.1f} ms   p99 {figures['p99_ms']:7.1f} ms"
    )


def _report(load: str, best: dict[str, dict[str, float]]) -> None:
    floor = best["bare"]
    print(_line("bare loop", floor))
    for name in (n for n in best if n != "bare"):
        print(_line(name, best[name]))
        if load == "burst":
            ratio = best[name]["msgs_per_s"] / floor["msgs_per_s"]
            cost = 1e6 / best[name]["msgs_per_s"] - 1e6 / floor["msgs_per_s"]
            print(f"      {ratio:.2f}× the bare loop's messages/s, {cost:+.0f} µs a message")
        else:
            extra = best[name]["p50_ms"] - floor["p50_ms"]
            print(f"      {extra:+.1f} ms at p50 over the bare loop")


def main(argv: Sequence[str]) -> int:
    fanouts = int(argv[0]) if argv else 100
    interval = float(argv[1]) if len(argv) > 1 else 0.05
    results = run(fanouts, interval, argv[2] if len(argv) > 2 else None)
    print(
        f"outbox: {fanouts} alerts × {ROOMS} rooms; paced: one alert to every room "
        f"each {interval * 1000:.0f} ms; latency is queue → delivered"
    )
    for transport, synchronous, load, best in results:
        print(f"  {transport} transport, synchronous={synchronous}, {load}:")
        _report(load, best)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
