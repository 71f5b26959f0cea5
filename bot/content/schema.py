"""The shape of every content file. Unknown keys are errors: a typo must not pass silently."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    model_validator,
)

__all__ = [
    "CONTACTS",
    "EXITS",
    "GUIDE_TOPICS",
    "NEEDS",
    "PLURAL_CATEGORIES",
    "REQUIRED_QUESTIONS",
    "SCOPES",
    "TOPICS",
    "URGENCIES",
    "Channel",
    "ChannelKind",
    "Contact",
    "ContactList",
    "CountryCode",
    "CountryLegal",
    "Guide",
    "GuideTopic",
    "Interview",
    "LanguageCode",
    "LanguageInfo",
    "LegalTopic",
    "Need",
    "Node",
    "Option",
    "Plural",
    "Question",
    "Slug",
    "Source",
    "SourceHash",
    "Strict",
    "Strings",
    "Text",
    "Topic",
    "Translated",
    "contacts_need",
    "exit_of",
]

NEEDS = ("digital", "legal", "physical", "psychosocial", "medical")
TOPICS = ("arrest", "protest", "surveillance", "registration")
CONTACTS = "@contacts"
EXITS = (CONTACTS, "@menu")
SCOPES = ("local", "regional", "international")

Need = Literal["digital", "legal", "physical", "psychosocial", "medical"]
Topic = Literal["arrest", "protest", "surveillance", "registration"]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")]


def _country_code(value: str) -> str:
    import pycountry

    if value != "*" and pycountry.countries.get(alpha_2=value) is None:
        raise ValueError(f"{value!r} is not an ISO 3166 alpha-2 country code (or '*')")
    return value


def _language_code(value: str) -> str:
    from bot.content.languages import is_tag

    if not is_tag(value):
        raise ValueError(f"{value!r} is not a language code such as 'es' or 'zh-Hant'")
    return value


CountryCode = Annotated[str, AfterValidator(_country_code)]
LanguageCode = Annotated[str, AfterValidator(_language_code)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


SourceHash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]
"""In a translation: `hrd-bot content report`'s hash of the English file it was made from."""


class Translated(Strict):
    source_hash: SourceHash | None = None


def contacts_need(target: str) -> str | None:
    """The need named by an `@contacts:<need>` target ('' for a bare `@contacts`), else None."""
    if target == CONTACTS:
        return ""
    head, colon, need = target.partition(":")
    return need if head == CONTACTS and colon else None


def exit_of(target: str) -> str | None:
    """The exit an option leaves by (`@contacts` whatever its need, `@menu`), or None."""
    return CONTACTS if contacts_need(target) is not None else target if target in EXITS else None


class Option(Strict):
    """A button under a guide step: goes to another node, or leaves to the menu or to the
    contacts for a need (`@contacts:legal`); checks report a missing or unknown need."""

    label: Text
    next: Annotated[
        str, StringConstraints(pattern=r"^(@contacts(:[a-z0-9_-]*)?|@menu|[a-z0-9][a-z0-9-]*)$")
    ]


class Node(Strict):
    """One screen of a guide. A node without options is a leaf: its steps end the path."""

    text: Text
    steps: tuple[Text, ...] = ()
    options: tuple[Option, ...] = ()


GuideTopic = Literal["accounts", "devices", "harassment", "organisation", "people"]
GUIDE_TOPICS: tuple[GuideTopic, ...] = get_args(GuideTopic)
"""The guide list is split by topic, so each list fits one phone screen; the topics are
offered with the danger question, so a guide's first step stays three taps away."""


class Guide(Translated):
    """`topic` is set in English only; translations are listed under English's."""

    id: Slug
    title: Text
    summary: Text
    topic: GuideTopic | None = None
    needs: tuple[Need, ...] = ("digital",)
    order: int = 100
    start: Slug
    nodes: dict[Slug, Node]


class Source(Strict):
    title: Text
    url: HttpUrl


class LegalTopic(Strict):
    last_reviewed: dt.date
    text: Text
    sources: tuple[Source, ...] = Field(min_length=1)


