"""Logging that holds no message text, names, phone numbers, platform ids, tokens or device ids.

Redaction happens when a record is made (a log record factory), so every handler —
ours, one a library or pytest adds later, `logging.lastResort` — only ever sees the
redacted record; a filter on the handlers repeats it for records made elsewhere.

- Our own loggers (`hrd_bot*`) log events and counts: they keep their message.
- A library record (python-telegram-bot, httpx, nio, APScheduler, aiohttp, asyncio,
  warnings, …) is reduced to its kind: logger name, level, and the leading words of
  its message *only as far as they appear in the library's own source code* (the
  constant part of a format string or an f-string). Arguments never pass.
- An exception is reduced to its type names and the file:line of our own frames:
  never its message, never a traceback's text.
- Whatever remains is masked for ids, tokens, keys, device ids and phone numbers.
"""

from __future__ import annotations

import logging
import re
import sys
import sysconfig
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["NOISY", "Redactor", "install", "mask", "redact", "setup_logging"]

NOISY = (
    "httpx",
    "httpcore",
    "telegram",
    "nio",
    "apscheduler",
    "peewee",
    "aiohttp",
    "asyncio",
    "hpack",
    "urllib3",
)
OURS = "hrd_bot"
MARK = "_hrd_redacted"
REDACTED = "[redacted]"
WITHHELD = "…"
MAX_WORDS = 8
MAX_OWN_FRAMES = 4
MAX_CHAIN = 5
_LIBRARY_KINDS = ("stdlib", "platstdlib", "purelib", "platlib")
_ROOT = Path(__file__).resolve().parent.parent
_LIBRARY_DIRS = tuple(
    sorted({str(Path(sysconfig.get_paths()[name]).resolve()) + "/" for name in _LIBRARY_KINDS})
)
_OWN_DIRS = tuple(str(_ROOT / name) + "/" for name in ("bot", "handlers"))

_SCRUB = re.compile(
    r"(?P<keep>\bdevices?(?:[ _-]?ids?)?[ =:'\"]+)(?=[\w-]*[A-Z0-9])[\w-]{3,}"  # "device AB1"
    r"|bot\d+:[\w-]+"  # Telegram bot tokens inside URLs
    r"|\b\d{5,}:[\w-]{20,}"  # bare Telegram bot tokens
    r"|\b(?:syt|syr|mct)_[\w-]+"  # Synapse access and refresh tokens
    r"|(?P<key>(?i:bearer\s+|(?:access_)?token[=:]\s*|password[=:]\s*|secret[=:]\s*))[^\s'\"&,;]+"
    r"|[@!#$+][\w.=/+-]+:[\w.-]+(?::\d+)?"  # Matrix user, room, alias and event ids
    r"|[\w.+-]+@[\w-]+\.[\w.-]+"  # e-mail addresses
    r"|\b[A-Z]{10}\b"  # Matrix device ids as servers make them
    r"|(?=[\w+/-]*[A-Z])(?=[\w+/-]*[a-z])(?=[\w+/-]*\d)[A-Za-z0-9+/_-]{32,}={0,2}"  # keys, ids
    r"|\b[0-9a-fA-F]{32,}\b"  # hashes (a file path, with no mixed case and digits, stays)
    r"|\+?\d[\d ()-]{5,}\d"  # phone numbers and numeric platform ids
)
_PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?[a-zA-Z%]")
_PROSE = re.compile(r"[A-Za-z][A-Za-z ,'-]*")
_WARNING_KIND = re.compile(r":\d+: ([A-Za-z_][\w.]*(?:Warning|Error))\b")


def mask(text: str) -> str:
    """`text` with every id-, token-, key- or number-shaped part replaced by `[redacted]`."""
    return _SCRUB.sub(lambda m: (m.group("keep") or m.group("key") or "") + REDACTED, text)


class _Sources:
    """Library source text, to tell a message's constant words from what it was given."""

    MAX_FILES = 512
    MAX_FOUND = 4096

    def __init__(self) -> None:
        self._texts: dict[str, str] = {}
        self._dirs: dict[str, str] = {}
        self._found: dict[tuple[str, str], str] = {}

    def _read(self, path: str) -> str:
        text = self._texts.get(path)
        if text is None:
            if len(self._texts) >= self.MAX_FILES:
                self._texts.clear()
            try:
                text = Path(path).read_text(encoding="utf-8", errors="replace")
            except (OSError, ValueError):
                text = ""
            self._texts[path] = text
        return text

    def _folder(self, path: str) -> str:
        """Sources next to `path`: asyncio words a message in one file, logs it in another."""
        folder = str(Path(path).parent)
        blob = self._dirs.get(folder)
        if blob is None:
            try:
                files = sorted(Path(folder).glob("*.py"))[:200]
            except OSError:
                files = []
            blob = "\n".join(self._read(str(f)) for f in files)
            self._dirs[folder] = blob
        return blob

    def constant(self, path: str, words: list[str]) -> str:
        """The longest run of `words` found verbatim in the library source: a leading run, or a
        trailing one of two words or more (a message may start with a class name)."""
        if not words or not path.endswith(".py") or not path.startswith(_LIBRARY_DIRS):
            return ""
        key = (path, " ".join(words))
        found = self._found.get(key)
        if found is None:
            if len(self._found) >= self.MAX_FOUND:
                self._found.clear()
            found = self._found[key] = self._search(path, words)
        return found

    def _search(self, path: str, words: list[str]) -> str:
        texts = (self._read(path), self._folder(path))
        for size in range(len(words), 0, -1):
            runs = (words[:size], words[-size:]) if size > 1 else (words[:1],)
            for run in runs:
                phrase = " ".join(run)
                if any(phrase in text for text in texts):
                    return phrase
        return ""


