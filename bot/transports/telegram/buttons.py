"""Inline-button payloads that cannot be forged, reused in another chat, or pressed late.

Telegram clients can send any `callback_data` for any message that has buttons, so a
payload is never trusted. Each button carries `nonce + index + tag`: the nonce names one
screen, the index one of its choices, and the tag (an HMAC bound to the chat) proves the
bot made it for this chat. Which choice an index means, and which screen is current, is
kept here, per chat: only the buttons of the last screen the bot sent are obeyed. Choice
ids never leave the server, and every payload is 26 bytes (Telegram allows 64).

The current screens are kept in memory: after a restart every old button is refused,
and the handlers answer with the current screen and fresh buttons.

A staff alert's Claim button is the exception: it must stay good under newer messages
and across restarts, so its payload (`claim_payload`) is `K` and an HMAC bound to the
chat alone; which case it claims is read from the pressed message's id, never from it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

__all__ = ["ButtonBook", "Press"]

_TOKEN = re.compile(r"^([A-Za-z0-9_-]{8})([0-9a-f]{2})([A-Za-z0-9_-]{16})$")
_CLAIM = re.compile(r"^K([A-Za-z0-9_-]{16})$")
MAX_CHOICES = 256


class Press(Enum):
    """Why a press was refused."""

    STALE = "stale"
    FORGED = "forged"


@dataclass(frozen=True, slots=True)
class _Screen:
    message_id: int
    nonce: str
    choices: tuple[str, ...]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")


class ButtonBook:
    """Issues payloads for a screen's buttons and turns a press back into a choice id."""

    def __init__(self, secret: bytes, max_chats: int = 100_000) -> None:
        if len(secret) < 16:
            raise ValueError("callback secret too short")
        self._secret = secret
        self._max_chats = max_chats
        self._current: OrderedDict[str, _Screen] = OrderedDict()

    @staticmethod
    def new_nonce() -> str:
        return _b64(secrets.token_bytes(6))

    def payloads(self, chat: str, nonce: str, count: int) -> list[str]:
        """One payload per choice, in order."""
        if count > MAX_CHOICES:
            raise ValueError(f"a screen can have at most {MAX_CHOICES} buttons")
        return [f"{nonce}{index:02x}{self._tag(chat, nonce, index)}" for index in range(count)]

    def shown(self, chat: str, message_id: int, nonce: str, choices: Sequence[str]) -> None:
        """The screen with these buttons is now the chat's current one."""
        self._current.pop(chat, None)
        self._current[chat] = _Screen(message_id, nonce, tuple(choices))
        while len(self._current) > self._max_chats:
            self._current.popitem(last=False)

    def forget(self, chat: str) -> None:
        """The chat's last message has no buttons: every earlier button is stale."""
        self._current.pop(chat, None)

    def resolve(self, chat: str, message_id: int, payload: str | None) -> str | Press:
        """The pressed choice id, or why the press must not be obeyed."""
        match = _TOKEN.match(payload or "")
        if match is None:
            return Press.FORGED
        nonce, index_hex, tag = match.groups()
        index = int(index_hex, 16)
        if not hmac.compare_digest(tag, self._tag(chat, nonce, index)):
            return Press.FORGED
        screen = self._current.get(chat)
        if screen is None or screen.nonce != nonce or screen.message_id != message_id:
            return Press.STALE
        if index >= len(screen.choices):
            return Press.FORGED
        return screen.choices[index]

    def claim_payload(self, chat: str) -> str:
        """The Claim button's payload in this chat (see the module)."""
        return "K" + self._tag(chat, "claim", 0)

    def is_claim(self, payload: str | None) -> bool:
        """The payload has a Claim button's form (its tag is checked by `claim`)."""
        return _CLAIM.match(payload or "") is not None

    def claim(self, chat: str, payload: str | None) -> bool:
        """The payload is this chat's Claim button, made by the bot."""
        match = _CLAIM.match(payload or "")
        return match is not None and hmac.compare_digest(match[1], self._tag(chat, "claim", 0))

    def _tag(self, chat: str, nonce: str, index: int) -> str:
        message = f"{chat}\x00{nonce}\x00{index}".encode()
        return _b64(hmac.new(self._secret, message, hashlib.sha256).digest()[:12])

    def __repr__(self) -> str:
        return f"ButtonBook(chats={len(self._current)})"
