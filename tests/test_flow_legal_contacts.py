"""Legal information by country and topic, and contacts by need, country and language."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.content.countries import country_name
from bot.content.library import Library
from bot.content.script import date_text
from tests.fakes import FakeUser

pytestmark = pytest.mark.backends


@pytest.mark.parametrize(
    ("language", "typed"),
    [("en", "colombia"), ("es", "Colombia"), ("fr", "colombie"), ("ar", "كولومبيا")],
)
async def test_country_typed_in_any_language(
    make_user: Callable[..., FakeUser], library: Library, language: str, typed: str
) -> None:
    person = make_user(platform_id=f"legal-{language}", hint=language)
    await person.say("/start")
    await person.press_id(f"lang:{language}")
    await person.press_id("menu:legal")
    topics = await person.say(typed)
    assert country_name("CO", language) in topics.text
    assert [c.id for c in topics.choices][:4] == [
        "topic:arrest",
        "topic:protest",
        "topic:surveillance",
        "topic:registration",
    ]


async def test_topic_shows_sources_review_date_and_sample_warning(
    user: FakeUser, library: Library
) -> None:
    await user.press("Legal information")
    country = library.countries()[0]
    await user.press(country_name(country, "en"))
    reply = await user.press("Arrest and detention")
    legal = library.translator("en").legal(country)
    assert legal is not None
    topic = legal.topics["arrest"]
    pages = [reply.text]
    while "More ▸" in user.labels():
        pages.append((await user.press("More ▸")).text)
    full = "\n".join(pages)
    assert str(topic.sources[0].url) in full
    assert f"Last reviewed: {date_text(topic.last_reviewed, 'en')}" in full
    assert "Sample information, not legal advice" in full


async def test_country_without_legal_content_says_so(user: FakeUser) -> None:
    await user.press("Legal information")
    reply = await user.say("Iceland")
    assert "no legal information for Iceland" in reply.text


async def test_unknown_country_name_asks_again(user: FakeUser) -> None:
    await user.press("Legal information")
    reply = await user.say("Atlantis")
    assert "did not recognise that country" in reply.text
    assert "Which country?" in reply.text


async def test_contacts_best_matches_first(user: FakeUser, library: Library) -> None:
    await user.press("People who can help")
    await user.press("Digital security")
    reply = await user.press("Anywhere")
    assert "Best matches first" in reply.text
    assert reply.sensitive
    digital = [
        c
        for c in library.translator("en").contacts()
        if "digital" in c.needs and "*" in c.countries
    ]
    english_first = sorted(digital, key=lambda c: "en" not in c.languages)
    assert english_first[0].name in reply.text.split("\n\n")[1]


async def test_contacts_for_a_country_put_local_organisations_first(
    user: FakeUser, library: Library
) -> None:
    contacts = library.translator("en").contacts()
    local = next((c for c in contacts if "*" not in c.countries), None)
    if local is None:
        pytest.skip("shipped contacts are all international")
    need = local.needs[0]
    await user.press("People who can help")
    await user.press_id(f"need:{need}")
    reply = await user.say(country_name(local.countries[0], "en"))
    assert reply.text.split("\n\n")[1].startswith(local.name)


async def test_unserved_need_in_contacts_is_explained(user: FakeUser) -> None:
    await user.press("People who can help")
    await user.press("Medical help")
    reply = await user.press("Anywhere")
    assert "Best matches" in reply.text or "no contact for" in reply.text


async def test_a_typed_number_picks_on_a_country_screen(user: FakeUser) -> None:
    """A country screen takes typed names, and a number (what console and Matrix users
    type) still picks the numbered choice: no country is called "3"."""
    await user.press("People who can help")
    screen = await user.press("Digital security")
    number = next(i for i, c in enumerate(screen.choices, 1) if "Anywhere" in c.label)
    assert "Best matches first" in (await user.say(str(number))).text


async def test_legal_aid_from_legal_information_is_for_that_country(
    user: FakeUser, library: Library
) -> None:
    """The country of the legal information is the one the legal aid is for; a local
    organisation comes first, and "Change country" asks (and remembers) another."""
    await user.press("Legal information")
    await user.say("Colombia")
    aid = await user.press("Find legal aid")
    assert "Legal aid (Colombia)" in aid.text
    first = aid.text.split("\n\n")[1]
    local = [
        c
        for c in library.translator("en").contacts()
        if c.scope == "local" and "CO" in c.countries and "legal" in c.needs
    ]
    assert local and first.startswith(local[0].name)
    await user.press("Change country")
    assert "Legal aid (international)" in (await user.press("Anywhere")).text
