"""What the confirmation of `/forget` says on Telegram once the chat was erased.

The handlers' confirmation is the same on every platform; only the transport knows what
Telegram did. So after the erase the confirmation is edited to add it: how many messages
on record are gone, which Telegram refused (older than 48 hours) or failed for now (the
sweeper keeps trying), a lost send that could not be checked, and what the person can
do themselves. Nothing is claimed that did not happen.

The lines are in the confirmation's language (`Reply.language`).
"""

from __future__ import annotations

from collections.abc import Callable

from bot.content.library import FALLBACK, Library
from bot.model import Reply
from bot.text import directed
from bot.transports.telegram.deleting import Erased
from bot.transports.telegram.outbox import Epilogue

__all__ = ["epilogue"]


def epilogue(content: Callable[[], Library]) -> Epilogue:
    """`content` gives the content now (a reload may have swapped it)."""

    def tell(confirmation: Reply, erased: Erased) -> str:
        t = content().translator(confirmation.language or FALLBACK)
        lines = [t("telegram.forget.gone", count=erased.gone)]
        if erased.refused:
            lines.append(t("telegram.forget.refused", count=erased.refused))
        if erased.retrying:
            lines.append(t("telegram.forget.retrying", count=erased.retrying))
        if erased.unsure:
            lines.append(t("telegram.forget.unsure", count=erased.unsure))
        lines += [t("telegram.forget.yourself"), t("telegram.forget.again")]
        return directed("\n\n".join([confirmation.text.rstrip(), *lines]), t.rtl)

    return tell
