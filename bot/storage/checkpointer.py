"""Copies the WAL back into the database on a thread and connection of its own.

SQLite's automatic checkpoint runs inside whichever commit crosses 1,000 pages, on the
one thread that serves every message: measured here, 20-50 ms of copying and two fsyncs
(more on a busy machine) during which every queued message waits. A passive checkpoint
from a second connection runs beside the writer instead (WAL allows it), and SQLite
releases the interpreter lock while it works, so the event loop and the database thread
go on. The serving connection keeps its own only as a backstop (`BACKSTOP_PAGES`): a
WAL is restarted from its beginning only after a checkpoint that caught up with every
write, which a busy writer rarely lets a second connection do; measured, the WAL grew
to 36 MB during a purge without it. Below 4,096 pages a WAL is as quick to read as a
small one, and by then this thread has copied nearly all of it.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import sqlcipher3

from bot.storage.dbkey import DbKey
from bot.storage.opening import keyed

__all__ = ["BACKSTOP_PAGES", "INTERVAL_S", "Checkpointer"]

log = logging.getLogger("hrd_bot.storage")
INTERVAL_S = 0.25
BACKSTOP_PAGES = 4000


class Checkpointer:
    """At most one passive checkpoint per `interval`; one with nothing to copy costs
    next to nothing, so it needs no signal from the writer."""

    def __init__(self, path: Path, key: DbKey, interval: float = INTERVAL_S) -> None:
        self._path, self._key, self._interval = path, key, interval
        self._stop = threading.Event()
        self._empty = threading.Event()
        self._ready = threading.Event()
        self._ok = False
        self._thread = threading.Thread(target=self._serve, name="checkpoint", daemon=True)
        self._passed = threading.Condition()
        self.passes = 0
        """Checkpoints made: what a caller waits on (`wait_passes`) instead of the file."""

    def start(self) -> bool:
        """True once its connection is open; False (and nothing runs) if it cannot open."""
        self._thread.start()
        self._ready.wait()
        return self._ok

    def empty_soon(self) -> None:
        """At the next tick, copy the whole WAL into the file and cut it to nothing, so
        the old versions of what was just overwritten go from its frames too."""
        self._empty.set()

    def wait_passes(self, count: int, timeout: float) -> bool:
        """Block until `count` checkpoints are made (or `timeout` seconds pass): True if so."""
        with self._passed:
            return self._passed.wait_for(lambda: self.passes >= count, timeout)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _connect(self) -> Any:
        conn = keyed(str(self._path), self._key)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn

    def _serve(self) -> None:
        try:
            conn = self._connect()
        except sqlcipher3.Error as exc:
            log.warning("no background checkpoints (%s); SQLite's own are kept", type(exc).__name__)
            self._ready.set()
            return
        self._ok = True
        self._ready.set()
        failing = False
        try:
            while not self._stop.wait(self._interval):
                try:
                    self._checkpoint(conn)
                except sqlcipher3.Error as exc:  # a full disk, say: the WAL keeps the data
                    if not failing:
                        log.warning("background checkpoints fail: %s", type(exc).__name__)
                    failing = True
                else:
                    if failing:
                        log.warning("background checkpoints work again")
                    failing = False
                    with self._passed:
                        self.passes += 1
                        self._passed.notify_all()
        finally:
            conn.close()

    def _checkpoint(self, conn: Any) -> None:
        """Passive, unless emptying was asked for: that waits for the writer (up to the
        connection's busy timeout) and, if readers still hold old frames, is tried again."""
        if not self._empty.is_set():
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            return
        self._empty.clear()
        busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy[0]:
            self._empty.set()
