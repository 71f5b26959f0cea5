"""The bot's command menu in each user's language, from the content strings.

Telegram shows the list for the user's app language (`language_code`) and the
default list to everyone else, so English is the default and every other language
gets its own list; a description not yet translated shows in English.
"""

from __future__ import annotations

import logging

from telegram import Bot, BotCommand
from telegram.error import TelegramError

from bot.content.languages import telegram_code
from bot.content.library import FALLBACK, Library

__all__ = ["COMMANDS", "command_menu", "publish_commands"]

log = logging.getLogger("hrd_bot.telegram")
COMMANDS = ("sos", "menu", "help", "cancel", "language", "forget")


def command_menu(library: Library, language: str) -> list[BotCommand]:
    t = library.translator(language)
    return [BotCommand(name, t(f"commands.{name}")[:256]) for name in COMMANDS]


async def publish_commands(bot: Bot, library: Library) -> None:
    """Failing to set the menu does not stop the bot: typed commands work without it."""
    try:
        await bot.set_my_commands(command_menu(library, FALLBACK))
        for pack in library.languages():
            if pack.code != FALLBACK:
                menu = command_menu(library, pack.code)
                await bot.set_my_commands(menu, language_code=telegram_code(pack.code))
    except TelegramError as exc:
        log.warning("telegram: the command menu was not set (%s)", type(exc).__name__)
