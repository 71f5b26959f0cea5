"""Loaded content, looked up by language with English as the floor every language falls back to."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from bot.content.schema import Contact, CountryLegal, Guide, Interview, LanguageInfo

FALLBACK = "en"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LanguagePack:
    code: str
    info: LanguageInfo
    strings: Mapping[str, str]
    guides: Mapping[str, Guide]
    legal: Mapping[str, CountryLegal]
    contacts: tuple[Contact, ...] = ()
    interview: Interview | None = None

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
        if code:
            base = code.replace("_", "-").split("-")[0].lower()
            if base in self.packs:
                return base
        return FALLBACK

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
        template = self.pack.strings.get(key)
        if template is None:
            template = self.library.packs[FALLBACK].strings.get(key)
            if template is None:
                raise LookupError(f"no string {key!r} in any language")
            self.fell_back = True
        return template.format(**values) if values else template

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
