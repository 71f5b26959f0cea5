"""The `hrd-bot` command: running the bot, content, keys and staff, cases, data, doctor.

May import every other package of `bot` (it wires them); nothing imports it but tests."""

from bot.cli.commands import main

__all__ = ["main"]
