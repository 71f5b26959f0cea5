"""How a staff alert offers one-tap claiming on each platform (the offer's words are
`handlers.staff_text.claimable`).

Telegram shows a "Claim" button (`CLAIM`, whose payload the transport tags for the chat
alone, since an alert must stay claimable after newer messages); Matrix says to react
with 👍 or ✋. Either way the transport hands the handlers only the id of the alert
claimed (`Incoming.claim_of`), and the case is found from the ids the outbox recorded
when it delivered the alert (`bot.delivery.rows.alerted_case`).
"""

from __future__ import annotations

__all__ = ["CLAIM", "CLAIM_REACTIONS", "is_claim_reaction"]

CLAIM = "staff:claim"
CLAIM_REACTIONS = frozenset({"👍", "✋"})
_VARIATIONS = str.maketrans("", "", "\ufe0e\ufe0f")
_SKIN_TONES = {chr(c) for c in range(0x1F3FB, 0x1F400)}


def is_claim_reaction(key: str) -> bool:
    """👍 or ✋, with or without a variation selector or a skin tone."""
    bare = "".join(ch for ch in key.translate(_VARIATIONS) if ch not in _SKIN_TONES)
    return bare in CLAIM_REACTIONS
