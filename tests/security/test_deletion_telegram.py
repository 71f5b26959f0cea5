"""Phone-seizure protection: sensitive replies expire, /forget wipes the chat, both survive a restart.

What the person wrote in a sensitive flow expires with the bot's replies; a send whose
answer was lost is deleted too; after /forget the confirmation says what Telegram
deleted, refused or has yet to delete. "Deleted" is checked on the emulator's chat.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.conversation.sweeper import Sweeper
from bot.crypto.keys import PrivateKey
from bot.model import ChatRef, Reply
from bot.transports.telegram.deleting import Erased
from bot.transports.telegram.forgotten import epilogue
from handlers.output import directed
from tests.telegram_emulator import Emulator, Message, SimUser
from tests.telegram_emulator.harness import (
    RunningBot,
    eventually,
    library,
    onboard,
    running_bot,
    trail_rows,
)
from tests.telegram_emulator.methods import delete_messages
from tests.telegram_emulator.world import ApiError, World
from tests.test_telegram_reports import PHOTO, WHAT, WHEN, finish_report, start_report

SECOND = timedelta(seconds=1)
FAST = timedelta(seconds=0.1)


@pytest.fixture
async def short_ttl(emu: Emulator, tmp_path: Path) -> AsyncIterator[RunningBot]:
    async with running_bot(
        emu, tmp_path / "x.db", sensitive_ttl=SECOND, sweep_interval=FAST
    ) as running:
        yield running


async def _contacts(user: SimUser) -> Message:
    """Open the contact list: a sensitive screen."""
    await user.choose("People who can help")
    await user.choose("Digital security")
    return (await user.choose("Anywhere / prefer not to say")).last


async def test_a_sensitive_reply_is_deleted_after_its_ttl(
    emu: Emulator, short_ttl: RunningBot
) -> None:
    ana = emu.user()
    menu = (await onboard(ana)).last
    contacts = await _contacts(ana)
    assert contacts in ana.seen()
    await emu.world.wait_for(lambda: contacts.deleted, within=5)
    assert menu in ana.seen(), "what is not sensitive stays"

    async def row_dropped() -> bool:
        rows = await trail_rows(short_ttl.app, ana.chat.id)
        return str(contacts.message_id) not in [message_id for message_id, _ in rows]

    await eventually(row_dropped)


async def test_a_pending_deletion_survives_a_restart(emu: Emulator, tmp_path: Path) -> None:
    ana = emu.user()
    slow = timedelta(hours=1)
    async with running_bot(emu, tmp_path / "x.db", sensitive_ttl=SECOND, sweep_interval=slow):
        await onboard(ana)
        contacts = await _contacts(ana)
    assert contacts in ana.seen(), "nothing deleted it before the stop"
    await asyncio.sleep(1.1)
    async with running_bot(emu, tmp_path / "x.db", sensitive_ttl=SECOND, sweep_interval=slow):
        await emu.world.wait_for(lambda: contacts.deleted, within=5)


async def test_forget_wipes_the_chat_then_its_own_confirmation_expires(
    emu: Emulator, short_ttl: RunningBot
) -> None:
    ana = emu.user()
    await onboard(ana)
    await ana.choose("Legal information")
    await ana.ask("Kenya")
    await ana.ask("/forget")
    await ana.press("Yes, delete everything")
    done = (await ana.answer(count=1)).last
    await emu.world.wait_for(lambda: ana.seen() == [done], within=5)
    await emu.world.wait_for(lambda: not ana.seen(), within=5)

    async def no_rows() -> bool:
        return await trail_rows(short_ttl.app, ana.chat.id) == []

    await eventually(no_rows)


async def test_what_telegram_no_longer_deletes_is_let_go(
    emu: Emulator, short_ttl: RunningBot
) -> None:
    ana = emu.user()
    await onboard(ana)
    old = ana.seen()
    emu.advance(49 * 3600)
    contacts = await _contacts(ana)
    await emu.world.wait_for(lambda: contacts.deleted, within=5)
    await ana.ask("/forget")
    await ana.press("Yes, delete everything")
    done = (await ana.answer(count=1)).last
    await emu.world.wait_for(lambda: ana.seen() == [*old, done], within=5)

    async def only_the_confirmation_left() -> bool:
        rows = await trail_rows(short_ttl.app, ana.chat.id)
        return [message_id for message_id, _ in rows] in ([str(done.message_id)], [])

    await eventually(only_the_confirmation_left)


async def test_an_expired_message_in_a_blocking_chat_waits_without_calls(
    emu: Emulator, short_ttl: RunningBot
) -> None:
    ana = emu.user()
    await onboard(ana)
    contacts = await _contacts(ana)
    ana.block()
    await emu.world.wait_for(lambda: len(emu.calls("deleteMessage")) == 1, within=5)
    await asyncio.sleep(0.5)
    assert len(emu.calls("deleteMessage")) == 1, "one refusal, then no more calls"
    assert contacts in ana.seen()
    ana.unblock()
    await ana.ask("/menu")
    await emu.world.wait_for(lambda: contacts.deleted, within=5)


async def test_the_sweeper_does_not_retry_what_telegram_refuses(
    emu: Emulator, tmp_path: Path
) -> None:
    ana = emu.user()
    async with running_bot(
        emu, tmp_path / "x.db", sensitive_ttl=SECOND, sweep_interval=FAST
    ) as running:
        await onboard(ana)
        emu.advance(49 * 3600)
        old_contacts = await _contacts(ana)
        emu.advance(49 * 3600)
        await emu.world.wait_for(lambda: bool(emu.calls("deleteMessage")), within=5)
        await asyncio.sleep(0.5)
        assert [c.status for c in emu.calls("deleteMessage")] == [400]
        assert old_contacts in ana.seen()
        rows = await trail_rows(running.app, ana.chat.id)
        assert str(old_contacts.message_id) not in [message_id for message_id, _ in rows]


async def test_a_wipe_that_fails_is_finished_by_the_sweeper(
    emu: Emulator, short_ttl: RunningBot
) -> None:
    ana = emu.user()
    await onboard(ana)
    await ana.ask("/forget")
    emu.fail("deleteMessages", 500, times=3)
    await ana.press("Yes, delete everything")
    await ana.answer(count=1)
    await emu.world.wait_for(lambda: not ana.seen(), within=5)
    assert [c.status for c in emu.calls("deleteMessages")] == [500, 500, 500]


# A person's own messages, lost sends, and what /forget says (issue 11, item 4).

LATER = 2 * 3600.0
"""Past every time to live the tests set (an hour), within Telegram's 48 hours."""
GONE = "messages of this chat, yours and the bot's, are now gone."
YOURSELF = 'choose "Delete chat" or "Clear history"'
AGAIN = "Send any message to start again."


