"""What the confirmation of `/forget` says on Telegram once the chat was erased.

The handlers' confirmation is the same on every platform; only the transport knows what
Telegram did. So after the erase the confirmation is edited to add it: how many messages
on record are gone, which Telegram refused (older than 48 hours) or failed for now (the
sweeper keeps trying), a lost send that could not be checked, and what the person can
do themselves. Nothing is claimed that did not happen.

The confirmation carries no language, so the language is the one whose confirmation it
is; text from an unknown language gets the English lines.
"""

from __future__ import annotations

from bot.content.library import FALLBACK, Library, Translator
from bot.transports.telegram.deleting import Erased
from bot.transports.telegram.outbox import Epilogue
from handlers.output import directed

__all__ = ["epilogue"]


def epilogue(library: Library) -> Epilogue:
    def tell(confirmation: str, erased: Erased) -> str:
        t = _language(library, confirmation)
        lines = [t("telegram.forget.gone", count=erased.gone)]
        if erased.refused:
            lines.append(t("telegram.forget.refused", count=erased.refused))
        if erased.retrying:
            lines.append(t("telegram.forget.retrying", count=erased.retrying))
        if erased.unsure:
            lines.append(t("telegram.forget.unsure", count=erased.unsure))
        again = t("telegram.forget.again")
        lines += [t("telegram.forget.yourself"), again]
        return directed("\n\n".join([_without(confirmation, again), *lines]), t.rtl)

    return tell


def _language(library: Library, confirmation: str) -> Translator:
    for code in library.packs:
        t = library.translator(code)
        if directed(t("forget.done"), t.rtl) in confirmation:
            return t
    return library.translator(FALLBACK)


def _without(confirmation: str, again: str) -> str:
    """The confirmation without a closing "send any message" sentence, which goes last."""
    text = confirmation.rstrip()
    return text[: -len(again)].rstrip() if text.endswith(again) else confirmation
