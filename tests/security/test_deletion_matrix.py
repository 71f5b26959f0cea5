"""Matrix deletion keeps its word: what the bot says it deleted is redacted on the homeserver,
and where it cannot delete (a DM the person created, the bot at power level 0) it says so.

The room is read back as the person, through the homeserver's `/messages`: a redacted
event comes back with empty content. The first tests are pure (power rules, counting,
wording); the rest run on a real Synapse.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from nio import RoomGetStateResponse, RoomPreset

from bot.content.library import Library
from bot.model import ChatRef
from bot.transports.matrix.candour import forget_tail
from bot.transports.matrix.erase import History, Tally, erase
from bot.transports.matrix.power import can_redact
from tests.matrix.activist import Activist, Chat
from tests.matrix.faulty_proxy import FaultyProxy
from tests.matrix.fixtures import Bot, unique
from tests.matrix.homeserver import Synapse

BOT = "@bot:hrd.test"
ANA = "@ana:hrd.test"
NOTICE = "I can delete only my own messages"
INVITED = "invited you to a new private chat where I can delete everything"


def _create(version: str, sender: str = ANA, **extra: Any) -> dict[str, Any]:
    content = {"room_version": version, **extra}
    return {"type": "m.room.create", "state_key": "", "sender": sender, "content": content}


def _levels(users: dict[str, Any], **extra: Any) -> dict[str, Any]:
    content = {"users": users, **extra}
    return {"type": "m.room.power_levels", "state_key": "", "sender": ANA, "content": content}


def test_room_version_12_creators_may_redact_without_a_power_level() -> None:
    assert can_redact([_create("12", BOT), _levels({})], BOT)
    assert can_redact([_create("12", ANA, additional_creators=[BOT]), _levels({})], BOT)
    assert not can_redact([_create("12", ANA), _levels({ANA: 100})], BOT)
    assert not can_redact([_create("12", ANA), _levels({BOT: 49})], BOT)
    assert can_redact([_create("12", ANA), _levels({BOT: 50})], BOT)


def test_older_rooms_follow_the_power_levels_only() -> None:
    assert not can_redact([_create("10", BOT), _levels({ANA: 100})], BOT), "creator, demoted"
    assert can_redact([_create("10", BOT)], BOT), "no power levels yet: the creator has 100"
    assert not can_redact([_create("10", ANA)], BOT)
    assert can_redact([_create("10", ANA), _levels({BOT: 10}, redact=5)], BOT)
    assert not can_redact([_create("10", ANA), _levels({BOT: "100"})], BOT), "not an integer"
    assert not can_redact([_create("10", ANA), _levels({}, users_default=True)], BOT)
    assert not can_redact([], BOT), "no create event: no power assumed"


async def _erase(history: History, power: bool, refused: set[str]) -> tuple[Tally, list[str]]:
    asked: list[str] = []

    async def redact(event_id: str) -> bool:
        asked.append(event_id)
        return event_id not in refused

    return await erase(history, BOT, power, ["$old", "$mine1"], redact), asked


async def test_forget_counts_only_redactions_the_server_accepted() -> None:
    history = History(
        live=[("$mine1", BOT), ("$theirs1", ANA), ("$mine2", BOT), ("$theirs2", ANA)],
        seen={"$mine1", "$theirs1", "$mine2", "$theirs2", "$gone"},
    )
    tally, asked = await _erase(history, power=False, refused={"$mine2"})
    assert sorted(asked) == ["$mine1", "$mine2", "$old"], "never the person's without power"
    assert tally == Tally(deleted=2, theirs_left=2, failed=1)
    tally, asked = await _erase(history, power=True, refused=set())
    assert sorted(asked) == ["$mine1", "$mine2", "$old", "$theirs1", "$theirs2"]
    assert tally == Tally(deleted=5, theirs_left=0, failed=0)


def test_the_last_words_name_what_is_left(library: Library) -> None:
    for code in ("en", "es", "fr", "ar"):
        t = library.translator(code)
        full = forget_tail(t, Tally(7, 0, 0))
        assert "7" in full and t("matrix.forget_leaving") in full
        assert t("matrix.forget_theirs_left", count=0)[:12] not in full
        partial = forget_tail(t, Tally(3, 5, 2, complete=False))
        for line in (
            t("matrix.forget_theirs_left", count=5),
            t("matrix.forget_failed", count=2),
            t("matrix.forget_unchecked"),
        ):
            assert line in partial
    assert library.translator("en")("forget.done") == (
        "Done. Everything the bot kept about you is deleted."
    ), "the transport says how to start again, where that is true"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@given(
    create=st.dictionaries(st.sampled_from(["room_version", "additional_creators"]), _JSON),
    levels=st.dictionaries(st.sampled_from(["users", "users_default", "redact"]), _JSON),
    sender=st.sampled_from([BOT, ANA, 7]),
)
def test_hostile_room_state_grants_nothing_unexpected(
    create: dict[str, Any], levels: dict[str, Any], sender: Any
) -> None:
    """The person shapes the room's state: any of it gives a yes or no, never an error,
    and a person's room that lists the bot nowhere never grants it the power."""
    state = [
        {"type": "m.room.create", "state_key": "", "sender": sender, "content": create},
        {"type": "m.room.power_levels", "state_key": "", "content": levels},
        "not an event",
    ]
    granted = can_redact(state, BOT)
    assert isinstance(granted, bool)
    named = BOT in repr(create) or BOT in repr(levels)
    default = levels.get("users_default")
    redact = levels.get("redact")
    open_door = (isinstance(default, int) and default > 0) or (
        isinstance(redact, int) and redact <= 0
    )
    if sender != BOT and not named and not open_door:
        assert not granted


