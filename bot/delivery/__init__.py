"""Delivery of what the bot starts: the outbox (`bot.delivery.outbox`), its retry policy
and its outcomes. Only the leaf modules are re-exported here: settings import the
policy, and the outbox itself needs storage."""

from bot.delivery.outcome import Outcome, Reason, Undelivered
from bot.delivery.policy import RetryPolicy

__all__ = ["Outcome", "Reason", "RetryPolicy", "Undelivered"]
