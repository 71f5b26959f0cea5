"""Read a small JSON document someone handed us (a key file, a bundle) within bounds.

Such a file may be hostile or just wrong: a FIFO (opening it would wait for a writer
for ever), /dev/zero (endless), a huge file, 200,000 nested brackets (Python's json
raises RecursionError), a 5,000-digit number (ValueError, not JSONDecodeError), or
millions of tiny values that take gigabytes once parsed. Each becomes one line of
the caller's error type, decided before any expensive work:

- only a regular file, opened without blocking, read up to `max_bytes` and no further;
- UTF-8 text;
- at most `max_values` JSON values, counted in the raw bytes before parsing (every
  object, array and separator is one of `{[,:`; base64 has none of them);
- at most `MAX_DEPTH` levels of nesting.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from bot.crypto.errors import CryptoError

__all__ = ["MAX_DEPTH", "parse_json", "read_json_file"]

MAX_DEPTH = 16
_STRUCTURE = "{[,:"


def read_json_file(
    path: Path, kind: str, error: type[CryptoError], *, max_bytes: int, max_values: int
) -> tuple[object, os.stat_result]:
    """The parsed document and the file's status (for a mode check), or `error`."""
    data, status = _read_bounded(path, kind, error, max_bytes)
    return parse_json(data, f"{kind} {path}", error, max_values=max_values), status


def parse_json(
    data: bytes | str, where: str, error: type[CryptoError], *, max_values: int
) -> object:
    """Parse with the value and depth bounds above; any failure is `error`, told as `where`."""
    if _structure_marks(data) > max_values:
        raise error(
            f"{where}: too many values (over {max_values:,}); not a file this program wrote"
        )
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise error(f"{where}: not UTF-8 text") from None
    try:
        document: object = json.loads(text)
    except RecursionError:
        raise error(f"{where}: nested too deeply") from None
    except ValueError:  # JSONDecodeError, and numbers too long to convert
        raise error(f"{where}: not JSON") from None
    if _depth_over(document, MAX_DEPTH):
        raise error(f"{where}: nested too deeply")
    return document


def _structure_marks(data: bytes | str) -> int:
    if isinstance(data, bytes):
        return sum(data.count(mark.encode()) for mark in _STRUCTURE)
    return sum(data.count(mark) for mark in _STRUCTURE)


def _read_bounded(
    path: Path, kind: str, error: type[CryptoError], max_bytes: int
) -> tuple[bytes, os.stat_result]:
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error(f"{kind} {path} does not exist") from None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "bad path"
        raise error(f"{kind} {path} cannot be opened: {reason}") from None
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise error(f"{kind} {path} is not a regular file")
        if status.st_size > max_bytes:
            raise error(f"{kind} {path} is too large (over {max_bytes:,} bytes)")
        data = _read_at_most(fd, max_bytes + 1)
    except OSError as exc:
        raise error(f"{kind} {path} cannot be read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise error(f"{kind} {path} is too large (over {max_bytes:,} bytes)")
    return data, status


def _read_at_most(fd: int, limit: int) -> bytes:
    """Read until end of file or `limit` bytes, whichever comes first (a file may grow)."""
    chunks: list[bytes] = []
    left = limit
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _depth_over(document: object, limit: int) -> bool:
    """Whether containers nest deeper than `limit` (iteratively: no recursion to exhaust)."""
    stack: list[tuple[object, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: list[object] = list(value.values())
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
