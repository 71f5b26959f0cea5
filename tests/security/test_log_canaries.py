"""Canaries through the libraries' own error paths: none may reach any log handler.

Each test forces a real library error path (python-telegram-bot, nio, APScheduler,
asyncio, warnings, peewee) with identifying strings in its data, at DEBUG level,
and checks the whole output, including handlers added after the redaction.
"""

from __future__ import annotations

import asyncio
import gc
import io
import logging
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from apscheduler.events import EVENT_JOB_ERROR, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from nio import Event, MegolmEvent
from nio.crypto import Olm, OlmDevice
from nio.store import SqliteMemoryStore
from telegram import Bot, Update
from telegram.ext import ApplicationBuilder

from bot.logs import NOISY, install

TEXT = "Kenya-arrest-canary-text"
NAME = "Zainabcanaryname"
PHONE = "+254 712 345 678"
MXID = "@canaryuser:example.org"
ROOM = "!canaryroom:example.org"
DEVICE = "QWERTYUIOP"
SESSION = "CanarySessionIdentifier"
TOKEN = "123456789:AAHcanarytokensecret_abcdefghijkl"
CANARIES = (TEXT, NAME, PHONE, "254 712", MXID, "canaryuser", ROOM, DEVICE, SESSION, TOKEN)

Output = Callable[[], str]


@pytest.fixture
def output() -> Iterator[Output]:
    """Everything logged at DEBUG by anyone, through the installed redaction."""
    factory = logging.getLogRecordFactory()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in (*NOISY, "py.warnings")}
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    install()
    root.addHandler(handler)  # beside pytest's own capture handlers
    root.setLevel(logging.DEBUG)
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield stream.getvalue
    finally:
        logging.setLogRecordFactory(factory)
        logging.captureWarnings(False)
        root.handlers[:], root.level = handlers, level
        for name, old in levels.items():
            logging.getLogger(name).setLevel(old)


def assert_clean(text: str, *expected: str) -> None:
    assert text, "nothing was logged: the error path was not taken"
    for canary in CANARIES:
        assert canary not in text, f"{canary!r} leaked:\n{text}"
    for part in expected:
        assert part in text, f"{part!r} missing:\n{text}"


def bad_update() -> dict[str, Any]:
    """A message update PTB cannot parse (a date that is not a timestamp), full of canaries."""
    person = {"id": 987654321, "is_bot": False, "first_name": NAME}
    chat = {"id": 987654321, "type": "private", "first_name": NAME}
    message = {"message_id": 7, "date": {"x": TEXT}, "chat": chat, "from": person, "text": TEXT}
    return {"update_id": 12, "message": message | {"contact": {"phone_number": PHONE}}}


class _BadBatchBot(Bot):
    async def _post(self, *args: Any, **kwargs: Any) -> Any:
        return [bad_update()]


async def test_ptb_parse_failure_logs_the_kind_not_the_batch(output: Output) -> None:
    with pytest.raises(TypeError):
        Update.de_json(bad_update(), None)
    with pytest.raises(TypeError):
        await _BadBatchBot(TOKEN).get_updates()
    assert_clean(output(), "CRITICAL telegram.Bot: Error while parsing updates", "TypeError")


async def test_ptb_unhandled_error_logs_only_the_exception_type(
    output: Output, caplog: pytest.LogCaptureFixture
) -> None:
    application = ApplicationBuilder().token(TOKEN).build()
    await application.process_error(None, ValueError(f"{TEXT} {PHONE} {MXID}"))
    assert_clean(output(), "No error handlers are registered", "ValueError")
    assert_clean(caplog.text, "No error handlers are registered", "ValueError")


