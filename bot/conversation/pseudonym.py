"""Keyed pseudonyms: platform user ids and chat addresses never reach storage or logs in
the clear (a chat's real address is kept only while the bot still needs it to write there
or to delete a message: see `bot.conversation.chat_trail`)."""

from __future__ import annotations

import hashlib
import hmac

from bot.model import UserRef

__all__ = ["PSEUDONYM_SECRET", "Pseudonymizer"]

PSEUDONYM_SECRET = "pseudonym-secret"  # noqa: S105 - the secret's name, not the secret
"""The name of the server secret (in the encrypted database) that keys every pseudonym."""


class Pseudonymizer:
    """HMAC-SHA256 with a secret kept inside the encrypted database."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("pseudonym secret too short")
        self._secret = secret

    def user(self, platform: str, platform_user_id: str) -> UserRef:
        message = f"{platform}\x00{platform_user_id}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).hexdigest()
        return UserRef(platform=platform, pseudonym=digest[:32])

    def chat(self, platform: str, address: str) -> str:
        """A chat's pseudonym, in a domain of its own: in a Telegram private chat the chat
        id is the user id, and the chat trail must not join on a user's key."""
        message = f"chat\x00{platform}\x00{address}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]

    def __repr__(self) -> str:
        return "Pseudonymizer(***)"
