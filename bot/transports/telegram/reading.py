"""Reading Telegram updates one at a time, so one the library cannot read skips only itself.

python-telegram-bot reads a whole getUpdates batch at once: one update it rejects (a poll
from a Bot API server older than 9.6, a missing field, a value of the wrong type) fails
the batch, the offset never moves, the same batch is fetched for ever, and the library
logs it raw at CRITICAL. Here each update is tried on its own before the library sees
the batch. One that fails is handed on as its bare id (`{"update_id": N}`): the library
reads that, the offset moves past it, and the dispatcher drops it (an unreadable private
message becomes a stub holding only who sent it, so the person is asked for text). It
is counted by kind and logged once, as its kind only (no text, name or id). One that was
already handled goes the same way without being read again. An entry without an id
cannot be confirmed at all; it is dropped, and a batch of nothing else is waited on for
a moment so the loop does not spin.

The webhook receiver reads its single update through the same `UpdateReader`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from telegram import Bot, Update
from telegram._utils.types import ODVInput
from telegram.error import TelegramError
from telegram.request import BaseRequest, RequestData

from bot.transports.telegram.request import AiohttpRequest

__all__ = [
    "KINDS",
    "UNKNOWN",
    "QuietRequest",
    "ScreeningRequest",
    "UpdateReader",
    "kind_of",
    "quiet_json",
]

log = logging.getLogger("hrd_bot.telegram")
KINDS = frozenset(str(kind) for kind in Update.ALL_TYPES)
UNKNOWN = "unknown"
STALL_SECONDS = 1.0
MAX_NAMELESS = 1000
MAX_UPDATE_ID = 2**63
JSONDict = dict[str, Any]
_EMPTY = b'{"ok": true, "result": []}'


def kind_of(raw: object) -> str:
    """The update's kind from a fixed list ("message", "callback_query"…), else "unknown"."""
    if isinstance(raw, dict):
        for key in raw:
            if key in KINDS:
                return str(key)
    if isinstance(raw, Update):
        for kind in sorted(KINDS):
            if getattr(raw, kind, None) is not None:
                return kind
    return UNKNOWN


def update_id_of(raw: object) -> int | None:
    """A whole number the database can keep (Telegram's are positive and far smaller)."""
    if not isinstance(raw, dict):
        return None
    update_id = raw.get("update_id")
    if isinstance(update_id, bool) or not isinstance(update_id, int):
        return None
    return update_id if 0 <= update_id < MAX_UPDATE_ID else None


