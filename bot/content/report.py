"""`hrd-bot content report`: per language, what is missing and what is older than English;
`--stamp` records in translated files that they are translated from English as it is now."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from pathlib import Path

from bot.content.freshness import files, freshness, source_hash
from bot.content.library import FALLBACK, Library
from bot.content.source import SourceError, read_bytes

__all__ = ["StampError", "report", "run", "stamp"]

_HASH_LINE = re.compile(rb"^source_hash:.*$", re.MULTILINE)
_MAX_LISTED = 12


class StampError(Exception):
    """A file that cannot be stamped, with why."""


def report(library: Library) -> str:
    """One block per language other than English; the current English hash of each stale
    file, so it can be updated once the translation is."""
    blocks = []
    for pack in library.languages():
        if pack.code == FALLBACK:
            continue
        found = freshness(library, pack.code)
        head = (
            f"{pack.code} ({pack.info.name}): {len(found.missing_files)} files and "
            f"{len(found.missing_strings)} strings missing, {len(found.stale)} files older "
            f"than English, {len(found.unstamped)} with no source_hash"
        )
        lines = [head]
        for name, (recorded, current) in found.stale.items():
            lines.append(f"  older than English: {name} (source_hash {recorded}, now {current})")
        lines += [f"  missing: {name}" for name in found.missing_files]
        if found.missing_strings:
            lines.append(f"  missing strings: {_listed(found.missing_strings)}")
        if found.unstamped:
            lines.append(f"  no source_hash (age unknown): {_listed(found.unstamped)}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) if blocks else "English is the only language."


def _listed(names: tuple[str, ...]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    more = len(names) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def stamp(library: Library, root: Path, paths: Iterable[Path]) -> list[Path]:
    """Write `source_hash:` (English's current hash) into each translated file named: the
    editor says these are translated from English as it is now. Nothing is written unless
    every path can be stamped."""
    english = files(library.packs[FALLBACK])
    planned: list[tuple[Path, bytes]] = []
    for path in paths:
        try:
            code, name = _place(root, path)
        except ValueError:
            raise StampError(f"{path}: not a file of a language folder under {root}") from None
        if code == FALLBACK or code not in library.packs:
            raise StampError(f"{path}: only translations record a source hash")
        if name not in english:
            raise StampError(f"{path}: English has no {name} to be translated from")
        if name not in files(library.packs[code]):
            raise StampError(f"{path}: not a loaded content file")
        planned.append((path, _stamped(read_bytes(path), source_hash(english[name][0]))))
    for path, data in planned:
        path.write_bytes(data)
    return [path for path, _ in planned]


def _place(root: Path, path: Path) -> tuple[str, str]:
    relative = path.resolve().relative_to(root.resolve())
    code, *rest = relative.parts
    if not rest:
        raise ValueError(path)
    return code, "/".join(rest)


def _stamped(raw: bytes, digest: str) -> bytes:
    """`raw` with its top-level `source_hash:` set to `digest`, added after the opening
    comments when it has none."""
    line = f"source_hash: '{digest}'".encode()  # quoted: all digits would read as a number
    if _HASH_LINE.search(raw):
        return _HASH_LINE.sub(line, raw, count=1)
    lines = raw.split(b"\n")
    at = 0
    while at < len(lines) and (lines[at].startswith(b"#") or not lines[at].strip()):
        at += 1
    return b"\n".join([*lines[:at], line, *lines[at:]])


def run(folder: Path, stamps: list[Path]) -> int:
    """The command: 1 when the content has errors (nothing to compare) or a stamp fails."""
    from bot.content.loader import load_library

    library, problems = load_library(folder)
    if library is None:
        print("\n".join(map(str, problems)), file=sys.stderr)
        print(
            "error: content has errors; fix them first (hrd-bot content validate)", file=sys.stderr
        )
        return 1
    if stamps:
        try:
            done = stamp(library, folder, stamps)
        except (StampError, SourceError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print("\n".join(f"stamped {path}" for path in done))
        return 0
    print(report(library))
    return 0
