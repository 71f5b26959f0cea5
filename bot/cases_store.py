"""Sealed cases in the encrypted database: staff keys, recovery key, cases, items, audit.

The server side of the sealing design (see `bot.crypto.cases`). A case is sealed at
creation to the staff who are active at that moment plus the recovery key, inside
the same transaction that reads the staff list, so a member removed a moment before
can never receive a case created after. Items are sealed on the DB worker thread in
the transaction that assigns their position (seq), so the position bound into the
HPKE info is always the stored one. The event loop never runs the crypto (a seal
takes ~80 µs of the worker's time, during which it may hold the GIL). Public keys
read back from the database skip the low-order point check: it was done when they
were added, and the database is authenticated by SQLCipher.

What this store keeps readable (inside SQLCipher only): public keys, fingerprints,
staff labels and platform identities, and routing metadata (state, country,
urgency, times). Everything a reporter says is a sealed blob. Audit rows are
append-only (SQLite triggers) and their detail is sealed to the case key (case
events) or the recovery key (staff events; none when no recovery key is set).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlcipher3

from bot.crypto.bundle import Bundle, Reseal
from bot.crypto.cases import (
    RECOVERY,
    CaseKey,
    Recipient,
    SealedCaseKey,
    check_field,
    new_case_id,
    seal_audit_detail,
    seal_item,
)
from bot.crypto.keys import PublicKey
from bot.crypto.records import AuditEntry, CaseMeta, SealedItem
from bot.storage.database import Connection, Database

__all__ = [
    "MAX_ITEM_BYTES",
    "CaseStoreError",
    "CasesStore",
    "StaffMember",
]

MAX_ITEM_BYTES = 16 * 1024 * 1024
SYSTEM = "system"
_IDENTITY = re.compile(r"^[a-z][a-z0-9]{1,15}:\S{1,255}$")
_ACTOR = re.compile(r"^(system|[a-z][a-z0-9]{1,15}:[0-9a-f]{16,64})$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_URGENCY = re.compile(r"^[a-z_]{1,16}$")
_MUTABLE = {"state", "country", "urgency", "assignee", "submitted_at", "acknowledged_at"}


class CaseStoreError(Exception):
    """A request the store refuses; the message is safe to print and holds no content."""


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


def _check_actor(actor: str) -> str:
    """Only 'system' or a keyed pseudonym: a raw platform id must never reach the audit."""
    if not _ACTOR.match(actor):
        raise CaseStoreError("an audit actor is 'system' or a pseudonym key")
    return actor


def _check_label(label: str) -> str:
    label = label.strip()
    if not label or len(label) > 80 or not label.isprintable():
        raise CaseStoreError("a staff label is 1-80 printable characters")
    return label


def _check_identities(identities: Sequence[str]) -> tuple[str, ...]:
    for identity in identities:
        if not _IDENTITY.match(identity):
            raise CaseStoreError("an identity looks like platform:id (telegram:123, matrix:@a:b)")
    return tuple(dict.fromkeys(identities))


def _staff(row: Sequence[Any]) -> StaffMember:
    sid, label, identities, public_key, added_at, removed_at = row
    return StaffMember(
        id=sid,
        label=label,
        identities=tuple(json.loads(identities)),
        public_key=PublicKey.from_text(public_key, check_point=False),
        added_at=added_at,
        removed_at=removed_at,
    )


_STAFF = "SELECT id, label, identities, public_key, added_at, removed_at FROM staff"
_STAFF_ALL = _STAFF + " ORDER BY id"
_STAFF_ACTIVE = _STAFF + " WHERE removed_at IS NULL ORDER BY id"
_STAFF_ONE = _STAFF + " WHERE id = ?"
_CASE_ONE = (
    "SELECT id, public_key, created_at, updated_at, state, country, urgency FROM cases WHERE id = ?"
)
_CASE_INSERT = (
    "INSERT INTO cases (id, public_key, created_at, updated_at, state, country, urgency) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_AUDIT = "SELECT at, actor, action, case_id, detail FROM audit"
_AUDIT_ALL = _AUDIT + " ORDER BY id"
_AUDIT_CASE = _AUDIT + " WHERE case_id = ? ORDER BY id"


def _recovery(conn: Connection) -> PublicKey | None:
    row = conn.execute("SELECT public_key FROM org_keys WHERE name = 'recovery'").fetchone()
    return None if row is None else PublicKey.from_text(row[0], check_point=False)


def _current_recipients(conn: Connection) -> list[Recipient]:
    """Who a case created now is sealed to: every active staff member, then recovery."""
    rows = conn.execute(_STAFF_ACTIVE).fetchall()
    found = [Recipient(m.name, m.public_key) for m in map(_staff, rows)]
    if (recovery := _recovery(conn)) is not None:
        found.append(Recipient(RECOVERY, recovery))
    return found


def _case(conn: Connection, case_id: str) -> CaseMeta:
    row = conn.execute(_CASE_ONE, (case_id,)).fetchone()
    if row is None:
        raise CaseStoreError(f"no case {case_id}")
    cid, public, created, updated, state, country, urgency = row
    key = PublicKey.from_raw(bytes(public), check_point=False)
    return CaseMeta(cid, key, created, updated, state, country, urgency)


def _insert_sealed_keys(conn: Connection, case_id: str, sealed: Sequence[SealedCaseKey]) -> None:
    conn.executemany(
        "INSERT INTO case_recipients (case_id, recipient, fingerprint, sealed_key) "
        "VALUES (?, ?, ?, ?)",
        [(case_id, s.recipient, s.fingerprint, s.blob) for s in sealed],
    )


def _sealed_keys(conn: Connection, case_id: str) -> list[SealedCaseKey]:
    rows = conn.execute(
        "SELECT recipient, fingerprint, sealed_key FROM case_recipients WHERE case_id = ? "
        "ORDER BY recipient",
        (case_id,),
    ).fetchall()
    return [SealedCaseKey(r, f, bytes(b)) for r, f, b in rows]


def _items(conn: Connection, case_id: str) -> list[SealedItem]:
    rows = conn.execute(
        "SELECT field, seq, created_at, sealed FROM case_items WHERE case_id = ? "
        "ORDER BY created_at, id",
        (case_id,),
    ).fetchall()
    return [SealedItem(f, s, c, bytes(b)) for f, s, c, b in rows]


def _audit_rows(conn: Connection, case_id: str | None) -> list[AuditEntry]:
    if case_id is None:
        rows = conn.execute(_AUDIT_ALL).fetchall()
    else:
        rows = conn.execute(_AUDIT_CASE, (case_id,)).fetchall()
    return [AuditEntry(a, w, x, c, None if d is None else bytes(d)) for a, w, x, c, d in rows]


def _append_audit(
    conn: Connection,
    at: int,
    actor: str,
    action: str,
    case: CaseMeta | None = None,
    detail: Mapping[str, object] | None = None,
) -> None:
    """Add one audit row; `detail` is sealed to the case key, else to the recovery key."""
    sealed = None
    if detail is not None:
        plain = json.dumps(detail, sort_keys=True).encode("utf-8")
        if case is not None:
            sealed = seal_audit_detail(case.public_key, case.id, action, at, plain)
        elif (recovery := _recovery(conn)) is not None:
            sealed = seal_audit_detail(recovery, "", action, at, plain)
    conn.execute(
        "INSERT INTO audit (at, actor, action, case_id, detail) VALUES (?, ?, ?, ?, ?)",
        (at, actor, action, None if case is None else case.id, sealed),
    )


def _create_case(
    conn: Connection, now: int, actor: str, country: str | None, urgency: str | None
) -> CaseMeta:
    recipients = _current_recipients(conn)
    if not recipients:
        raise CaseStoreError("no active staff and no recovery key: a case would be unreadable")
    while True:
        case_id = new_case_id()
        if conn.execute("SELECT 1 FROM cases WHERE id = ?", (case_id,)).fetchone() is None:
            break
    key = CaseKey.create(case_id)
    case = CaseMeta(case_id, key.public, now, now, "open", country, urgency)
    conn.execute(
        _CASE_INSERT,
        (case_id, key.public.raw, now, now, case.state, country, urgency),
    )
    _insert_sealed_keys(conn, case_id, key.seal_to(recipients))
    del key
    _append_audit(
        conn, now, actor, "case.create", case, {"sealed_to": [r.name for r in recipients]}
    )
    return case


def _add_item(conn: Connection, now: int, case_id: str, field: str, data: bytes) -> int:
    case = _case(conn, case_id)
    row = conn.execute(
        "SELECT COALESCE(MAX(seq) + 1, 0) FROM case_items WHERE case_id = ? AND field = ?",
        (case_id, field),
    ).fetchone()
    seq = int(row[0])
    conn.execute(
        "INSERT INTO case_items (case_id, field, seq, sealed, created_at) VALUES (?, ?, ?, ?, ?)",
        (case_id, field, seq, seal_item(case.public_key, case_id, field, seq, data), now),
    )
    conn.execute("UPDATE cases SET updated_at = ? WHERE id = ?", (now, case_id))
    return seq


def _check_reseal(conn: Connection, reseal: Reseal) -> CaseMeta:
    """The reseal must be for this case's key and only for recipients current right now."""
    case = _case(conn, reseal.case_id)
    if not case.public_key.same_as(reseal.case_public):
        raise CaseStoreError(f"this reseal file is for another key of {case.id}")
    if not reseal.sealed_keys:
        raise CaseStoreError("this reseal file seals to nobody")
    current = {r.name: r.public_key.fingerprint for r in _current_recipients(conn)}
    names = [s.recipient for s in reseal.sealed_keys]
    if len(set(names)) != len(names):
        raise CaseStoreError("this reseal file lists a recipient twice")
    for sealed in reseal.sealed_keys:
        if current.get(sealed.recipient) != sealed.fingerprint:
            raise CaseStoreError(
                f"{sealed.recipient} ({sealed.fingerprint}) is not a current recipient; "
                "export the case again and reseal from the new bundle"
            )
    return case


