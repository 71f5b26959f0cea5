"""A case's urgency and state as staff read them, in their language: the values stored are
English codes ("critical", "acknowledged"), and staff type the codes in commands."""

from __future__ import annotations

from bot.content.library import Translator
from bot.content.schema import URGENCIES

__all__ = ["state_name", "urgency_name"]

STATES = frozenset({"new", "acknowledged", "assigned", "closed"})


def urgency_name(t: Translator, urgency: str | None) -> str:
    return t(f"urgency.{urgency}") if urgency in URGENCIES else (urgency or "?")


def state_name(t: Translator, state: str) -> str:
    return t(f"case_state.{state}") if state in STATES else state
