"""Buttons shown by one worker and pressed at another: the screen is shared."""

from __future__ import annotations

import pytest

from bot.conversation.pseudonym import Pseudonymizer
from bot.transports.telegram.buttons import Press
from bot.transports.telegram.shared_buttons import SharedButtonBook
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