class CasesStore:
    """Async repository over `Database`; every method is one transaction on the DB thread."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    @property
    def database(self) -> Database:
        return self._db

    def _now(self) -> int:
        return int(self._clock())

    async def add_staff(
        self, label: str, identities: Sequence[str], public_key: PublicKey, actor: str = SYSTEM
    ) -> StaffMember:
        """Register a member's public key; cases created from now on are sealed to them."""
        label, found, now = _check_label(label), _check_identities(identities), self._now()
        _check_actor(actor)

        def add(conn: Connection) -> StaffMember:
            try:
                cursor = conn.execute(
                    "INSERT INTO staff (label, identities, public_key, fingerprint, added_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (label, json.dumps(found), public_key.text, public_key.fingerprint, now),
                )
            except sqlcipher3.IntegrityError:
                raise CaseStoreError("an active staff member already has this public key") from None
            member = StaffMember(int(cursor.lastrowid), label, found, public_key, now, None)
            detail = {"staff": member.name, "fingerprint": public_key.fingerprint}
            _append_audit(conn, now, actor, "staff.add", detail=detail)
            return member

        return await self._db.transaction(add)

    async def list_staff(self, *, include_removed: bool = False) -> list[StaffMember]:
        query = _STAFF_ALL if include_removed else _STAFF_ACTIVE

        def read(conn: Connection) -> list[StaffMember]:
            return [_staff(r) for r in conn.execute(query).fetchall()]

        return await self._db.run(read)

    async def remove_staff(self, staff_id: int, actor: str = SYSTEM) -> StaffMember:
        """Mark a member removed: no case created afterwards is sealed to them.

        Cases already sealed to them keep that copy until an open case is resealed
        (`hrd-bot cases reseal` on a staff machine, then `cases apply-reseal`).
        """
        now = self._now()
        _check_actor(actor)

        def remove(conn: Connection) -> StaffMember:
            cursor = conn.execute(
                "UPDATE staff SET removed_at = ? WHERE id = ? AND removed_at IS NULL",
                (now, staff_id),
            )
            if cursor.rowcount != 1:
                raise CaseStoreError(f"no active staff member {staff_id}")
            member = _staff(conn.execute(_STAFF_ONE, (staff_id,)).fetchone())
            _append_audit(conn, now, actor, "staff.remove", detail={"staff": member.name})
            return member

        return await self._db.transaction(remove)

    async def set_recovery(self, public_key: PublicKey, actor: str = SYSTEM) -> None:
        """Set (or replace) the organisation recovery key for cases created from now on."""
        now = self._now()
        _check_actor(actor)

        def put(conn: Connection) -> None:
            conn.execute(
                "INSERT INTO org_keys (name, public_key, fingerprint, set_at) "
                "VALUES ('recovery', ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                "public_key = excluded.public_key, fingerprint = excluded.fingerprint, "
                "set_at = excluded.set_at",
                (public_key.text, public_key.fingerprint, now),
            )
            detail = {"fingerprint": public_key.fingerprint}
            _append_audit(conn, now, actor, "recovery.set", detail=detail)

        await self._db.transaction(put)

    async def recovery(self) -> PublicKey | None:
        return await self._db.run(_recovery)

    async def create_case(
        self, *, country: str | None = None, urgency: str | None = None, actor: str = SYSTEM
    ) -> CaseMeta:
        """A new case with its own key pair, sealed to current staff and recovery, then dropped."""
        if country is not None and not _COUNTRY.match(country):
            raise CaseStoreError("a country is a two-letter upper-case code")
        if urgency is not None and not _URGENCY.match(urgency):
            raise CaseStoreError("an urgency is a short lower-case word")
        now, _ = self._now(), _check_actor(actor)
        return await self._db.transaction(lambda c: _create_case(c, now, actor, country, urgency))

    async def add_item(self, case_id: str, field: str, data: bytes) -> int:
        """Seal `data` to the case at the next position for `field`; returns that position."""
        check_field(field)
        if len(data) > MAX_ITEM_BYTES:
            raise CaseStoreError(f"an item is at most {MAX_ITEM_BYTES} bytes")
        now = self._now()
        return await self._db.transaction(lambda c: _add_item(c, now, case_id, field, data))

    async def record_action(
        self,
        case_id: str,
        actor: str,
        action: str,
        *,
        changes: Mapping[str, object] | None = None,
        detail: Mapping[str, object] | None = None,
        item: tuple[str, bytes] | None = None,
    ) -> CaseMeta:
        """One action in one transaction: routing columns changed, an item sealed, audited."""
        unknown = set(changes or {}) - _MUTABLE
        if unknown:
            raise CaseStoreError(f"these columns cannot be changed: {', '.join(sorted(unknown))}")
        if item is not None:
            check_field(item[0])
        now, _ = self._now(), _check_actor(actor)

        def act(conn: Connection) -> CaseMeta:
            for column, value in (changes or {}).items():
                conn.execute(f"UPDATE cases SET {column} = ? WHERE id = ?", (value, case_id))  # noqa: S608
            if item is not None:
                _add_item(conn, now, case_id, *item)
            case = _case(conn, case_id)
            conn.execute("UPDATE cases SET updated_at = ? WHERE id = ?", (now, case_id))
            _append_audit(conn, now, actor, action, case, detail)
            return case

        return await self._db.transaction(act)

    async def delete_draft(self, case_id: str) -> bool:
        """Remove an unsent draft and everything sealed to it (cascade); audit rows remain."""

        def delete(conn: Connection) -> bool:
            cursor = conn.execute("DELETE FROM cases WHERE id = ? AND state = 'draft'", (case_id,))
            return bool(cursor.rowcount)

        return await self._db.transaction(delete)

    async def case(self, case_id: str) -> CaseMeta:
        return await self._db.run(lambda c: _case(c, case_id))

    async def items(self, case_id: str) -> list[SealedItem]:
        return await self._db.run(lambda c: _items(c, case_id))

    async def sealed_keys(self, case_id: str) -> list[SealedCaseKey]:
        return await self._db.run(lambda c: _sealed_keys(c, case_id))

    async def audit(self, case_id: str | None = None) -> list[AuditEntry]:
        return await self._db.run(lambda c: _audit_rows(c, case_id))

    async def export_bundle(self, case_id: str, actor: str = SYSTEM) -> Bundle:
        """Everything a staff machine needs to open the case; logs the export in the audit."""
        now, _ = self._now(), _check_actor(actor)

        def export(conn: Connection) -> Bundle:
            case = _case(conn, case_id)
            _append_audit(conn, now, actor, "case.export", case)
            return Bundle(
                exported_at=now,
                case=case,
                sealed_keys=_sealed_keys(conn, case_id),
                recipients=_current_recipients(conn),
                items=_items(conn, case_id),
                audit=_audit_rows(conn, case_id),
            )

        return await self._db.transaction(export)

    async def apply_reseal(self, reseal: Reseal, actor: str = SYSTEM) -> list[str]:
        """Replace a case's sealed keys with those made on a staff machine; returns recipients."""
        now, _ = self._now(), _check_actor(actor)

        def apply(conn: Connection) -> list[str]:
            case = _check_reseal(conn, reseal)
            conn.execute("DELETE FROM case_recipients WHERE case_id = ?", (case.id,))
            _insert_sealed_keys(conn, case.id, reseal.sealed_keys)
            names = [s.recipient for s in reseal.sealed_keys]
            _append_audit(conn, now, actor, "case.reseal", case, {"sealed_to": names})
            conn.execute("UPDATE cases SET updated_at = ? WHERE id = ?", (now, case.id))
            return names

        return await self._db.transaction(apply)
