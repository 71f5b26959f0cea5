"""Conversation logic over the neutral model only: no platform type is imported here."""

from handlers.router import respond

__all__ = ["respond"]
