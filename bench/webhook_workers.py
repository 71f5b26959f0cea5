"""Webhook workers benchmark: one SQLCipher process against one and two workers on PostgreSQL.

The Telegram webhook path end to end: the emulator's people type a conversation
(`tests.cluster_workers.SCRIPT`), a balancer posts each update to a worker's webhook
(in turn, as a load balancer spreading requests), the worker answers through the
emulator's Bot API. With PostgreSQL each update goes through the shared inbox and its
chat's lease (`bot.cluster`); every database call of every worker holds the one writer
lock. Every person sends the next message once the previous one was answered, people
concurrently; the latency is from the send to the answer. Per-person order is checked
against the one-worker transcript ("order: ok", or the first disorder).
PostgreSQL comes from tests/postgres_server.py (fsync off, loopback). The workers run
in this process first (one event loop with the emulator: what the inbox, the leases and
the shared writer lock cost), then each in a process of its own (`bench.worker_process`:
what a second worker adds on this machine).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from asyncio.subprocess import PIPE, Process
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.storage import Database
from bot.transports.telegram import WebhookConfig
from tests.cluster_workers import (
    SCRIPT,
    Balancer,
    Hooked,
    first_disorder,
    free_port,
    transcript,
    worker,
)
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


@dataclass(frozen=True, slots=True)
class _Process:
    hook: WebhookConfig


async def _spawn(emu: Emulator, name: str, url: str) -> tuple[Process, _Process]:
    port = free_port()
    args = (emu.token, emu.api_base_url, str(port), name, url)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.worker_process", *args, stdin=PIPE, stdout=PIPE
    )
    assert child.stdout is not None
    if (await child.stdout.readline()).strip() != b"ready":
        raise RuntimeError(f"worker process {name} did not start")
    hook = WebhookConfig(f"http://127.0.0.1:{port}/hook-{name}", f"secret-{name}", port=port)
    return child, _Process(hook)


@asynccontextmanager
async def _processes(emu: Emulator, count: int, url: str) -> AsyncIterator[list[_Process]]:
    """`count` workers, each in its own process (`bench.worker_process`)."""
    children: list[Process] = []
    hooks: list[_Process] = []
    try:
        for n in range(count):
            child, hook = await _spawn(emu, f"p{n}", url)
            children.append(child)
            hooks.append(hook)
        emu.world.holding = True  # the Balancer delivers, not the emulator
        yield hooks
    finally:
        for child in children:
            if child.stdin is not None:
                child.stdin.close()
        await asyncio.gather(*(child.wait() for child in children))


async def _setup(
    opener: Opener, workers: int, url: str | None, *, processes: bool = False
) -> dict[str, Any]:
    async with Emulator() as emu, AsyncExitStack() as stack:
        running: Sequence[Hooked]
        if processes and url is not None:
            running = await stack.enter_async_context(_processes(emu, workers, url))
        else:
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
    for workers, processes in ((1, False), (2, False), (1, True), (2, True)):
        opener, url = _pg(server)
        plural = "s" if workers > 1 else ""
        where = (
            f"process{'es' if workers > 1 else ''} of their own" if processes else "this process"
        )
        name = f"PostgreSQL, {workers} worker{plural}, {where}"
        results[name] = await _setup(opener, workers, url, processes=processes)
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
            f"  {name:45} {found['rate']:7.1f} updates/s ({ratio:.2f}× SQLCipher)"
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
