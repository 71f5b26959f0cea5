"""Files validated by an earlier load, reused while they are provably unchanged.

Reloading a large corpus after one guide changed should not parse and validate 1,200 files
again. A file is reused only when its device, inode, size, mtime and ctime (nanoseconds) are
those it had when it was read, and it had not been touched for RACY_NS by then: as git does,
a write within the file system's timestamp granularity can then never go unnoticed. The
ctime cannot be set by programs, so restoring an old mtime does not fool it either.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from time import time_ns

from pydantic import BaseModel

from bot.content.problems import Problem

__all__ = ["FILES", "RACY_NS", "ROOTS", "Entry", "FileCache", "Stamp", "stamp"]

Stamp = tuple[int, int, int, int, int]
RACY_NS = 2_000_000_000
ROOTS = 4
"""Content folders remembered at once (a bot has one; tests load many)."""


def stamp(path: Path) -> Stamp | None:
    """The identity of a regular file old enough to be trusted, or None: read it afresh."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    changed = max(info.st_mtime_ns, info.st_ctime_ns)
    if not stat.S_ISREG(info.st_mode) or time_ns() - changed < RACY_NS:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


@dataclass(frozen=True, slots=True)
class Entry:
    """A file's validated model and its own problems (warnings only: errors are not kept)."""

    stamp: Stamp
    model: BaseModel
    problems: tuple[Problem, ...]


class FileCache:
    """The entries each content folder's last load used; a load replaces its folder's."""

    def __init__(self) -> None:
        self._roots: dict[Path, Mapping[Path, Entry]] = {}
        self._lock = threading.Lock()

    def previous(self, root: Path) -> Mapping[Path, Entry]:
        with self._lock:
            return self._roots.get(root, {})

    def replace(self, root: Path, entries: Mapping[Path, Entry]) -> None:
        with self._lock:
            self._roots.pop(root, None)
            self._roots[root] = entries
            while len(self._roots) > ROOTS:
                del self._roots[next(iter(self._roots))]


FILES = FileCache()