def quiet_json(payload: bytes) -> object:
    """JSON, or ValueError that quotes nothing of the payload (deep nesting included)."""
    try:
        return json.loads(payload.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        raise ValueError("not JSON") from None


class UpdateReader:
    """Reads updates one by one; `skipped` counts those it could not, by kind."""

    def __init__(self, seen: Callable[[int], bool] = lambda _: False) -> None:
        self._seen = seen
        self.convert: Callable[[Update], object] = lambda _: None
        """The bot's own reading of an update (`incoming.from_update`), set once the bot
        knows its name: an update it raises on is skipped here too, before the library
        sees it (and logs it at DEBUG)."""
        self.skipped: Counter[str] = Counter()
        self._stalled = False
        self._nameless: set[bytes] = set()
        self._stubbed: set[int] = set()

    def skip(self, kind: str) -> None:
        """Count and log one unreadable update: its kind, nothing it carries."""
        self.skipped[kind] += 1
        log.warning("telegram: skipped an unreadable update (kind: %s)", kind)

    def read(self, raw: object, bot: Bot) -> Update | None:
        """One update for the application (its bare id if unreadable or already seen);
        None when it has no id (skipped: nothing can confirm it)."""
        update_id = update_id_of(raw)
        if update_id is None:
            self.skip(kind_of(raw))
            return None
        if self._seen(update_id):
            return _bare(update_id, bot)
        try:
            update = Update.de_json(raw, bot)  # type: ignore[arg-type]  # checked: a dict
            _check_ids(update)
            self.convert(update)
        except Exception:
            self.skip(kind_of(raw))
            stub = self._answerable(raw, update_id)
            return _bare(update_id, bot) if stub is None else Update.de_json(stub, bot)
        return update

    def screen(self, batch: list[object]) -> tuple[list[JSONDict], bool]:
        """A getUpdates result the library can read whole, and whether anything changed."""
        screened = [self._screened(raw) for raw in batch]
        kept = [update for update in screened if update is not None]
        changed = any(update is not raw for update, raw in zip(screened, batch, strict=True))
        return kept, changed

    def _screened(self, raw: object) -> JSONDict | None:
        """`raw` itself when the library can read it; else its bare id, or None without one."""
        update_id = update_id_of(raw)
        if update_id is None:
            if self._first_time(raw):
                self.skip(kind_of(raw))
            return None
        if self._seen(update_id):
            return {"update_id": update_id}
        if not self._readable(raw):
            self.skip(kind_of(raw))
            return self._answerable(raw, update_id) or {"update_id": update_id}
        return raw  # type: ignore[return-value]  # checked: a dict

    def _answerable(self, raw: object, update_id: int) -> JSONDict | None:
        """An unreadable private message as a message with nothing in it but who sent it,
        so the person is answered (the handlers ask for text) instead of left in silence."""
        stub = _stub(raw, update_id)
        if stub is None or not self._readable(stub):
            return None
        if len(self._stubbed) >= MAX_NAMELESS:
            self._stubbed.clear()
        self._stubbed.add(update_id)
        return stub

    def stubbed(self, update_id: int) -> bool:
        """Whether this update is an unreadable message's stub (asked once, then forgotten)."""
        if update_id in self._stubbed:
            self._stubbed.discard(update_id)
            return True
        return False

    def _readable(self, raw: object) -> bool:
        try:
            update = Update.de_json(raw, None)  # type: ignore[arg-type]  # checked: a dict
            _check_ids(update)
            self.convert(update)
        except Exception:
            return False
        return True

    def _first_time(self, raw: object) -> bool:
        """An entry without an id is never confirmed, so it comes back in every batch:
        it is counted and logged the first time only (known by a digest of it)."""
        try:
            text = json.dumps(raw, sort_keys=True)
        except (ValueError, TypeError, RecursionError):
            return True
        digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
        if digest in self._nameless:
            return False
        if len(self._nameless) >= MAX_NAMELESS:
            self._nameless.clear()
        self._nameless.add(digest)
        return True

    def screen_payload(self, payload: bytes) -> tuple[bytes, bool]:
        """A getUpdates answer made readable; True when it held nothing that could be
        confirmed (the caller then waits a moment instead of asking again at once)."""
        try:
            body = quiet_json(payload)
        except ValueError:
            return payload, False  # the request fails as "invalid server response"
        batch = body.get("result") if isinstance(body, dict) else None
        if not isinstance(batch, list):
            self._note_stall(True)
            return _EMPTY, True
        screened, changed = self.screen(batch)
        stalled = bool(batch) and not screened
        self._note_stall(stalled)
        if not changed:
            return payload, False
        return json.dumps({"ok": True, "result": screened}).encode(), stalled

    def _note_stall(self, stalled: bool) -> None:
        if stalled and not self._stalled:
            log.warning("telegram: getUpdates answered nothing that can be confirmed; waiting")
        self._stalled = stalled


def _check_ids(update: Update) -> None:
    """The application files every update under its chat's and sender's ids, which the
    library does not check: a list there fails after the update was handled."""
    for party in (update.effective_chat, update.effective_user):
        if party is not None and type(party.id) is not int:
            raise TypeError("an id that is not a number")


def _stub(raw: object, update_id: int) -> JSONDict | None:
    """Only the ids of a private message whose sender is its chat; None for anything else."""
    message = raw.get("message") if isinstance(raw, dict) else None
    if not isinstance(message, dict):
        return None
    chat, sender, message_id = message.get("chat"), message.get("from"), message.get("message_id")
    if not isinstance(chat, dict) or not isinstance(sender, dict) or chat.get("type") != "private":
        return None
    ids = (chat.get("id"), sender.get("id"), message_id)
    if any(type(value) is not int for value in ids) or chat["id"] != sender["id"]:
        return None
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat["id"], "type": "private"},
            "from": {"id": sender["id"], "is_bot": False, "first_name": "-"},
        },
    }


def _bare(update_id: int, bot: Bot) -> Update:
    """An update holding nothing but its id: the dispatcher takes its id and drops it."""
    update = Update(update_id)
    update.set_bot(bot)
    return update


class QuietRequest(AiohttpRequest):
    """Every other Bot API call: an answer that is not JSON is refused without being logged
    (the library would log it whole, and answers echo what the bot sent)."""

    @staticmethod
    def parse_json_payload(payload: bytes) -> JSONDict:
        return _parsed(payload)


class ScreeningRequest(QuietRequest):
    """The connection getUpdates uses (and only it): each batch is screened before the
    library reads it, and an answer that is not JSON is refused without being logged."""

    def __init__(self, reader: UpdateReader) -> None:
        super().__init__(connections=1)
        self._reader = reader

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        code, payload = await super().do_request(
            url, method, request_data, read_timeout, write_timeout, connect_timeout, pool_timeout
        )
        if code != HTTPStatus.OK or not url.endswith("/getUpdates"):
            return code, payload
        screened, stalled = self._reader.screen_payload(payload)
        if stalled:
            await asyncio.sleep(STALL_SECONDS)
        return code, screened


def _parsed(payload: bytes) -> JSONDict:
    try:
        body = quiet_json(payload)
    except ValueError:
        raise TelegramError("Invalid server response") from None
    if not isinstance(body, dict):
        raise TelegramError("Invalid server response")
    return body
