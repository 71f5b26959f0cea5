"""What a platform says about a sent file, cleaned before it goes into a sealed case.

A file name or media type comes from the sender's client: it may hold paths, control
characters or anything else. Both transports clean them the same way, here.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["DEFAULT_TYPE", "NAME_CHARS", "safe_media_type", "safe_name"]

DEFAULT_TYPE = "application/octet-stream"
NAME_CHARS = 120
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$")


def safe_name(raw: str | None, default: str) -> str:
    """The last path part, without control characters, at most `NAME_CHARS` long."""
    base = re.split(r"[/\\]", raw or "")[-1]
    kept = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    return kept[:NAME_CHARS] or default


def safe_media_type(raw: str | None, default: str = DEFAULT_TYPE) -> str:
    """A well-formed `type/subtype`, lower-case, else `default`."""
    cleaned = (raw or "").strip().lower()
    return cleaned if _MEDIA_TYPE.match(cleaned) else default