@pytest.fixture
async def team(emu: Emulator, tmp_path: Path) -> AsyncIterator[tuple[RunningBot, SimUser]]:
    """The bot with a staff group (where staff may reply) and an hour's time to live."""
    (alice,) = emu.group("Protection team", "Alice", supergroup=True)
    room = ChatRef("telegram", str(alice.chat.id), private=False)
    async with running_bot(
        emu, tmp_path / "x.db", staff_rooms=(room,), staff_without_device="all"
    ) as running:
        store = running.app.casework.store
        identity = running.app.pseudonyms.user("telegram", str(alice.person.id)).key
        await store.add_staff("Alice", [identity], PrivateKey.generate().public)
        await store.set_recovery(PrivateKey.generate().public)
        yield running, alice


async def _sweep_later(running: RunningBot, seconds: float = LATER) -> None:
    """One sweep of the real trail and outbox as it would run `seconds` from now."""
    dispatcher = running.transport._dispatcher
    assert dispatcher is not None
    trail = running.transport._trail
    await Sweeper(trail, dispatcher.outbox.delete, clock=lambda: time.time() + seconds).sweep()


async def _expiring(running: RunningBot, user: SimUser) -> set[int]:
    """Ids of the messages the bot has said will be deleted (those with a time to live),
    single ids and lost-send ranges alike."""
    await running.transport._trail.flush()
    ids: set[int] = set()
    for message_id, delete_at in await trail_rows(running.app, user.chat.id):
        low, _, high = message_id.partition("-")
        if delete_at is not None:
            ids.update(range(int(low), int(high or low) + 1))
    return ids


