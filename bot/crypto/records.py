"""Plain records shared by the server's store and the staff machine's bundle reader.

None of them holds plaintext content: items and audit details are sealed blobs. An
item's or audit entry's `log` is its place in the case's tamper-evident log
(`bot.crypto.caselog`); it is None for cases made before the log existed.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.crypto.keys import PublicKey

__all__ = ["AuditEntry", "CaseMeta", "CaseState", "LogEnd", "LogLink", "SealedItem"]


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
class CaseState:
    """A case's metadata as an audit entry left it; the log binds it to that entry."""

    created_at: int
    updated_at: int
    state: str
    country: str | None
    urgency: str | None

    @classmethod
    def of(cls, case: CaseMeta) -> CaseState:
        return cls(case.created_at, case.updated_at, case.state, case.country, case.urgency)


@dataclass(frozen=True, slots=True)
class LogLink:
    """An entry's position in its case log and the tag that proves it was recorded there.

    `replaces`: for a draft item, the positions of the earlier items it took the place of.
    `after`: for an audit entry, the case's metadata once the action was done."""

    pos: int
    tag: bytes
    replaces: tuple[int, ...] = ()
    after: CaseState | None = None

    def __repr__(self) -> str:
        return f"LogLink({self.pos})"


@dataclass(frozen=True, slots=True)
class LogEnd:
    """How many positions the log had at export, tagged with the next position's key."""

    count: int
    tag: bytes

    def __repr__(self) -> str:
        return f"LogEnd({self.count})"


@dataclass(frozen=True, slots=True)
class SealedItem:
    """One answer, note or attachment, sealed to its case at (field, seq)."""

    field: str
    seq: int
    created_at: int
    sealed: bytes
    log: LogLink | None = None

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
    log: LogLink | None = None

    def __repr__(self) -> str:
        size = "none" if self.detail is None else f"<{len(self.detail)} bytes>"
        return f"AuditEntry({self.at}, {self.actor!r}, {self.action!r}, {self.case_id!r}, {size})"
