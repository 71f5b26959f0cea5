"""What a person is told when the bot, not their message, is the problem: a bug, a storage
fault, or their own flood of messages. Worded here; the App decides when."""

from __future__ import annotations

from bot.content.library import Translator
from bot.model import Reply
from handlers.output import said

__all__ = ["flood_notice", "internal_error", "storage_notice"]


def internal_error(t: Translator) -> Reply:
    return said(t, t("error.internal"))


def storage_notice(t: Translator, *, full: bool) -> Reply:
    """Their message was not kept (a full disk), or storage failed (damage)."""
    return said(t, t("error.storage_full" if full else "error.storage"))


def flood_notice(t: Translator) -> Reply:
    return said(t, t("error.flood"))
