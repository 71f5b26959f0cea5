"""Buttons shown by one worker and pressed at another: the screen is shared."""

from __future__ import annotations

import time

import pytest

from bot.conversation.pseudonym import Pseudonymizer
from bot.transports.telegram.buttons import Press
from bot.transports.telegram.shared_buttons import KEEP_S, SharedButtonBook
from tests.conftest_storage import OpenDatabase

pytestmark = pytest.mark.backends
SECRET = b"s" * 32


async def test_a_screen_one_worker_showed_is_pressed_at_another(
    open_database: OpenDatabase,
) -> None:
    db = await open_database()
    pseudonyms = Pseudonymizer(b"p" * 32)
    leader, holder = (
        SharedButtonBook(SECRET, db, pseudonyms),
        SharedButtonBook(SECRET, db, pseudonyms),
    )
    nonce = leader.new_nonce()
    safe, help_ = leader.payloads("42", nonce, 2)
    leader.shown("42", 7, nonce, ["checkin:safe", "checkin:help"])
    assert holder.resolve("42", 7, help_) is Press.STALE  # not read yet
    await leader.flush()
    await holder.refresh("42")
    assert holder.resolve("42", 7, help_) == "checkin:help"
    assert holder.resolve("42", 7, safe) == "checkin:safe"
    assert holder.resolve("43", 7, safe) is Press.FORGED
    holder.forget("42")  # the holder's next message has no buttons
    await holder.flush()
    await leader.refresh("42")
    assert leader.resolve("42", 7, help_) is Press.STALE
    await db.close()


async def test_a_screen_is_kept_48_hours_and_no_longer(
    open_database: OpenDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await open_database()
    pseudonyms = Pseudonymizer(b"p" * 32)
    shower, presser = (
        SharedButtonBook(SECRET, db, pseudonyms),
        SharedButtonBook(SECRET, db, pseudonyms),
    )
    nonce = shower.new_nonce()
    [ok] = shower.payloads("42", nonce, 1)
    shower.shown("42", 7, nonce, ["menu:ok"])
    await shower.flush()
    later = time.time() + KEEP_S + 60
    monkeypatch.setattr(time, "time", lambda: later)
    await presser.refresh("42")
    assert presser.resolve("42", 7, ok) is Press.STALE, "an old screen is not obeyed"
    other = shower.new_nonce()
    shower.shown("43", 8, other, ["menu:ok"])  # any later screen prunes the old rows
    await shower.flush()
    rows = await db.run(lambda c: c.execute("SELECT count(*) FROM button_screens").fetchone()[0])
    assert rows == 1
    await db.close()
