"""Retention: closed cases, unsent drafts and idle sessions deleted in short batches, with
every copy of what they held.

The database has one thread, so one long purge would hold every message behind it.
Each batch here is its own short transaction that finds its rows through indexes (cases
by state and age, a draft's reporter by case id, their session by user key, idle
sessions by age). A batch is sized to take about `TARGET_S` and is followed by a pause,
long while messages are being handled, so their work runs between batches: a purge on
a busy bot takes longer, and nobody waits for it.

A batch deletes its cases (their items, keys, reporter links and check-ins cascade) and
ends the sessions' references to them in the same transaction (marking them `EXPIRED`,
so the reporter is told at their next message), so a purge killed midway resumes where
it stopped. After each batch `on_batch` drops the caller's copies (cached sessions,
drafts held in memory). Then exports whose case is gone are deleted (a file left by a
killed run goes at the next run), free pages are vacuumed in small steps, and the WAL
is checkpointed and truncated. `secure_delete`, set on every connection, has already
overwritten what the deleted rows held.

On PostgreSQL the batches are the same (each one transaction under the writer lock,
so other workers' messages run between them), but there are no PRAGMAs: retention
deletes the rows and leaves their space to autovacuum. What those dead tuples held was
sealed (`Connection.seal`) or HPKE-sealed to the case, never plain text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Protocol, TypeVar

from bot.cases.rows import delete_cases
from bot.conversation.sessions import delete_idle, expire_reports
from bot.crypto.cases import is_case_id
from bot.storage.checkpointer import INTERVAL_S
from bot.storage.database import Connection, Database, atomically

__all__ = [
    "BUSY_PAUSE",
    "CATCH_UP_S",
    "EXPORT_SUFFIX",
    "FIRST_BATCH",
    "MAX_BATCH",
    "TARGET_S",
    "TRUNCATE_RETRY_S",
    "TRUNCATE_TRIES",
    "VACUUM_PAGES",
    "WATCH_S",
    "Cutoffs",
    "PurgeReport",
    "Purged",
    "Retention",
    "Step",
]

T = TypeVar("T")
log = logging.getLogger("hrd_bot.retention")
TARGET_S = 0.0015
BUSY_PAUSE = 99  # while messages are handled, the purge takes 1/100 of the database thread
WATCH_S = 0.02
FIRST_BATCH = 16
MAX_BATCH = 512
VACUUM_PAGES = 256
TRUNCATE_TRIES, TRUNCATE_RETRY_S = 20, 0.05
CATCH_UP_S = 3 * INTERVAL_S
EXPORT_SUFFIX = ".bundle.json"
_LOOKUP_CHUNK = 500
_INCREMENTAL = 2  # PRAGMA auto_vacuum


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """Rows last changed before these times go."""

    closed_before: int
    drafts_before: int
    idle_before: int


@dataclass(frozen=True, slots=True)
class Purged:
    """One batch: the cases deleted, and the users whose session rows changed or went."""

    cases: tuple[str, ...] = ()
    sessions: tuple[str, ...] = ()


@dataclass(slots=True)
class PurgeReport:
    """What one run did, and the longest it held the database thread in one go."""

    removed: int = 0
    exports: int = 0
    batches: int = 0
    longest_s: float = 0.0
    trips: list[float] = field(default_factory=list)


class Step(Protocol):
    """One batch on the database thread: what it removed, and how many rows."""

    def __call__(self, conn: Connection, *, size: int) -> tuple[Purged, int]: ...


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _cases_step(state: str, before: int) -> Step:
    """Up to `size` cases in `state` last changed before `before`, and references to them."""

    def step(conn: Connection, *, size: int) -> tuple[Purged, int]:
        rows = conn.execute(
            "SELECT id FROM cases WHERE state = ? AND updated_at < ? LIMIT ?",
            (state, before, size),
        ).fetchall()
        ids = [str(r[0]) for r in rows]
        if not ids:
            return Purged(), 0
        users = expire_reports(conn, ids)
        delete_cases(conn, ids)
        return Purged(tuple(ids), tuple(users)), len(ids)

    return step


def _idle_step(before: int) -> Step:
    def step(conn: Connection, *, size: int) -> tuple[Purged, int]:
        users = delete_idle(conn, before, size)
        return Purged(sessions=tuple(users)), len(users)

    return step


def _timed(
    work: Callable[[Connection], T], *, atomic: bool
) -> Callable[[Connection], tuple[T, float]]:
    """`work` on the database thread (`atomic`: as one transaction), with how long it
    held the thread (commit included)."""

    def run(conn: Connection) -> tuple[T, float]:
        started = time.perf_counter()
        result = atomically(conn, work) if atomic else work(conn)
        return result, time.perf_counter() - started

    return run


def _vacuum_step(conn: Connection) -> int:
    conn.execute(f"PRAGMA incremental_vacuum({VACUUM_PAGES})").fetchall()
    return int(conn.execute("PRAGMA freelist_count").fetchone()[0])


def _full_vacuum(conn: Connection) -> None:
    """Once per database made before incremental vacuum: VACUUM also switches it over."""
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    conn.execute("VACUUM")


def _checkpoint(conn: Connection) -> bool:
    """Copy the WAL back and truncate it; False if a background checkpoint was under way."""
    busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return not busy


def _export_files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    found = {}
    for path in folder.iterdir():
        case = path.name.removesuffix(EXPORT_SUFFIX)
        if path.name.endswith(EXPORT_SUFFIX) and is_case_id(case):
            found[case] = path
    return found


def _existing(ids: Sequence[str]) -> Callable[[Connection], set[str]]:
    def read(conn: Connection) -> set[str]:
        rows = conn.execute(f"SELECT id FROM cases WHERE id IN ({_marks(len(ids))})", ids)  # noqa: S608
        return {str(r[0]) for r in rows}

    return read


def _unlink(paths: Sequence[Path]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


class Retention:
    """Runs one purge at a time; `on_batch` is told what each committed batch removed,
    before anything else runs on the event loop."""

    def __init__(
        self,
        db: Database,
        *,
        on_batch: Callable[[Purged], None] = lambda _: None,
        exports: Path | None = None,
    ) -> None:
        self._db = db
        self._on_batch = on_batch
        self._exports = exports
        self._running = asyncio.Lock()
        self.last = PurgeReport()

    async def purge(self, cutoffs: Cutoffs) -> PurgeReport:
        async with self._running:
            report = self.last = PurgeReport()
            for step in (
                _cases_step("draft", cutoffs.drafts_before),
                _cases_step("closed", cutoffs.closed_before),
                _idle_step(cutoffs.idle_before),
            ):
                report.removed += await self._drain(step, report)
            report.exports = await self._sweep_exports()
            if report.removed:
                await self._compact(report)
            return report

    async def _trip(
        self, work: Callable[[Connection], T], report: PurgeReport, *, atomic: bool = False
    ) -> tuple[T, float]:
        """One trip to the database thread; the caller then `_rest`s."""
        result, took = await self._db.run(_timed(work, atomic=atomic))
        report.trips.append(took)
        report.longest_s = max(report.longest_s, took)
        return result, took

    async def _rest(self, took: float) -> None:
        """A pause after each trip, at least `WATCH_S`: if anything else used the database
        meanwhile, messages are being handled, and the pause grows to `BUSY_PAUSE` times
        as long as the trip."""
        calls = self._db.calls
        await asyncio.sleep(max(WATCH_S, took))
        if self._db.calls != calls:
            await asyncio.sleep(max(0.0, BUSY_PAUSE * took - WATCH_S))

    async def _drain(self, step: Step, report: PurgeReport) -> int:
        size, removed = FIRST_BATCH, 0
        while True:
            (purged, count), took = await self._trip(partial(step, size=size), report, atomic=True)
            report.batches += 1
            removed += count
            if purged.cases or purged.sessions:
                self._on_batch(purged)
            await self._rest(took)
            if count < size:
                return removed
            if took < TARGET_S / 2:
                size = min(MAX_BATCH, size * 2)
            elif took > TARGET_S:
                size = max(1, size // 2)

    async def _sweep_exports(self) -> int:
        """Delete every export whose case is no longer in the database."""
        if self._exports is None:
            return 0
        files = await asyncio.to_thread(_export_files, self._exports)
        ids = sorted(files)
        present: set[str] = set()
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            present |= await self._db.run(_existing(ids[start : start + _LOOKUP_CHUNK]))
        gone = [files[case] for case in ids if case not in present]
        await asyncio.to_thread(_unlink, gone)
        return len(gone)

    async def _truncate_wal(self, report: PurgeReport) -> None:
        """After the background checkpoints caught up, only the truncation is left to do."""
        await asyncio.sleep(CATCH_UP_S)
        for _ in range(TRUNCATE_TRIES):
            done, took = await self._trip(_checkpoint, report)
            await self._rest(took)
            if done:
                return
            await asyncio.sleep(TRUNCATE_RETRY_S)
        log.warning("retention: the WAL could not be truncated; the next run tries again")

    async def _compact(self, report: PurgeReport) -> None:
        """SQLCipher only: PostgreSQL's autovacuum reclaims the space of deleted rows."""
        if not self._db.sqlite:
            return
        mode = await self._db.run(lambda c: int(c.execute("PRAGMA auto_vacuum").fetchone()[0]))
        if mode != _INCREMENTAL:
            log.info("retention: one full VACUUM switches this database to incremental vacuum")
            _, took = await self._trip(_full_vacuum, report)
            await self._rest(took)
        else:
            free, before = -1, None
            while free and free != before:
                before = free
                free, took = await self._trip(_vacuum_step, report)
                await self._rest(took)
        await self._truncate_wal(report)
