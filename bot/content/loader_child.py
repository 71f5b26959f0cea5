"""The content loader's own process, and what it says to the bot.

Parsing and validating content holds an interpreter lock for as long as it runs; in the
bot's process that lock is the event loop's, so every message would wait on a reload. Here
it is this process's lock instead. The bot sends a request (content folder, and the pieces
it already holds); this process loads the folder with `load_library`, then answers with a
`Plan` and, one frame each, only the pieces the bot lacks, so the bot unpickles them one at a
time between messages (see `bot.content.reloads`).

A piece is a language pack's part (one guide, one country's legal information, the strings,
...), or a pack's `PackPlan`, pickled on its own and named by the hash of its pickle: the bot
reuses what it already holds under that name, so a reload after one guide changed moves one
guide and one pack's plan. Run as
`python -m bot.content.loader_child LEVEL`; it ends when its input closes (the bot stopped).
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import pickle
import resource
import select
import struct
import sys
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from bot.content.library import LanguagePack, Library
from bot.content.loader import load_library
from bot.content.problems import Problem
from bot.logs import setup_logging

__all__ = [
    "COLLECT_EVERY",
    "HEADER",
    "IDLE_SECONDS",
    "MAX_FRAME",
    "MEMORY_LIMIT",
    "NICENESS",
    "Digest",
    "PackPlan",
    "Pieces",
    "Plan",
    "Request",
    "digest",
    "frame",
    "main",
    "read_frame",
    "serve",
]

Digest = bytes
HEADER = struct.Struct("!Q")
MAX_FRAME = 256 << 20
"""No request or piece comes near this; a larger header means the stream is out of step."""
MEMORY_LIMIT = 2 << 30
"""Address space of this process: content is bounded by the loader's own limits (64 MB of
files) and a load of 6 languages × 200 guides maps about 160 MB; this is a last bound for
whatever those limits missed, so the machine (and the bot) never pays for it."""
NICENESS = 10
"""Below the bot's own threads: on a busy machine the bot's messages get the CPU first, and a
reload still gets about a tenth of a CPU against each busy process."""
IDLE_SECONDS = 0.5
COLLECT_EVERY = 20
log = logging.getLogger("hrd_bot.content")


@dataclass(frozen=True, slots=True)
class PackPlan:
    """A language pack by the digests of its parts."""

    code: str
    info: Digest
    strings: Digest
    guides: tuple[tuple[str, Digest], ...]
    legal: tuple[tuple[str, Digest], ...]
    contacts: Digest
    interview: Digest


@dataclass(frozen=True, slots=True)
class Plan:
    """A load's problems, and its library as pieces: `packs` (each a `PackPlan` piece) is
    None when it has errors. `sent` names the pieces that follow this plan, one frame each,
    in that order."""

    problems: tuple[Problem, ...]
    packs: tuple[Digest, ...] | None
    sent: tuple[Digest, ...]


@dataclass(frozen=True, slots=True)
class Request:
    root: str
    held: frozenset[Digest]


def frame(data: bytes) -> bytes:
    return HEADER.pack(len(data)) + data


def digest(blob: bytes) -> Digest:
    return hashlib.blake2b(blob, digest_size=32).digest()


class Pieces:
    """Pickles the parts of each loaded library, each object once: a file the loader reused
    unchanged is the same object as in the last load, and costs nothing here again."""

    def __init__(self) -> None:
        self._known: dict[int, tuple[object, Digest, bytes]] = {}
        self._next: dict[int, tuple[object, Digest, bytes]] = {}
        self._sent: dict[Digest, bytes] = {}
        self._held: Collection[Digest] = frozenset()

    def plan(
        self, library: Library | None, problems: list[Problem], held: Collection[Digest]
    ) -> tuple[Plan, list[bytes]]:
        if library is None:
            return Plan(tuple(problems), None, ()), []
        self._held, self._sent, self._next = held, {}, {}
        packs = tuple(self._piece(self._pack(pack)) for pack in library.packs.values())
        self._known, self._next = self._next, {}
        sent, self._sent = self._sent, {}
        return Plan(tuple(problems), packs, tuple(sent)), list(sent.values())

    def _pack(self, pack: LanguagePack) -> PackPlan:
        return PackPlan(
            code=pack.code,
            info=self._piece(pack.info),
            strings=self._piece(pack.strings),
            guides=tuple((key, self._piece(guide)) for key, guide in pack.guides.items()),
            legal=tuple((key, self._piece(country)) for key, country in pack.legal.items()),
            contacts=self._piece(pack.contacts),
            interview=self._piece(pack.interview),
        )

    def _piece(self, part: object) -> Digest:
        # the entry holds `part`, so its id cannot be reused by another object meanwhile
        entry = self._known.get(id(part))
        if entry is None:
            blob = pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL)
            entry = (part, digest(blob), blob)
        self._next[id(part)] = entry
        if entry[1] not in self._held:
            self._sent.setdefault(entry[1], entry[2])
        return entry[1]


def _read(source: int, size: int) -> bytes | None:
    chunks: list[bytes] = []
    while size:
        chunk = os.read(source, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_frame(source: int) -> bytes | None:
    """The next frame from a file descriptor, or None at the end of input."""
    header = _read(source, HEADER.size)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    if size > MAX_FRAME:
        raise ValueError("frame too large")
    return _read(source, size)


def _quiet(source: int, seconds: float) -> bool:
    """No request came within `seconds`."""
    ready, _, _ = select.select([source], [], [], seconds)
    return not ready


def serve(source: int, sink: BinaryIO) -> None:
    """Answer requests until the input ends.

    The collector is off while loads follow one another (its passes would walk each new
    library several times and double the time of a load). It runs once the bot has been
    quiet for IDLE_SECONDS, or after COLLECT_EVERY loads, over what those loads left; what
    survives is frozen, never walked again."""
    pieces = Pieces()
    gc.disable()
    pending = 0
    while True:
        if pending and (pending >= COLLECT_EVERY or _quiet(source, IDLE_SECONDS)):
            gc.collect()
            gc.freeze()
            pending = 0
        if (data := read_frame(source)) is None:
            return
        request = pickle.loads(data)  # noqa: S301 (the bot's own request, over our own pipe)
        assert isinstance(request, Request)
        library, problems = load_library(Path(request.root), pace=lambda: None)
        plan, blobs = pieces.plan(library, problems, request.held)
        del library  # the loader's cache and `pieces` hold what the next load may reuse
        sink.write(frame(pickle.dumps(plan, protocol=pickle.HIGHEST_PROTOCOL)))
        for blob in blobs:
            sink.write(frame(blob))
        sink.flush()
        del plan, blobs, problems
        pending += 1


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main() -> None:
    """Answers go to a copy of the original standard output; `print` and stray writes go to
    standard error, so nothing but frames reaches the bot."""
    setup_logging(sys.argv[1] if len(sys.argv) > 1 else "INFO")
    _limit()
    os.nice(NICENESS)
    sink = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        serve(sys.stdin.fileno(), sink)
    except BrokenPipeError:  # the bot went away mid-answer
        pass
    except Exception as exc:  # a traceback could quote content: say only its kind
        log.warning("content loader process failed: %s", type(exc).__name__)
        sys.exit(3)


if __name__ == "__main__":
    # run as the module by its name, so what it pickles names classes the bot can find
    from bot.content import loader_child

    loader_child.main()
