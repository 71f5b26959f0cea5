"""Telegram path benchmark: simulated users → Bot API emulator → python-telegram-bot → hrd-bot.

hrd-bot's full path (update → pseudonym → App: per-user lock, session load and save in
SQLCipher → reply with an HMAC-tagged keyboard → sendMessage over `AiohttpRequest` → the
user's message and the reply noted in the chat trail, written by group commit) is
measured against a bare python-telegram-bot echo bot (PTB's defaults, httpx) on the same
emulator, in the same run: the framework's floor. Every user sends a message and waits
for the answer before the next one. Both bots take 256 updates at once; the emulator
runs in the same process, so its own cost is in both figures. Runs alternate between the
two, three of each, reported as min/median/max; the ratio is of the medians. With the
AIORateLimiter's overall limit off (the emulator has no flood limits) and on (30/s, as
Telegram allows), where both bots are held to the limit.
Target (issue 16): hrd-bot at 1.5× the echo bot's messages per second or better, and
its p99 under 1 s, with the limiter off.
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

from bot.conversation.flood import FloodGuard
from tests.telegram_emulator import Emulator, SimUser
from tests.telegram_emulator.harness import running_bot

SCRIPT = (
    "I have a digital security problem",
    "2",
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
TARGET = 1.5
TARGET_P99_MS = 1000
ROUNDS = 3
LIMITED = (30.0, 40, 5)  # overall rate, users, messages each: the limiter on


async def _echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if update.message is not None and update.message.text is not None:
        await update.message.reply_text(update.message.text)


@asynccontextmanager
async def echo_bot(emu: Emulator, rate: float) -> AsyncIterator[None]:
    """The floor: PTB receiving and answering, nothing else."""
    application = (
        ApplicationBuilder()
        .token(emu.token)
        .base_url(emu.api_base_url)
        .rate_limiter(AIORateLimiter(overall_max_rate=rate, max_retries=3))
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


async def _measure(users: int, messages: int, rate: float) -> dict[str, Any]:
    floor: list[dict[str, float]] = []
    full: list[dict[str, float]] = []
    no_flood = FloodGuard(rate=1e9, burst=10**9)
    with tempfile.TemporaryDirectory() as folder:
        async with Emulator() as emu:
            for number in range(ROUNDS):
                floor.append(await _round(emu, echo_bot(emu, rate), users, messages))
                path = Path(folder) / f"bench-{number}.db"
                hrd = running_bot(emu, path, flood=no_flood, max_rate=rate)
                full.append(await _round(emu, hrd, users, messages))
                print(f"  round {number + 1}: done", file=sys.stderr, flush=True)
    echo, hrd_bot = _spread(floor), _spread(full)
    return {
        "users": users,
        "messages_per_user": messages,
        "rate": rate,
        "echo": echo,
        "hrd_bot": hrd_bot,
        "ratio": hrd_bot["msgs_per_s"][1] / echo["msgs_per_s"][1],
    }


def _spread(rounds: list[dict[str, float]]) -> dict[str, tuple[float, float, float]]:
    """Each figure's min, median and max over the rounds."""
    return {
        name: (min(values), statistics.median(values), max(values))
        for name in rounds[0]
        for values in [[r[name] for r in rounds]]
    }


def run(users: int, messages: int, rate: float = 0) -> dict[str, Any]:
    """Measure both bots; returns the figures (no assertion: the machine decides them)."""
    return asyncio.run(_measure(users, messages, rate))


def _line(name: str, figures: dict[str, tuple[float, float, float]]) -> str:
    def three(key: str, unit: str) -> str:
        low, mid, high = figures[key]
        return f"{mid:7.1f} {unit} ({low:.1f}–{high:.1f})"

    return (
        f"  {name:<22} {three('msgs_per_s', 'msg/s')}   p50 {three('p50_ms', 'ms')}   "
        f"p99 {three('p99_ms', 'ms')}"
    )


def _report(result: dict[str, Any], target: str) -> None:
    limit = f"limiter on, {result['rate']:.0f}/s" if result["rate"] else "limiter off"
    print(
        f"telegram path ({limit}): {result['users']} users × {result['messages_per_user']} "
        f"messages, PTB ↔ emulator over HTTP; median (min–max) of {ROUNDS} runs"
    )
    print(_line("echo bot (PTB floor)", result["echo"]))
    print(_line("hrd-bot full path", result["hrd_bot"]))
    print(f"  ratio of medians {result['ratio']:.2f}×{target}")


def main(argv: Sequence[str]) -> int:
    users = int(argv[0]) if argv else 200
    messages = int(argv[1]) if len(argv) > 1 else 15
    _report(run(users, messages), f" (target ≥ {TARGET}×, hrd-bot p99 < {TARGET_P99_MS} ms)")
    rate, users, messages = LIMITED
    _report(run(users, messages, rate), " (both held to the limit)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
