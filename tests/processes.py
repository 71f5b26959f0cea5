"""The environment a test gives a real `hrd-bot` process: none of the developer's settings."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import CONTENT

OWN_PREFIXES = ("HRD_BOT_", "TELEGRAM_", "MATRIX_")


def bot_env(data: Path, content: Path = CONTENT, **settings: str) -> dict[str, str]:
    """This machine's environment minus every bot setting, plus a data dir and `settings`."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)}
    return {
        **kept,
        "HRD_BOT_DATA_DIR": str(data),
        "HRD_BOT_CONTENT_DIR": str(content),
        "LANG": "en_US.UTF-8",
        **settings,
    }
