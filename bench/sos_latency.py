"""SOS press → staff group, against an ordinary reply, idle and under the Telegram path load.

hrd-bot runs as in production on the Bot API emulator (App, SQLCipher file, Telegram
transport, the rate limiter on at Telegram's 30 messages a second). Each sample is a
new activist who has opened the SOS screen (beforehand, idle); the clock starts when
they press "Yes, alert the team now" and stops when the staff group has the alert (a
new critical case sealed, its alert queued and sent ahead of everything else). In the
same run, the same activist's ordinary message ("/menu") is timed until its answer
arrives in their chat: the baseline. Times are taken where the emulator stores the
bot's messages (`bench.reply_latency.Stamps`).

Rounds alternate idle and loaded; under load, `bench.telegram_path`'s simulated users
keep talking to the bot (each sends its next message once answered) while the samples
are taken. All samples of a kind are pooled. Target: SOS p99 under 1 s under load.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.reply_latency import Samples as LoadSamples
from bench.reply_latency import Stamps, _enrol, _line, _loaded, _percentiles
from bench.telegram_path import _person
from bot.conversation.flood import FloodGuard
from bot.model import ChatRef
from tests.telegram_emulator import Emulator, SimUser
from tests.telegram_emulator.harness import onboard, running_bot

ROUNDS = 2
SAMPLES = 15  # SOS presses per phase and round
TARGET_MS = 1000.0
RATE = 30.0
"""The limiter's overall rate: Telegram's limit, as in production (`0` turns it off, as
`bench.telegram_path` does, leaving only the bot's own queues)."""


@dataclass
class Samples:
    sos: list[float] = field(default_factory=list)
    told: list[float] = field(default_factory=list)
    """Press → the activist's own answer ("the team has your alert now"): it waits for
    the staff group's delivery, so it is the SOS plus one message."""
    ordinary: list[float] = field(default_factory=list)


async def _ready(emu: Emulator, stamps: Stamps, count: int) -> list[SimUser]:
    """Activists on the SOS screen, one to press for each sample (made while idle)."""
    people = [emu.user(f"A{number}", "en") for number in range(count)]
    for activist in people:
        await onboard(activist)
        await activist.choose("I am in danger now")
    stamps.watched |= {activist.chat.id for activist in people}
    return people


async def _one(stamps: Stamps, room: SimUser, activist: SimUser, into: Samples) -> None:
    stamps.seen.clear()
    started = time.perf_counter()
    await activist.press("Yes, alert the team now")
    into.sos.append(await stamps.first(room.chat.id, started, "SOS · new case"))
    into.told.append(await stamps.first(activist.chat.id, started, "has your alert now"))
    await activist.answer()
    started = time.perf_counter()
    await activist.send("/menu")
    into.ordinary.append(await stamps.first(activist.chat.id, started, "How can I help?"))
    await activist.answer()


async def _series(
    stamps: Stamps, room: SimUser, activists: Sequence[SimUser], into: Samples
) -> None:
    for activist in activists:
        await _one(stamps, room, activist, into)


async def _measure(users: int, rate: float) -> dict[str, Any]:
    idle, busy, load = Samples(), Samples(), LoadSamples()
    rates: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        async with Emulator() as emu:
            stamps = Stamps()
            stamps.watch(emu)
            (staff,) = emu.group("Protection team", "Alice", supergroup=True)
            stamps.watched = {staff.chat.id}
            room = ChatRef("telegram", str(staff.chat.id), private=False)
            flood = FloodGuard(rate=1e9, burst=10**9)
            path = Path(folder) / "bench.db"
            async with running_bot(
                emu, path, flood=flood, max_rate=rate, staff_rooms=(room,)
            ) as bot:
                await _enrol(bot, [staff])
                people = [emu.user(f"P{i}", "en") for i in range(users)]
                await asyncio.gather(*(_person(emu, p, ["/start", "1"], []) for p in people))
                activists = iter(await _ready(emu, stamps, 2 * ROUNDS * SAMPLES))
                for number in range(ROUNDS):
                    await _series(stamps, staff, [next(activists) for _ in range(SAMPLES)], idle)
                    chosen = [next(activists) for _ in range(SAMPLES)]
                    timed = _series(stamps, staff, chosen, busy)
                    rates.append(await _loaded(emu, people, timed, load))
                    print(f"  round {number + 1}: done", file=sys.stderr, flush=True)
    return {"idle": idle, "busy": busy, "load": load, "rate": sum(rates) / len(rates)}


def run(users: int, rate: float = RATE) -> dict[str, Any]:
    """Measure; returns the samples (no assertion: the machine decides them)."""
    return asyncio.run(_measure(users, rate))


def main(argv: Sequence[str]) -> int:
    users = int(argv[0]) if argv else 100
    rate = float(argv[1]) if len(argv) > 1 else RATE
    result = run(users, rate)
    idle, busy = result["idle"], result["busy"]
    print(
        f"SOS latency: {len(idle.sos)} presses idle, {len(busy.sos)} under the Telegram path "
        f"load ({users} users, {result['rate']:.0f} msg/s answered), limiter at {rate:g}/s"
    )
    for what, label in (
        ("sos", "SOS press → staff group"),
        ("told", "SOS press → 'the team has your alert'"),
        ("ordinary", "ordinary message → answer"),
    ):
        print(f"  {label}:")
        print(_line("idle", _percentiles(getattr(idle, what))))
        print(_line("loaded", _percentiles(getattr(busy, what))))
    sos, ordinary = _percentiles(busy.sos), _percentiles(busy.ordinary)
    print(f"  loaded: SOS/ordinary at p50 {sos['p50'] / ordinary['p50']:.3f}×")
    verdict = "met" if sos["p99"] < TARGET_MS else "NOT met"
    print(f"  target SOS p99 under load < {TARGET_MS:.0f} ms: {verdict}")
    print("  the load's own messages meanwhile (message → answer):")
    print(_line("loaded", _percentiles(result["load"].load)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
