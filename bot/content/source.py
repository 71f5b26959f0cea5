"""YAML reading with limits, remembering where each value stood so errors can say `path:line`.

Content is written by admins, but a mistake or a planted file must never exhaust the machine,
hang or crash the bot. So: regular files only (no link, FIFO or device), bounded size, UTF-8
without NUL, and the YAML is built from parser events by hand, refusing anchors, aliases and
tags, deep nesting, huge integers and non-text keys at the event where they appear, before
anything is expanded or converted. The C parser (libyaml) is used when PyYAML has it: content
reloads must be fast.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from bot.errors import ContentError

__all__ = [
    "MAX_DEPTH",
    "MAX_FILES",
    "MAX_FILE_BYTES",
    "MAX_INT_DIGITS",
    "MAX_TOTAL_BYTES",
    "MAX_VALUES",
    "Budget",
    "Document",
    "Location",
    "SourceError",
    "parse",
    "read_bytes",
    "read_yaml",
]

try:
    from yaml._yaml import CParser as _Parser
except ImportError:  # PyYAML without libyaml: the pure-Python parser has the same events
    from yaml import SafeLoader as _Parser  # type: ignore[assignment]

Location = tuple[str | int, ...]

MAX_FILE_BYTES = 1 << 20
MAX_TOTAL_BYTES = 64 << 20
MAX_FILES = 20_000
MAX_DEPTH = 20
MAX_VALUES = 50_000
MAX_INT_DIGITS = 18
_RESOLVE_CHARS = 64
"""Longer plain scalars are text: no YAML number, date or boolean is that long."""

_INT = "tag:yaml.org,2002:int"
_MERGE = "tag:yaml.org,2002:merge"
_RESOLVERS: dict[str | None, list[tuple[str, Any]]] = Resolver.yaml_implicit_resolvers
_CONSTRUCTOR = SafeConstructor()
_CONSTRUCTORS = {
    f"tag:yaml.org,2002:{name}": SafeConstructor.yaml_constructors[f"tag:yaml.org,2002:{name}"]
    for name in ("null", "bool", "int", "float", "timestamp")
}
_NO_KEY = object()
_SPECIAL = frozenset(key for key in _RESOLVERS if key and not key.isalpha()) | {""}
_WORDS = frozenset(
    spelling
    for word in ("yes", "no", "true", "false", "on", "off", "null")
    for spelling in (word, word.title(), word.upper())
)
"""A plain scalar is text unless it starts with one of `_SPECIAL` or is one of `_WORDS`."""


class SourceError(ContentError):
    """The file cannot be used as content; `line` is 1-based."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.message = message


@dataclass(slots=True)
class Budget:
    """What all the files of one load may take together."""

    bytes_left: int = MAX_TOTAL_BYTES
    files_left: int = MAX_FILES

    def take(self, path: Path, size: int) -> None:
        if self.files_left <= 0:
            raise SourceError(path, 1, f"more than {MAX_FILES:,} content files: not read")
        if size > self.bytes_left:
            limit = MAX_TOTAL_BYTES >> 20
            raise SourceError(path, 1, f"content is over {limit} MB in total: not read")
        self.files_left -= 1
        self.bytes_left -= size


@dataclass(slots=True)
class Document:
    """Parsed YAML; the line of every mapping key and sequence item is found on demand."""

    path: Path
    data: Any
    raw: bytes = field(repr=False)
    _lines: dict[Location, int] | None = field(default=None, repr=False)

    def line_of(self, location: Location) -> int:
        """The line of `location`, or of its nearest enclosing value that has one."""
        if self._lines is None:
            self._lines = {}
            _build(self.raw, self.path, self._lines)
        for end in range(len(location), -1, -1):
            if (found := self._lines.get(tuple(location[:end]))) is not None:
                return found
        return 1


_LINK = "a symbolic link: content files must be regular files"