class CountryLegal(Translated):
    country: CountryCode
    names: tuple[Text, ...] = ()
    sample: bool = True
    topics: dict[Topic, LegalTopic]


ChannelKind = Literal[
    "web", "email", "phone", "sms", "messages", "signal", "whatsapp", "telegram", "matrix", "form"
]
_NUMBER = r"\+? ?[0-9(][0-9 ().-]{1,24}[0-9]"
_SHAPES: dict[str, str] = {
    "web": r"https://\S+",
    "form": r"https://\S+",
    "email": r"[^@\s]+@[^@\s]+\.[a-z]{2,}",
    "phone": _NUMBER,
    "sms": _NUMBER,
    "messages": _NUMBER,
    "whatsapp": _NUMBER + r"|https://wa\.me/\S+",
    "signal": _NUMBER + r"|https://signal\.me/\S+|[a-z0-9_]{3,32}\.[0-9]{2,}",
    "telegram": r"@[A-Za-z0-9_]{5,32}|https://t\.me/\S+",
    "matrix": r"[@#!][^:\s]+:[A-Za-z0-9.-]+",
}
"""What each kind's value looks like, so the label a person reads ("Phone: …") is true."""


class Channel(Strict):
    """`phone` is for calls; `sms` for text messages; `messages` for a number that takes
    text or voice messages (a messaging app) and no calls."""

    kind: ChannelKind
    value: Text

    @model_validator(mode="after")
    def _value_fits_kind(self) -> Channel:
        if not re.fullmatch(_SHAPES[self.kind], self.value):
            raise ValueError(f"{self.value!r} is not what channel kind '{self.kind}' holds")
        return self


class Contact(Strict):
    """`scope`: local (works on the ground in `countries`), regional (serves the countries of
    a region), international (anywhere: `countries` is ["*"]); a country sees them in that order."""

    id: Slug
    name: Text
    description: Text
    countries: tuple[CountryCode, ...] = Field(min_length=1)
    languages: tuple[LanguageCode, ...] = Field(min_length=1)
    needs: tuple[Need, ...] = Field(min_length=1)
    scope: Literal["local", "regional", "international"]
    channels: tuple[Channel, ...] = Field(min_length=1)
    hours: Text
    response_time: Text
    source: HttpUrl

    @model_validator(mode="after")
    def _scope_fits_countries(self) -> Contact:
        if (self.scope == "international") != ("*" in self.countries):
            raise ValueError('scope international goes with countries ["*"], and only with it')
        return self


class ContactList(Translated):
    contacts: tuple[Contact, ...]


class LanguageInfo(Strict):
    name: Text
    direction: Literal["ltr", "rtl"] = "ltr"


PLURAL_CATEGORIES = ("zero", "one", "two", "few", "many", "other")


class Plural(Strict):
    """A string that takes a count: one text per CLDR plural category the language has
    (Arabic: zero, one, two, few, many, other), chosen by the `number` placeholder's value."""

    number: Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]*$")] = "count"
    zero: Text | None = None
    one: Text | None = None
    two: Text | None = None
    few: Text | None = None
    many: Text | None = None
    other: Text

    def forms(self) -> dict[str, str]:
        return {c: text for c in PLURAL_CATEGORIES if (text := getattr(self, c)) is not None}


class Strings(Translated):
    language: LanguageInfo
    strings: dict[Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.]+$")], Text | Plural]


URGENCIES = ("critical", "high", "normal")
REQUIRED_QUESTIONS = ("what", "when", "where", "who", "urgency", "contact", "consent")


class Question(Strict):
    """One interview question. `where` must be a country question, `urgency` and `consent`
    choices (urgency: critical, high, normal; consent: yes, no), because routing reads them."""

    id: Slug
    text: Text
    kind: Literal["text", "choice", "country"] = "text"
    choices: dict[Slug, Text] = Field(default_factory=dict)
    attachments: bool = False


class Interview(Translated):
    intro: Text
    questions: tuple[Question, ...] = Field(min_length=1)
