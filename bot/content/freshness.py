"""Which translations are missing or older than the English they were translated from.

Each translated file may record `source_hash:`, the hash of the English file's content it
was translated from (`hrd-bot content report` prints it, `--stamp` writes it). The hash is
of the validated content, not the bytes: an English comment or a change of quoting does
not make translations stale, a changed sentence does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bot.content.library import FALLBACK, LanguagePack, Library
from bot.content.problems import Problem

__all__ = ["Freshness", "check_freshness", "files", "freshness", "source_hash"]

_HASHES: dict[int, tuple[object, str]] = {}
"""Hashes of English models by identity (models are kept, so an id is never reused while
cached): a reload reuses unchanged models, so it does not hash them again."""
_MAX_HASHES = 20_000


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        # `topic` is English's alone (see `Guide`): setting it leaves translations current.
        return value.model_dump(mode="json", exclude_none=True, exclude={"source_hash", "topic"})
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def source_hash(content: object) -> str:
    """The hash a translation records of `content` (16 hex digits of SHA-256)."""
    found = _HASHES.get(id(content))
    if found is not None and found[0] is content:
        return found[1]
    text = json.dumps(_plain(content), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    if len(_HASHES) >= _MAX_HASHES:
        _HASHES.clear()
    _HASHES[id(content)] = (content, digest)
    return digest


def files(pack: LanguagePack) -> dict[str, tuple[object, str | None]]:
    """Each content file of a language, by path in its folder: (its content, the hash it
    records of its English source)."""
    found: dict[str, tuple[object, str | None]] = {
        "strings.yaml": (pack.strings, pack.sources.get("strings.yaml")),
    }
    if pack.contacts:
        found["contacts.yaml"] = (pack.contacts, pack.sources.get("contacts.yaml"))
    if pack.interview is not None:
        found["interview.yaml"] = (pack.interview, pack.interview.source_hash)
    for guide_id, guide in pack.guides.items():
        found[f"guides/{guide_id}.yaml"] = (guide, guide.source_hash)
    for country, legal in pack.legal.items():
        found[f"legal/{country}.yaml"] = (legal, legal.source_hash)
    return found


@dataclass(frozen=True, slots=True)
class Freshness:
    """One language against English: `stale` maps a file to (recorded, current) hashes;
    `unstamped` files record no source hash, so their age is unknown."""

    code: str
    missing_files: tuple[str, ...]
    missing_strings: tuple[str, ...]
    stale: Mapping[str, tuple[str, str]]
    unstamped: tuple[str, ...]


def freshness(library: Library, code: str) -> Freshness:
    english = files(library.packs[FALLBACK])
    mine = files(library.packs[code])
    stale: dict[str, tuple[str, str]] = {}
    unstamped: list[str] = []
    for name, (_, recorded) in sorted(mine.items()):
        if name not in english:
            continue
        if recorded is None:
            unstamped.append(name)
        elif recorded != (current := source_hash(english[name][0])):
            stale[name] = (recorded, current)
    theirs = library.packs[FALLBACK].strings
    return Freshness(
        code=code,
        missing_files=tuple(sorted(set(english) - set(mine))),
        missing_strings=tuple(k for k in theirs if k not in library.packs[code].strings),
        stale=stale,
        unstamped=tuple(unstamped),
    )


def check_freshness(root: Path, library: Library) -> list[Problem]:
    """A warning for each translated file whose English source changed since it was
    translated (its recorded `source_hash` is no longer English's)."""
    problems = []
    for code in library.packs:
        if code == FALLBACK:
            continue
        for name in freshness(library, code).stale:
            message = (
                f"older than en/{name}, which changed since this was translated "
                "(hrd-bot content report shows what to update)"
            )
            problems.append(Problem(root / code / name, 1, message, warning=True))
    return problems
