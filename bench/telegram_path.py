"""Telegram path benchmark: simulated users → Bot API emulator → python-telegram-bot → hrd-bot.

hrd-bot's full path (update → pseudonym → App: per-user lock, session load and save in
SQLCipher → reply with an HMAC-tagged keyboard → sendMessage → the user's message and
the reply noted in the chat trail, written in SQLCipher by group commit) is measured
against a bare python-telegram-bot echo bot on the same emulator, in the same run: the
framework's floor. Every user sends a message and waits for the answer before
the next one. Both bots use the same PTB settings (256 concurrent updates, the
AIORateLimiter with its overall limit off, as the emulator has no flood limits), and
the emulator runs in the same process, so its own cost is in both figures. Rounds
alternate between the two so both see the same machine; the best round of each counts.
Target: hrd-bot at 0.7× the echo bot's messages per second or better.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from telegram import Update
from telegram.ext import AIORateLimiter, ApplicationBuilder, ContextTypes, MessageHandler, filters

from bot.flood import FloodGuard
from tests.telegram_emulator import Emulator, SimUser
from tests.telegram_emulator.harness import running_bot

SCRIPT = (
    "I have a digital security problem",
    "1",
    "1",
    "1",
    "◂ Back",
    "/menu",
    "Legal information",
    "colombia",
    "1",
    "/menu",
    "People who can help",
    "/help",
)
TARGET = 0.7
ROUNDS = 2


async def _echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if update.message is not None and update.message.text is not None:
        await update.message.reply_text(update.message.text)


@asynccontextmanager
async def echo_bot(emu: Emulator) -> AsyncIterator[None]:
    """The floor: PTB receiving and answering, nothing else."""
    application = (
        ApplicationBuilder()
        .token(emu.token)
        .base_url(emu.api_base_url)
        .rate_limiter(AIORateLimiter(overall_max_rate=0, max_retries=3))
        .concurrent_updates(256)
        .job_queue(None)
        .build()
    )
    application.add_handler(MessageHandler(filters.TEXT, _echo))
    async with application:
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(timeout=10)
        try:
            yield
        finally:
            await application.updater.stop()
            await application.stop()


async def _person(
    emu: Emulator, user: SimUser, texts: Sequence[str], latencies: list[float]
) -> None:
    for text in texts:
        answer = emu.world.next_from_bot(user.chat)
        started = time.perf_counter()
        await user.send(text)
        await asyncio.wait_for(answer, 60)
        latencies.append(time.perf_counter() - started)


async def _round(
    emu: Emulator, bot: AbstractAsyncContextManager[Any], users: int, messages: int
) -> dict[str, float]:
    """Every user starts (and picks English) first, outside the clock; then the timed run."""
    async with bot:
        people = [emu.user(f"P{i}", "en") for i in range(users)]
        await asyncio.gather(*(_person(emu, p, ["/start", "1"], []) for p in people))
        texts = [SCRIPT[i % len(SCRIPT)] for i in range(messages)]
        latencies: list[float] = []
        started = time.perf_counter()
        await asyncio.gather(*(_person(emu, p, texts, latencies) for p in people))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "msgs_per_s": len(latencies) / elapsed,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    }


async def _measure(users: int, messages: int) -> dict[str, Any]:
    floor: list[dict[str, float]] = []
    full: list[dict[str, float]] = []
    no_flood = FloodGuard(rate=1e9, burst=10**9)
    with tempfile.TemporaryDirectory() as folder:
        async with Emulator() as emu:
            for number in range(ROUNDS):
                floor.append(await _round(emu, echo_bot(emu), users, messages))
                path = Path(folder) / "bench.db"
                hrd = running_bot(emu, path, flood=no_flood, max_rate=0)
                full.append(await _round(emu, hrd, users, messages))
                print(f"  round {number + 1}: done", file=sys.stderr, flush=True)
    best_floor = max(floor, key=lambda r: r["msgs_per_s"])
    best_full = max(full, key=lambda r: r["msgs_per_s"])
    return {
        "users": users,
        "messages_per_user": messages,
        "echo": best_floor,
        "hrd_bot": best_full,
        "ratio": best_full["msgs_per_s"] / best_floor["msgs_per_s"],
        "target": TARGET,
    }


def run(users: int, messages: int) -> dict[str, Any]:
    """Measure both bots; returns the figures (no assertion: the machine decides them)."""
    return asyncio.run(_measure(users, messages))


def _line(name: str, figures: dict[str, float]) -> str:
    return (
        f"  {name:<24} {figures['msgs_per_s']:8.0f} msg/s   "
        f"p50 {figures['p50_ms']:6.1f} ms   p99 {figures['p99_ms']:6.1f} ms"
    )


def main(argv: Sequence[str]) -> int:
    users = int(argv[0]) if argv else 100
    messages = int(argv[1]) if len(argv) > 1 else 20
    result = run(users, messages)
    print(f"telegram path: {users} users × {messages} messages, PTB ↔ emulator over HTTP")
    print(_line("echo bot (PTB floor)", result["echo"]))
    print(_line("hrd-bot full path", result["hrd_bot"]))
    print(f"  ratio {result['ratio']:.2f}× (target ≥ {TARGET}×)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
