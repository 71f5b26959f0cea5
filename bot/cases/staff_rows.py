"""The protection team's keys as the server keeps them: the `staff` and `org_keys` tables.

This module is their one writer. Each function takes the open connection and never
commits; `bot.cases.store.CasesStore` makes each change one audited transaction. A
member's label and platform identities are sealed (`Connection.seal`): PostgreSQL at
rest holds neither.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.crypto.keys import PublicKey
from bot.storage.database import Connection

__all__ = [
    "STAFF_ACTIVE",
    "STAFF_ALL",
    "STAFF_ONE",
    "StaffMember",
    "insert_staff",
    "mark_removed",
    "put_recovery",
    "recovery_key",
    "staff_member",
]


@dataclass(frozen=True, slots=True)
class StaffMember:
    """A protection team member as the server knows them: public key and identities only."""

    id: int
    label: str
    identities: tuple[str, ...]
    public_key: PublicKey
    added_at: int
    removed_at: int | None

    @property
    def name(self) -> str:
        return f"staff:{self.id}"

    @property
    def active(self) -> bool:
        return self.removed_at is None

    def __repr__(self) -> str:
        """No label or platform identity: a logged member shows only id and fingerprint."""
        state = "active" if self.active else "removed"
        return f"StaffMember({self.name}, {self.public_key.fingerprint!r}, {state})"


def staff_member(conn: Connection, row: Sequence[Any]) -> StaffMember:
    """A row of `STAFF_*`, its label and identities unsealed."""
    sid, label, identities, public_key, added_at, removed_at = row
    return StaffMember(
        id=sid,
        label=conn.unseal("staff.label", label),
        identities=tuple(json.loads(conn.unseal("staff.identities", identities))),
        public_key=PublicKey.from_text(conn.unseal(_KEY, public_key), check_point=False),
        added_at=added_at,
        removed_at=removed_at,
    )


_KEY, _ORG_KEY = "staff.public_key", "org_keys.public_key"
"""Sealed on PostgreSQL though public: sealing authenticates them, so whoever can write to
PostgreSQL without the database key cannot make new cases readable to a key of their own
(over SQLCipher, the file's page MACs already do; hence `check_point=False` on reading)."""
STAFF = "SELECT id, label, identities, public_key, added_at, removed_at FROM staff"
STAFF_ALL = STAFF + " ORDER BY id"
STAFF_ACTIVE = STAFF + " WHERE removed_at IS NULL ORDER BY id"
STAFF_ONE = STAFF + " WHERE id = ?"


def recovery_key(conn: Connection) -> PublicKey | None:
    row = conn.execute("SELECT public_key FROM org_keys WHERE name = 'recovery'").fetchone()
    return (
        None
        if row is None
        else PublicKey.from_text(conn.unseal(_ORG_KEY, row[0]), check_point=False)
    )


def insert_staff(
    conn: Connection, label: str, identities: tuple[str, ...], public_key: PublicKey, now: int
) -> StaffMember | None:
    """A new active member; None when an active one has this key (checked first, in the
    caller's transaction, so no engine's constraint error has to be told apart)."""
    taken = conn.execute(
        "SELECT 1 FROM staff WHERE public_key = ? AND removed_at IS NULL",
        (conn.seal(_KEY, public_key.text),),
    ).fetchone()
    if taken is not None:
        return None
    sealed = conn.seal("staff.label", label)
    found = conn.seal("staff.identities", json.dumps(identities))
    row = conn.execute(
        "INSERT INTO staff (label, identities, public_key, fingerprint, added_at) "
        "VALUES (?, ?, ?, ?, ?) RETURNING id",
        (sealed, found, conn.seal(_KEY, public_key.text), public_key.fingerprint, now),
    ).fetchone()
    return StaffMember(int(row[0]), label, identities, public_key, now, None)


def mark_removed(conn: Connection, staff_id: int, now: int) -> StaffMember | None:
    """The member as removed now; None when no active member has this id."""
    cursor = conn.execute(
        "UPDATE staff SET removed_at = ? WHERE id = ? AND removed_at IS NULL", (now, staff_id)
    )
    if cursor.rowcount != 1:
        return None
    return staff_member(conn, conn.execute(STAFF_ONE, (staff_id,)).fetchone())


def put_recovery(conn: Connection, public_key: PublicKey, now: int) -> None:
    """Set or replace the organisation recovery key."""
    conn.execute(
        "INSERT INTO org_keys (name, public_key, fingerprint, set_at) "
        "VALUES ('recovery', ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
        "public_key = excluded.public_key, fingerprint = excluded.fingerprint, "
        "set_at = excluded.set_at",
        (conn.seal(_ORG_KEY, public_key.text), public_key.fingerprint, now),
    )
