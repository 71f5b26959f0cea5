"""The aiohttp request class under PTB: every Bot API error class and every wire fault
maps as with PTB's own `HTTPXRequest`, and says whether the request may have left."""

from __future__ import annotations

import asyncio
import socket
import warnings
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from telegram import Bot
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.warnings import PTBUserWarning

from bot.transports.telegram.failures import retry_safe
from bot.transports.telegram.rawbot import WRAPPER_HINT
from bot.transports.telegram.reading import QuietRequest
from tests.telegram_emulator import Emulator
from tests.telegram_emulator.harness import onboard, running_bot


async def _bot(base_url: str, token: str, connections: int = 8, pool: float = 1.0) -> Bot:
    request = QuietRequest(connections=connections, pool_timeout=pool)
    bot = Bot(token, base_url=base_url, request=request, get_updates_request=request)
    await request.initialize()
    return bot


@pytest.fixture
async def api(emu: Emulator) -> AsyncIterator[Bot]:
    bot = await _bot(emu.api_base_url, emu.token)
    try:
        yield bot
    finally:
        await bot.request.shutdown()


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (400, BadRequest),
        (401, InvalidToken),
        (403, Forbidden),
        (404, InvalidToken),
        (409, Conflict),
        (429, RetryAfter),
        (500, NetworkError),
        (502, NetworkError),
    ],
)
async def test_every_bot_api_error_class_is_raised_as_ptb_raises_it(
    emu: Emulator, api: Bot, code: int, error: type[TelegramError]
) -> None:
    emu.fail("getMe", code, retry_after=3 if code == 429 else None)
    with pytest.raises(error) as raised:
        await api.get_me()
    if code == 429:
        assert isinstance(raised.value, RetryAfter)
        assert raised.value.retry_after in (3, timedelta(seconds=3))
    assert (await api.get_me()).is_bot, "the next call goes through"


async def test_a_refused_connection_never_left_so_it_may_be_repeated() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    bot = await _bot(f"http://127.0.0.1:{port}/bot", "1:x")
    try:
        with pytest.raises(NetworkError) as raised:
            await bot.get_me()
        assert retry_safe(raised.value)
    finally:
        await bot.request.shutdown()


async def test_a_lost_answer_may_have_been_carried_out(emu: Emulator, api: Bot) -> None:
    emu.lose_answer("sendMessage")
    user = emu.user("Ana")
    with pytest.raises(NetworkError) as raised:
        await api.send_message(user.chat.id, "hello")
    assert not retry_safe(raised.value)
    assert [m.text for m in user.from_bot()] == ["hello"], "it was carried out"


@pytest.fixture
async def silent() -> AsyncIterator[str]:
    """A server that takes connections and never answers: the network's black hole."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/bot"
    finally:
        server.close()
        for writer in held:
            writer.close()


async def test_an_unanswered_request_times_out_and_may_have_left(silent: str) -> None:
    bot = await _bot(silent, "1:x")
    try:
        with pytest.raises(TimedOut) as raised:
            await bot.get_me(read_timeout=0.2)
        assert not retry_safe(raised.value)
    finally:
        await bot.request.shutdown()


async def test_no_free_connection_times_out_before_anything_left(silent: str) -> None:
    bot = await _bot(silent, "1:x", connections=1, pool=0.2)
    try:
        first = asyncio.ensure_future(bot.get_me(read_timeout=5))
        await asyncio.sleep(0.1)
        with pytest.raises(TimedOut) as raised:
            await bot.get_me()
        assert retry_safe(raised.value), "it waited for a connection, and none came"
        first.cancel()
    finally:
        await bot.request.shutdown()


async def test_an_uninitialized_or_shut_request_refuses_to_send(emu: Emulator) -> None:
    request = QuietRequest()
    with pytest.raises(RuntimeError):
        await request.do_request(emu.api_base_url + emu.token + "/getMe", "POST")
    await request.initialize()
    await request.shutdown()
    await request.shutdown()
    with pytest.raises(RuntimeError):
        await request.do_request(emu.api_base_url + emu.token + "/getMe", "POST")


async def test_methods_called_by_name_give_no_hint_and_install_no_filter(
    emu: Emulator, api: Bot, tmp_path: Path
) -> None:
    """The outbox calls `sendMessage` by name: PTB's hint to use its wrapper is left out
    for the bot's own calls only, and no process-wide warning filter is installed."""
    filters = list(warnings.filters)
    ana = emu.user()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with running_bot(emu, tmp_path / "bot.db"):
            await onboard(ana)
            assert warnings.filters[1:] == filters
        await api.do_api_request("sendMessage", {"chat_id": ana.chat.id, "text": "plain"})
    hints = [str(w.message) for w in caught if issubclass(w.category, PTBUserWarning)]
    assert len(hints) == 1 and hints[0].startswith(WRAPPER_HINT), "only the plain bot's call"
    assert len(emu.calls("sendMessage")) >= 3
