"""Durability benchmark: what syncing "Saved and locked" to disk costs each answer.

One acknowledged answer is what a reporter's turn writes before the bot replies: the
answer sealed to its draft (`Casework.record`, one transaction) and the session saved
(`SessionStore.save`). Three databases in the same run, on the same disk, in blocks
that alternate so all three see the same machine:
- NORMAL, the baseline: nothing synced before the reply (WAL, `synchronous = NORMAL`);
  a power cut can take back answers the reporter was told are saved.
- FULL: every commit synced (`synchronous = FULL` on the connection): two syncs per answer.
- durable case writes (what the bot does): case writes commit with `synchronous = FULL`
  (`atomically(durable=True)`), sessions with NORMAL: one sync per answer, and it also
  makes every commit before it durable.
Each is measured with one reporter at a time (the latency a person sees) and with 20
answering at once (the database thread's throughput), and so is a message that only
moves a person through the menus (its session saved, nothing told as saved): what
syncing every commit would cost the bot's commonest message. Printed: answers (and
menu messages) per second and p50/p99 each, and each against NORMAL. Set HRD_BENCH_DIR to measure on
the disk that will hold the data (the default is the system's temporary folder).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bot.app import App
from bot.cases.casework import Casework
from bot.cases.store import CasesStore
from bot.content.loader import load_library
from bot.conversation.sessions import Session, SessionStore
from bot.crypto.keys import PrivateKey
from bot.model import ChatRef, UserRef
from bot.storage import Database, DbKey
from bot.storage.database import Connection

T = TypeVar("T")
CONTENT = Path(__file__).resolve().parents[1] / "content"
KEY = DbKey("5a" * 32)
MODES = ("normal", "full", "durable")
CONCURRENT = 20
ANSWER = ("ب" * 200).encode("utf-8")


class _UnsyncedStore(CasesStore):
    """Case writes as they were: committed without waiting for the disk."""

    async def _write(self, work: Callable[[Connection], T]) -> T:
        return await self.database.transaction(work)


@dataclass
class Mode:
    name: str
    db: Database
    casework: Casework
    sessions: SessionStore
    sequential: list[float] = field(default_factory=list)
    concurrent: list[float] = field(default_factory=list)
    menu: list[float] = field(default_factory=list)
    sequential_s: float = 0.0
    concurrent_s: float = 0.0
    menu_s: float = 0.0
    turns: int = 0

    async def reporter(self, number: int) -> tuple[str, Session]:
        user = UserRef("bench", f"{self.name}{number:04d}")
        case = await self.casework.open_draft(user, ChatRef("bench", user.pseudonym), "en")
        assert case is not None
        session = Session(user, "en", {"report": {"case": case, "answered": []}})
        return case, session

    async def acknowledge(self, case: str, session: Session) -> float:
        """One answer sealed and the session saved: what precedes "Saved and locked"."""
        self.turns += 1
        began = time.perf_counter()
        await self.casework.record(case, f"answer.q{self.turns % 7}", ANSWER)
        session.state["report"]["answered"] = [self.turns]
        await self.sessions.save(session)
        return time.perf_counter() - began

    async def navigate(self, session: Session) -> float:
        """A menu message: only the session is saved before the reply."""
        self.turns += 1
        began = time.perf_counter()
        session.state["page"] = self.turns
        await self.sessions.save(session)
        return time.perf_counter() - began


async def _mode(name: str, folder: Path) -> Mode:
    library, problems = load_library(CONTENT)
    if library is None:
        raise SystemExit("\n".join(map(str, problems)))
    db = await Database.open(folder / f"{name}.db", KEY)
    casework = (await App.open(db, library)).casework
    if name != "durable":
        casework.store = _UnsyncedStore(db)
    if name == "full":
        await db.run(lambda c: c.execute("PRAGMA synchronous = FULL"))
    await casework.store.set_recovery(PrivateKey.generate().public)
    return Mode(name, db, casework, SessionStore(db))


async def _sequential(mode: Mode, count: int) -> None:
    case, session = await mode.reporter(0)
    began = time.perf_counter()
    for _ in range(count):
        mode.sequential.append(await mode.acknowledge(case, session))
    mode.sequential_s += time.perf_counter() - began


async def _menus(mode: Mode, count: int) -> None:
    session = Session(UserRef("bench", f"{mode.name}-menu"), "en", {"at": ["menu", {}]})
    began = time.perf_counter()
    for _ in range(count):
        mode.menu.append(await mode.navigate(session))
    mode.menu_s += time.perf_counter() - began


async def _concurrent(mode: Mode, count: int, reporters: list[tuple[str, Session]]) -> None:
    async def one(case: str, session: Session) -> None:
        for _ in range(count // len(reporters)):
            mode.concurrent.append(await mode.acknowledge(case, session))

    began = time.perf_counter()
    await asyncio.gather(*(one(case, session) for case, session in reporters))
    mode.concurrent_s += time.perf_counter() - began


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3


async def measure(rounds: int = 10, block: int = 100) -> dict[str, Any]:
    base = os.environ.get("HRD_BENCH_DIR") or None
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        modes = [await _mode(name, Path(tmp)) for name in MODES]
        try:
            crowds = {m.name: [await m.reporter(i + 1) for i in range(CONCURRENT)] for m in modes}
            for mode in modes:  # warm-up, not counted
                await _sequential(mode, 20)
                mode.sequential.clear()
                mode.sequential_s = 0.0
            for _ in range(rounds):
                for mode in modes:
                    await _sequential(mode, block)
                    await _concurrent(mode, block * 2, crowds[mode.name])
                    await _menus(mode, block)
        finally:
            for mode in modes:
                await mode.db.close()
    result: dict[str, Any] = {
        "rounds": rounds,
        "block": block,
        "where": base or tempfile.gettempdir(),
    }
    for mode in modes:
        result[mode.name] = {
            "seq_per_s": len(mode.sequential) / mode.sequential_s,
            "seq_p50_ms": statistics.median(mode.sequential) * 1e3,
            "seq_p99_ms": _pct(mode.sequential, 0.99),
            "conc_per_s": len(mode.concurrent) / mode.concurrent_s,
            "conc_p50_ms": statistics.median(mode.concurrent) * 1e3,
            "conc_p99_ms": _pct(mode.concurrent, 0.99),
            "menu_per_s": len(mode.menu) / mode.menu_s,
            "menu_p50_ms": statistics.median(mode.menu) * 1e3,
            "menu_p99_ms": _pct(mode.menu, 0.99),
        }
    return result


def report(r: dict[str, Any]) -> str:
    base = r["normal"]
    lines = [
        f"durability: an answer sealed + session saved, {r['rounds']} rounds of "
        f"{r['block']} (one reporter) and {r['block'] * 2} ({CONCURRENT} at once), in {r['where']}"
    ]
    for name, label in (
        ("normal", "NORMAL (baseline, nothing synced)"),
        ("full", "FULL (every commit synced)"),
        ("durable", "durable case writes (shipped)"),
    ):
        m = r[name]
        lines.append(
            f"{label}: one reporter {m['seq_per_s']:.0f} answers/s "
            f"(p50 {m['seq_p50_ms']:.2f} ms, p99 {m['seq_p99_ms']:.2f} ms); "
            f"{CONCURRENT} at once {m['conc_per_s']:.0f} answers/s "
            f"(p50 {m['conc_p50_ms']:.2f} ms, p99 {m['conc_p99_ms']:.2f} ms); "
            f"vs NORMAL {m['seq_per_s'] / base['seq_per_s']:.2f}× / "
            f"{m['conc_per_s'] / base['conc_per_s']:.2f}× answers/s, "
            f"p99 {m['seq_p99_ms'] / base['seq_p99_ms']:.2f}× / "
            f"{m['conc_p99_ms'] / base['conc_p99_ms']:.2f}×; "
            f"menu message {m['menu_per_s']:.0f}/s (p50 {m['menu_p50_ms']:.2f} ms, "
            f"p99 {m['menu_p99_ms']:.2f} ms; {m['menu_per_s'] / base['menu_per_s']:.2f}×)"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(asyncio.run(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 10))))