_SOURCES = _Sources()


def _own_frames(tb: TracebackType | None) -> list[str]:
    frames = traceback.extract_tb(tb) if tb is not None else []
    own = [f for f in frames if f.filename.startswith(_OWN_DIRS)]
    return [f"{Path(f.filename).relative_to(_ROOT)}:{f.lineno}" for f in own[-MAX_OWN_FRAMES:]]


def exception_kind(error: BaseException | None) -> str:
    """Type names along the cause chain, and where in our code it passed; never a message."""
    parts: list[str] = []
    seen: set[int] = set()
    while error is not None and id(error) not in seen and len(parts) < MAX_CHAIN:
        seen.add(id(error))
        where = _own_frames(error.__traceback__)
        name = type(error).__qualname__
        parts.append(f"{name} at {', '.join(where)}" if where else name)
        error = error.__cause__ or error.__context__
    return "exception: " + " <- ".join(parts) if parts else ""


def _words(text: str) -> list[str]:
    found = _PROSE.match(text.strip())
    return found.group().replace(",", " ").split()[:MAX_WORDS] if found else []


def _library_text(record: logging.LogRecord) -> str:
    """The kind of a library record: its constant leading words, never its arguments."""
    msg = record.msg
    if not isinstance(msg, str):
        return f"{WITHHELD} ({type(msg).__name__})"
    if record.name == "py.warnings":
        args = record.args
        found = _WARNING_KIND.search(str(args[0]) if isinstance(args, tuple) and args else msg)
        return f"warning {found.group(1)}" if found else f"warning {WITHHELD}"
    template = _PLACEHOLDER.sub(WITHHELD, msg) if record.args else msg
    words = _words(template)
    phrase = _SOURCES.constant(record.pathname, words)
    if phrase and phrase == template.strip():
        return phrase
    return f"{phrase} {WITHHELD}" if phrase else WITHHELD


def _own_text(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except (TypeError, ValueError):
        return str(record.msg) if isinstance(record.msg, str) else WITHHELD


def _exc_text(record: logging.LogRecord) -> str | None:
    exc_info = record.exc_info
    if exc_info and exc_info[1] is not None:
        return exception_kind(exc_info[1])
    if exc_info and exc_info[0] is not None:
        return f"exception: {exc_info[0].__qualname__}"
    return None


def redact(record: logging.LogRecord) -> logging.LogRecord:
    """Reduce `record` in place (once) to what may be logged; never raises."""
    if getattr(record, MARK, False):
        return record
    try:
        ours = record.name == OURS or record.name.startswith(OURS + ".")
        text = _own_text(record) if ours else _library_text(record)
        exc_text = _exc_text(record) if record.exc_info else None
        if record.exc_text and exc_text is None:
            exc_text = "exception: " + WITHHELD
    except Exception:
        text, exc_text = "log record withheld", None
    record.msg, record.args = mask(text), ()
    record.exc_info, record.exc_text, record.stack_info = None, exc_text, None
    setattr(record, MARK, True)
    return record


class Redactor(logging.Filter):
    """The same redaction as a handler filter, for records not made by the factory."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact(record)
        return True


def _redacting(previous: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact(previous(*args, **kwargs))

    setattr(factory, MARK, True)
    return factory


def _filter_handler(handler: logging.Handler | None) -> None:
    if handler is not None and not any(isinstance(f, Redactor) for f in handler.filters):
        handler.addFilter(Redactor())


def install() -> None:
    """Redact every record from now on, whoever logs it and whichever handler emits it."""
    current = logging.getLogRecordFactory()
    if not getattr(current, MARK, False):
        logging.setLogRecordFactory(_redacting(current))
    logging.captureWarnings(False)  # re-hook: a `catch_warnings` block may have unhooked it
    logging.captureWarnings(True)
    _filter_handler(logging.lastResort)
    for handler in logging.getLogger().handlers:
        _filter_handler(handler)


def setup_logging(level: str = "INFO") -> None:
    """One stderr handler on the root logger; libraries held at WARNING, all of it redacted."""
    install()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    _filter_handler(handler)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
