"""Sealing benchmark: one reporter answer sealed to its case and stored, against a plain insert.

Both paths go through the same `Database` in the same run: asyncio → the single
SQLCipher worker thread → BEGIN IMMEDIATE, INSERT, COMMIT. The sealed path also reads
the case's public key, picks the next position and seals with HPKE (X25519,
HKDF-SHA256, ChaCha20-Poly1305) inside that transaction, on the DB worker thread,
so the event loop never runs crypto; a ticker task measures the loop's worst stall
to show it. The plain path inserts a blob of the same size as the answer. Blocks of
each alternate so both see the same machine. Target: under 2 ms per sealed answer.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bot.cases.store import CasesStore
from bot.crypto.cases import seal_item
from bot.crypto.keys import PrivateKey
from bot.storage import Database, DbKey

KEY = DbKey("5a" * 32)
TARGET_US = 2000.0
BLOCK = 100


async def _timed_block(step: Callable[[int], Awaitable[object]], start: int, count: int) -> float:
    began = time.perf_counter()
    for i in range(start, start + count):
        await step(i)
    return time.perf_counter() - began


async def _loop_lag(stop: asyncio.Event, phase: list[str], worst: dict[str, float]) -> None:
    """How late a 1 ms sleep wakes up, per phase: the longest the event loop was held up."""
    while not stop.is_set():
        began, current = time.perf_counter(), phase[0]
        await asyncio.sleep(0.001)
        late = time.perf_counter() - began - 0.001
        worst[current] = max(worst[current], late)


async def _setup(db: Database, staff: int) -> tuple[CasesStore, str]:
    store = CasesStore(db)
    for i in range(staff):
        await store.add_staff(f"bench {i}", [], PrivateKey.generate().public)
    await store.set_recovery(PrivateKey.generate().public)
    await db.run(
        lambda c: c.execute(
            "CREATE TABLE bench_plain (id INTEGER PRIMARY KEY, case_id TEXT, field TEXT, "
            "seq INTEGER, data BLOB, created_at INTEGER)"
        )
    )
    return store, (await store.create_case(country="KE", urgency="high")).id


async def _measure(n: int, size: int, staff: int) -> dict[str, Any]:
    answer = ("ب" * (size // 2)).encode("utf-8")[:size]
    with tempfile.TemporaryDirectory() as tmp:
        db = await Database.open(Path(tmp) / "bench.db", KEY)
        try:
            store, case_id = await _setup(db, staff)

            async def sealed(i: int) -> None:
                await store.add_item(case_id, "answer.what", answer)

            async def plain(i: int) -> None:
                row = (case_id, "answer.what", i, answer, int(time.time()))
                await db.transaction(
                    lambda c: c.execute(
                        "INSERT INTO bench_plain (case_id, field, seq, data, created_at) "
                        "VALUES (?, ?, ?, ?, ?)",
                        row,
                    )
                )

            await _timed_block(sealed, 0, BLOCK)
            await _timed_block(plain, 0, BLOCK)
            stop, phase, worst = asyncio.Event(), ["sealed"], {"sealed": 0.0, "plain": 0.0}
            ticker = asyncio.create_task(_loop_lag(stop, phase, worst))
            sealed_s = plain_s = 0.0
            for start in range(0, n, BLOCK):
                count = min(BLOCK, n - start)
                phase[0] = "sealed"
                sealed_s += await _timed_block(sealed, start, count)
                phase[0] = "plain"
                plain_s += await _timed_block(plain, start, count)
            stop.set()
            await ticker

            cases = 200
            create_s = await _timed_block(lambda i: store.create_case(), 0, cases)
        finally:
            await db.close()
    public = PrivateKey.generate().public
    seal_times = []
    for i in range(n):
        began = time.perf_counter()
        seal_item(public, case_id, "answer.what", i, answer)
        seal_times.append(time.perf_counter() - began)
    return {
        "n": n,
        "answer_bytes": len(answer),
        "recipients": staff + 1,
        "sealed_us": sealed_s / n * 1e6,
        "plain_us": plain_s / n * 1e6,
        "ratio": sealed_s / plain_s,
        "seal_only_us": statistics.median(seal_times) * 1e6,
        "create_case_us": create_s / cases * 1e6,
        "loop_lag_sealed_ms": worst["sealed"] * 1e3,
        "loop_lag_plain_ms": worst["plain"] * 1e3,
        "target_us": TARGET_US,
        "within_target": sealed_s / n * 1e6 < TARGET_US,
        "cpus": os.cpu_count(),
        "crypto_runs_on": "the SQLCipher worker thread, in the insert's transaction",
    }


def run(n: int = 5000, size: int = 400, staff: int = 5) -> dict[str, Any]:
    """Seal and store `n` answers of `size` bytes; the same number of plain inserts alongside."""
    return asyncio.run(_measure(n, size, staff))


def report(r: dict[str, Any]) -> str:
    return (
        f"sealing: {r['n']} answers of {r['answer_bytes']} B sealed + stored: "
        f"{r['sealed_us']:.0f} µs each (target < {r['target_us']:.0f} µs: "
        f"{'ok' if r['within_target'] else 'MISSED'})\n"
        f"baseline: plain SQLCipher insert of the same size, same path: {r['plain_us']:.0f} µs; "
        f"sealed/plain = {r['ratio']:.2f}\n"
        f"parts: HPKE seal alone {r['seal_only_us']:.0f} µs (median); new case sealed to "
        f"{r['recipients']} recipients {r['create_case_us']:.0f} µs; "
        f"worst event-loop stall {r['loop_lag_sealed_ms']:.2f} ms sealing, "
        f"{r['loop_lag_plain_ms']:.2f} ms plain (crypto on {r['crypto_runs_on']})"
    )


if __name__ == "__main__":
    result = run(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
    print(report(result))
    sys.exit(0 if result["within_target"] else 1)
