"""Content reloads off the event loop: users never wait on one, and a burst of requests
costs at most one more load."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bot.content.library import Library
from bot.content.loader import load_library
from bot.content.problems import Problem

log = logging.getLogger("hrd_bot.content")
SWITCH_INTERVAL = 0.0002
PACE_TIMEOUT = 0.005
"""The longest a reload waits, before each file, for the event loop's turn and for messages
in hand to be answered: under a flood, a reload still ends."""
BUSY_POLL = 0.0002
LOGGED_PROBLEMS = 20
"""Enough for the operator to see why a reload was refused; `content validate` lists all."""


@contextlib.contextmanager
def _quick_gil_handoffs() -> Iterator[None]:
    """While a load runs in a worker thread it holds the GIL, and the event loop waits for it
    up to the switch interval (5 ms by default) at each of the several hand-offs between
    threads a message needs. A shorter interval while loading bounds that wait; the load
    itself gets a little slower."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, SWITCH_INTERVAL))
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _after_the_loop(
    loop: asyncio.AbstractEventLoop, busy: Callable[[], bool] = lambda: False
) -> Callable[[], None]:
    """A pace for the loader: it goes on only once the event loop has run everything that
    was waiting and no message is being handled (`busy`), each for at most PACE_TIMEOUT, so
    a reload takes the GIL when the bot is idle. A loop that does not turn is not waited for
    again."""
    turn = threading.Event()
    stalled = threading.Event()

    def pace() -> None:
        if stalled.is_set():
            return
        turn.clear()
        try:
            loop.call_soon_threadsafe(turn.set)
        except RuntimeError:  # the loop is closed: nothing to give way to
            stalled.set()
            return
        if not turn.wait(timeout=PACE_TIMEOUT):  # stopping or blocked: do not wait per file
            stalled.set()
            return
        deadline = time.monotonic() + PACE_TIMEOUT
        while busy() and time.monotonic() < deadline:
            time.sleep(BUSY_POLL)

    return pace


def _load_frozen(root: Path, pace: Callable[[], None]) -> tuple[Library | None, list[Problem]]:
    """Load, then freeze what is alive from the collector before it runs again: its first
    pass would otherwise walk every new object, stopping all threads (the event loop too)
    for tens of milliseconds. Frozen objects are still freed by reference counting (the old
    library is); only cyclic garbage alive at that moment is never collected, a little per
    reload."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return load_library(root, pace)
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def _let_go(retired: list[Library]) -> None:
    """Free an old library piece by piece: freeing it in one go would hold the GIL (and stop
    the event loop) for as long as a full collection."""
    pieces: list[object] = []
    for pack in retired[0].packs.values():
        pieces.extend(pack.guides.values())
        pieces.extend(pack.legal.values())
        pieces.extend(pack.contacts)
    retired.clear()
    while pieces:
        pieces.pop()


class Reloader:
    """Loads in a worker thread and swaps the new library in at once, only if it has no errors.

    The old library is let go in a worker thread too: freeing its objects takes as long as
    a full collection, and would otherwise stall every message.

    Requests that arrive while a load runs are answered by one further load (the files may
    have changed after the running one read them); requests already covered by a load that
    started after them return its problems without loading again.
    """

    def __init__(
        self, swap: Callable[[Library], Library], busy: Callable[[], bool] = lambda: False
    ) -> None:
        self._swap = swap
        self._busy = busy
        self._lock = asyncio.Lock()
        self._asked = 0
        self._covered = 0
        self._last: list[Problem] = []

    async def reload(self, root: Path) -> list[Problem]:
        self._asked += 1
        ticket = self._asked
        async with self._lock:
            if self._covered >= ticket:
                return self._last
            self._covered = self._asked
            with _quick_gil_handoffs():
                pace = _after_the_loop(asyncio.get_running_loop(), self._busy)
                library, problems = await asyncio.to_thread(_load_frozen, root, pace)
                if library is not None:
                    await asyncio.to_thread(_let_go, [self._swap(library)])
            self._last = problems
        errors = [p for p in problems if not p.warning]
        for problem in errors[:LOGGED_PROBLEMS]:
            log.warning("content: %s", problem)
        if library is None:
            log.warning("content reload refused, the old content stays (%d errors)", len(errors))
        else:
            log.info("content reload done (%d errors)", len(errors))
        return problems
