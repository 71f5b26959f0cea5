"""Conversation state: sessions, the chat trail and its sweeper, pseudonyms, per-user turns
and the flood guard. Tables: `sessions` writes sessions, `chat_trail` chat_addresses and
chat_messages.

May import `storage`, `crypto`, the model and the scheduler (`bot.scheduler`)."""
