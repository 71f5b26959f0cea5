"""The Matrix key store's own queries (handled events, the sync position, a left room's
traces) run in the store's thread, never on the event loop, and read what nio reads."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from nio.crypto import OlmAccount

from bot.transports.matrix.store import HANDLED_KEEP_SECONDS, STORE_FILE, EncryptedStore

PASSPHRASE = "store passphrase"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[EncryptedStore]:
    opened = EncryptedStore("@bot:example.org", "DEVICE", str(tmp_path), PASSPHRASE, STORE_FILE)
    opened.save_account(OlmAccount())
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def threads(store: EncryptedStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The threads the store's queries ran in, from here on."""
    seen: list[int] = []
    execute = store.database.execute_sql

    def recorded(sql: str, params: Any = None) -> Any:
        seen.append(threading.get_ident())
        return execute(sql, params)

    monkeypatch.setattr(store.database, "execute_sql", recorded)
    return seen


async def test_an_event_is_handled_once_until_pruned(
    store: EncryptedStore, threads: list[int]
) -> None:
    assert await store.first_time("$a")
    assert not await store.first_time("$a")
    await store.prune_handled(now=2e9 + HANDLED_KEEP_SECONDS)
    assert await store.first_time("$a")
    assert threads and threading.get_ident() not in threads


async def test_the_sync_position_is_nios_own(store: EncryptedStore, threads: list[int]) -> None:
    assert await store.sync_token() is None
    await store.commit_sync_token("s1")
    await store.commit_sync_token("s2")
    assert await store.sync_token() == "s2"
    assert threads and threading.get_ident() not in threads
    assert store.load_sync_token() == "s2", "nio reads the same position"


async def test_a_left_rooms_traces_go_off_the_loop(
    store: EncryptedStore, threads: list[int]
) -> None:
    assert await store.forget_room("!gone:example.org", {"@bot:example.org"}) == []
    assert threads and threading.get_ident() not in threads