# --- on Synapse ---------------------------------------------------------------------------


def _messages(events: list[dict[str, Any]], sender: str) -> tuple[set[str], set[str]]:
    """The sender's message events in the room: (still readable, redacted)."""
    live: set[str] = set()
    gone: set[str] = set()
    for event in events:
        if event["sender"] != sender or "state_key" in event or event["type"] == "m.room.redaction":
            continue
        redacted = not event.get("content") or "redacted_because" in event.get("unsigned", {})
        (gone if redacted else live).add(event["event_id"])
    return live, gone


async def _contacts(chat: Chat) -> str:
    """A sensitive step: the contact list (its reply expires)."""
    await chat.pick("People who can help")
    shown = await chat.pick("Legal aid")
    if "Best matches first" in shown:  # the country is remembered from an earlier step
        return shown
    return await chat.pick("Anywhere")


async def _until_redacted(chat: Chat, *event_ids: str) -> None:
    await chat.until(lambda: set(event_ids) <= chat.log.redacted, wait=20)


async def _forget(chat: Chat, settled: Callable[[], list[str]]) -> tuple[str, Any]:
    """`/forget`, confirmed once the events in `settled()` have expired; returns the last
    message and the room's history just before the confirmation."""
    confirm = await chat.say("/forget")
    assert "Delete everything now?" in confirm
    await _until_redacted(chat, *settled())
    before = await chat.activist.history(chat.room_id)
    done = await chat.pick("Yes, delete everything")
    await asyncio.wait_for(chat.log.bot_left.wait(), 30)
    return done, before


async def test_in_a_dm_the_person_created_the_bot_says_what_it_cannot_delete(
    bot: Bot, activist: Activist
) -> None:
    bot.sensitive_ttl = timedelta(seconds=1)
    await bot.restart()
    chat = await activist.open_dm(preset=RoomPreset.private_chat)
    await chat.pick("English")
    notice = await _contacts(chat)
    assert NOTICE in notice and INVITED in notice, "said before the first sensitive reply"
    assert "Remove" in notice, "and how the person deletes theirs"
    results = await chat.reply()
    assert "Best matches first" in results or "no contact" in results
    offered = await asyncio.wait_for(activist.invites.get(), 30)
    assert offered != chat.room_id
    await _until_redacted(chat, chat.log.bot_events[-1])
    again = await _contacts(await _to_menu(chat))
    assert NOTICE not in again, "once per room"
    sensitive = [chat.log.bot_events[-1]]
    theirs_before = set(chat.log.own_events)

    def settled() -> list[str]:
        return [*sensitive, chat.log.bot_events[-1]]  # the results and the confirmation

    done, before = await _forget(chat, settled)
    after = await activist.history(chat.room_id)
    bot_live_before, _ = _messages(before, bot.account.user_id)
    bot_live_after, bot_gone = _messages(after, bot.account.user_id)
    theirs_live, theirs_gone = _messages(after, activist.account.user_id)
    assert bot_live_after == {chat.log.bot_events[-1]}, "only the last message stays"
    assert bot_live_before <= bot_gone
    assert not theirs_gone, "the bot had no power over the person's messages"
    assert theirs_before < theirs_live
    assert "Everything the bot kept about you is deleted." in done
    assert f"Messages deleted in this chat: {len(bot_live_before)}." in done
    assert f"Your messages I have no right to delete here: {len(theirs_live)}." in done
    assert "could not delete" not in done
    assert "I am leaving this chat now" in done and "Send any message" not in done


async def _to_menu(chat: Chat) -> Chat:
    await chat.say("/menu")
    return chat


