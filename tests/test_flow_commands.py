"""/help, /cancel, /language, /forget, groups, and what the database keeps."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.app import App
from bot.storage.database import Connection
from tests.fakes import FakeUser

pytestmark = pytest.mark.backends


async def _rows(app: App, sql: str) -> list[tuple[object, ...]]:
    def read(conn: Connection) -> list[tuple[object, ...]]:
        return [tuple(r) for r in conn.execute(sql)]

    return await app.db.run(read)


async def test_help_lists_commands_and_comes_back(user: FakeUser) -> None:
    reply = await user.say("/help")
    for command in ("/menu", "/cancel", "/language", "/forget"):
        assert command in reply.text
    assert "How can I help" in (await user.press("Back")).text


async def test_cancel_returns_to_menu_from_anywhere(user: FakeUser) -> None:
    await user.press("digital security problem")
    await user.press("Accounts and messages")
    await user.press("account was hacked")
    reply = await user.say("/cancel")
    assert reply.text.startswith("Stopped.")
    assert "How can I help" in reply.text


async def test_language_switch_changes_every_word(user: FakeUser) -> None:
    await user.say("/language")
    reply = await user.press("Français")
    assert "Français" in reply.text or "français" in reply.text
    assert "Help" not in user.labels()
    assert user.labels()[-1] == "Aide" or "Aide" in user.labels()


async def test_arabic_reads_right_to_left(make_user: Callable[..., FakeUser]) -> None:
    person = make_user(platform_id="ar-1", hint="ar")
    await person.say("/start")
    reply = await person.press("العربية")
    assert reply.rtl
    assert all(line.startswith("\u200f") for line in reply.text.split("\n") if line)
    assert all(c.label.startswith("\u200f") for c in reply.choices)


async def test_forget_asks_first_then_erases_everything(user: FakeUser, app: App) -> None:
    await user.press("digital security problem")
    assert await _rows(app, "SELECT count(*) FROM sessions") == [(1,)]
    confirm = await user.say("/forget")
    assert "Delete everything now?" in confirm.text
    kept = await user.press("No, keep it")
    assert "physical danger" in kept.text, "back where they were"
    await user.say("/forget")
    done = await user.press("Yes, delete everything")
    assert done.erase_chat and done.ttl is not None
    assert await _rows(app, "SELECT count(*) FROM sessions") == [(0,)]
    again = await user.say("hello")
    assert "Which language" in again.text


async def test_group_chat_gets_only_a_pointer_and_nothing_is_stored(
    make_user: Callable[..., FakeUser], app: App
) -> None:
    person = make_user(platform_id="g-1", private=False)
    reply = await person.say("/start")
    assert "private chat" in reply.text
    assert not reply.choices
    assert await _rows(app, "SELECT count(*) FROM sessions") == [(0,)]


async def test_users_do_not_share_state(make_user: Callable[..., FakeUser]) -> None:
    first, second = make_user(platform_id="a"), make_user(platform_id="b")
    for person in (first, second):
        await person.say("/start")
        await person.press("English")
    await first.press("Legal information")
    assert "How can I help" in (await second.say("/menu")).text
    assert "Which country" in (await first.say("nonsense words")).text


async def test_platform_ids_are_stored_only_as_pseudonyms(user: FakeUser, app: App) -> None:
    keys = await _rows(app, "SELECT user_key FROM sessions")
    assert keys and all(user.platform_id not in str(k) for k in keys)
