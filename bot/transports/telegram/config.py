"""Telegram settings, read from the environment next to the bot's own `Settings`.

Every variable the Telegram transport reads is named here, and checked at start so a
typo stops the bot with one clear line instead of a half-working webhook.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from bot.config import ConfigError, Settings

__all__ = ["DEFAULT_API_BASE_URL", "TelegramConfig", "WebhookConfig"]

DEFAULT_API_BASE_URL = "https://api.telegram.org/bot"
_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,256}$")


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """Where Telegram posts updates (`url`) and where this process listens for them."""

    url: str
    secret: str
    listen: str = "127.0.0.1"
    port: int = 8443

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"

    def __repr__(self) -> str:
        return f"WebhookConfig(listen={self.listen!r}, port={self.port})"


@dataclass(frozen=True, slots=True)
class TelegramConfig:
    """`max_rate` is the overall messages per second (Telegram allows about 30; 0 = no limit)."""

    token: str
    api_base_url: str = DEFAULT_API_BASE_URL
    webhook: WebhookConfig | None = None
    poll_timeout: int = 30
    sweep_interval: timedelta = timedelta(seconds=30)
    max_rate: float = 30.0
    max_retries: int = 3

    @property
    def file_base_url(self) -> str:
        """PTB wants both; a local Bot API server serves files under `/file/bot`."""
        root = self.api_base_url.removesuffix("/bot")
        return f"{root}/file/bot"

    @classmethod
    def from_settings(cls, settings: Settings) -> TelegramConfig:
        """TELEGRAM_BOT_TOKEN(_FILE), TELEGRAM_API_BASE_URL, TELEGRAM_WEBHOOK_URL,
        TELEGRAM_WEBHOOK_SECRET(_FILE), TELEGRAM_WEBHOOK_LISTEN, TELEGRAM_WEBHOOK_PORT,
        TELEGRAM_POLL_TIMEOUT, TELEGRAM_SWEEP_INTERVAL, TELEGRAM_MAX_RATE."""
        token = settings.secret("TELEGRAM_BOT_TOKEN")
        if not token:
            raise ConfigError("TELEGRAM_BOT_TOKEN (or TELEGRAM_BOT_TOKEN_FILE) is not set")
        env = settings.env
        return cls(
            token=token,
            api_base_url=_url(env.get("TELEGRAM_API_BASE_URL", "") or DEFAULT_API_BASE_URL),
            webhook=_webhook(settings),
            poll_timeout=_number(env.get("TELEGRAM_POLL_TIMEOUT", ""), "TELEGRAM_POLL_TIMEOUT", 30),
            sweep_interval=timedelta(
                seconds=_number(
                    env.get("TELEGRAM_SWEEP_INTERVAL", ""), "TELEGRAM_SWEEP_INTERVAL", 30
                )
            ),
            max_rate=_number(env.get("TELEGRAM_MAX_RATE", ""), "TELEGRAM_MAX_RATE", 30),
        )

    def __repr__(self) -> str:
        return f"TelegramConfig(webhook={self.webhook!r})"


def _url(raw: str, *, name: str = "TELEGRAM_API_BASE_URL") -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an http(s) URL")
    return raw.strip().rstrip("/")


def _number(raw: str, name: str, default: int) -> int:
    try:
        value = int(raw) if raw.strip() else default
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative")
    return value


def _webhook(settings: Settings) -> WebhookConfig | None:
    """Webhook mode only with a secret token, so nobody else can post fake updates to it."""
    url = settings.env.get("TELEGRAM_WEBHOOK_URL", "").strip()
    if not url:
        return None
    secret = settings.secret("TELEGRAM_WEBHOOK_SECRET")
    if not secret or not _SECRET_TOKEN.match(secret):
        raise ConfigError(
            "TELEGRAM_WEBHOOK_SECRET (or _FILE) must be set with TELEGRAM_WEBHOOK_URL: "
            "16-256 characters of A-Z, a-z, 0-9, _ and -"
        )
    port = _number(settings.env.get("TELEGRAM_WEBHOOK_PORT", ""), "TELEGRAM_WEBHOOK_PORT", 8443)
    if not 0 < port < 65536:
        raise ConfigError("TELEGRAM_WEBHOOK_PORT must be a TCP port")
    listen = settings.env.get("TELEGRAM_WEBHOOK_LISTEN", "").strip() or "127.0.0.1"
    return WebhookConfig(_url(url, name="TELEGRAM_WEBHOOK_URL"), secret, listen, port)
