"""Pipeline benchmark: simulated users → App (handlers, per-user locks) → SQLCipher, in process.

Prints throughput with every user typing at once, latency percentiles at a fixed offered
rate, and the same number of raw SQLCipher writes as the baseline, with the ratio.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlcipher3

from bot.app import App
from bot.content.loader import load_library
from bot.conversation.flood import FloodGuard
from bot.model import ChatRef, Incoming
from bot.storage import Database, DbKey

CONTENT = Path(__file__).resolve().parents[1] / "content"
KEY = DbKey("5a" * 32)
SCRIPT = (
    "/start",
    "English",
    "I have a digital security problem",
    "2",
    "1",
    "1",
    "◂ Back",
    "2",
    "/menu",
    "Legal information",
    "colombia",
    "1",
    "/menu",
)
"""English, guides (the danger question), a topic, its first guide, an option, back, …,
legal, a country, a topic. Menu entries by label: "Continue: …" joins the menu after a guide."""


def _message(app: App, user: int, step: int) -> Incoming:
    ref = app.pseudonyms.user("bench", str(user))
    chat = ChatRef("bench", str(user))
    return Incoming(ref, chat, text=SCRIPT[step % len(SCRIPT)], language_hint="en")


async def _open(folder: Path) -> tuple[Database, App]:
    library, problems = load_library(CONTENT)
    if library is None:
        raise SystemExit("\n".join(map(str, problems)))
    db = await Database.open(folder / "bench.db", KEY)
    app = await App.open(db, library)
    app.flood = FloodGuard(rate=1e9, burst=10**9)
    return db, app


async def _throughput(app: App, users: int, per_user: int) -> float:
    async def one(user: int) -> None:
        for step in range(per_user):
            await app.handle(_message(app, user, step))

    started = time.perf_counter()
    await asyncio.gather(*(one(u) for u in range(users)))
    return users * per_user / (time.perf_counter() - started)


async def _latency(app: App, users: int, rate: float, seconds: float) -> list[float]:
    """Open loop: a message every 1/rate s, round-robin over users; each one timed alone."""
    latencies: list[float] = []
    tasks: list[asyncio.Task[None]] = []

    async def timed(msg: Incoming) -> None:
        started = time.perf_counter()
        await app.handle(msg)
        latencies.append((time.perf_counter() - started) * 1000)

    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(timed(_message(app, i % users, i // users + 100))))
    await asyncio.gather(*tasks)
    return latencies


def _raw_writes(folder: Path, count: int) -> float:
    """The floor: the same number of upserts on one SQLCipher connection, no event loop."""
    conn = sqlcipher3.connect(str(folder / "raw.db"), isolation_level=None)
    conn.execute(KEY.pragma())
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE s (k TEXT PRIMARY KEY, v TEXT)")
    state = json.dumps({"at": ["guide", {"guide": "phishing", "node": "start"}], "back": []})
    started = time.perf_counter()
    for i in range(count):
        conn.execute(
            "INSERT INTO s VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
            (f"user-{i % 500}", state),
        )
    elapsed = time.perf_counter() - started
    conn.close()
    return count / elapsed


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1]


async def measure(
    users: int = 500, per_user: int = 40, rate: float = 500, seconds: float = 6
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db, app = await _open(folder)
        try:
            throughput = await _throughput(app, users, per_user)
            latencies = await _latency(app, users, rate, seconds)
        finally:
            await db.close()
        raw = _raw_writes(folder, users * per_user)
    return {
        "messages": users * per_user,
        "users": users,
        "messages_per_s": throughput,
        "offered_rate": rate,
        "p50_ms": _percentile(latencies, 0.5),
        "p99_ms": _percentile(latencies, 0.99),
        "raw_writes_per_s": raw,
        "ratio_vs_raw_writes": throughput / raw,
    }


def report(r: dict[str, Any]) -> str:
    return (
        f"pipeline: {r['messages']} messages from {r['users']} users: "
        f"{r['messages_per_s']:.0f} msg/s (target ≥ 2000)\n"
        f"pipeline: at {r['offered_rate']:.0f} msg/s offered: p50 {r['p50_ms']:.2f} ms, "
        f"p99 {r['p99_ms']:.2f} ms (target p99 < 20 ms)\n"
        f"baseline: {r['messages']} raw SQLCipher upserts: {r['raw_writes_per_s']:.0f}/s; "
        f"pipeline/baseline = {r['ratio_vs_raw_writes']:.3f}"
    )


if __name__ == "__main__":
    print(report(asyncio.run(measure())))
