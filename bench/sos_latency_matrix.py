"""SOS press → encrypted staff room on Synapse, against an ordinary reply, idle and under load.

hrd-bot runs as in production on a local Synapse (`bench.matrix_path`'s setup: SQLCipher
file, Matrix transport with E2E, the large sync filter), with an encrypted and a plain
staff room set up as an operator would (`tests.matrix.staff`). The people are matrix-nio
clients with E2E on (`tests.matrix.activist`), each in an encrypted DM with the bot.

Each sample is an activist on the SOS confirmation screen (reached untimed); the clock
starts when they send "1" (Yes, alert the team now) and stops when the staff member's
client has decrypted the alert in the encrypted staff room. The first press of each
activist opens a critical case, later ones make that open case critical again: both
are one transaction and an alert ahead of everything else. In the same run, the same
activist's ordinary message ("/menu") is timed until its answer arrives: the baseline.

Rounds alternate idle and loaded; under load, other activists keep talking to the bot
(each sends "/help" once answered) while the samples are taken. All samples of a kind
are pooled. The target (SOS p99 under 1 s) is set for the Telegram emulator
(`bench.sos_latency`); here the figures are reported as measured.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.matrix_path import ROOMY, ROOT
from bench.reply_latency import _line, _percentiles
from bot.content.loader import load_library
from bot.conversation.flood import FloodGuard
from bot.transports.matrix import Tuning
from bot.transports.matrix.rooms import Limits
from tests.matrix.activist import Activist, Chat
from tests.matrix.fixtures import Bot
from tests.matrix.homeserver import Synapse
from tests.matrix.staff import Desk, open_desk

ROUNDS = 2
SAMPLES = 25  # SOS presses per phase and round
PRESSERS = 4  # activists who take turns pressing
WARM_UP = 1.0
ALERT = "🆘 SOS"
ALERTS = ("· new case", "on case")
TUNING = Tuning(
    limits=Limits(joins=ROOMY, joins_per_inviter=ROOMY, offers=ROOMY, offers_per_user=ROOMY)
)


@dataclass
class Samples:
    sos: list[float] = field(default_factory=list)
    told: list[float] = field(default_factory=list)
    """Press → the activist's own answer ("the team has your alert now"): it waits for a
    staff room's delivery, so it is the SOS plus one message."""
    ordinary: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)


def _empty(chat: Chat) -> None:
    while not chat.log.messages.empty():
        chat.log.messages.get_nowait()


async def _alert(room: Chat) -> None:
    while True:
        text = await room.reply(wait=60)
        if text.startswith(ALERT) and any(kind in text for kind in ALERTS):
            return


async def _one(desk: Desk, chat: Chat, into: Samples) -> None:
    await chat.say("/sos")
    _empty(desk.room)
    started = time.perf_counter()
    told = asyncio.create_task(chat.say(chat.number_of("Yes, alert the team now")))
    await _alert(desk.room)
    into.sos.append(time.perf_counter() - started)
    assert "has your alert now" in await told, chat.last
    into.told.append(time.perf_counter() - started)
    started = time.perf_counter()
    assert "How can I help?" in await chat.say("/menu"), chat.last
    into.ordinary.append(time.perf_counter() - started)


async def _series(desk: Desk, chats: Sequence[Chat], into: Samples) -> None:
    for number in range(SAMPLES):
        await _one(desk, chats[number % len(chats)], into)


async def _talk(chat: Chat, stop: asyncio.Event, answered: list[float]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        await chat.say("/help")
        answered.append(time.perf_counter() - started)


async def _loaded(chats: Sequence[Chat], work: Coroutine[Any, Any, None], into: Samples) -> float:
    """Run `work` while the load talks; return the load's answers a second."""
    answered: list[float] = []
    stop = asyncio.Event()
    load = [asyncio.create_task(_talk(chat, stop, answered)) for chat in chats]
    await asyncio.sleep(WARM_UP)
    before, started = len(answered), time.perf_counter()
    try:
        await work
    finally:
        stop.set()
        rate = (len(answered) - before) / (time.perf_counter() - started)
        await asyncio.gather(*load)
    into.load += answered
    return rate


async def _chat(synapse: Synapse, bot: Bot, root: Path, name: str) -> tuple[Activist, Chat]:
    person = Activist(synapse.url, synapse.register(name), root / name, bot.account.user_id)
    await person.start()
    chat = await person.open_dm()
    await chat.pick("English")
    return person, chat


async def _measure_on(synapse: Synapse, root: Path, users: int) -> dict[str, Any]:
    library, problems = load_library(ROOT / "content")
    if library is None:
        raise SystemExit("\n".join(map(str, problems)))
    bot = Bot(synapse, synapse.register("hrdbot"), root / "bot", library, tuning=TUNING)
    await bot.start()
    people: list[Activist] = []
    desk: Desk | None = None
    try:
        desk = await open_desk(synapse, bot, root)
        assert bot.app is not None
        bot.app.flood = FloodGuard(rate=1e9, burst=10**9)
        pressers: list[Chat] = []
        load: list[Chat] = []
        for number in range(PRESSERS + users):
            person, chat = await _chat(synapse, bot, root, f"person{number}")
            people.append(person)
            (pressers if number < PRESSERS else load).append(chat)
        idle, busy, rates = Samples(), Samples(), []
        for number in range(ROUNDS):
            await _series(desk, pressers, idle)
            rates.append(await _loaded(load, _series(desk, pressers, busy), busy))
            print(f"  round {number + 1}: done", file=sys.stderr, flush=True)
        return {"idle": idle, "busy": busy, "rate": sum(rates) / len(rates)}
    finally:
        for person in people:
            await person.stop()
        if desk is not None:
            await desk.staff.stop()
        await bot.stop()


async def _measure(users: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hrd-bench-sos-matrix-") as tmp:
        root = Path(tmp)
        synapse = Synapse(root / "synapse").start()
        try:
            return await _measure_on(synapse, root, users)
        finally:
            synapse.stop()


def run(users: int) -> dict[str, Any]:
    """Measure; returns the samples (no assertion: the machine decides them)."""
    return asyncio.run(_measure(users))


def main(argv: Sequence[str]) -> int:
    logging.getLogger("nio").setLevel(logging.ERROR)  # "missing session" notes, expected here
    users = int(argv[0]) if argv else 8
    result = run(users)
    idle, busy = result["idle"], result["busy"]
    print(
        f"SOS latency on Synapse (E2E): {len(idle.sos)} presses idle, {len(busy.sos)} under "
        f"load ({users} activists talking, {result['rate']:.1f} msg/s answered)"
    )
    for what, label in (
        ("sos", "SOS press → encrypted staff room"),
        ("told", "SOS press → 'the team has your alert'"),
        ("ordinary", "ordinary message → answer"),
    ):
        print(f"  {label}:")
        print(_line("idle", _percentiles(getattr(idle, what))))
        print(_line("loaded", _percentiles(getattr(busy, what))))
    for name, samples in (("idle", idle), ("loaded", busy)):
        sos, ordinary = _percentiles(samples.sos), _percentiles(samples.ordinary)
        print(
            f"  {name}: SOS/ordinary at p50 {sos['p50'] / ordinary['p50']:.3f}×, "
            f"at p99 {sos['p99'] / ordinary['p99']:.3f}×"
        )
    print("  the load's own messages meanwhile (message → answer):")
    print(_line("loaded", _percentiles(busy.load)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
