"""Every console flow again, end to end in an end-to-end encrypted DM on a real Synapse."""

from __future__ import annotations

import asyncio
import sqlite3

from bot.content.library import Library
from tests.matrix.activist import Activist, Chat
from tests.matrix.fixtures import Bot
from tests.matrix.homeserver import Synapse

CANARY = "Kenya"
STEP = "①"


def homeserver_rows(synapse: Synapse, sql: str, *args: str) -> list[tuple[str, ...]]:
    """Read Synapse's own database, as someone who seized the homeserver would."""
    with sqlite3.connect(f"file:{synapse.database}?mode=ro", uri=True) as conn:
        return [tuple(str(v) for v in row) for row in conn.execute(sql, args)]


async def to_menu(chat: Chat) -> str:
    return await chat.say("/menu")


async def test_language_choice_then_menu(bot: Bot, activist: Activist) -> None:
    chat = await activist.open_dm()
    assert "Which language do you want to use?" in chat.last
    assert chat.number_of("English")
    menu = await chat.pick("Español")
    assert "Español" in menu or "español" in menu.casefold()
    again = await chat.say("/language")
    assert chat.number_of("English")
    menu = await chat.pick("English")
    assert "Language set to English." in menu
    assert "How can I help?" in menu
    assert again != menu


async def test_guide_first_step_deeper_and_back(
    bot: Bot, activist: Activist, library: Library
) -> None:
    guide = library.translator("en").guides()[0]
    chat = await activist.open_dm()
    await chat.pick("English")
    safety = await chat.pick("digital security problem")
    assert "physical danger" in safety
    await chat.pick(library.translator("en")(f"topic.{library.packs['en'].guides[guide.id].topic}"))
    first = await chat.pick(guide.title)
    assert STEP in first
    assert guide.title in first
    deeper = await chat.pick(guide.nodes[guide.start].options[0].label)
    assert deeper != first
    assert await chat.pick("Back") == first


async def test_legal_information_by_typed_country(bot: Bot, activist: Activist) -> None:
    chat = await activist.open_dm()
    await chat.pick("English")
    countries = await chat.pick("Legal information")
    assert "Type its name" in countries
    topics = await chat.say(CANARY)
    assert f"Legal information for {CANARY}" in topics
    topic = await chat.say("1")
    assert "Kenya" in topic.splitlines()[0]
    while "More ▸" in topic:
        topic = await chat.pick("More")
    assert "Sources:" in topic
    assert "Last reviewed" in topic


async def test_contacts_help_and_cancel(bot: Bot, activist: Activist) -> None:
    chat = await activist.open_dm()
    await chat.pick("English")
    assert "What kind of help" in await chat.pick("People who can help")
    assert "Which country" in await chat.pick("Legal aid") or chat.number_of("Anywhere")
    results = await chat.pick("Anywhere")
    assert "Best matches first" in results or "no contact" in results
    help_text = await chat.say("/help")
    assert "/forget" in help_text
    cancelled = await chat.say("/cancel")
    assert "Stopped." in cancelled
    assert "How can I help?" in cancelled


async def test_the_homeserver_sees_only_ciphertext(
    bot: Bot, activist: Activist, synapse: Synapse
) -> None:
    chat = await activist.open_dm()
    await chat.pick("English")
    await chat.pick("Legal information")
    await chat.say(CANARY)
    types = {row[0] for row in homeserver_rows(synapse, EVENT_TYPES, chat.room_id)}
    assert "m.room.encrypted" in types
    assert "m.room.message" not in types
    stored = " ".join(row[0] for row in homeserver_rows(synapse, EVENT_JSON, chat.room_id))
    for clear in (CANARY, "How can I help", "Which language", "Legal information"):
        assert clear not in stored


EVENT_TYPES = "SELECT type FROM events WHERE room_id = ?"
EVENT_JSON = "SELECT json FROM event_json WHERE room_id = ?"


async def test_forget_redacts_the_chat_and_leaves(bot: Bot, activist: Activist) -> None:
    chat = await activist.open_dm()
    await chat.pick("English")
    await chat.pick("Legal information")
    await chat.say(CANARY)
    confirm = await chat.say("/forget")
    assert "Delete everything now?" in confirm
    done = await chat.pick("Yes, delete everything")
    assert "Everything the bot kept about you is deleted" in done
    log = chat.log
    await asyncio.wait_for(log.bot_left.wait(), 30)
    earlier = log.bot_events[:-1]
    await chat.until(lambda: set(earlier) <= log.redacted)
    await chat.until(lambda: set(log.own_events) <= log.redacted)
    assert log.bot_events[-1] not in log.redacted, "the confirmation stays readable"
    again = await activist.open_dm()
    assert "Which language do you want to use?" in again.last, "nothing about them was kept"
