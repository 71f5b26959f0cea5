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
urgency, times). Everything a reporter says is a sealed blob. On PostgreSQL, whose
pages are not encrypted, labels, identities, assignee, country, urgency, the log's link
key and states, the reporter's chat address and audit details are sealed field by field
(`Connection.seal`); only equality lookups use them in SQL, never an order or a range.
Audit rows are append-only (triggers) and their detail is sealed to the case key (case
events) or the recovery key (staff events; none when no recovery key is set).

Every item and case audit entry is also bound into the case's tamper-evident log
(`bot.crypto.caselog`, kept by `bot.cases.rows`): the store holds only the link key of
each case's next log position, never the case private key or an earlier link key, so
whoever takes the database later cannot rewrite what was recorded before.

Every write is one transaction, and durable before it returns (`_write`): whoever called
it may tell a person it is saved. The rows themselves are read and written in
`bot.cases.rows`; a draft's life (open, submit, discard) is in `bot.cases.drafts`.
A reporter link holds the chat address only while the case is open: closing the case
deletes it, in the closing transaction (`reporter_rows.let_go_of_reporter`). Who writes which
table: `bot.cases.rows` the cases and what hangs off them, `bot.cases.staff_rows` the
staff and recovery keys.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from bot.cases import drafts, reporter_rows, rows, staff_rows
from bot.cases.drafts import Reporter, Submitted
from bot.cases.rows import SYSTEM, CaseStoreError, Claim, append_audit, check_actor
from bot.cases.staff_rows import StaffMember
from bot.crypto.bundle import Bundle, Reseal
from bot.crypto.cases import SealedCaseKey, check_field
from bot.crypto.keys import PublicKey
from bot.crypto.records import AuditEntry, CaseMeta, SealedItem
from bot.safety import checkin_rows
from bot.storage.database import Connection, Database

__all__ = [
    "MAX_ITEM_BYTES",
    "SYSTEM",
    "CaseStoreError",
    "CasesStore",
    "Claim",
    "Reporter",
    "StaffMember",
    "Submitted",
]

