"""The Telegram transport's parts on their own: payloads, splitting, settings, the sweeper, logs."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from pathlib import Path

import pytest

from bot.app import App
from bot.cli.commands import _transports
from bot.config import ConfigError, Settings
from bot.conversation.chat_trail import ChatTrail
from bot.conversation.pseudonym import Pseudonymizer
from bot.conversation.sweeper import Sweeper
from bot.logs import Redactor
from bot.storage import Database
from bot.transports.telegram import TelegramConfig, TelegramTransport
from bot.transports.telegram.buttons import ButtonBook, Press
from bot.transports.telegram.render import MAX_TEXT, split_text, utf16_len
from tests.telegram_emulator import Emulator
from tests.telegram_emulator.harness import TEST_KEY, library, onboard, running_bot

SECRET = b"k" * 32


def test_payloads_are_short_and_resolve_only_on_the_current_screen() -> None:
    book = ButtonBook(SECRET)
    nonce = book.new_nonce()
    payloads = book.payloads("42", nonce, 3)
    assert all(1 <= len(p.encode()) <= 64 for p in payloads)
    book.shown("42", 10, nonce, ["a", "b", "c"])
    assert [book.resolve("42", 10, p) for p in payloads] == ["a", "b", "c"]
    assert book.resolve("42", 9, payloads[0]) is Press.STALE, "same payload, older message"
    newer = book.new_nonce()
    book.shown("42", 11, newer, ["a"])
    assert book.resolve("42", 10, payloads[0]) is Press.STALE
    book.forget("42")
    assert book.resolve("42", 11, book.payloads("42", newer, 1)[0]) is Press.STALE


def test_screens_kept_are_bounded() -> None:
    book = ButtonBook(SECRET, max_chats=2)
    for chat in ("1", "2", "3"):
        book.shown(chat, 1, "n" * 8, ["a"])
    assert repr(book) == "ButtonBook(chats=2)"


def test_split_keeps_every_word_within_telegrams_limit() -> None:
    text = "\n\n".join(f"Paragraph {i}: " + "مرحبا 🙂 " * 150 for i in range(12))
    pieces = split_text(text)
    assert len(pieces) > 1
    assert all(0 < utf16_len(p) <= MAX_TEXT for p in pieces)
    assert " ".join(pieces).split() == text.split()


def test_split_cuts_a_word_longer_than_a_message_without_breaking_a_character() -> None:
    text = "🙂" * 3000
    pieces = split_text(text)
    assert "".join(pieces) == text
    assert all(utf16_len(p) <= MAX_TEXT for p in pieces)


def test_split_keeps_a_short_heading_with_what_follows() -> None:
    """The same cut as a screen's pages (`bot.text.paginate`), in UTF-16 units."""
    pieces = split_text("Heading\n\n" + "x 🙂 " * 1200)
    assert pieces[0].startswith("Heading\n\nx") and utf16_len(pieces[0]) > MAX_TEXT // 2
    assert all(utf16_len(p) <= MAX_TEXT for p in pieces)


def test_split_of_blank_text_sends_nothing() -> None:
    assert split_text("  \n ") == []
    assert split_text("short") == ["short"]


def _settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"HRD_BOT_DATA_DIR": str(tmp_path), **env})


def test_config_defaults_and_token_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("123:abc\n")
    config = TelegramConfig.from_settings(
        _settings(tmp_path, TELEGRAM_BOT_TOKEN_FILE=str(token_file))
    )
    assert config.token == "123:abc"
    assert config.api_base_url == "https://api.telegram.org/bot"
    assert config.file_base_url == "https://api.telegram.org/file/bot"
    assert config.webhook is None
    assert "123:abc" not in repr(config)


