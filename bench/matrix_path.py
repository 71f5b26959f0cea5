"""Matrix path benchmark: an activist's nio client → Synapse → hrd-bot and back, all E2E.

hrd-bot's full path (sync with the large timeline filter → Megolm decrypt → event id
recorded in the SQLCipher key store → pseudonym → stored language → App: per-user
lock, session load and save in SQLCipher → numbered choices → trust policy → Megolm
encrypt → room_send → chat trail) is measured against a bare matrix-nio echo bot with
encryption on and the same filter, through the same local Synapse (SQLite), in the
same run: the floor any nio bot pays. Two measures per bot:

- round trip: one message at a time, the next only after the answer (p50, p99);
- burst: `messages` sent back to back, timed until the last answer (messages/s).

Rounds alternate between the two bots so both see the same machine; the best burst
of each counts, round trips are pooled. hrd-bot's flood limit is lifted (one person
sends the whole burst). The activists, both bots and the bench share one process;
Synapse runs in its own. Figures only, no assertion: the machine decides them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nio import AsyncClient, AsyncClientConfig, InviteMemberEvent, MatrixRoom, RoomMessageText

from bot.app import App
from bot.content.loader import load_library
from bot.conversation.flood import FloodGuard
from bot.storage import Database, DbKey
from bot.transports.matrix import MatrixConfig, MatrixTransport, Tuning
from bot.transports.matrix.rooms import Limits
from tests.matrix.activist import FILTER, Activist, Chat
from tests.matrix.homeserver import Account, Synapse

ROOT = Path(__file__).resolve().parents[1]
ROOMY = (1000.0, 1000)
TUNING = Tuning(limits=Limits(joins=ROOMY, joins_per_inviter=ROOMY))
HRD_TEXT = "/help"


class EchoBot:
    """The floor: answers every text with the same text, nothing else."""

    def __init__(self, synapse: Synapse, account: Account, store: Path) -> None:
        store.mkdir(parents=True, exist_ok=True)
        self.client = AsyncClient(
            synapse.url,
            account.user_id,
            device_id=account.device_id,
            store_path=str(store),
            config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True),
        )
        self.client.restore_login(account.user_id, account.device_id, account.access_token)
        self.client.add_event_callback(self._on_invite, InviteMemberEvent)
        self.client.add_event_callback(self._on_text, RoomMessageText)
        self._task: asyncio.Task[Any] | None = None

    async def _on_invite(self, room: MatrixRoom, event: InviteMemberEvent) -> None:
        if event.state_key == self.client.user_id and event.membership == "invite":
            await self.client.join(room.room_id)

    async def _on_text(self, room: MatrixRoom, event: RoomMessageText) -> None:
        if event.sender != self.client.user_id:
            content = {"msgtype": "m.notice", "body": event.body}
            await self.client.room_send(
                room.room_id, "m.room.message", content, ignore_unverified_devices=True
            )

    async def start(self) -> None:
        await self.client.sync(timeout=0, sync_filter=FILTER, full_state=True)
        self._task = asyncio.create_task(
            self.client.sync_forever(timeout=30_000, sync_filter=FILTER)
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.client.close()


async def _echo_chat(activist: Activist) -> Chat:
    """A DM with the echo bot, usable once the bot has joined (it says nothing first)."""
    chat = Chat(activist, await activist.create_room())
    async with asyncio.timeout(60):
        while True:
            room = activist.client.rooms.get(chat.room_id)
            member = room.users.get(activist.bot_id) if room else None
            if member is not None and not member.invited:
                return chat
            await asyncio.sleep(0.05)


async def _hrd_chat(activist: Activist) -> Chat:
    chat = await activist.open_dm()
    await chat.pick("English")
    return chat


async def _round(chat: Chat, text: str, messages: int) -> tuple[list[float], float]:
    """`messages` round trips, then a burst of `messages`: (round trips in s, burst msgs/s)."""
    trips: list[float] = []
    for _ in range(messages):
        began = time.perf_counter()
        await chat.say(text)
        trips.append(time.perf_counter() - began)
    began = time.perf_counter()
    sender = asyncio.create_task(_send_all(chat, text, messages))
    for _ in range(messages):
        await chat.reply(wait=120)
    elapsed = time.perf_counter() - began
    await sender
    return trips, messages / elapsed


async def _send_all(chat: Chat, text: str, messages: int) -> None:
    for _ in range(messages):
        await chat.activist.send(chat.room_id, text)


def _figures(trips: list[float], bursts: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(trips, n=100, method="inclusive")
    return {
        "msgs_per_s": max(bursts),
        "rtt_p50_ms": statistics.median(trips) * 1000,
        "rtt_p99_ms": cuts[98] * 1000,
    }


async def _hrd_bot(
    synapse: Synapse, account: Account, root: Path
) -> tuple[MatrixTransport, Database, asyncio.Task[None]]:
    library, problems = load_library(ROOT / "content")
    if library is None:
        raise SystemExit("\n".join(map(str, problems)))
    db = await Database.open(root / "hrd.db", DbKey("aa" * 32))
    app = await App.open(db, library)
    app.flood = FloodGuard(rate=1e9, burst=10**9)
    config = MatrixConfig(
        homeserver=synapse.url,
        user_id=account.user_id,
        store_dir=root / "matrix",
        store_passphrase="bench only",
        password=account.password,
    )
    transport = MatrixTransport(config, app, tuning=TUNING)
    task = asyncio.create_task(transport.run(app.handle))
    await asyncio.wait_for(transport.ready.wait(), 60)
    return transport, db, task


async def _measure(messages: int, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hrd-bench-matrix-") as tmp:
        root = Path(tmp)
        synapse = Synapse(root / "synapse").start()
        try:
            return await _measure_on(synapse, root, messages, rounds)
        finally:
            synapse.stop()


async def _measure_on(synapse: Synapse, root: Path, messages: int, rounds: int) -> dict[str, Any]:
    echo_account = synapse.register("echobot")
    echo = EchoBot(synapse, echo_account, root / "echo")
    await echo.start()
    hrd_account = synapse.register("hrdbot")
    transport, db, task = await _hrd_bot(synapse, hrd_account, root / "hrd")
    one = Activist(synapse.url, synapse.register("alice"), root / "alice", echo_account.user_id)
    two = Activist(synapse.url, synapse.register("bob"), root / "bob", hrd_account.user_id)
    people = [await one.start(), await two.start()]
    try:
        chats = {"echo": await _echo_chat(one), "hrd_bot": await _hrd_chat(two)}
        texts = {"echo": "ping", "hrd_bot": HRD_TEXT}
        trips: dict[str, list[float]] = {"echo": [], "hrd_bot": []}
        bursts: dict[str, list[float]] = {"echo": [], "hrd_bot": []}
        for number in range(rounds):
            for name, chat in chats.items():
                round_trips, rate = await _round(chat, texts[name], messages)
                trips[name] += round_trips
                bursts[name].append(rate)
            print(f"  round {number + 1}: done", file=sys.stderr, flush=True)
        stats = transport.stats()
    finally:
        for person in people:
            await person.stop()
        await transport.stop()
        await task
        await db.close()
        await echo.stop()
    echo_fig = _figures(trips["echo"], bursts["echo"])
    hrd_fig = _figures(trips["hrd_bot"], bursts["hrd_bot"])
    return {
        "messages": messages,
        "rounds": rounds,
        "echo": echo_fig,
        "hrd_bot": hrd_fig,
        "ratio": hrd_fig["msgs_per_s"] / echo_fig["msgs_per_s"],
        "p99_ratio": hrd_fig["rtt_p99_ms"] / echo_fig["rtt_p99_ms"],
        "hrd_bot_undecryptable": stats["undecryptable"],
    }


def run(messages: int, rounds: int = 2) -> dict[str, Any]:
    """Measure both bots; returns the figures (no assertion: the machine decides them)."""
    return asyncio.run(_measure(messages, rounds))


def _line(name: str, figures: dict[str, float]) -> str:
    return (
        f"  {name:<22} {figures['msgs_per_s']:6.1f} msg/s burst   "
        f"round trip p50 {figures['rtt_p50_ms']:6.1f} ms   p99 {figures['rtt_p99_ms']:6.1f} ms"
    )


def main(argv: Sequence[str]) -> int:
    logging.getLogger("nio").setLevel(logging.ERROR)  # "missing session" notes, expected here
    messages = int(argv[0]) if argv else 100
    result = run(messages)
    print(f"matrix path: {messages} messages per measure, E2E (Megolm) through local Synapse")
    print(_line("echo bot (nio floor)", result["echo"]))
    print(_line("hrd-bot full path", result["hrd_bot"]))
    print(f"  ratio {result['ratio']:.2f}× messages/s, {result['p99_ratio']:.2f}× p99 round trip")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
