"""Conversation state: sessions, the chat trail and its sweeper, pseudonyms, per-user turns
and the flood guard.

May import `storage`, `crypto` and the model."""
