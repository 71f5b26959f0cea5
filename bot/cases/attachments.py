"""Files sent with a report: their kinds and sizes, and the names they travel under
(what staff are told of them is `handlers.staff_text`).

A sent file's name comes from the reporter's device and may identify them ("Ana Pérez
summons.pdf"), so it never leaves the sealed record: staff are told a kind ("photo")
and a size, and a file is relayed or saved under a name made here from the case
reference, its number and an extension from a short allowlist.

Until the report is submitted, its files are held in memory (`HeldFiles`), like its
answers, so an end-to-end encrypted staff room can get them at submission; a bounded
amount only, so a flood of files cannot exhaust the server. A file over the budget is
still sealed, and staff are told to open the case for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.files import safe_media_type

__all__ = [
    "ENGLISH",
    "Held",
    "HeldFiles",
    "english_size",
    "file_kind",
    "file_name",
    "parse",
    "scaled_size",
]

FIELD = re.compile(r"^(attachment|caption)\.(0|[1-9]\d{0,5})$")
CASE_BYTES = 40 * 1024 * 1024
"""At most this much of one draft's files is held for relay (four files at the limit)."""
TOTAL_BYTES = 256 * 1024 * 1024
"""At most this much of all drafts' files is held at once."""

EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/heic": ".heic",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "video/webm": ".webm",
    "audio/ogg": ".ogg",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
}
"""Extensions by media type; anything else is saved as `.bin`, so no file opens by surprise."""
UNKNOWN_EXTENSION = ".bin"

ENGLISH = {
    "photo": "photo",
    "video": "video",
    "audio": "audio recording",
    "pdf": "PDF document",
    "file": "file",
    "bytes": "bytes",
    "kb": "KB",
    "mb": "MB",
}
"""Kind and unit names for the English-only command line; the bot's own are in content."""


def file_kind(media_type: str) -> str:
    """`photo`, `video`, `audio`, `pdf` or `file`: what staff are told a file is."""
    if media_type == "application/pdf":
        return "pdf"
    top = media_type.split("/", 1)[0]
    return {"image": "photo", "video": "video", "audio": "audio"}.get(top, "file")


def file_name(case_id: str, number: int | str, media_type: str) -> str:
    """`HRD-7KQ4-M2XP-attachment-1.jpg`: nothing of the sender's own name."""
    return f"{case_id}-attachment-{number}{EXTENSIONS.get(media_type, UNKNOWN_EXTENSION)}"


def parse(record: bytes) -> tuple[str, bytes] | None:
    """The media type and bytes of a sealed `attachment.<n>` (`media_type\\nname\\n` + bytes),
    or None when the record is not in that form (then it is shown as any other item)."""
    head, _, rest = record.partition(b"\n")
    _, found, data = rest.partition(b"\n")
    media_type = safe_media_type(head.decode("ascii", errors="replace"), "")
    return (media_type, data) if found and media_type else None


def scaled_size(size: int, decimal_mark: str = ".") -> tuple[str, str]:
    """The number and unit (`bytes`, `kb`, `mb`) to show: 6345 is ("6.2", "kb")."""
    if size < 1024:
        return str(size), "bytes"
    value, unit = size / 1024, "kb"
    if value >= 1024:
        value, unit = value / 1024, "mb"
    number = f"{value:.1f}" if value < 10 else f"{value:.0f}"
    return number.replace(".", decimal_mark), unit


def english_size(size: int) -> str:
    number, unit = scaled_size(size)
    return f"{number} {ENGLISH[unit]}"


@dataclass
class Held:
    """One file of a draft: its kind and size always; its bytes while the budget allows."""

    number: int
    media_type: str
    size: int
    data: bytes | None = field(repr=False)
    caption: str = field(default="", repr=False)


@dataclass
class HeldFiles:
    """The files of unsent reports, in this process's memory only (dropped with the draft)."""

    case_bytes: int = CASE_BYTES
    total_bytes: int = TOTAL_BYTES
    _held: dict[str, dict[int, Held]] = field(default_factory=dict, repr=False)
    _total: int = 0

    def note(self, case_id: str, name: str, data: bytes) -> None:
        """A sealed item of the draft: files and captions are kept, other fields ignored."""
        found = FIELD.match(name)
        if found is None:
            return
        index = int(found.group(2))
        if found.group(1) == "caption":
            if (captioned := self._held.get(case_id, {}).get(index)) is not None:
                captioned.caption = data.decode("utf-8", errors="replace")
            return
        if (parsed := parse(data)) is None:
            return
        media_type, body = parsed
        files = self._held.setdefault(case_id, {})
        held = sum(len(f.data) for f in files.values() if f.data is not None)
        fits = held + len(body) <= self.case_bytes and self._total + len(body) <= self.total_bytes
        self._release(files.get(index))
        files[index] = Held(index + 1, media_type, len(body), body if fits else None)
        self._total += len(body) if fits else 0

    def _release(self, held: Held | None) -> None:
        if held is not None and held.data is not None:
            self._total -= len(held.data)

    def peek(self, case_id: str) -> list[Held]:
        """The draft's files in order, still held."""
        files = self._held.get(case_id, {})
        return [files[i] for i in sorted(files)]

    def pop(self, case_id: str) -> list[Held]:
        """The draft's files in order, forgotten here (the caller sends them on, or not)."""
        files = self._held.pop(case_id, {})
        for held in files.values():
            self._release(held)
        return [files[i] for i in sorted(files)]

    def drop(self, case_id: str) -> None:
        self.pop(case_id)
