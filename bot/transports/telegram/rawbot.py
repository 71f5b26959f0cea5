"""The bot's `ExtBot`: Bot API methods called by name, without PTB's hint to use its wrappers.

The outbox sends with `do_api_request("sendMessage", …)` and reads the answer as plain
JSON, because PTB's `send_message` parses every answer into objects the bot does not use,
which cost more than all the rest of a reply (bench/telegram_path.py). For a method PTB
wraps, `do_api_request` then suggests the wrapper on every call (a `PTBUserWarning`). This
bot leaves out that one hint, for its own calls only: no warning filter is installed, so
the rest of the process, and every other PTB warning, is untouched.
"""

from __future__ import annotations

from typing import Any

from telegram.ext import ExtBot
from telegram.warnings import PTBUserWarning

__all__ = ["WRAPPER_HINT", "RawBot"]

WRAPPER_HINT = "Please use 'Bot."
"""How PTB's suggestion to use a wrapper instead of `do_api_request` begins."""


class RawBot(ExtBot[Any]):
    """`ExtBot`, quiet about calling wrapped Bot API methods by name."""

    @classmethod
    def _warn(
        cls,
        message: str | PTBUserWarning,
        category: type[Warning] = PTBUserWarning,
        stacklevel: int = 0,
    ) -> None:
        if str(message).startswith(WRAPPER_HINT) and "do_api_request" in str(message):
            return
        super()._warn(message, category=category, stacklevel=stacklevel + 1)
