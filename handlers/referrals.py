"""Who to send a person to: contacts for a need in a country, nearest first, each number once."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.content.schema import Channel, Contact

__all__ = ["ANYWHERE", "RANK", "Line", "distinct", "lines", "number_of", "ranked"]

ANYWHERE = "*"
RANK = {"local": 3, "regional": 2, "international": 1}
_NUMBER = re.compile(r"^\+?[\d\s().\-/]{6,}$")


def ranked(
    contacts: Iterable[Contact], need: str, country: str | None, language: str
) -> list[Contact]:
    """Contacts for `need` that serve `country`: local, then regional, then international;
    speaking the user's language breaks ties, then the order of the file. With no country
    (or "anywhere"), only international ones: nobody is sent to a country they are not in."""
    scored: list[tuple[int, int, int, Contact]] = []
    for order, contact in enumerate(contacts):
        if need not in contact.needs:
            continue
        serves = contact.scope == "international" or (
            country not in (None, ANYWHERE) and country in contact.countries
        )
        if serves:
            scored.append((-RANK[contact.scope], -(language in contact.languages), order, contact))
    return [contact for *_, contact in sorted(scored, key=lambda s: s[:3])]


def number_of(channel: Channel) -> str | None:
    """The channel's phone number as digits only ("+353 1 210 0489" and "00353 1 2100489"
    are one number), or None when the value is not a number (a web page, an address)."""
    value = channel.value.strip()
    if not _NUMBER.match(value):
        return None
    digits = re.sub(r"\D", "", value)
    if value.startswith("00"):
        digits = digits[2:]
    return digits if len(digits) >= 6 else None


@dataclass(frozen=True, slots=True)
class Line:
    """One channel as shown: `first_shown_by` names the contact above that gave this number."""

    channel: Channel
    first_shown_by: str | None = None


def lines(contacts: Sequence[Contact]) -> list[tuple[Contact, list[Line]]]:
    """Every channel of every contact, a number shown before marked with who showed it, so
    no screen lists one number twice (two programmes sharing one emergency line, say)."""
    seen: dict[str, str] = {}
    shown: list[tuple[Contact, list[Line]]] = []
    for contact in contacts:
        mine: list[Line] = []
        for channel in contact.channels:
            number = number_of(channel)
            if number is not None and number in seen:
                mine.append(Line(channel, seen[number]))
                continue
            if number is not None:
                seen[number] = contact.name
            mine.append(Line(channel))
        shown.append((contact, mine))
    return shown


def distinct(contacts: Sequence[Contact], limit: int) -> list[Contact]:
    """The first `limit` contacts that each give a number not given above (contacts with no
    number at all count too): a short list must not spend a place on the same line twice."""
    seen: set[str] = set()
    picked: list[Contact] = []
    for contact in contacts:
        numbers = {n for c in contact.channels if (n := number_of(c)) is not None}
        if numbers and numbers <= seen:
            continue
        seen |= numbers
        picked.append(contact)
        if len(picked) == limit:
            break
    return picked