async def _told(emu: Emulator, confirmation: Message, within: float = 10.0) -> None:
    """Until the confirmation was edited to say what Telegram did (after the erase)."""
    await emu.world.wait_for(lambda: confirmation.edit_date is not None, within)
    assert (confirmation.text or "").endswith(AGAIN)


async def _on_record(running: RunningBot, user: SimUser) -> set[int]:
    """Ids of the user's chat on record, once all that was noted is written."""
    await running.transport._trail.flush()
    rows = await trail_rows(running.app, user.chat.id)
    return {int(message_id) for message_id, _ in rows if message_id.isdigit()}


async def _answer_read(running: RunningBot, user: SimUser, sent: Message) -> None:
    """Until the bot has read Telegram's answer to the send of `sent` (a person sees the
    message before the bot learns its id)."""

    async def on_record() -> bool:
        return sent.message_id in await _on_record(running, user)

    await eventually(on_record)


def _visible_ids(user: SimUser) -> set[int]:
    return {message.message_id for message in user.seen()}


async def test_a_reporters_answers_files_and_words_to_the_team_expire_with_the_replies(
    emu: Emulator, team: tuple[RunningBot, SimUser]
) -> None:
    running, alice = team
    ana = emu.user("Ana")
    await start_report(ana)
    photo = await ana.send_photo(PHOTO, caption="CANARY-CAPTION the car")
    assert "saved and locked" in (await ana.answer()).text
    document = await ana.send_document(b"%PDF-1.7 " + b"0" * 300, "summons.pdf")
    assert "saved and locked" in (await ana.answer()).text
    case = await finish_report(ana)
    await alice.send(f"/reply {case} Are you safe tonight?")
    await alice.answer(count=1)
    relayed = (await ana.answer(count=1)).last
    await ana.choose("Answer the team")
    words = await ana.send("CANARY-TEAM we are at a friend's house")
    delivered = await ana.answer()
    assert delivered.text.startswith("Delivered to the team, locked.")
    await _answer_read(running, ana, delivered.last)
    written = [m for m in ana.seen() if m.sender is ana.person]
    answers = [m for m in written if m.text in (WHAT, WHEN)]
    assert len(answers) == 2
    for message in (*answers, photo, document, words):
        assert message.message_id in await _expiring(running, ana), message.text

    expiring = await _expiring(running, ana)
    await _sweep_later(running)
    assert not expiring & _visible_ids(ana), "all the bot said it would delete is gone"
    for message in (*answers, photo, document, words, relayed):
        assert message.deleted, message.text
    assert not [m for m in ana.seen() if "CANARY" in (m.text or m.extra.get("caption", ""))]


async def test_forget_deletes_the_reporters_messages_and_says_what_it_did(
    emu: Emulator, team: tuple[RunningBot, SimUser]
) -> None:
    _ = team
    ana = emu.user("Ana")
    await start_report(ana)
    photo = await ana.send_photo(PHOTO, caption="CANARY the car")
    await ana.answer()
    await ana.ask(WHAT)
    await ana.ask("/forget")
    on_record = _visible_ids(ana)  # every message of the chat is on record
    await ana.press("Yes, delete everything")
    done = (await ana.answer(count=1)).last
    await _told(emu, done)

    assert ana.seen() == [done], "the confirmation is all that is left"
    assert photo.deleted and not on_record & _visible_ids(ana)
    assert f"On Telegram, {len(on_record)} {GONE}" in (done.text or "")
    assert YOURSELF in (done.text or "") and "refused" not in (done.text or "")
    assert (done.text or "").count(AGAIN) == 1


