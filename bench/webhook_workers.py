"""Webhook workers benchmark: one SQLCipher process against one and two workers on PostgreSQL.

The Telegram webhook path end to end: the emulator's people type a conversation
(`tests.cluster_workers.SCRIPT`), a balancer posts each update to a worker's webhook
(in turn, as a load balancer spreading requests), the worker answers through the
emulator's Bot API. With PostgreSQL each update goes through the shared inbox and its
chat's lease (`bot.cluster`); every database call of every worker holds the one writer
lock. Every person sends the next message once the previous one was answered, people
concurrently; the latency is from the send to the answer. Per-person order is checked
against the one-worker transcript ("order: ok", or the first disorder).
PostgreSQL comes from tests/postgres_server.py (fsync off, loopback). The workers run in
this one process, on one event loop, with the emulator: the figures show what the
inbox, the leases and the shared writer lock cost, not what a second machine would add.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from bot.storage import Database
from tests.cluster_workers import SCRIPT, Balancer, first_disorder, transcript, worker
from tests.keys import TEST_KEY
from tests.postgres_server import PgServer, fresh_schema, running_server
from tests.telegram_emulator import Emulator, SimUser

PEOPLE = 100
Opener = Callable[[], Awaitable[Database]]


async def _person(user: SimUser, latencies: list[float]) -> None:
    for sent, line in enumerate(SCRIPT):
        started = time.perf_counter()
        await user.send(line)

        def answered(before: int = sent) -> bool:
            return len(transcript(user)) > before

        await user.world.wait_for(answered, within=120)
        latencies.append(time.perf_counter() - started)


async def _setup(opener: Opener, workers: int, url: str | None) -> dict[str, Any]:
    async with Emulator() as emu, AsyncExitStack() as stack:
        running = [
            await stack.enter_async_context(worker(emu, opener, f"w{n}", cluster_url=url))
            for n in range(workers)
        ]
        people = [emu.user(f"P{n}") for n in range(PEOPLE)]
        latencies: list[float] = []
        balancer = asyncio.create_task(Balancer(emu, running).run())
        started = time.perf_counter()
        try:
            await asyncio.gather(*(_person(person, latencies) for person in people))
        finally:
            balancer.cancel()
            await asyncio.gather(balancer, return_exceptions=True)
        elapsed = time.perf_counter() - started
        cuts = statistics.quantiles(latencies, n=100)
        return {
            "rate": len(latencies) / elapsed,
            "p50": cuts[49] * 1000,
            "p95": cuts[94] * 1000,
            "transcripts": [transcript(person) for person in people],
        }


def _pg(server: PgServer) -> tuple[Opener, str]:
    url = server.schema_url(fresh_schema(server))

    async def open_db() -> Database:
        return await Database.open_postgres(url, TEST_KEY)

    return open_db, url


async def _all(server: PgServer, folder: Path) -> dict[str, dict[str, Any]]:
    async def sqlcipher() -> Database:
        return await Database.open(folder / "bench.db", TEST_KEY)

    results = {"SQLCipher, 1 process": await _setup(sqlcipher, 1, None)}
    for workers in (1, 2):
        opener, url = _pg(server)
        name = f"PostgreSQL, {workers} worker{'s' if workers > 1 else ''}"
        results[name] = await _setup(opener, workers, url)
        print(f"  {name}: done", file=sys.stderr, flush=True)
    return results


def _report(results: dict[str, dict[str, Any]]) -> bool:
    baseline = results["SQLCipher, 1 process"]
    expected = baseline["transcripts"][0]
    print(f"webhook workers: {PEOPLE} people × {len(SCRIPT)} messages, each waits for its answer")
    ordered = True
    for name, found in results.items():
        ratio = found["rate"] / baseline["rate"]
        print(
            f"  {name:24} {found['rate']:7.1f} updates/s ({ratio:.2f}× SQLCipher)"
            f"  p50 {found['p50']:6.1f} ms  p95 {found['p95']:6.1f} ms"
        )
        disorder = first_disorder(found["transcripts"], expected)
        print(f"    order: {'ok' if disorder is None else disorder}")
        ordered = ordered and disorder is None
    return ordered


def main(argv: Sequence[str]) -> int:
    del argv
    with running_server() as server, tempfile.TemporaryDirectory() as folder:
        results = asyncio.run(_all(server, Path(folder)))
    return 0 if _report(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
