"""Fixtures for the Telegram tests; a test module loads them with `pytest_plugins`.

`tg` is hrd-bot as it runs in production (App, SQLCipher file, python-telegram-bot)
against the Bot API emulator, with the sweeper ticking fast so expiry tests are quick.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.telegram_emulator import Emulator
from tests.telegram_emulator.harness import RunningBot, running_bot

FAST_SWEEP = timedelta(seconds=0.2)


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator() as emulator:
        yield emulator


@pytest.fixture
async def tg(emu: Emulator, tmp_path: Path) -> AsyncIterator[RunningBot]:
    async with running_bot(emu, tmp_path / "x.db", sweep_interval=FAST_SWEEP) as running:
        yield running