def test_nio_crypto_warnings_keep_no_device_or_session_id(output: Output) -> None:
    store = SqliteMemoryStore("@bot:example.org", "BOTDEVICEX", "pickle")
    olm = Olm("@bot:example.org", "BOTDEVICEX", store)
    keys = {"ed25519": "a" * 43, "curve25519": "b" * 43}
    olm.device_store.add(OlmDevice(MXID, DEVICE, keys))
    assert olm.get_missing_sessions([MXID]) == {MXID: [DEVICE]}
    content = {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgA", "sender_key": "c" * 43}
    content |= {"session_id": SESSION, "device_id": DEVICE}
    source = {"type": "m.room.encrypted", "event_id": "$e:x", "sender": MXID, "room_id": ROOM}
    event = MegolmEvent.from_dict(source | {"origin_server_ts": 1, "content": content})
    assert isinstance(event, MegolmEvent)
    with pytest.raises(Exception, match="no session"):
        olm.decrypt_megolm_event(event, ROOM)
    assert_clean(output(), "Missing session for device", "Error decrypting megolm event")


def test_nio_schema_failure_keeps_no_event_content(output: Output) -> None:
    content = {"msgtype": "m.text", "body": 5, "formatted_body": TEXT, "name": NAME}
    source = {"type": "m.room.message", "event_id": "$e:x", "sender": MXID, "origin_server_ts": 1}
    Event.parse_event(source | {"content": content})
    assert_clean(output(), "nio.events.misc: Error validating event")


async def test_an_apscheduler_job_that_raises_logs_no_argument(output: Output) -> None:
    def job(text: str, phone: str) -> None:
        raise RuntimeError(f"{text} could not reach {phone}")

    failed = asyncio.Event()

    def listen(event: JobExecutionEvent) -> None:
        failed.set()

    scheduler = AsyncIOScheduler()
    scheduler.add_listener(listen, EVENT_JOB_ERROR)
    scheduler.start()
    try:
        scheduler.add_job(job, args=[TEXT, PHONE], name=f"remind {NAME}", id=MXID)
        await asyncio.wait_for(failed.wait(), 10)
    finally:
        scheduler.shutdown(wait=False)
    assert_clean(output(), "apscheduler.executors.default", "RuntimeError")


async def test_an_unretrieved_task_exception_logs_no_message(output: Output) -> None:
    async def fail() -> None:
        raise ValueError(f"{TEXT} from {MXID}")

    task = asyncio.get_running_loop().create_task(fail())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert task.done()
    del task
    gc.collect()
    assert_clean(output(), "ERROR asyncio: ", "exception was never retrieved", "ValueError")


def test_our_own_exception_log_keeps_type_and_our_frame_only(output: Output) -> None:
    log = logging.getLogger("hrd_bot.canary")
    try:
        raise KeyError(f"{TEXT} {PHONE} {TOKEN}")
    except KeyError:
        log.exception("handling failed for chat %s", "987654321")
    assert_clean(output(), "handling failed for chat [redacted]", "KeyError")
    assert "987654321" not in output()


def test_library_records_with_arguments_keep_only_the_constant_part(output: Output) -> None:
    url = f"https://api.telegram.org/bot{TOKEN}/sendMessage?text={TEXT}"
    logging.getLogger("httpx").info('HTTP Request: %s %s "%s"', "POST", url, "HTTP/1.1 200 OK")
    logging.getLogger("aiohttp.access").info('%s "%s" %s', "10.0.0.1", f"GET /{MXID}", 200)
    logging.getLogger("peewee").debug(("SELECT * FROM devices WHERE id = ?", [DEVICE, MXID]))
    logging.getLogger("nio.rooms").info(f"{NAME} joined {ROOM}")
    assert_clean(output(), "INFO httpx: …", "INFO nio.rooms: …", "(tuple)")


def test_captured_warnings_keep_only_their_category(output: Output) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn(f"deprecated call for {MXID}: {TEXT}", DeprecationWarning, stacklevel=1)
    assert_clean(output(), "py.warnings: warning DeprecationWarning")


def test_handlers_added_later_and_the_last_resort_are_covered(
    output: Output, capsys: pytest.CaptureFixture[str]
) -> None:
    late = io.StringIO()
    logging.getLogger("telegram").addHandler(logging.StreamHandler(late))
    try:
        logging.getLogger("telegram.ext.Updater").error("Update %s caused error %s", TEXT, MXID)
    finally:
        logging.getLogger("telegram").handlers.clear()
    assert_clean(late.getvalue(), "…")
    assert_clean(output(), "ERROR telegram.ext.Updater: …")
    root = logging.getLogger()
    handlers, root.handlers[:] = root.handlers[:], []
    try:
        logging.getLogger("nio.client").warning(f"Got 429 for {MXID} on {DEVICE}")
    finally:
        root.handlers[:] = handlers
    assert_clean(capsys.readouterr().err, "…")