def test_webhook_needs_a_strong_secret(tmp_path: Path) -> None:
    base = {"TELEGRAM_BOT_TOKEN": "1:a", "TELEGRAM_WEBHOOK_URL": "https://bot.example.org/tg"}
    with pytest.raises(ConfigError, match="TELEGRAM_WEBHOOK_SECRET"):
        TelegramConfig.from_settings(_settings(tmp_path, **base))
    with pytest.raises(ConfigError, match="TELEGRAM_WEBHOOK_SECRET"):
        TelegramConfig.from_settings(
            _settings(tmp_path, **base, TELEGRAM_WEBHOOK_SECRET="short; spaces")
        )
    config = TelegramConfig.from_settings(
        _settings(tmp_path, **base, TELEGRAM_WEBHOOK_SECRET="A" * 32, TELEGRAM_WEBHOOK_PORT="9000")
    )
    assert config.webhook is not None
    assert (config.webhook.path, config.webhook.port, config.webhook.listen) == (
        "/tg",
        9000,
        "127.0.0.1",
    )
    assert "A" * 32 not in repr(config)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TELEGRAM_API_BASE_URL", "ftp://x"),
        ("TELEGRAM_POLL_TIMEOUT", "soon"),
        ("TELEGRAM_MAX_RATE", "-1"),
    ],
)
def test_bad_settings_are_refused_with_their_name(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        TelegramConfig.from_settings(_settings(tmp_path, TELEGRAM_BOT_TOKEN="1:a", **{name: value}))


async def test_hrd_bot_run_starts_telegram_when_a_token_is_set(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "x.db", TEST_KEY)
    try:
        app = App(db, library(), Pseudonymizer(SECRET))
        assert _transports(_settings(tmp_path), app, console=False) == []
        found = _transports(_settings(tmp_path, TELEGRAM_BOT_TOKEN="1:a"), app, console=True)
        assert [t.name for t in found] == ["console", "telegram"]
        assert isinstance(found[1], TelegramTransport)
    finally:
        await db.close()


async def test_sweeper_gets_past_rows_it_cannot_delete_and_prunes_old_ones(
    tmp_path: Path,
) -> None:
    db = await Database.open(tmp_path / "x.db", TEST_KEY)
    try:
        trail = ChatTrail(db, "test")
        for message_id in range(6):
            chat = "blocked" if message_id < 3 else "open"
            await trail.record(chat, str(message_id), None)
            await trail.record(chat, f"t{message_id}", timedelta(seconds=1))
        deleted: list[str] = []

        async def delete(chat: str, message_id: str) -> bool:
            if chat == "blocked":
                return False
            deleted.append(message_id)
            return True

        soon = time.time() + 5
        sweeper = Sweeper(trail, delete, batch=2, clock=lambda: soon)
        assert await sweeper.sweep() == 3
        assert sorted(deleted) == ["t3", "t4", "t5"]
        assert [t.message_id for t in await trail.due(soon)] == ["t0", "t1", "t2"], "to retry"
        later = Sweeper(trail, delete, clock=lambda: time.time() + 49 * 3600)
        await later.sweep()
        assert await trail.in_chat("blocked") == [] and await trail.in_chat("open") == []
    finally:
        await db.close()


async def test_logs_name_no_person_chat_or_text(
    emu: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hrd_bot")
    async with running_bot(emu, tmp_path / "x.db"):
        ana = emu.user("Anastasia", "en")
        await onboard(ana)
        await ana.choose("Legal information")
        await ana.ask("Kenya")
        await ana.press_data(ana.from_bot()[-1], "forged-payload")
        await ana.answer()
        ana.block()
        await ana.send("/menu")
        await emu.wait_for_call("sendMessage", after=len(emu.calls("sendMessage")))
    secrets = (str(ana.chat.id), "Anastasia", "Kenya", "forged-payload", emu.token)
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("hrd_bot")]
    assert any("refused" in line for line in ours) and any("blocked" in line for line in ours)
    for line in ours:
        assert not any(s in line for s in secrets), line
    scrub = Redactor()
    for record in caplog.records:
        scrub.filter(record)
        assert not any(s in record.getMessage() for s in (str(ana.chat.id), emu.token))
