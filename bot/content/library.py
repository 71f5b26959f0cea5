"""Loaded content, looked up by language with English as the floor every language falls back to."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from bot.content.languages import closest
from bot.content.schema import Contact, CountryLegal, Guide, Interview, LanguageInfo, Plural
from bot.content.script import date_text, isolate, plural_category

__all__ = ["FALLBACK", "LanguagePack", "Library", "Translator"]

FALLBACK = "en"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LanguagePack:
    code: str
    info: LanguageInfo
    strings: Mapping[str, str | Plural]
    guides: Mapping[str, Guide]
    legal: Mapping[str, CountryLegal]
    contacts: tuple[Contact, ...] = ()
    interview: Interview | None = None
    sources: Mapping[str, str | None] = field(default_factory=dict)
    """The `source_hash` that strings.yaml and contacts.yaml record (see `freshness`)."""

    @property
    def rtl(self) -> bool:
        return self.info.direction == "rtl"


@dataclass(frozen=True, slots=True)
class Library:
    """All languages; `packs[FALLBACK]` always exists once loading succeeded."""

    packs: Mapping[str, LanguagePack]

    def languages(self) -> list[LanguagePack]:
        return sorted(self.packs.values(), key=lambda p: (p.code != FALLBACK, p.code))

    def resolve(self, code: str | None) -> str:
        """Map a hint such as `es-MX` or `pt_BR` to a shipped language, else English."""
        if code is not None and code in self.packs:
            return code
        return closest(code, self.packs) or FALLBACK

    def countries(self) -> list[str]:
        codes: set[str] = set()
        for pack in self.packs.values():
            codes.update(pack.legal)
        return sorted(codes)

    def translator(self, code: str) -> Translator:
        return Translator(self, self.resolve(code))


@dataclass(slots=True)
class Translator:
    """Looks things up in one language; remembers whether it had to use English."""

    library: Library
    code: str
    fell_back: bool = field(default=False)

    @property
    def pack(self) -> LanguagePack:
        return self.library.packs[self.code]

    @property
    def rtl(self) -> bool:
        return self.pack.rtl

    def __call__(self, key: str, **values: object) -> str:
        """The string `key` with `values` filled in: each isolated from the text around it
        (`script.isolate`), dates written the language's way, and for a string that takes a
        count, the plural form its number needs."""
        code, found = self.code, self.pack.strings.get(key)
        if found is None:
            code, found = FALLBACK, self.library.packs[FALLBACK].strings.get(key)
            if found is None:
                raise LookupError(f"no string {key!r} in any language")
            self.fell_back = True
        template = found if isinstance(found, str) else _form(found, code, values)
        if not values:
            return template
        shown = {name: self._shown(v, code, self.rtl) for name, v in values.items()}
        return template.format(**shown)

    @staticmethod
    def _shown(value: object, code: str, rtl: bool) -> str:
        if isinstance(value, dt.date):
            value = date_text(value, code)
        return isolate(str(value), rtl)

    def guides(self) -> list[Guide]:
        english = self.library.packs[FALLBACK].guides
        ids = list(dict.fromkeys([*english, *self.pack.guides]))
        found = [g for i in ids if (g := self.guide(i, note=False)) is not None]
        return sorted(found, key=lambda g: (g.order, g.title))

    def guide(self, guide_id: str, *, note: bool = True) -> Guide | None:
        return self._item(lambda p: p.guides.get(guide_id), note=note)

    def legal(self, country: str) -> CountryLegal | None:
        return self._item(lambda p: p.legal.get(country))

    def interview(self) -> Interview:
        found = self._item(lambda p: p.interview)
        assert found is not None, "the loader guarantees an English interview"
        return found

    def contacts(self) -> tuple[Contact, ...]:
        own = {c.id: c for c in self.pack.contacts}
        result: list[Contact] = []
        for contact in self.library.packs[FALLBACK].contacts:
            if contact.id in own:
                result.append(own.pop(contact.id))
            else:
                result.append(contact)
                self.fell_back = True
        result.extend(own.values())
        return tuple(result)

    def _item(self, get: Callable[[LanguagePack], T | None], *, note: bool = True) -> T | None:
        found = get(self.pack)
        if found is None and (found := get(self.library.packs[FALLBACK])) is not None and note:
            self.fell_back = True
        return found


def _form(plural: Plural, code: str, values: Mapping[str, object]) -> str:
    """The plural form for the count in `values`: a whole number, or one written in ASCII
    digits ("6345"); anything else ("6.2") takes `other`."""
    count = values.get(plural.number)
    forms = plural.forms()
    if isinstance(count, str) and count.isascii() and count.isdigit():
        count = int(count)
    if not isinstance(count, int) or isinstance(count, bool):
        return forms["other"]
    return forms.get(plural_category(code, count), forms["other"])