def _kind(mode: int) -> str | None:
    """Why a file of this mode is refused, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return _LINK
    if stat.S_ISDIR(mode):
        return "a folder where a file should be"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO): content files must be regular files"
    return "a device or socket: content files must be regular files"


def read_bytes(path: Path, budget: Budget | None = None) -> bytes:
    """A regular file's bytes, at most MAX_FILE_BYTES; never follows a link or waits on a pipe."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise SourceError(path, 1, f"cannot read: {exc.strerror}") from None
    if (why := _kind(info.st_mode)) is not None:
        raise SourceError(path, 1, why)
    if info.st_size > MAX_FILE_BYTES:
        raise SourceError(path, 1, f"larger than {MAX_FILE_BYTES >> 10} KB: split it")
    if budget is not None:
        budget.take(path, info.st_size)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        why = _LINK if exc.errno == errno.ELOOP else f"cannot read: {exc.strerror}"
        raise SourceError(path, 1, why) from None
    try:
        if (why := _kind(os.fstat(fd).st_mode)) is not None:  # swapped since lstat
            raise SourceError(path, 1, why)
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_BYTES and (chunk := os.read(fd, MAX_FILE_BYTES + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise SourceError(path, 1, f"cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if size > MAX_FILE_BYTES:
        raise SourceError(path, 1, f"larger than {MAX_FILE_BYTES >> 10} KB: split it")
    return b"".join(chunks)


def _check_text(path: Path, raw: bytes) -> None:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise SourceError(path, line, f"not UTF-8 text ({exc.reason})") from None
    if (at := raw.find(b"\x00")) >= 0:
        raise SourceError(path, raw.count(b"\n", 0, at) + 1, "contains a NUL character")


def _number_digits(value: str) -> int:
    body = value.lstrip("+-").replace("_", "").replace(":", "")
    if body[:2].lower() in ("0x", "0o", "0b"):
        body = body[2:]
    return len(body)


def _scalar(path: Path, line: int, value: str) -> Any:
    """A plain scalar as YAML 1.1 reads it (like PyYAML's SafeLoader), with integers bounded."""
    if len(value) > _RESOLVE_CHARS:
        digits = value.lstrip("+-").replace("_", "")
        if digits.isascii() and digits.isdigit():
            raise SourceError(path, line, f"a number with more than {MAX_INT_DIGITS} digits")
        return value
    tag = ""
    for candidate, pattern in _RESOLVERS.get(value[:1], ()):
        if pattern.match(value):
            tag = candidate
            break
    if tag == _MERGE:
        raise SourceError(path, line, "merge keys (<<) are not supported: write the keys out")
    if tag == _INT and _number_digits(value) > MAX_INT_DIGITS:
        raise SourceError(path, line, f"a number with more than {MAX_INT_DIGITS} digits")
    construct = _CONSTRUCTORS.get(tag)
    if construct is None:  # text, and PyYAML's markers for `=`, `!`, `&`, `*`
        return value
    try:
        return construct(_CONSTRUCTOR, ScalarNode(tag, value))
    except (ValueError, ArithmeticError, yaml.YAMLError):
        raise SourceError(path, line, f"{value!r} is not a valid value") from None


def _refuse_decoration(path: Path, event: Any) -> None:
    line = event.start_mark.line + 1
    if event.anchor is not None:
        raise SourceError(path, line, "anchors (&name) are not supported: write the value out")
    if event.tag is not None and event.tag != "!":
        raise SourceError(path, line, f"tags ({event.tag}) are not supported")


def _key_problem(event: Any) -> str:
    if type(event) is ScalarEvent:
        return f"keys must be text: put {event.value!r} in quotes"
    return "keys must be text, not a list or mapping"


class _Tree:
    """The state of one build: the open containers, each mapping's key still waiting for
    its value, and (only when `lines` is asked for) where each open container stands."""

    __slots__ = ("containers", "holder", "keys", "lines", "path", "places")

    def __init__(self, path: Path, lines: dict[Location, int] | None) -> None:
        self.path, self.lines = path, lines
        self.holder: list[Any] = []
        self.containers: list[Any] = [self.holder]
        self.keys: list[Any] = [_NO_KEY]
        self.places: list[Location] = [()]

    def opened(self, event: Any, kind: type) -> dict[str, Any] | list[Any]:
        """The empty container a start event opens, once its depth and marks are checked."""
        if event.anchor is not None or event.tag is not None:
            _refuse_decoration(self.path, event)
        if len(self.containers) > MAX_DEPTH:
            line = event.start_mark.line + 1
            raise SourceError(self.path, line, f"nested deeper than {MAX_DEPTH} levels")
        return {} if kind is MappingStartEvent else []

    def close(self) -> None:
        self.containers.pop()
        self.keys.pop()
        if self.lines is not None:
            self.places.pop()

    def key(self, parent: dict[str, Any], value: Any, event: Any) -> Any:
        """`value` as the next key of `parent`, if it can be one."""
        line = event.start_mark.line + 1
        if type(value) is not str:
            raise SourceError(self.path, line, _key_problem(event))
        if value in parent:
            raise SourceError(self.path, line, f"duplicate key {value!r}")
        if self.lines is not None:
            self.lines[(*self.places[-1], value)] = line
        return value

    def note(self, lines: dict[Location, int], parent: Any, key: Any, event: Any) -> None:
        """The line of a value just put in `parent` under `key`, and where a container stands."""
        place: Location = () if parent is self.holder else (*self.places[-1], key)
        lines.setdefault(place, event.start_mark.line + 1)
        if type(event) is not ScalarEvent:
            self.places.append(place)

    def too_many(self, event: Any) -> SourceError:
        line = event.start_mark.line + 1
        return SourceError(self.path, line, f"more than {MAX_VALUES:,} values in one file")


def _plain(path: Path, event: Any) -> Any:
    """A scalar that is marked, or that may be something other than text."""
    if event.anchor is not None or event.tag is not None:
        _refuse_decoration(path, event)
    value = event.value
    if event.implicit[0] and (value[:1] in _SPECIAL or value in _WORDS) and event.tag is None:
        return _scalar(path, event.start_mark.line + 1, value)
    return value


def _build(raw: bytes, path: Path, lines: dict[Location, int] | None) -> Any:
    """Build plain dicts, lists and scalars from parser events, without recursion. Hot on
    every reload: one flat loop places each value and calls out only for what is rare or
    checked (marks, containers, odd keys); `lines` is filled only when a problem needs it."""
    parser = _Parser(raw)
    get: Callable[[], Any] = parser.get_event
    tree = _Tree(path, lines)
    containers, keys, values, documents = tree.containers, tree.keys, 0, 0
    try:
        while (event := get()) is not None:
            kind = type(event)
            if kind is ScalarEvent:
                value = event.value
                if (
                    event.anchor is not None
                    or event.tag is not None
                    or (event.implicit[0] and (value[:1] in _SPECIAL or value in _WORDS))
                ):
                    value = _plain(path, event)
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                value = tree.opened(event, kind)
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                tree.close()
                continue
            else:
                documents += _other_event(path, event, documents)
                continue
            if (values := values + 1) > MAX_VALUES:
                raise tree.too_many(event)
            parent = containers[-1]
            if type(parent) is dict:
                if (key := keys[-1]) is _NO_KEY:
                    if type(value) is not str or value in parent or lines is not None:
                        value = tree.key(parent, value, event)
                    keys[-1] = value
                    continue
                parent[key] = value
                keys[-1] = _NO_KEY
            else:
                key = len(parent)
                parent.append(value)
            if lines is not None:
                tree.note(lines, parent, key, event)
            if kind is not ScalarEvent:
                containers.append(value)
                keys.append(_NO_KEY)
    finally:
        parser.dispose()
    return tree.holder[0] if tree.holder else None


def _other_event(path: Path, event: Any, documents: int) -> int:
    """Aliases are refused; a second document is an error. Returns 1 for a document start."""
    kind, line = type(event), event.start_mark.line + 1
    if kind is AliasEvent:
        raise SourceError(path, line, "aliases (*name) are not supported: write the value out")
    if kind is DocumentStartEvent:
        if documents:
            raise SourceError(path, line, "only one YAML document per file")
        return 1
    return 0


def _syntax_line(raw: bytes, exc: yaml.YAMLError) -> int:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        return mark.line + 1 if mark is not None else 1
    if isinstance(exc, yaml.reader.ReaderError):
        return raw.count(b"\n", 0, exc.position) + 1
    return 1


def parse(path: Path, raw: bytes) -> Document:
    """Check and parse one file's bytes; every refusal is a SourceError with its line."""
    _check_text(path, raw)
    try:
        data = _build(raw, path, None)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or next(iter(str(exc).splitlines()), "unreadable")
        raise SourceError(path, _syntax_line(raw, exc), f"YAML syntax: {problem}") from None
    return Document(path=path, data=data, raw=raw)


def read_yaml(path: Path, budget: Budget | None = None) -> Document:
    return parse(path, read_bytes(path, budget))
