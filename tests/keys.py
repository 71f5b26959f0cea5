"""The database key every test uses, unless it tests keys."""

from bot.storage import DbKey

__all__ = ["TEST_KEY"]

TEST_KEY = DbKey("ab" * 32)