async def test_in_a_dm_the_bot_created_everything_goes_even_after_a_restart(
    bot: Bot, activist: Activist
) -> None:
    bot.sensitive_ttl = timedelta(seconds=1)
    await bot.restart()
    plain = await activist.open_dm(encrypted=False)
    await plain.reply()
    chat = await activist.accept_next_invite()
    state = await activist.client.room_get_state(chat.room_id)
    assert isinstance(state, RoomGetStateResponse), state
    create = next(e for e in state.events if e["type"] == "m.room.create")
    levels = next(e for e in state.events if e["type"] == "m.room.power_levels")
    assert create["content"]["room_version"] == "12" and create["sender"] == bot.account.user_id
    assert bot.account.user_id not in levels["content"].get("users", {}), (
        "a creator is not in the power levels: nio alone would say the bot cannot redact"
    )
    await bot.restart()  # the power to redact is read from the room, not from memory
    await chat.pick("English")
    results = await _contacts(chat)
    assert NOTICE not in results
    assert "Best matches first" in results or "no contact" in results
    asked = chat.log.own_events[-1]  # the person's message that led to the contact list
    await _until_redacted(chat, chat.log.bot_events[-1], asked)
    kept, _ = _messages(await activist.history(chat.room_id), activist.account.user_id)
    assert kept and asked not in kept, "only the sensitive step's message expired"

    def settled() -> list[str]:
        return [chat.log.bot_events[-1], chat.log.own_events[-1]]  # confirmation, "/forget"

    done, before = await _forget(chat, settled)
    after = await activist.history(chat.room_id)
    bot_live_before, _ = _messages(before, bot.account.user_id)
    theirs_live_before, _ = _messages(before, activist.account.user_id)
    bot_live_after, _ = _messages(after, bot.account.user_id)
    theirs_live_after, _ = _messages(after, activist.account.user_id)
    assert bot_live_after == {chat.log.bot_events[-1]}, "only the last message stays"
    assert not theirs_live_after, "the person's messages are gone too"
    deleted = len(bot_live_before) + len(theirs_live_before) + 1  # and the "Yes"
    assert f"Messages deleted in this chat: {deleted}." in done
    assert "no right to delete" not in done and "could not delete" not in done
    assert "I am leaving this chat now" in done


async def test_forget_redacts_a_reply_whose_send_answer_was_lost(
    synapse: Synapse, tmp_path: Path, library: Library
) -> None:
    """Synapse stored the reply, the bot never learned its event id (the answer was lost,
    nio's retry refused): /forget finds it in the room's history all the same."""
    proxy = await FaultyProxy(synapse.url).start()
    account = synapse.register(unique("bot"))
    bot = Bot(synapse, account, tmp_path / "bot", library, homeserver=proxy.url)
    await bot.start()
    name = unique("activist")
    ana = Activist(synapse.url, synapse.register(name), tmp_path / name, account.user_id)
    try:
        await ana.start()
        chat = await ana.open_dm()
        await chat.pick("English")
        proxy.lose_answer(chat.room_id)
        proxy.fail(chat.room_id, 502, times=1)
        assert "/forget" in await chat.say("/help"), "the person got it"
        lost = chat.log.bot_events[-1]
        assert [s.status for s in proxy.sends(chat.room_id)[-2:]] == [0, 502]
        done, before = await _forget(chat, list)
        after = await ana.history(chat.room_id)
        bot_live_before, _ = _messages(before, account.user_id)
        theirs_live_before, _ = _messages(before, ana.account.user_id)
        bot_live_after, bot_gone = _messages(after, account.user_id)
        assert lost in bot_live_before and lost in bot_gone
        assert bot_live_after == {chat.log.bot_events[-1]}
        deleted = len(bot_live_before) + len(theirs_live_before) + 1
        assert f"Messages deleted in this chat: {deleted}." in done
    finally:
        await ana.stop()
        await bot.stop()
        await proxy.stop()


async def test_a_check_in_in_a_dm_the_person_created_comes_after_the_notice(
    bot: Bot, activist: Activist
) -> None:
    """The notice is the transport's, so it comes before any sensitive message, even one
    the bot sends by itself (a check-in question) rather than in answer."""
    assert bot.app is not None
    chat = await activist.open_dm(preset=RoomPreset.private_chat)
    assert NOTICE not in await chat.pick("English")
    user = bot.app.pseudonyms.user("matrix", activist.account.user_id)
    await bot.app.push(user, ChatRef("matrix", chat.room_id, private=True))
    notice = await chat.reply()
    assert NOTICE in notice and INVITED in notice
    assert "are you safe right now?" in await chat.reply()
