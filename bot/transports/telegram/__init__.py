"""Telegram, through python-telegram-bot. Only `TelegramTransport` and its config leave here."""

from bot.transports.telegram.config import TelegramConfig, WebhookConfig
from bot.transports.telegram.transport import TelegramTransport

__all__ = ["TelegramConfig", "TelegramTransport", "WebhookConfig"]
