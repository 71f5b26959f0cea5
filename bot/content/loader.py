"""Read a content folder into a `Library`, collecting every problem as `path:line: message`.

`load_library` never raises: whatever a file holds, the caller gets problems to print, so
start-up refuses cleanly and a running bot keeps its old content.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from bot.content.cache import FILES, Entry, Stamp, stamp
from bot.content.checks import check_guide, check_interviews, check_translations
from bot.content.freshness import check_freshness
from bot.content.languages import is_tag
from bot.content.library import FALLBACK, LanguagePack, Library
from bot.content.problems import Problem
from bot.content.schema import ContactList, CountryLegal, Guide, Interview, Strings
from bot.content.script import french_spacing
from bot.content.source import MAX_FILES, Budget, Document, SourceError, read_yaml

__all__ = ["MAX_ERRORS_PER_FILE", "TYPOGRAPHY", "M", "load_library"]

M = TypeVar("M", bound=BaseModel)
MAX_ERRORS_PER_FILE = 20
TYPOGRAPHY: dict[str, Callable[[str], str]] = {"fr": french_spacing}
"""Typography applied to every text of a language as it loads, so admins need not type it."""
log = logging.getLogger("hrd_bot.content")


@dataclass(slots=True)
class _Reader:
    previous: Mapping[Path, Entry]
    pace: Callable[[], None]
    problems: list[Problem] = field(default_factory=list)
    documents: dict[Path, Document] = field(default_factory=dict)
    budget: Budget = field(default_factory=Budget)
    kept: dict[Path, Entry] = field(default_factory=dict)
    stamps: dict[Path, Stamp | None] = field(default_factory=dict)
    typography: Callable[[str], str] | None = None

    def reuse(self, path: Path, model: type[M]) -> M | None:
        """The model an earlier load validated, if the file is provably unchanged since.

        Called before each guide and legal file, so it is also where a reload running beside
        the event loop lets it go first (`pace`)."""
        self.pace()
        found = self.stamps[path] = stamp(path)
        entry = self.previous.get(path)
        if found is None or entry is None or entry.stamp != found:
            return None
        if not isinstance(entry.model, model):
            return None
        try:
            self.budget.take(path, found[2])
        except SourceError as exc:
            self.problems.append(Problem(path, exc.line, exc.message))
            return None
        self.problems.extend(entry.problems)
        self.kept[path] = entry
        return entry.model

    def keep(self, path: Path, model: BaseModel, problems: list[Problem]) -> None:
        """Remember a file read afresh, by its identity from before it was read."""
        found = self.stamps.get(path)
        if found is not None and all(p.warning for p in problems):
            self.kept[path] = Entry(found, model, tuple(problems))

    def model(self, path: Path, model: type[M]) -> M | None:
        try:
            doc = read_yaml(path, self.budget)
        except SourceError as exc:
            self.problems.append(Problem(path, exc.line, exc.message))
            return None
        self.documents[path] = doc
        data = doc.data if self.typography is None else _typeset(doc.data, self.typography)
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False)
            for error in errors[:MAX_ERRORS_PER_FILE]:
                where = ".".join(str(part) for part in error["loc"]) or "file"
                line = doc.line_of(tuple(p for p in error["loc"] if p != "[key]"))
                self.problems.append(Problem(path, line, f"{where}: {error['msg']}"))
            if len(errors) > MAX_ERRORS_PER_FILE:
                more = len(errors) - MAX_ERRORS_PER_FILE
                self.problems.append(Problem(path, 1, f"{more} more errors in this file"))
            return None

    def guarded(self, path: Path, model: type[M]) -> M | None:
        """`model`, with anything unforeseen reported against the file instead of raised."""
        try:
            return self.model(path, model)
        except Exception as exc:  # a hostile file must not stop the load of the others
            log.warning("content file could not be read: %s", type(exc).__name__)
            self.problems.append(Problem(path, 1, f"cannot be read ({type(exc).__name__})"))
            return None

    def named(self, path: Path, actual: str, key: str) -> bool:
        if path.stem == actual:
            return True
        line = self.documents[path].line_of((key,))
        self.problems.append(Problem(path, line, f"{key} {actual!r} must match the file name"))
        return False

    def yaml_files(self, folder: Path) -> list[Path]:
        """`*.yaml` entries of a folder (links and pipes included, to be refused by name)."""
        if not os.path.lexists(folder):
            return []
        if not folder.is_dir() or folder.is_symlink():
            self.problems.append(Problem(folder, 1, "must be a folder (not a link or a file)"))
            return []
        found: list[Path] = []
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.endswith(".yaml") and not entry.name.startswith("."):
                    found.append(Path(entry.path))
                    if len(found) > MAX_FILES:
                        self.problems.append(Problem(folder, 1, f"more than {MAX_FILES} files"))
                        return []
        return sorted(found)

    def optional(self, path: Path, model: type[M]) -> M | None:
        return self.guarded(path, model) if os.path.lexists(path) else None


def _typeset(data: object, fix: Callable[[str], str]) -> object:
    """Every text in `data` (keys excepted) passed through `fix`."""
    if isinstance(data, str):
        return fix(data)
    if isinstance(data, dict):
        return {key: _typeset(value, fix) for key, value in data.items()}
    if isinstance(data, list):
        return [_typeset(value, fix) for value in data]
    return data


def _capped(path: Path, problems: list[Problem]) -> list[Problem]:
    """The first problems of a file, and how many more: a broken file must not flood."""
    if len(problems) <= MAX_ERRORS_PER_FILE:
        return problems
    more = len(problems) - MAX_ERRORS_PER_FILE
    warning = all(p.warning for p in problems[MAX_ERRORS_PER_FILE:])
    note = Problem(path, 1, f"{more} more problems in this file", warning)
    return [*problems[:MAX_ERRORS_PER_FILE], note]


def _guide(reader: _Reader, path: Path) -> Guide | None:
    if (guide := reader.reuse(path, Guide)) is not None:
        return guide
    guide = reader.guarded(path, Guide)
    if guide is None or not reader.named(path, guide.id, "id"):
        return None
    problems = _capped(path, check_guide(guide, reader.documents[path]))
    reader.problems.extend(problems)
    reader.keep(path, guide, problems)
    return guide


def _legal(reader: _Reader, path: Path) -> CountryLegal | None:
    if (country := reader.reuse(path, CountryLegal)) is not None:
        return country
    country = reader.guarded(path, CountryLegal)
    if country is None or not reader.named(path, country.country, "country"):
        return None
    reader.keep(path, country, [])
    return country


def _load_pack(reader: _Reader, folder: Path) -> LanguagePack | None:
    reader.typography = TYPOGRAPHY.get(folder.name)
    strings = reader.guarded(folder / "strings.yaml", Strings)
    guides: dict[str, Guide] = {}
    for path in reader.yaml_files(folder / "guides"):
        if (guide := _guide(reader, path)) is not None:
            guides[guide.id] = guide
    legal: dict[str, CountryLegal] = {}
    for path in reader.yaml_files(folder / "legal"):
        if (country := _legal(reader, path)) is not None:
            legal[country.country] = country
    contacts = reader.optional(folder / "contacts.yaml", ContactList)
    interview = reader.optional(folder / "interview.yaml", Interview)
    if strings is None:
        return None
    return LanguagePack(
        code=folder.name,
        info=strings.language,
        strings=strings.strings,
        guides=guides,
        legal=legal,
        contacts=contacts.contacts if contacts else (),
        interview=interview,
        sources={
            "strings.yaml": strings.source_hash,
            "contacts.yaml": contacts.source_hash if contacts else None,
        },
    )


def _language_folders(root: Path, problems: list[Problem]) -> list[Path]:
    valid = []
    for folder in sorted(root.iterdir()):
        if folder.name.startswith((".", "_")) or not folder.is_dir():
            continue
        if folder.is_symlink():
            problems.append(Problem(folder, 1, "a symbolic link: language folders must be real"))
        elif not is_tag(folder.name):
            problems.append(
                Problem(folder, 1, "folder name must be a language code such as 'es' or 'zh-Hant'")
            )
        else:
            valid.append(folder)
    return valid


@contextlib.contextmanager
def _no_gc_pauses() -> Iterator[None]:
    """Loading makes hundreds of thousands of objects and no cycles: collection passes in
    between would double its time. (A caller that has switched the collector off, such as a
    reload that freezes the result, keeps it off.)"""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _load(root: Path, pace: Callable[[], None]) -> tuple[Library | None, list[Problem]]:
    reader = _Reader(FILES.previous(root), pace)
    if not (root / FALLBACK).is_dir():
        return None, [
            Problem(root, 1, f"missing the '{FALLBACK}' folder every language falls back to")
        ]
    packs: dict[str, LanguagePack] = {}
    for folder in _language_folders(root, reader.problems):
        pack = _load_pack(reader, folder)
        if pack is not None:
            packs[pack.code] = pack
    if FALLBACK in packs:
        reader.problems.extend(check_translations(root, packs, reader.documents))
        reader.problems.extend(check_interviews(root, packs, reader.documents))
    while reader.documents:  # one at a time: freeing all at once holds the GIL for long
        reader.documents.popitem()
    FILES.replace(root, reader.kept)
    if any(not p.warning for p in reader.problems) or FALLBACK not in packs:
        return None, reader.problems
    library = Library(packs=packs)
    return library, [*reader.problems, *check_freshness(root, library)]


def load_library(
    root: Path, pace: Callable[[], None] = os.sched_yield
) -> tuple[Library | None, list[Problem]]:
    """Everything under `root`; the library is None when any problem is an error. Never raises.

    `pace` runs before each guide and legal file: a loader in a worker thread uses it to let
    the event loop go first."""
    try:
        with _no_gc_pauses():
            return _load(root, pace)
    except Exception as exc:  # start-up and reloads must get problems, never a traceback
        log.warning("content could not be loaded: %s", type(exc).__name__)
        return None, [Problem(root, 1, f"content could not be loaded ({type(exc).__name__})")]
