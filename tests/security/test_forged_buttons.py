"""Forged and foreign buttons: a payload made up, altered, or taken from another chat is refused.

A pressed button is obeyed only when its payload was shown in this chat, on a screen the bot
still knows, with the server's key; anything else gets "from an earlier message" and the menu.
"""

from __future__ import annotations

from bot.transports.telegram.buttons import ButtonBook, Press
from tests.fakes import FakeUser
from tests.telegram_emulator import Emulator
from tests.telegram_emulator.harness import RunningBot, onboard

SECRET = b"k" * 32
EARLIER = "That option is from an earlier message."


async def test_forged_choice_is_refused(user: FakeUser) -> None:
    reply = await user.press_id("forget:yes")
    assert "from an earlier message" in reply.text
    assert "How can I help" in reply.text


async def test_forged_and_foreign_payloads_are_refused(emu: Emulator, tg: RunningBot) -> None:
    ana, ben = emu.user("Ana"), emu.user("Ben")
    await onboard(ana)
    await onboard(ben)
    current = ana.from_bot()[-1]
    bens_payload = str(ben.from_bot()[-1].buttons[0]["callback_data"])
    ana_payload = str(current.buttons[0]["callback_data"])
    tampered = ana_payload[:8] + "05" + ana_payload[10:]
    for payload in ("menu:legal", "x" * 64, bens_payload, tampered):
        query = await ana.press_data(current, payload)
        refused = await ana.answer()
        assert refused.text.startswith(EARLIER), payload
        assert "How can I help" in refused.text
        assert query.answered


def test_payloads_cannot_be_forged_or_moved_to_another_chat() -> None:
    book = ButtonBook(SECRET)
    nonce = book.new_nonce()
    book.shown("42", 10, nonce, ["a", "b"])
    book.shown("43", 10, nonce, ["a", "b"])
    mine = book.payloads("42", nonce, 2)
    assert book.resolve("43", 10, mine[0]) is Press.FORGED
    assert book.resolve("42", 10, mine[0][:8] + "01" + mine[0][10:]) is Press.FORGED
    for junk in (None, "", "menu:legal", "x" * 64, mine[0] + "x"):
        assert book.resolve("42", 10, junk) is Press.FORGED
    other = ButtonBook(b"o" * 32)
    other.shown("42", 10, nonce, ["a", "b"])
    assert other.resolve("42", 10, mine[0]) is Press.FORGED, "the key is the server's"
