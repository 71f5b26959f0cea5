"""The emulator itself answers like the Bot API, so tests against it mean something."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from tests.telegram_emulator import Emulator


async def _call(emu: Emulator, method: str, *, token: str | None = None, **kw: Any) -> Any:
    url = f"http://127.0.0.1:{emu.server.port}/bot{token or emu.token}/{method}"
    async with aiohttp.ClientSession() as http, http.post(url, **kw) as response:
        body = await response.json()
        assert response.status == (200 if body["ok"] else body["error_code"])
        return body


async def test_json_and_form_bodies_are_both_read(emu: Emulator) -> None:
    ana = emu.user()
    as_json = await _call(emu, "sendMessage", json={"chat_id": ana.chat.id, "text": "123"})
    as_form = await _call(emu, "sendMessage", data={"chat_id": str(ana.chat.id), "text": "true"})
    assert as_json["result"]["text"] == "123", "text stays a string"
    assert as_form["result"]["text"] == "true"
    assert [m.text for m in ana.seen()] == ["123", "true"]


async def test_errors_have_telegrams_codes_and_words(emu: Emulator) -> None:
    ana = emu.user()
    wrong = await _call(emu, "getMe", token="1:wrong")
    assert (wrong["error_code"], wrong["description"]) == (401, "Unauthorized")
    assert (await _call(emu, "noSuchMethod"))["error_code"] == 404
    button = {"text": "x", "callback_data": "d" * 65}
    markup = json.dumps({"inline_keyboard": [[button]]})
    too_big = await _call(
        emu, "sendMessage", data={"chat_id": str(ana.chat.id), "text": "hi", "reply_markup": markup}
    )
    assert too_big["description"] == "Bad Request: BUTTON_DATA_INVALID"
    ana.block()
    blocked = await _call(emu, "sendMessage", json={"chat_id": ana.chat.id, "text": "hi"})
    assert (blocked["error_code"], blocked["description"]) == (
        403,
        "Forbidden: bot was blocked by the user",
    )
    emu.fail("getMe", 429, retry_after=3)
    limited = await _call(emu, "getMe")
    assert limited["parameters"] == {"retry_after": 3}


async def test_long_polling_waits_for_an_update_and_confirms_by_offset(emu: Emulator) -> None:
    ana = emu.user()
    before = len(emu.calls("getUpdates"))
    poll = asyncio.create_task(_call(emu, "getUpdates", json={"timeout": 5}))
    await emu.wait_for_call("getUpdates", after=before)
    assert not poll.done(), "it has nothing to give yet: it waits"
    await ana.send("hello")
    updates = (await poll)["result"]
    assert [u["message"]["text"] for u in updates] == ["hello"]
    confirmed = await _call(emu, "getUpdates", json={"offset": updates[0]["update_id"] + 1})
    assert confirmed["result"] == []


async def test_a_webhook_blocks_polling_until_deleted(emu: Emulator) -> None:
    await _call(emu, "setWebhook", json={"url": "http://127.0.0.1:9/hook", "secret_token": "abc"})
    conflict = await _call(emu, "getUpdates", json={})
    assert conflict["error_code"] == 409
    info = await _call(emu, "getWebhookInfo")
    assert info["result"]["url"] == "http://127.0.0.1:9/hook"
    await _call(emu, "deleteWebhook", json={})
    assert (await _call(emu, "getUpdates", json={}))["ok"]


async def test_files_are_served_as_the_bot_api_serves_them(emu: Emulator) -> None:
    ana = emu.user()
    sent = await ana.send_document(b"%PDF-1.7 hello", "hello.pdf")
    file_id = sent.extra["document"]["file_id"]
    described = (await _call(emu, "getFile", json={"file_id": file_id}))["result"]
    assert described["file_size"] == 14 and described["file_path"].startswith("documents/")
    base = f"http://127.0.0.1:{emu.server.port}/file/bot"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}{emu.token}/{described['file_path']}") as response:
            assert (response.status, await response.read()) == (200, b"%PDF-1.7 hello")
        async with http.get(f"{base}1:wrong/{described['file_path']}") as response:
            assert response.status == 404
    unknown = await _call(emu, "getFile", json={"file_id": "nope"})
    assert unknown["description"] == "Bad Request: invalid file_id"
    huge = await ana.send_document(b"0" * (20 * 1024 * 1024 + 1), "huge.bin")
    too_big = await _call(emu, "getFile", json={"file_id": huge.extra["document"]["file_id"]})
    assert too_big["description"] == "Bad Request: file is too big"
    assert emu.world.downloads == [described["file_path"]]
