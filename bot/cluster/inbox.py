"""Updates waiting for their chat's worker, and which worker holds each chat (its lease).

Owner of `inbox`, `user_leases` and `cluster_workers` (when each worker was last seen).
A worker that receives an update writes it here (sealed: it holds what a person wrote)
and, in the same transaction, takes the chat's lease if it is free or lapsed, extends
it if the worker holds it, and leaves it if another live worker holds it. Each worker
then handles only rows of chats it leases, in `seq` order, so one chat is served by one
worker at a time, in the order Telegram sent its updates.

A lease lasts long after a chat's last update (the chat stays with one worker while the
person is around, so its buttons stay current), but only while its worker is alive: a
worker not seen for `alive` seconds loses its chats to whoever adopts them. A row is
deleted after it was handled: delivery is at least once (a worker that dies mid-update
leaves the row; whoever adopts the chat handles it again).

Lanes are keyed pseudonyms (`Pseudonymizer.chat`; in a private chat the chat is the
person), plain on purpose like every other keyed pseudonym; worker names are random.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from bot.storage.database import Connection
from bot.transports.port import Storage

__all__ = ["Admit", "Claim", "Inbox", "Lease", "Row"]

BODY = "inbox.body"
CHANNEL = "inbox"
"""PostgreSQL NOTIFY channel: a row was written; lease holders look for theirs."""
PRUNE_AFTER_MS = 60_000
FORGET_MS = 3_600_000  # a worker not seen for an hour is forgotten


class Lease(Enum):
    """What receiving an update did to its chat's lease."""

    TAKEN = "taken"  # free, expired or never held: this worker holds it now
    KEPT = "kept"  # this worker held it; extended
    LEFT = "left"  # another live worker holds it


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    lane: str
    body: str


@dataclass(frozen=True, slots=True)
class Claim:
    """The rows of this worker's chats, and the chats it took (adopted) to get them."""

    rows: list[Row]
    taken: list[str]


Admit = Callable[[Connection], bool]


def _always(_: Connection) -> bool:
    return True


def _now_ms() -> int:
    return int(time.time() * 1000)


def _take(conn: Connection, lane: str, worker: str, until: int) -> None:
    conn.execute(
        "INSERT INTO user_leases (user_key, worker, until) VALUES (?, ?, ?) "
        "ON CONFLICT (user_key) DO UPDATE SET worker = excluded.worker, until = excluded.until",
        (lane, worker, until),
    )


def _alive(conn: Connection, worker: str, now: int) -> None:
    conn.execute(
        "INSERT INTO cluster_workers (worker, seen_at) VALUES (?, ?) "
        "ON CONFLICT (worker) DO UPDATE SET seen_at = excluded.seen_at",
        (worker, now),
    )


def _receive(
    lane: str, body: str, worker: str, terms: tuple[int, int], admit: Admit
) -> Callable[[Connection], Lease | None]:
    lease_ms, alive_ms = terms

    def write(conn: Connection) -> Lease | None:
        if not admit(conn):
            return None
        now = _now_ms()
        _alive(conn, worker, now)
        conn.execute(
            "INSERT INTO inbox (user_key, body, received_at) VALUES (?, ?, ?)",
            (lane, conn.seal(BODY, body), now // 1000),
        )
        held = conn.execute(
            "SELECT l.worker, l.until, w.seen_at FROM user_leases l "
            "LEFT JOIN cluster_workers w ON w.worker = l.worker WHERE l.user_key = ?",
            (lane,),
        ).fetchone()
        if held is not None and held[0] != worker and _live(held, now, alive_ms):
            outcome = Lease.LEFT
        else:
            outcome = Lease.KEPT if held is not None and held[0] == worker else Lease.TAKEN
            _take(conn, lane, worker, now + lease_ms)
        if not conn.sqlite:
            conn.execute(f"NOTIFY {CHANNEL}")
        return outcome

    return write


def _live(held: tuple[object, ...], now: int, alive_ms: int) -> bool:
    """A lease counts while it lasts and its worker was seen lately."""
    until, seen = held[1], held[2]
    return int(str(until)) >= now and seen is not None and int(str(seen)) >= now - alive_ms


def _claim(worker: str, terms: tuple[int, int], limit: int) -> Callable[[Connection], Claim]:
    """Say this worker is alive, renew its leases of chats with rows, adopt the leases
    of chats with rows that lapsed, are missing, or whose worker was not seen lately,
    and read the rows of every chat this worker now holds."""
    lease_ms, alive_ms = terms

    def claim(conn: Connection) -> Claim:
        now = _now_ms()
        _alive(conn, worker, now)
        conn.execute(
            "UPDATE user_leases SET until = ? WHERE worker = ? AND until >= ? "
            "AND user_key IN (SELECT user_key FROM inbox)",
            (now + lease_ms, worker, now),
        )
        orphans = conn.execute(
            "SELECT DISTINCT i.user_key FROM inbox i "
            "LEFT JOIN user_leases l ON l.user_key = i.user_key "
            "LEFT JOIN cluster_workers w ON w.worker = l.worker "
            "WHERE l.user_key IS NULL OR l.until < ? "
            "OR (l.worker != ? AND (w.seen_at IS NULL OR w.seen_at < ?))",
            (now, worker, now - alive_ms),
        ).fetchall()
        taken = [str(r[0]) for r in orphans]
        for lane in taken:
            _take(conn, lane, worker, now + lease_ms)
        found = conn.execute(
            "SELECT i.seq, i.user_key, i.body FROM inbox i "
            "JOIN user_leases l ON l.user_key = i.user_key "
            "WHERE l.worker = ? ORDER BY i.seq LIMIT ?",
            (worker, limit),
        ).fetchall()
        conn.execute(
            "DELETE FROM user_leases WHERE until < ? "
            "AND user_key NOT IN (SELECT user_key FROM inbox)",
            (now - PRUNE_AFTER_MS,),
        )
        conn.execute("DELETE FROM cluster_workers WHERE seen_at < ?", (now - FORGET_MS,))
        rows = [Row(int(r[0]), str(r[1]), conn.unseal(BODY, str(r[2]))) for r in found]
        return Claim(rows, taken)

    return claim


class Inbox:
    """One worker's view of the shared inbox. `worker` names it in the leases (random,
    per process); `lease` is how long a chat stays with it after its last row, while
    it is `alive` (seen within that many seconds: every claim and receive says so)."""

    def __init__(
        self, db: Storage, worker: str, *, lease: float = 600.0, alive: float = 10.0
    ) -> None:
        self._db = db
        self.worker = worker
        self._terms = (int(lease * 1000), int(alive * 1000))

    async def receive(self, lane: str, body: str, admit: Admit = _always) -> Lease | None:
        """Keep an update for its chat's worker; when this returns, it is stored. `admit`
        runs first in the same transaction: False (a repeat) writes nothing (None)."""
        work = _receive(lane, body, self.worker, self._terms, admit)
        return await self._db.transaction(work)

    async def claim(self, limit: int = 1000) -> Claim:
        """The rows this worker should handle now, oldest first (some may be in flight)."""
        return await self._db.transaction(_claim(self.worker, self._terms, limit))

    async def done(self, seq: int) -> None:
        """The row was handled: it goes."""

        def delete(conn: Connection) -> None:
            conn.execute("DELETE FROM inbox WHERE seq = ?", (seq,))

        await self._db.run(delete)
