"""Retention benchmark: message latency while 1,000 drafts are purged among 100,000 sessions.

In one run, on one database: 100,000 sessions, 1,000 reporters who each left a draft of
3,999 characters of answers through the App, and simulated users talking to the App at
a fixed offered rate (as `bench.pipeline`). Latency p50/p99 is measured without a purge
(the baseline: half before, half after) and while the purge runs (the drafts are 8 days
old). Printed: both, their ratio, the longest single trip the purge made on the database
thread (what a message can wait behind it), and how many strings holding draft text the
process still has afterwards (a walk of the object graph; the same walk before the purge
shows that it finds them).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.pipeline import SCRIPT  # the same conversation: guides, legal, a country
from bot.app import App
from bot.content.loader import load_library
from bot.conversation.flood import FloodGuard
from bot.crypto.keys import PrivateKey
from bot.model import ChatRef, Incoming, Reply
from bot.safety.jobs import SafetyJobs
from bot.storage import Database, DbKey
from bot.storage.database import Connection
from tests.memory import copies_in_memory

CONTENT = Path(__file__).resolve().parents[1] / "content"
KEY = DbKey("5a" * 32)
DAY = 86_400


async def _open(folder: Path) -> tuple[Database, App]:
    library, problems = load_library(CONTENT)
    if library is None:
        raise SystemExit("\n".join(map(str, problems)))
    db = await Database.open(folder / "bench.db", KEY)
    app = await App.open(db, library, exports=folder / "exports")
    app.flood = FloodGuard(rate=1e9, burst=10**9)
    await app.casework.store.add_staff("Bench", ["bench:staff"], PrivateKey.generate().public)
    return db, app


async def _sessions(db: Database, count: int, now: int) -> None:
    state = json.dumps({"at": ["guide", {"guide": "phishing", "node": "start"}], "back": []})
    rows = [(f"idle:{i:016x}", "en", state, now - i % (30 * DAY)) for i in range(count)]

    def insert(conn: Connection) -> None:
        conn.executemany(
            "INSERT INTO sessions (user_key, language, state, updated_at) VALUES (?, ?, ?, ?)",
            [(key, lang, conn.seal("sessions.state", s), at) for key, lang, s, at in rows],
        )

    await db.transaction(insert)


async def _reporter(app: App, number: int, mark: str) -> None:
    """Through the App as a person would: open a report, answer two questions, leave."""
    user = app.pseudonyms.user("bench", f"reporter-{number}")
    chat = ChatRef("bench", f"reporter-{number}")

    async def send(reply: Reply | None, text: str) -> Reply:
        choice = None
        if reply is not None:
            choice = next((c.id for c in reply.choices if text in c.label), None)
        msg = Incoming(user, chat, text=None if choice else text, choice=choice, language_hint="en")
        (answer,) = await app.handle(msg)
        return answer

    reply = await send(None, "/start")
    for label in ("English", "Report a risk", "Start the report"):
        reply = await send(reply, label)
    head = f"{mark} reporter {number:04d} "
    for size in (2000, 1999):
        reply = await send(reply, (head + "x" * size)[:size])
    if "Saved" not in reply.text:
        raise SystemExit("a bench reporter's answer was not saved")


def _message(app: App, user: int, step: int) -> Incoming:
    ref = app.pseudonyms.user("bench", str(user))
    chat = ChatRef("bench", str(user))
    return Incoming(ref, chat, text=SCRIPT[step % len(SCRIPT)], language_hint="en")


async def _load(app: App, steps: list[int], rate: float, until: asyncio.Future[Any]) -> list[float]:
    """Open loop: a message every 1/rate s, round-robin over users, until `until` is done.
    Each user goes on through the script where they stopped (`steps`), so every phase
    sends the same mix of messages, however long it lasts."""
    latencies: list[float] = []
    tasks: list[asyncio.Task[None]] = []

    async def timed(msg: Incoming) -> None:
        started = time.perf_counter()
        await app.handle(msg)
        latencies.append((time.perf_counter() - started) * 1000)

    start, i = time.perf_counter(), 0
    while not until.done():
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        user = i % len(steps)
        tasks.append(asyncio.create_task(timed(_message(app, user, steps[user]))))
        steps[user] += 1
        i += 1
    await asyncio.gather(*tasks)
    return latencies


def _after(seconds: float) -> asyncio.Future[None]:
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(seconds, done.set_result, None)
    return done


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1]


async def measure(
    sessions: int = 100_000,
    drafts: int = 1_000,
    users: int = 50,
    rate: float = 300,
    baseline_s: float = 10,
) -> dict[str, Any]:
    mark = "".join(["bench-draft-", secrets.token_hex(6)])
    with tempfile.TemporaryDirectory() as tmp:
        db, app = await _open(Path(tmp))
        try:
            now = int(time.time())
            await _sessions(db, sessions, now)
            for start in range(0, drafts, 100):
                await asyncio.gather(*(_reporter(app, n, mark) for n in range(start, start + 100)))
            held = sum(len(v) for d in app.casework._drafts.values() for v in d.values())
            before = copies_in_memory(mark)
            for step in range(len(SCRIPT)):  # every load user known and cached
                await asyncio.gather(*(app.handle(_message(app, u, step)) for u in range(users)))

            jobs = SafetyJobs(
                db,
                clock=lambda: now + 8 * DAY,
                casework=app.casework,
                sessions=app.sessions,
            )
            steps = [len(SCRIPT)] * users
            baseline = await _load(app, steps, rate, _after(baseline_s / 2))
            started = time.perf_counter()
            purge = asyncio.ensure_future(jobs.purge())
            during = await _load(app, steps, rate, purge)
            purge_s = time.perf_counter() - started
            removed = purge.result()
            baseline += await _load(app, steps, rate, _after(baseline_s / 2))
            left = await db.run(
                lambda c: int(
                    c.execute("SELECT count(*) FROM cases WHERE state = 'draft'").fetchone()[0]
                )
            )
            report = jobs.retention.last
            del jobs, purge
            after = copies_in_memory(mark)
        finally:
            await db.close()
    return {
        "sessions": sessions,
        "drafts": drafts,
        "characters_held": held,
        "copies_before": before,
        "rate": rate,
        "baseline_n": len(baseline),
        "baseline_p50": _percentile(baseline, 0.5),
        "baseline_p99": _percentile(baseline, 0.99),
        "baseline_max": max(baseline),
        "purge_n": len(during),
        "purge_p50": _percentile(during, 0.5),
        "purge_p99": _percentile(during, 0.99),
        "purge_max": max(during),
        "purge_s": purge_s,
        "removed": removed,
        "batches": report.batches,
        "trips": len(report.trips),
        "longest_trip_ms": report.longest_s * 1000,
        "drafts_left": left,
        "copies_after": after,
    }


def report(r: dict[str, Any]) -> str:
    ratio = r["purge_p99"] / r["baseline_p99"]
    return (
        f"retention: {r['drafts']} drafts ({r['characters_held']} characters of answers in "
        f"memory) among {r['sessions']} sessions; load {r['rate']:.0f} msg/s offered\n"
        f"baseline (no purge, {r['baseline_n']} messages): p50 {r['baseline_p50']:.2f} ms, "
        f"p99 {r['baseline_p99']:.2f} ms, max {r['baseline_max']:.2f} ms\n"
        f"during the purge ({r['purge_n']} messages in {r['purge_s']:.2f} s): "
        f"p50 {r['purge_p50']:.2f} ms, p99 {r['purge_p99']:.2f} ms, max {r['purge_max']:.2f} ms\n"
        f"p99 purge/baseline = {ratio:.2f} (target < 2)\n"
        f"purge: {r['removed']} records in {r['batches']} batches, {r['trips']} trips on the "
        f"database thread, longest {r['longest_trip_ms']:.1f} ms (target: no wait > 50 ms)\n"
        f"afterwards: {r['drafts_left']} drafts in the database; strings holding draft text "
        f"in the process: {r['copies_before']} before the purge, {r['copies_after']} after "
        f"(target 0)"
    )


if __name__ == "__main__":
    print(report(asyncio.run(measure())))