async def _lose_contacts(emu: Emulator, ana: SimUser) -> Message:
    """Open the contact list (a sensitive screen) with the answer to its send lost: the
    message is in the chat, its id unknown to the bot, and nothing else is sent."""
    await ana.choose("People who can help")
    countries = (await ana.choose("Digital security")).last
    emu.lose_answer("sendMessage", chat=ana.chat.id)
    await ana.press("Anywhere / prefer not to say")
    await emu.world.wait_for(lambda: any(c.status == 0 for c in emu.calls("sendMessage")))
    lost = ana.from_bot()[-1]
    assert lost.message_id > countries.message_id, "the contacts screen arrived"
    return lost


async def test_a_send_whose_answer_was_lost_still_expires(
    emu: Emulator, team: tuple[RunningBot, SimUser]
) -> None:
    """Another chat talks meanwhile: its messages take ids between, and stay."""
    running, _ = team
    ana, bea = emu.user("Ana"), emu.user("Bea")
    await onboard(ana)
    await onboard(bea)
    lost = await _lose_contacts(emu, ana)
    help_ = (await bea.ask("/help")).last
    await _answer_read(running, bea, help_)
    bea_before = bea.seen()
    assert lost.message_id not in await _on_record(running, ana)
    closed = [
        (int(low), int(high))
        for message_id, _ in await trail_rows(running.app, ana.chat.id)
        for low, _, high in [message_id.partition("-")]
        if high
    ]
    assert [(low, high) for low, high in closed if low <= lost.message_id <= high], closed
    assert help_.message_id not in range(*closed[0]), "bounded by Bea's reply"

    await _sweep_later(running)
    assert lost.deleted
    assert bea.seen() == bea_before, "no message of another chat is touched"


async def test_forget_deletes_a_send_whose_answer_was_lost(
    emu: Emulator, team: tuple[RunningBot, SimUser]
) -> None:
    ana, bea = emu.user("Ana"), emu.user("Bea")
    await onboard(ana)
    await onboard(bea)
    lost = await _lose_contacts(emu, ana)
    await bea.ask("/help")
    bea_before = bea.seen()
    await ana.ask("/forget")
    await ana.press("Yes, delete everything")
    done = (await ana.answer(count=1)).last
    await _told(emu, done)
    assert lost.deleted and ana.seen() == [done]
    assert bea.seen() == bea_before


async def test_a_send_lost_just_before_a_stop_is_deleted_after_the_restart(
    emu: Emulator, tmp_path: Path
) -> None:
    """Its range is on record at once, and bounded by the first send after the restart."""
    ana = emu.user("Ana")
    async with running_bot(emu, tmp_path / "x.db"):
        await onboard(ana)
        lost = await _lose_contacts(emu, ana)
    async with running_bot(emu, tmp_path / "x.db") as running:
        await _answer_read(running, ana, (await ana.ask("/menu")).last)
        await _sweep_later(running)
        assert lost.deleted


async def test_forget_says_which_messages_telegram_refused(
    emu: Emulator, team: tuple[RunningBot, SimUser]
) -> None:
    """Messages older than 48 hours stay, and the confirmation says how many."""
    _ = team
    ana = emu.user("Ana")
    await onboard(ana)
    old = _visible_ids(ana)
    emu.advance(49 * 3600)
    contacts = await _contacts(ana)
    await ana.ask("/forget")
    await ana.press("Yes, delete everything")
    done = (await ana.answer(count=1)).last
    await _told(emu, done)
    text = done.text or ""
    assert contacts.deleted and _visible_ids(ana) == old | {done.message_id}
    assert f"Telegram refused to delete {len(old)} messages" in text
    assert YOURSELF in text


