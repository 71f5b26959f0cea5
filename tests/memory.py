"""What a process still holds: used by tests and benches that check nothing is left."""

from __future__ import annotations

import gc
import sys


def copies_in_memory(mark: str) -> int:
    """Strings and bytes holding `mark`, reachable from every GC-tracked object and every
    thread's frame (untracked containers such as a dict of strings are walked too)."""
    needle = mark.encode()
    skip = {id(mark), id(needle)}
    roots: list[object] = [*gc.get_objects(), *sys._current_frames().values()]
    seen: set[int] = set()
    found = 0
    while roots:
        obj = roots.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            found += mark in obj and id(obj) not in skip
        elif isinstance(obj, bytes | bytearray):
            found += needle in obj and id(obj) not in skip
        elif not isinstance(obj, int | float | bool | type(None)):
            roots.extend(gc.get_referents(obj))
    return found
