"""Content reloads that users never wait on, and a burst of requests costs at most one more load.

Parsing and validation run in another process (`bot.content.loader_process`): in a thread
they would hold the interpreter lock, and every message with it, for most of a reload. The
bot only unpickles the pieces that changed, one short slice at a time between messages, then
swaps the new library in at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import pickle
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from bot.content.library import LanguagePack, Library
from bot.content.loader_child import Digest, PackPlan, Plan
from bot.content.loader_process import Exchange, LoaderFailed, LoaderProcess
from bot.content.problems import Problem

__all__ = [
    "BUSY_POLL",
    "HOLD_POLL",
    "HOLD_SECONDS",
    "LOGGED_PROBLEMS",
    "PACE_TIMEOUT",
    "SLICE",
    "Reloader",
]

log = logging.getLogger("hrd_bot.content")
SLICE = 0.0002
"""Work done on the event loop between two turns of it: a message waits at most this (and
one piece) behind a reload."""
PACE_TIMEOUT = 0.005
"""The longest a reload waits, before each slice, for the messages in hand to be answered:
under a flood, a reload still ends."""
BUSY_POLL = 0.0002
HOLD_SECONDS = 1.0
HOLD_POLL = 0.005
LOGGED_PROBLEMS = 20
"""Enough for the operator to see why a reload was refused; `content validate` lists all."""


class _Pace:
    """Called between pieces of work on the event loop: once a slice is used up, it lets
    everything waiting run, then waits while a message is being handled (`busy`)."""

    def __init__(self, busy: Callable[[], bool]) -> None:
        self._busy = busy
        self._until = 0.0

    async def __call__(self) -> None:
        if time.perf_counter() < self._until:
            return
        await asyncio.sleep(0)
        deadline = time.monotonic() + PACE_TIMEOUT
        while self._busy() and time.monotonic() < deadline:  # noqa: ASYNC110 (a predicate)
            await asyncio.sleep(BUSY_POLL)
        self._until = time.perf_counter() + SLICE


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No collection while the new library is built (each pass would walk its new objects),
    and what is alive afterwards is frozen: the first full pass would otherwise walk the whole
    library, stopping the event loop for tens of milliseconds. Frozen objects are still freed
    by reference counting (an old library is); only cyclic garbage alive at that moment is
    never collected, a little per reload."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


async def _unpickle(exchange: Exchange, pace: _Pace) -> dict[Digest, object]:
    fresh: dict[Digest, object] = {}
    while not exchange.finished:
        name, blob = await exchange.piece()
        await pace()
        fresh[name] = pickle.loads(blob)  # noqa: S301 (our loader process's own pickles)
    return fresh


@dataclass(slots=True)
class _Held:
    """What the bot holds of the library it last swapped in, by digest: its parts, and its
    packs with their plans (an unchanged pack is reused whole)."""

    parts: dict[Digest, object] = field(default_factory=dict)
    packs: dict[Digest, tuple[PackPlan, LanguagePack]] = field(default_factory=dict)

    def names(self) -> frozenset[Digest]:
        return frozenset(self.parts.keys() | self.packs.keys())


def _parts(plan: PackPlan) -> list[Digest]:
    return [
        plan.info,
        plan.strings,
        plan.contacts,
        plan.interview,
        *(name for _, name in plan.guides),
        *(name for _, name in plan.legal),
    ]


def _pack(plan: PackPlan, part: Callable[[Digest], object]) -> LanguagePack:
    get = cast(Callable[[Digest], Any], part)
    return LanguagePack(
        code=plan.code,
        info=get(plan.info),
        strings=get(plan.strings),
        guides={key: get(name) for key, name in plan.guides},
        legal={key: get(name) for key, name in plan.legal},
        contacts=get(plan.contacts),
        interview=get(plan.interview),
    )


async def _assemble(
    plan: Plan, fresh: dict[Digest, object], old: _Held, pace: _Pace
) -> tuple[Library | None, _Held]:
    """The library the plan describes, from new pieces and those the bot already holds;
    and what the bot holds once it is swapped in. One pack at a time between messages."""
    if plan.packs is None:
        return None, old
    new = _Held()

    def source(name: Digest) -> object:
        return fresh[name] if name in fresh else old.parts[name]

    packs: dict[str, LanguagePack] = {}
    for name in plan.packs:
        await pace()
        if name in old.packs:
            pack_plan, pack = old.packs[name]
        else:
            found = fresh[name]
            assert isinstance(found, PackPlan), "the loader sent a pack plan by this name"
            pack_plan, pack = found, _pack(found, source)
        new.packs[name] = (pack_plan, pack)
        new.parts.update((part, source(part)) for part in _parts(pack_plan))
        packs[pack.code] = pack
    return Library(packs=packs), new


async def _let_go(retired: list[Library], kept: _Held, pace: _Pace) -> None:
    """Free an old library piece by piece: freeing it in one go would stop the event loop
    for as long as a full collection. Pieces the new library shares (`kept`) stay. Messages
    still being answered from it are waited for (up to HOLD_SECONDS): the last of them to
    let go would otherwise free it in one go."""
    library = retired.pop()
    deadline = time.monotonic() + HOLD_SECONDS
    while sys.getrefcount(library) > 2 and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(HOLD_POLL)
    shared = {id(part) for part in kept.parts.values()}
    pieces: list[object] = []
    for pack in library.packs.values():
        pieces.extend((pack.info, pack.strings, pack.contacts, pack.interview))
        pieces.extend(pack.guides.values())
        pieces.extend(pack.legal.values())
    pieces = [piece for piece in pieces if id(piece) not in shared]
    del library, pack
    while pieces:
        await pace()
        pieces.pop()


class Reloader:
    """Loads in the loader process and swaps the new library in at once, only if it has no
    errors. A process that fails leaves the old library, with a problem saying why.

    Requests that arrive while a load runs are answered by one further load (the files may
    have changed after the running one read them); requests already covered by a load that
    started after them return its problems without loading again.
    """

    def __init__(
        self, swap: Callable[[Library], Library], busy: Callable[[], bool] = lambda: False
    ) -> None:
        self._swap = swap
        self._busy = busy
        self._process = LoaderProcess()
        self._held = _Held()
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
            swapped, problems = await self._load(root)
            self._last = problems
        errors = [p for p in problems if not p.warning]
        for problem in errors[:LOGGED_PROBLEMS]:
            log.warning("content: %s", problem)
        if not swapped:
            log.warning("content reload refused, the old content stays (%d errors)", len(errors))
        else:
            log.info("content reload done (%d errors)", len(errors))
        return problems

    async def _load(self, root: Path) -> tuple[bool, list[Problem]]:
        pace = _Pace(self._busy)
        try:
            async with self._process.load(root, self._held.names()) as exchange:
                with _collector_paused():
                    fresh = await _unpickle(exchange, pace)
                    library, held = await _assemble(exchange.plan, fresh, self._held, pace)
        except LoaderFailed as exc:
            return False, [Problem(root, 1, str(exc))]
        except Exception as exc:  # a reload must end in problems, never in a traceback
            log.warning("content reload failed: %s", type(exc).__name__)
            return False, [Problem(root, 1, f"content could not be loaded ({type(exc).__name__})")]
        del fresh
        if library is None:
            return False, list(exchange.plan.problems)
        retired = [self._swap(library)]
        self._held = held
        del library
        with _collector_paused():
            await _let_go(retired, held, pace)
        return True, list(exchange.plan.problems)

    async def close(self) -> None:
        """Stop the loader process (a reload after this is refused)."""
        await self._process.close()