@pytest.mark.parametrize("code", [500, 429])
async def test_a_failed_forget_is_finished_by_the_sweeper_and_says_so(
    emu: Emulator, tmp_path: Path, code: int
) -> None:
    """deleteMessages fails for every try (a 5xx, or 429 beyond the rate limiter's
    retries): the confirmation says so, and the sweeper deletes them afterwards."""
    ana = emu.user()
    async with running_bot(emu, tmp_path / "x.db", sweep_interval=FAST) as running:
        await onboard(ana)
        await _contacts(ana)
        on_record = await _on_record(running, ana)
        await ana.ask("/forget")
        emu.fail("deleteMessages", code, times=4, retry_after=1)
        await ana.press("Yes, delete everything")
        done = (await ana.answer(count=1)).last
        await _told(emu, done, within=15)
        assert "could not be deleted right away" in (done.text or "")
        assert "are now gone" in (done.text or "") and "On Telegram, 0 " in (done.text or "")
        await emu.world.wait_for(lambda: ana.seen() == [done], within=10)
        assert not on_record & _visible_ids(ana)


async def test_an_expired_message_whose_delete_fails_is_retried(
    emu: Emulator, short_ttl: RunningBot
) -> None:
    ana = emu.user()
    await onboard(ana)
    emu.fail("deleteMessage", 502, times=3)
    contacts = await _contacts(ana)
    await emu.world.wait_for(lambda: contacts.deleted, within=10)
    assert [c.status for c in emu.calls("deleteMessage")][:3] == [502, 502, 502]


# The emulator is the only stand-in for Telegram here: where deletion depends on it, it
# must behave as Telegram does.


def test_the_emulator_numbers_private_chats_from_the_bots_message_box() -> None:
    """Private chats and basic groups share the account's counter; a supergroup counts alone."""
    world = World()
    ana, bea = (world.private_chat(world.new_person(n, "en")) for n in ("Ana", "Bea"))
    group, supergroup = world.new_group("g"), world.new_group("s", supergroup=True)
    ids = [world.post(chat, world.bot, "x").message_id for chat in (ana, bea, group, ana)]
    assert ids == [1, 2, 3, 4], "ids increase, and skip what other chats took"
    assert world.post(supergroup, world.bot, "x").message_id == 1


async def test_the_emulator_deletes_messages_as_the_bot_api_does() -> None:
    """deleteMessages skips ids that are not in the chat; one message it may not delete
    (older than 48 hours) refuses the whole call."""
    world = World()
    person = world.new_person("Ana", "en")
    ana, bea = world.private_chat(person), world.private_chat(world.new_person("Bea", "en"))
    old = world.post(ana, world.bot, "old")
    world.advance(49 * 3600)
    theirs = world.post(bea, world.bot, "Bea's")
    mine = world.post(ana, person, "a person's own message")
    skipping = [mine.message_id, theirs.message_id, 999]
    assert await delete_messages(world, {"chat_id": ana.id, "message_ids": skipping})
    assert mine.deleted and not theirs.deleted, "another chat's id is skipped"
    fresh = world.post(ana, world.bot, "fresh")
    refused = [old.message_id, fresh.message_id]
    with pytest.raises(ApiError, match="message can't be deleted"):
        await delete_messages(world, {"chat_id": ana.id, "message_ids": refused})
    assert not fresh.deleted and not old.deleted, "a refused call deletes nothing"


@pytest.mark.parametrize("code", ["en", "es", "fr", "ar"])
def test_the_confirmation_is_completed_in_its_own_language(code: str) -> None:
    """Every count the erase reports is said, in the confirmation's language, and the
    invitation to start again is said once, last."""
    shipped = library()
    t = shipped.translator(code)
    neutral = Reply(directed(t("forget.done"), t.rtl), erase_chat=True, language=code)
    text = epilogue(lambda: shipped)(neutral, Erased(gone=7, refused=2, retrying=3, unsure=1)) or ""
    assert text.startswith(neutral.text)
    for key, count in (("gone", 7), ("refused", 2), ("retrying", 3), ("unsure", 1)):
        assert directed(t(f"telegram.forget.{key}", count=count), t.rtl) in text, key
    again = directed(t("telegram.forget.again"), t.rtl)
    assert text.endswith(again) and text.count(t("telegram.forget.again")) == 1
    quiet = epilogue(lambda: shipped)(neutral, Erased(gone=4)) or ""
    assert t("telegram.forget.refused", count=0).split("0")[0] not in quiet
