"""Referrals end to end: each guide option reaches the contacts for its need, nearest first,
in the user's country (asked once, remembered, changeable, forgotten); no number twice."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.content.countries import country_name
from bot.content.library import Library, Translator
from bot.content.schema import NEEDS, Channel, Contact, Guide, contacts_need
from bot.model import Reply
from handlers.context import MORE
from handlers.referrals import ANYWHERE, distinct, lines, number_of, ranked
from tests.fakes import FakeUser

LANGUAGES = ("en", "es", "fr", "ar")
RLM = "\u200f"

# What a person who presses these (English) options needs: the issue's own examples.
EXPECTED = {
    ("harassment-doxxing", "threats"): "physical",  # The threat feels real or close
    ("harassment-doxxing", "doxxing"): "physical",  # I feel physically unsafe
    ("device-lost-seized", "seized"): "legal",  # Get legal or other help now
    ("harassment-doxxing", "intimate-images"): "psychosocial",  # Talk to someone
}


def _path(guide: Guide, target: str) -> list[int]:
    """Option indexes leading from the start node to `target` (breadth first)."""
    paths: dict[str, list[int]] = {guide.start: []}
    todo = [guide.start]
    while todo:
        node = todo.pop(0)
        for i, option in enumerate(guide.nodes[node].options):
            if option.next in guide.nodes and option.next not in paths:
                paths[option.next] = [*paths[node], i]
                todo.append(option.next)
    return paths[target]


def _referrals(t: Translator) -> list[tuple[Guide, str, int, str]]:
    """Every (guide, node, option index, need) whose option leads to contacts."""
    found = []
    for guide in t.guides():
        for node_id, node in guide.nodes.items():
            for i, option in enumerate(node.options):
                if (need := contacts_need(option.next)) is not None:
                    found.append((guide, node_id, i, need))
    return found


def _nearest_country(contacts: tuple[Contact, ...], need: str) -> str:
    """A country with a local organisation for `need`, else a regional one, else anywhere."""
    for scope in ("local", "regional"):
        for contact in contacts:
            if contact.scope == scope and need in contact.needs:
                return contact.countries[0]
    return ANYWHERE


async def _all_pages(person: FakeUser, first: Reply) -> str:
    pages = [first.text]
    while any(c.id == MORE for c in person.last.choices):
        pages.append((await person.press_id(MORE)).text)
    return re.sub(r"\n\n\(\d+/\d+\)$", "", "\n\n".join(pages).replace(RLM, ""), flags=re.M)


INVISIBLE = "\u200f\u2066\u2067\u2068\u2069"
"""Direction marks and isolates: around names in right-to-left text, never seen."""


def _shown(text: str, contacts: tuple[Contact, ...]) -> list[Contact]:
    """Contacts in the order their blocks appear on screen (a block opens with 'name · ')."""
    by_name = {c.name: c for c in contacts}
    heads = [block.split(" · ")[0].strip(INVISIBLE) for block in text.split("\n\n")]
    return [by_name[head] for head in heads if head in by_name]


def test_options_named_in_the_issue_lead_to_the_right_need(library: Library) -> None:
    english = library.translator("en")
    needs = {(g.id, node): need for g, node, _, need in _referrals(english)}
    for where, need in EXPECTED.items():
        assert needs[where] == need, where
    assert {need for *_, need in _referrals(english)} >= {"digital", "legal", "physical"}


@pytest.mark.parametrize("language", LANGUAGES)
async def test_every_contacts_option_shows_its_need_nearest_first(
    make_user: Callable[..., FakeUser], library: Library, language: str
) -> None:
    t = library.translator(language)
    english = library.translator("en")
    contacts = t.contacts()
    referrals = _referrals(t)
    assert referrals, f"{language}: no guide option leads to contacts"
    for n, (guide, node, index, need) in enumerate(referrals):
        theirs = english.guide(guide.id)
        assert theirs is not None
        assert contacts_need(theirs.nodes[node].options[index].next) == need, (guide.id, node)
        person = make_user(platform_id=f"ref-{language}-{n}", hint=language)
        await person.say("/start")
        await person.press_id(f"lang:{language}")
        await person.press_id("menu:guides")
        await person.press_id(f"topic:{library.packs['en'].guides[guide.id].topic}")
        await person.press_id(f"guide:{guide.id}")
        for step in _path(guide, node):
            await person.press_id(f"opt:{step}")
        asked = await person.press_id(f"opt:{index}")
        assert t("contacts.country").split("\n")[0] in asked.text.replace(RLM, "")
        country = _nearest_country(contacts, need)
        if country == ANYWHERE:
            reply = await person.press_id(f"country:{ANYWHERE}")
        else:
            reply = await person.say(country_name(country, language))
        text = await _all_pages(person, reply)
        where = country_name(country, language) if country != ANYWHERE else None
        head = t("contacts.results", need=t(f"need.{need}"), where=where or "")
        assert head.split(" (")[0] in text.split("\n")[0], (guide.id, node, text[:200])
        shown = _shown(text, contacts)
        expected = ranked(contacts, need, None if country == ANYWHERE else country, language)
        assert shown == expected, (guide.id, node)
        assert all(need in c.needs for c in shown)
        if country != ANYWHERE:
            assert shown[0].scope != "international", (guide.id, node, country)
            assert country in shown[0].countries


async def test_local_before_regional_before_international(user: FakeUser, library: Library) -> None:
    contacts = library.translator("en").contacts()
    await user.press("People who can help")
    await user.press_id("need:physical")
    reply = await user.say("Kenya")
    scopes = [c.scope for c in _shown(await _all_pages(user, reply), contacts)]
    assert scopes[0] == "local" and "regional" in scopes, scopes  # DefendDefenders is regional
    assert scopes == sorted(scopes, key=["local", "regional", "international"].index)


def _numbers(text: str) -> list[str]:
    found = re.findall(r"\+?\d[\d ()./-]{5,}\d", text)
    return [n for raw in found if (n := number_of(Channel(kind="phone", value=raw)))]


async def test_danger_screen_gives_two_different_lines(user: FakeUser, library: Library) -> None:
    await user.press("digital security problem")
    danger = await _all_pages(user, await user.press("Yes, I may be in danger"))
    numbers = _numbers(danger)
    assert numbers and len(numbers) == len(set(numbers)), danger
    physical = ranked(library.translator("en").contacts(), "physical", None, "en")
    assert _shown(danger, library.translator("en").contacts()) == distinct(physical, 2)
    assert physical[0].name in danger


@pytest.mark.parametrize("language", LANGUAGES)
async def test_no_screen_lists_a_number_twice(
    make_user: Callable[..., FakeUser], library: Library, language: str
) -> None:
    person = make_user(platform_id=f"dedupe-{language}", hint=language)
    await person.say("/start")
    await person.press_id(f"lang:{language}")
    await person.press_id("menu:contacts")
    await person.press_id("need:digital")
    for country in (ANYWHERE, "KE", "LB", "PK", "SN", "MX", "CO"):
        if country == ANYWHERE:
            await person.press_id(f"country:{ANYWHERE}")
        else:
            await person.say(country_name(country, language))
        for need in NEEDS:
            await person.press_id("contacts:other")
            text = await _all_pages(person, await person.press_id(f"need:{need}"))
            counts = Counter(_numbers(text))
            assert all(k == 1 for k in counts.values()), (need, country, counts)
        await person.press_id("contacts:country")


def _contact(ident: str, *numbers: str, scope: str = "international") -> Contact:
    return Contact.model_validate(
        {
            "id": ident,
            "name": ident.title(),
            "description": "d",
            "countries": ["*"] if scope == "international" else ["PK"],
            "languages": ["en"],
            "needs": ["physical"],
            "scope": scope,
            "channels": [{"kind": "phone", "value": n} for n in numbers]
            + [{"kind": "web", "value": f"https://{ident}.example/"}],
            "hours": "h",
            "response_time": "r",
            "source": f"https://{ident}.example/",
        }
    )


def test_numbers_are_compared_as_digits() -> None:
    spellings = ["+353 1 210 0489", "00353 1 2100489", "+353-1-210-0489", "+353 (1) 210.0489"]
    assert {number_of(Channel(kind="phone", value=s)) for s in spellings} == {"35312100489"}
    assert number_of(Channel(kind="web", value="https://example.org/")) is None
    assert number_of(Channel(kind="email", value="help@example.org")) is None


def test_a_shared_line_is_named_once_and_referred_to_after() -> None:
    first = _contact("alpha", "+353 1 210 0489")
    second = _contact("beta", "00353 1 2100489", "+44 20 7946 0000")
    shown = lines([first, second])
    assert [line.first_shown_by for line in shown[0][1]] == [None, None]
    assert [line.first_shown_by for line in shown[1][1]] == ["Alpha", None, None]
    assert distinct([first, _contact("gamma", "+353 1 210 0489"), second], 2) == [first, second]


_SPELLINGS = st.sampled_from(["+{}", "00{}", "+{} ", "+ {}"])


@st.composite
def _spelled(draw: st.DrawFn) -> str:
    """One of a few numbers, written as people write them (spaces, dashes, 00 or +)."""
    digits = draw(st.sampled_from(["35312100489", "96181633133", "221338690322"]))
    cuts = sorted(draw(st.sets(st.integers(1, len(digits) - 1), max_size=4)))
    parts = [digits[i:j] for i, j in zip([0, *cuts], [*cuts, len(digits)], strict=True)]
    separator = draw(st.sampled_from([" ", "-", ".", " "]))
    return draw(_SPELLINGS).format(separator.join(parts)).strip()


@given(st.lists(st.lists(_spelled(), min_size=1, max_size=3), min_size=1, max_size=6))
def test_any_spelling_of_a_number_is_shown_once(numbers: list[list[str]]) -> None:
    contacts = [_contact(f"c{i}", *mine) for i, mine in enumerate(numbers)]
    shown = [
        number_of(line.channel)
        for _, mine in lines(contacts)
        for line in mine
        if line.first_shown_by is None and line.channel.kind == "phone"
    ]
    assert (
        len(shown)
        == len(set(shown))
        == len({number_of(Channel(kind="phone", value=n)) for mine in numbers for n in mine})
    )


def test_ranking_sends_nobody_to_a_country_they_are_not_in() -> None:
    local, world = _contact("near", "+92 1", scope="local"), _contact("far", "+1 2")
    assert ranked([world, local], "physical", "PK", "en") == [local, world]
    assert ranked([world, local], "physical", "KE", "en") == [world]
    assert ranked([world, local], "physical", None, "en") == [world]
    assert ranked([world, local], "legal", "PK", "en") == []


async def test_country_is_asked_once_remembered_changeable_and_forgotten(
    user: FakeUser,
) -> None:
    await user.press("People who can help")
    await user.press("Digital security")
    assert "Which country are you in?" in user.last.text
    pakistan = await user.say("Pakistan")
    assert "Digital security (Pakistan)" in pakistan.text
    assert pakistan.text.split("\n\n")[1].startswith("Digital Rights Foundation")

    await user.press("Another kind of help")
    legal = await user.press("Legal aid")
    assert "Legal aid (Pakistan)" in legal.text, "the country is not asked again"

    await user.press("Main menu")
    await user.press("digital security problem")
    await user.press("Accounts and messages")
    await user.press("hacked")
    await user.press("I can't log in")
    await user.press("Recovery didn't work")
    guide = await user.press("See support contacts")
    assert "Digital security (Pakistan)" in guide.text, "a guide uses the remembered country"

    asked = await user.press("Change country")
    assert "Which country are you in?" in asked.text
    kenya = await user.say("Kenya")
    assert "Digital security (Kenya)" in kenya.text
    back = await user.press("Back")
    assert "Which country" not in back.text and "Digital security (" not in back.text
    await user.press("Main menu")
    await user.press("People who can help")
    again = await user.press("Emotional support")
    assert "Emotional support (Kenya)" in again.text

    state = (await user.app.sessions.load(user.app.pseudonyms.user("fake", "1001"))).state
    assert state["country"] == "KE"
    await user.say("/forget")
    await user.press("Yes, delete everything")
    loaded = await user.app.sessions.load(user.app.pseudonyms.user("fake", "1001"))
    assert "country" not in loaded.state and not loaded.known
    await user.say("/start")
    await user.press("English")
    await user.press("People who can help")
    assert "Which country are you in?" in (await user.press("Emotional support")).text


async def test_anywhere_is_remembered_as_a_choice_too(user: FakeUser) -> None:
    await user.press("People who can help")
    await user.press("Legal aid")
    international = await user.press("Anywhere")
    assert "Legal aid (international)" in international.text
    await user.press("Another kind of help")
    assert "Medical help (international)" in (await user.press("Medical help")).text


async def test_danger_screen_uses_the_remembered_country(user: FakeUser) -> None:
    await user.press("People who can help")
    await user.press("Physical protection")
    await user.say("Colombia")
    await user.press("Main menu")
    await user.press("digital security problem")
    danger = await user.press("Yes, I may be in danger")
    assert "Peace Brigades International" in danger.text.split("\n\n")[1]
    more = await user.press("More people who can help")
    assert "Physical protection or relocation (Colombia)" in more.text
