"""Logging that holds no message text, names, phone numbers or platform ids.

Our own loggers only ever log events and counts. Libraries may log more (URLs with
tokens, Matrix ids), so they are held at WARNING and every line passes a scrubber.
"""

from __future__ import annotations

import logging
import re
import sys

NOISY = ("httpx", "httpcore", "telegram", "nio", "apscheduler", "peewee", "aiohttp", "asyncio")
_SCRUB = re.compile(
    r"bot\d+:[\w-]+"  # Telegram bot tokens inside URLs
    r"|[@!#$][\w.=/+-]+:[\w.-]+"  # Matrix user, room, alias and event ids
    r"|(?<=device )[A-Za-z0-9]{6,}"  # Matrix device ids ("… for device ABCDEFGHIJ")
    r"|\b[A-Za-z0-9+/]{43}\b"  # unpadded base64 curve25519/ed25519 keys
    r"|\+?\d[\d ()-]{5,}\d"  # phone numbers and numeric platform ids
)


class Scrubber(logging.Filter):
    """Masks anything shaped like a token, a Matrix id or a number long enough to identify."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = _SCRUB.sub("[redacted]", message), ()
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = _SCRUB.sub(
                "[redacted]", logging.Formatter().formatException(record.exc_info)
            )
            record.exc_info = None
        return True


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(Scrubber())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
