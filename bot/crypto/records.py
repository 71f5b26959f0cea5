"""Plain records shared by the server's store and the staff machine's bundle reader.

None of them holds plaintext content: items and audit details are sealed blobs.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.crypto.keys import PublicKey

__all__ = ["AuditEntry", "CaseMeta", "SealedItem"]


@dataclass(frozen=True, slots=True)
class CaseMeta:
    """Routing metadata only: what the server may read to route and schedule a case."""

    id: str
    public_key: PublicKey
    created_at: int
    updated_at: int
    state: str
    country: str | None
    urgency: str | None


@dataclass(frozen=True, slots=True)
class SealedItem:
    """One answer, note or attachment, sealed to its case at (field, seq)."""

    field: str
    seq: int
    created_at: int
    sealed: bytes

    def __repr__(self) -> str:
        return f"SealedItem({self.field!r}, {self.seq}, <{len(self.sealed)} bytes>)"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One append-only audit row; `detail` is sealed, or absent."""

    at: int
    actor: str
    action: str
    case_id: str | None
    detail: bytes | None

    def __repr__(self) -> str:
        size = "none" if self.detail is None else f"<{len(self.detail)} bytes>"
        return f"AuditEntry({self.at}, {self.actor!r}, {self.action!r}, {self.case_id!r}, {size})"
