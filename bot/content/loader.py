"""Read a content folder into a `Library`, collecting every problem as `path:line: message`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pycountry
from pydantic import BaseModel, ValidationError

from bot.content.checks import check_guide, check_interviews, check_translations
from bot.content.library import FALLBACK, LanguagePack, Library
from bot.content.problems import Problem
from bot.content.schema import ContactList, CountryLegal, Guide, Interview, Strings
from bot.content.source import Document, SourceError, read_yaml

M = TypeVar("M", bound=BaseModel)


@dataclass(slots=True)
class _Reader:
    problems: list[Problem] = field(default_factory=list)
    documents: dict[Path, Document] = field(default_factory=dict)

    def model(self, path: Path, model: type[M]) -> M | None:
        try:
            doc = read_yaml(path)
        except SourceError as exc:
            self.problems.append(Problem(path, exc.line, exc.message))
            return None
        except OSError as exc:
            self.problems.append(Problem(path, 1, f"cannot read: {exc.strerror}"))
            return None
        self.documents[path] = doc
        try:
            return model.model_validate(doc.data)
        except ValidationError as exc:
            for error in exc.errors():
                where = ".".join(str(part) for part in error["loc"]) or "file"
                line = doc.line_of(tuple(p for p in error["loc"] if p != "[key]"))
                self.problems.append(Problem(path, line, f"{where}: {error['msg']}"))
            return None

    def named(self, path: Path, actual: str, key: str) -> bool:
        if path.stem == actual:
            return True
        line = self.documents[path].line_of((key,))
        self.problems.append(Problem(path, line, f"{key} {actual!r} must match the file name"))
        return False


def _load_pack(reader: _Reader, folder: Path) -> LanguagePack | None:
    strings = reader.model(folder / "strings.yaml", Strings)
    guides: dict[str, Guide] = {}
    for path in sorted((folder / "guides").glob("*.yaml")):
        guide = reader.model(path, Guide)
        if guide is not None and reader.named(path, guide.id, "id"):
            reader.problems.extend(check_guide(guide, reader.documents[path]))
            guides[guide.id] = guide
    legal: dict[str, CountryLegal] = {}
    for path in sorted((folder / "legal").glob("*.yaml")):
        country = reader.model(path, CountryLegal)
        if country is not None and reader.named(path, country.country, "country"):
            legal[country.country] = country
    contacts_path = folder / "contacts.yaml"
    contacts = reader.model(contacts_path, ContactList) if contacts_path.exists() else None
    interview_path = folder / "interview.yaml"
    interview = reader.model(interview_path, Interview) if interview_path.exists() else None
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
    )


def _language_folders(root: Path, problems: list[Problem]) -> list[Path]:
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    valid = []
    for folder in folders:
        if pycountry.languages.get(alpha_2=folder.name) is None:
            problems.append(
                Problem(folder, 1, "folder name must be an ISO 639-1 code such as 'es'")
            )
        else:
            valid.append(folder)
    return valid


def load_library(root: Path) -> tuple[Library | None, list[Problem]]:
    """Everything under `root`; the library is None when any problem is an error."""
    reader = _Reader()
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
    if any(not p.warning for p in reader.problems) or FALLBACK not in packs:
        return None, reader.problems
    return Library(packs=packs), reader.problems