T = TypeVar("T")
MAX_ITEM_BYTES = 16 * 1024 * 1024
_IDENTITY = re.compile(r"^[a-z][a-z0-9]{1,15}:\S{1,255}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_URGENCY = re.compile(r"^[a-z_]{1,16}$")
_MUTABLE = {"state", "country", "urgency", "assignee", "submitted_at", "acknowledged_at"}


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


def _check_item(field: str, data: bytes) -> None:
    check_field(field)
    if len(data) > MAX_ITEM_BYTES:
        raise CaseStoreError(f"an item is at most {MAX_ITEM_BYTES} bytes")


def _check_reseal(conn: Connection, reseal: Reseal) -> CaseMeta:
    """The reseal must be for this case's key and only for recipients current right now."""
    case = rows.case_meta(conn, reseal.case_id)
    if not case.public_key.same_as(reseal.case_public):
        raise CaseStoreError(f"this reseal file is for another key of {case.id}")
    if not reseal.sealed_keys:
        raise CaseStoreError("this reseal file seals to nobody")
    current = {r.name: r.public_key.fingerprint for r in rows.current_recipients(conn)}
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

    async def _write(self, work: Callable[[Connection], T]) -> T:
        """Every change to a case is durable before it returns: its caller tells someone
        it is saved (a reporter's "Saved and locked", a staff member's confirmation).
        The link key it replaced leaves the WAL within a checkpoint interval (see
        `bot.crypto.caselog`: the server keeps no earlier key)."""
        try:
            return await self._db.transaction(work, durable=True)
        finally:
            self._db.empty_wal_soon()

    async def add_staff(
        self, label: str, identities: Sequence[str], public_key: PublicKey, actor: str = SYSTEM
    ) -> StaffMember:
        """Register a member's public key; cases created from now on are sealed to them."""
        label, found, now = _check_label(label), _check_identities(identities), self._now()
        check_actor(actor)

        def add(conn: Connection) -> StaffMember:
            member = staff_rows.insert_staff(conn, label, found, public_key, now)
            if member is None:
                raise CaseStoreError("an active staff member already has this public key")
            detail = {"staff": member.name, "fingerprint": public_key.fingerprint}
            append_audit(conn, now, actor, "staff.add", detail=detail)
            return member

        return await self._write(add)

    async def list_staff(self, *, include_removed: bool = False) -> list[StaffMember]:
        query = staff_rows.STAFF_ALL if include_removed else staff_rows.STAFF_ACTIVE

        def read(conn: Connection) -> list[StaffMember]:
            return [staff_rows.staff_member(conn, r) for r in conn.execute(query).fetchall()]

        return await self._db.run(read)

    async def remove_staff(self, staff_id: int, actor: str = SYSTEM) -> StaffMember:
        """Mark a member removed: no case created afterwards is sealed to them.

        Cases already sealed to them keep that copy until an open case is resealed
        (`hrd-bot cases reseal` on a staff machine, then `cases apply-reseal`).
        """
        now = self._now()
        check_actor(actor)

        def remove(conn: Connection) -> StaffMember:
            member = staff_rows.mark_removed(conn, staff_id, now)
            if member is None:
                raise CaseStoreError(f"no active staff member {staff_id}")
            append_audit(conn, now, actor, "staff.remove", detail={"staff": member.name})
            return member

        return await self._write(remove)

    async def set_recovery(self, public_key: PublicKey, actor: str = SYSTEM) -> None:
        """Set (or replace) the organisation recovery key for cases created from now on."""
        now = self._now()
        check_actor(actor)

        def put(conn: Connection) -> None:
            staff_rows.put_recovery(conn, public_key, now)
            detail = {"fingerprint": public_key.fingerprint}
            append_audit(conn, now, actor, "recovery.set", detail=detail)

        await self._write(put)

    async def recovery(self) -> PublicKey | None:
        return await self._db.run(staff_rows.recovery_key)

    async def create_case(
        self, *, country: str | None = None, urgency: str | None = None, actor: str = SYSTEM
    ) -> CaseMeta:
        """A new case with its own key pair, sealed to current staff and recovery, then dropped."""
        if country is not None and not _COUNTRY.match(country):
            raise CaseStoreError("a country is a two-letter upper-case code")
        if urgency is not None and not _URGENCY.match(urgency):
            raise CaseStoreError("an urgency is a short lower-case word")
        now, _ = self._now(), check_actor(actor)
        return await self._write(lambda c: rows.create_case(c, now, actor, country, urgency))

    async def add_item(
        self, case_id: str, field: str, data: bytes, *, replace: bool = False
    ) -> int:
        """Seal `data` to the case at the next position for `field`; returns that position.
        `replace`: in a draft, this item takes the place of the field's earlier one."""
        _check_item(field, data)
        now = self._now()

        def add(conn: Connection) -> int:
            return rows.add_item(conn, now, case_id, field, data, replace=replace)

        return await self._write(add)

    async def open_draft(self, reporter: Reporter) -> CaseMeta:
        """A new draft case linked to its reporter, in one transaction."""
        now = self._now()
        return await self._write(lambda c: drafts.open_draft(c, now, reporter))

    async def submit(
        self,
        case_id: str,
        actor: str = SYSTEM,
        *,
        then: Callable[[Connection, CaseMeta], None] | None = None,
    ) -> Submitted:
        """The draft becomes a new case, once: a repeat adds no audit entry and runs no
        `then` (which runs in the same transaction: put what must follow a submission
        exactly once there, such as a queued alert)."""
        now, _ = self._now(), check_actor(actor)
        return await self._write(lambda c: drafts.submit(c, now, case_id, actor, then))

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
            _check_item(*item)
        now, _ = self._now(), check_actor(actor)

        def act(conn: Connection) -> CaseMeta:
            rows.set_columns(conn, case_id, changes or {})
            if (changes or {}).get("state") == "closed":
                reporter_rows.let_go_of_reporter(conn, case_id)
                checkin_rows.unlink_case(conn, case_id)
            if item is not None:
                rows.add_item(conn, now, case_id, *item)
            case = rows.case_meta(conn, case_id)
            rows.touch(conn, case_id, now)
            append_audit(conn, now, actor, action, case, detail)
            return case

        return await self._write(act)

    async def claim(
        self, find: Callable[[Connection], str | None], actor: str, label: str
    ) -> Claim | None:
        """Claim the case `find` names (it reads the alert's case in this transaction):
        acknowledged and assigned to `label` with its audit entry, in one durable
        transaction, unless someone holds it already. Of two claims at once, one wins.
        None when `find` names no case."""
        now, _ = self._now(), check_actor(actor)
        _check_label(label)

        def take(conn: Connection) -> Claim | None:
            case_id = find(conn)
            return None if case_id is None else rows.claim(conn, now, case_id, actor, label)

        return await self._write(take)

    async def delete_draft(self, case_id: str) -> bool:
        """Remove an unsent draft and everything sealed to it (cascade); audit rows remain."""
        return await self._write(lambda c: drafts.delete_draft(c, case_id))

    async def case(self, case_id: str) -> CaseMeta:
        return await self._db.run(lambda c: rows.case_meta(c, case_id))

    async def items(self, case_id: str) -> list[SealedItem]:
        return await self._db.run(lambda c: rows.items(c, case_id))

    async def sealed_keys(self, case_id: str) -> list[SealedCaseKey]:
        return await self._db.run(lambda c: rows.sealed_keys(c, case_id))

    async def audit(self, case_id: str | None = None) -> list[AuditEntry]:
        return await self._db.run(lambda c: rows.audit_rows(c, case_id))

    async def export_bundle(self, case_id: str, actor: str = SYSTEM) -> Bundle:
        """Everything a staff machine needs to open the case; logs the export in the audit."""
        now, _ = self._now(), check_actor(actor)

        def export(conn: Connection) -> Bundle:
            case = rows.case_meta(conn, case_id)
            append_audit(conn, now, actor, "case.export", case)
            return Bundle(
                exported_at=now,
                case=case,
                sealed_keys=rows.sealed_keys(conn, case_id),
                recipients=rows.current_recipients(conn),
                items=rows.items(conn, case_id),
                audit=rows.audit_rows(conn, case_id),
                log=rows.log_end(conn, case_id, now),
            )

        return await self._write(export)

    async def apply_reseal(self, reseal: Reseal, actor: str = SYSTEM) -> list[str]:
        """Replace a case's sealed keys with those made on a staff machine; returns recipients."""
        now, _ = self._now(), check_actor(actor)

        def apply(conn: Connection) -> list[str]:
            case = _check_reseal(conn, reseal)
            rows.replace_sealed_keys(conn, case.id, reseal.sealed_keys)
            names = [s.recipient for s in reseal.sealed_keys]
            rows.touch(conn, case.id, now)
            append_audit(conn, now, actor, "case.reseal", case, {"sealed_to": names})
            return names

        return await self._write(apply)
