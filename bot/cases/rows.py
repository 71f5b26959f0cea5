"""Rows of sealed cases, read and written inside a transaction on the DB thread.

The one writer of `cases`, `case_items`, `case_reporters`, `case_recipients`,
`case_log_states` and `audit`: the pieces `CasesStore`, `bot.cases.drafts`, SOS,
check-ins and retention build their transactions from (a case's row and sealed keys,
its reporter link, its items, and the audit; staff keys are `bot.cases.staff_rows`).
Each function takes the open connection and never commits: its caller decides what
one transaction holds.

Every item and audit entry of a case takes the next position of the case's tamper-evident
log (`bot.crypto.caselog`) in the transaction that adds it, and the link key of that
position is replaced by the next one there too. An audit entry's link binds the case's
metadata as it stands when the entry is added, so a change to a case's state, country,
urgency or `updated_at` must be followed, in its transaction, by an audit entry or an
item (which moves `updated_at`): otherwise its next export is refused as altered.
Country, urgency, assignee, the link key and states, and audit details are sealed
(`Connection.seal`, the identity on SQLCipher); a new case takes the next `seq`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.cases.staff_rows import STAFF_ACTIVE, recovery_key, staff_member
from bot.crypto.caselog import audit_link, end_of_log, item_link, next_key
from bot.crypto.cases import (
    RECOVERY,
    CaseKey,
    Recipient,
    SealedCaseKey,
    new_case_id,
    seal_audit_detail,
    seal_item,
)
from bot.crypto.keys import PublicKey
from bot.crypto.records import AuditEntry, CaseMeta, CaseState, LogEnd, LogLink, SealedItem
from bot.errors import CaseError
from bot.storage.database import Connection

__all__ = [
    "SEALED_COLUMNS",
    "SYSTEM",
    "CaseStoreError",
    "Claim",
    "add_item",
    "append_audit",
    "audit_rows",
    "case_meta",
    "check_actor",
    "claim",
    "create_case",
    "current_recipients",
    "delete_cases",
    "delete_draft",
    "insert_sealed_keys",
    "items",
    "log_end",
    "make_critical",
    "mark_submitted",
    "replace_sealed_keys",
    "sealed_keys",
    "set_columns",
    "touch",
]

SYSTEM = "system"
_ACTOR = re.compile(r"^(system|[a-z][a-z0-9]{1,15}:[0-9a-f]{16,64})$")


class CaseStoreError(CaseError):
    """A request the store refuses; the message is safe to print and holds no content."""


def check_actor(actor: str) -> str:
    """Only 'system' or a keyed pseudonym: a raw platform id must never reach the audit."""
    if not _ACTOR.match(actor):
        raise CaseStoreError("an audit actor is 'system' or a pseudonym key")
    return actor


_CASE_ONE = (
    "SELECT id, public_key, created_at, updated_at, state, country, urgency FROM cases WHERE id = ?"
)
_CASE_INSERT = (
    "INSERT INTO cases (id, seq, public_key, created_at, updated_at, state, country, urgency, "
    "log_key, log_next) VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM cases), "
    "?, ?, ?, ?, ?, ?, ?, 0)"
)
SEALED_COLUMNS = {"country", "urgency", "assignee"}  # of the routing columns
_AUDIT = (
    "SELECT a.at, a.actor, a.action, a.case_id, a.detail, a.log_pos, a.log_tag, s.after "
    "FROM audit a LEFT JOIN case_log_states s ON s.case_id = a.case_id AND s.pos = a.log_pos"
)
_AUDIT_ALL = _AUDIT + " ORDER BY a.id"
_AUDIT_CASE = _AUDIT + " WHERE a.case_id = ? ORDER BY a.id"


def current_recipients(conn: Connection) -> list[Recipient]:
    """Who a case created now is sealed to: every active staff member, then recovery."""
    rows = conn.execute(STAFF_ACTIVE).fetchall()
    found = [Recipient(m.name, m.public_key) for m in (staff_member(conn, r) for r in rows)]
    if (recovery := recovery_key(conn)) is not None:
        found.append(Recipient(RECOVERY, recovery))
    return found


def case_meta(conn: Connection, case_id: str) -> CaseMeta:
    row = conn.execute(_CASE_ONE, (case_id,)).fetchone()
    if row is None:
        raise CaseStoreError(f"no case {case_id}")
    cid, public, created, updated, state, country, urgency = row
    key = PublicKey.from_raw(conn.unseal("cases.public_key", bytes(public)), check_point=False)
    country, urgency = conn.unseal("cases.country", country), conn.unseal("cases.urgency", urgency)
    return CaseMeta(cid, key, created, updated, state, country, urgency)


def insert_sealed_keys(conn: Connection, case_id: str, sealed: Sequence[SealedCaseKey]) -> None:
    conn.executemany(
        "INSERT INTO case_recipients (case_id, recipient, fingerprint, sealed_key) "
        "VALUES (?, ?, ?, ?)",
        [(case_id, s.recipient, s.fingerprint, s.blob) for s in sealed],
    )


def sealed_keys(conn: Connection, case_id: str) -> list[SealedCaseKey]:
    rows = conn.execute(
        "SELECT recipient, fingerprint, sealed_key FROM case_recipients WHERE case_id = ? "
        "ORDER BY recipient",
        (case_id,),
    ).fetchall()
    return [SealedCaseKey(r, f, bytes(b)) for r, f, b in rows]


def _log_next(conn: Connection, case_id: str) -> tuple[int, bytes] | None:
    """The case's next log position and its link key; None for a case made before logs."""
    row = conn.execute("SELECT log_next, log_key FROM cases WHERE id = ?", (case_id,)).fetchone()
    if row is None or row[1] is None:
        return None
    return int(row[0]), conn.unseal("cases.log_key", bytes(row[1]))


def _log_used(conn: Connection, case_id: str, pos: int, key: bytes) -> None:
    """Position `pos` is taken: its key is overwritten by the next one's."""
    conn.execute(
        "UPDATE cases SET log_key = ?, log_next = ? WHERE id = ?",
        (conn.seal("cases.log_key", next_key(key)), pos + 1, case_id),
    )


def log_end(conn: Connection, case_id: str, exported_at: int) -> LogEnd | None:
    """The end of the case's log for an export made now (None for a case made before)."""
    found = _log_next(conn, case_id)
    return None if found is None else end_of_log(found[1], case_id, found[0], exported_at)


def _link(pos: int | None, tag: bytes | None, replaces: str | None) -> LogLink | None:
    if pos is None or tag is None:
        return None
    return LogLink(pos, bytes(tag), tuple(json.loads(replaces or "[]")))


def _audit_link(
    conn: Connection, pos: int | None, tag: bytes | None, after: str | None
) -> LogLink | None:
    if pos is None or tag is None or after is None:
        return None
    state = json.loads(conn.unseal("case_log_states.after", after))
    return LogLink(pos, bytes(tag), after=CaseState(**state))


def _detail(conn: Connection, detail: bytes | None) -> bytes | None:
    return None if detail is None else conn.unseal("audit.detail", bytes(detail))


def items(conn: Connection, case_id: str) -> list[SealedItem]:
    """In log order (a case made before logs: in the order they were added)."""
    rows = conn.execute(
        "SELECT field, seq, created_at, sealed, log_pos, log_tag, log_replaces FROM case_items "
        "WHERE case_id = ? ORDER BY log_pos, created_at, id",
        (case_id,),
    ).fetchall()
    return [SealedItem(f, s, c, bytes(b), _link(p, t, r)) for f, s, c, b, p, t, r in rows]


def audit_rows(conn: Connection, case_id: str | None) -> list[AuditEntry]:
    if case_id is None:
        rows = conn.execute(_AUDIT_ALL).fetchall()
    else:
        rows = conn.execute(_AUDIT_CASE, (case_id,)).fetchall()
    return [
        AuditEntry(a, w, x, c, _detail(conn, d), _audit_link(conn, p, t, f))
        for a, w, x, c, d, p, t, f in rows
    ]


def append_audit(
    conn: Connection,
    at: int,
    actor: str,
    action: str,
    case: CaseMeta | None = None,
    detail: Mapping[str, object] | None = None,
) -> None:
    """Add one audit row; `detail` is sealed to the case key, else to the recovery key.
    A case's entry takes its next log position, bound to the case as it is now."""
    sealed = None
    if detail is not None:
        plain = json.dumps(detail, sort_keys=True).encode("utf-8")
        if case is not None:
            sealed = seal_audit_detail(case.public_key, case.id, action, at, plain)
        elif (recovery := recovery_key(conn)) is not None:
            sealed = seal_audit_detail(recovery, "", action, at, plain)
    case_id = None if case is None else case.id
    entry = AuditEntry(at, actor, action, case_id, sealed)
    link = None
    if case_id is not None and (found := _log_next(conn, case_id)) is not None:
        pos, key = found
        now = case_meta(conn, case_id)
        link = audit_link(key, case_id, pos, entry, now)
        after = json.dumps(dataclasses.asdict(CaseState.of(now)))
        conn.execute(
            "INSERT INTO case_log_states (case_id, pos, after) VALUES (?, ?, ?)",
            (case_id, pos, conn.seal("case_log_states.after", after)),
        )
        _log_used(conn, case_id, pos, key)
    conn.execute(
        "INSERT INTO audit (at, actor, action, case_id, detail, log_pos, log_tag) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (at, actor, action, case_id, conn.seal("audit.detail", sealed), *_link_columns(link)),
    )


def _link_columns(link: LogLink | None) -> tuple[int | None, bytes | None]:
    return (None, None) if link is None else (link.pos, link.tag)


def create_case(
    conn: Connection,
    now: int,
    actor: str,
    country: str | None,
    urgency: str | None,
    state: str = "open",
) -> CaseMeta:
    """A new case with its own key pair, sealed to current staff and recovery, then dropped."""
    recipients = current_recipients(conn)
    if not recipients:
        raise CaseStoreError("no active staff and no recovery key: a case would be unreadable")
    while True:
        case_id = new_case_id()
        if conn.execute("SELECT 1 FROM cases WHERE id = ?", (case_id,)).fetchone() is None:
            break
    key = CaseKey.create(case_id)
    case = CaseMeta(case_id, key.public, now, now, state, country, urgency)
    routing = conn.seal("cases.country", country), conn.seal("cases.urgency", urgency)
    log_key = conn.seal("cases.log_key", key.log_key())
    public = conn.seal("cases.public_key", key.public.raw)
    conn.execute(_CASE_INSERT, (case_id, public, now, now, case.state, *routing, log_key))
    insert_sealed_keys(conn, case_id, key.seal_to(recipients))
    del key
    append_audit(conn, now, actor, "case.create", case, {"sealed_to": [r.name for r in recipients]})
    return case


def _replaced_fields(field: str) -> tuple[str, ...]:
    """What a new item of `field` replaces in a draft: the earlier item of that field, and
    for a file, the caption sent with the earlier one."""
    if field.startswith("attachment."):
        return field, "caption." + field.removeprefix("attachment.")
    return (field,)


def add_item(
    conn: Connection, now: int, case_id: str, field: str, data: bytes, *, replace: bool = False
) -> int:
    """Seal `data` at the next position for `field`; returns that position.

    With `replace`, while the case is a draft, earlier items of the field go in the same
    transaction: a draft holds one item per interview step, the reporter's last word on
    it, so an answer given again (after a crash took the reply, or from the review screen)
    is never stored twice."""
    case = case_meta(conn, case_id)
    row = conn.execute(
        "SELECT COALESCE(MAX(seq) + 1, 0) FROM case_items WHERE case_id = ? AND field = ?",
        (case_id, field),
    ).fetchone()
    seq = int(row[0])
    replaced: list[int] = []
    if replace and case.state == "draft":
        replaced = _delete_replaced(conn, case_id, _replaced_fields(field))
    item = SealedItem(field, seq, now, seal_item(case.public_key, case_id, field, seq, data))
    link = None
    if (found := _log_next(conn, case_id)) is not None:
        pos, key = found
        link = item_link(key, case_id, pos, item, replaced)
        _log_used(conn, case_id, pos, key)
    conn.execute(
        "INSERT INTO case_items (case_id, field, seq, sealed, created_at, log_pos, log_tag, "
        "log_replaces) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (case_id, field, seq, item.sealed, now, *_link_columns(link), json.dumps(replaced)),
    )
    conn.execute("UPDATE cases SET updated_at = ? WHERE id = ?", (now, case_id))
    return seq


def _delete_replaced(conn: Connection, case_id: str, fields: Sequence[str]) -> list[int]:
    """Delete a draft's earlier items of `fields`; their log positions, for the new item's
    link to name (the log shows they were replaced, not lost)."""
    marks = ", ".join("?" * len(fields))
    where = f"WHERE case_id = ? AND field IN ({marks})"
    found = conn.execute(
        f"SELECT log_pos FROM case_items {where} AND log_pos IS NOT NULL ORDER BY log_pos",  # noqa: S608
        (case_id, *fields),
    ).fetchall()
    conn.execute(f"DELETE FROM case_items {where}", (case_id, *fields))  # noqa: S608
    return [int(r[0]) for r in found]


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of a claim: `won`, or who holds the case (`holder`) and whether it is
    closed. `holder` is a staff label, never anything about the reporter."""

    case_id: str
    won: bool
    holder: str | None
    closed: bool = False


def claim(conn: Connection, now: int, case_id: str, actor: str, label: str) -> Claim:
    """Acknowledge and assign to `label` only if nobody holds the case (compare-and-set in
    the caller's transaction), with its audit entry; otherwise say who holds it."""
    taken = conn.execute(
        "UPDATE cases SET state = 'assigned', assignee = ?, updated_at = ?,"
        " acknowledged_at = COALESCE(acknowledged_at, ?)"
        " WHERE id = ? AND assignee IS NULL AND state NOT IN ('draft', 'closed')",
        (conn.seal("cases.assignee", label), now, now, case_id),
    )
    if taken.rowcount == 1:
        append_audit(conn, now, actor, "case.claim", case_meta(conn, case_id))
        return Claim(case_id, True, label)
    row = conn.execute("SELECT state, assignee FROM cases WHERE id = ?", (case_id,)).fetchone()
    if row is None or row[0] == "draft":
        raise CaseStoreError(f"no case {case_id}")
    holder = conn.unseal("cases.assignee", row[1])
    return Claim(case_id, False, None if holder is None else str(holder), row[0] == "closed")


def mark_submitted(conn: Connection, case_id: str, now: int) -> None:
    conn.execute(
        "UPDATE cases SET state = 'new', submitted_at = ?, updated_at = ? WHERE id = ?",
        (now, now, case_id),
    )


def delete_draft(conn: Connection, case_id: str) -> bool:
    """Everything sealed to the draft goes with it (cascade); audit rows remain."""
    cursor = conn.execute("DELETE FROM cases WHERE id = ? AND state = 'draft'", (case_id,))
    return bool(cursor.rowcount)


def delete_cases(conn: Connection, case_ids: Sequence[str]) -> None:
    """Retention's batch: the cases and everything sealed to them (cascade)."""
    marks = ", ".join("?" * len(case_ids))
    conn.execute(f"DELETE FROM cases WHERE id IN ({marks})", list(case_ids))  # noqa: S608


def set_columns(conn: Connection, case_id: str, changes: Mapping[str, object]) -> None:
    """Routing columns; the caller checks their names against its allowlist."""
    for column, value in changes.items():
        if column in SEALED_COLUMNS and isinstance(value, str):
            value = conn.seal(f"cases.{column}", value)
        conn.execute(f"UPDATE cases SET {column} = ? WHERE id = ?", (value, case_id))  # noqa: S608


def touch(conn: Connection, case_id: str, now: int) -> None:
    conn.execute("UPDATE cases SET updated_at = ? WHERE id = ?", (now, case_id))


def make_critical(conn: Connection, case_id: str, now: int | None = None) -> None:
    """Urgency critical; with `now`, a case someone acknowledged needs acknowledging again
    and climbs the escalation tiers anew from `now` (`bot.safety.escalation`)."""
    critical = conn.seal("cases.urgency", "critical")
    conn.execute("UPDATE cases SET urgency = ? WHERE id = ?", (critical, case_id))
    if now is not None:
        conn.execute(
            "UPDATE cases SET state = 'new', climb_from = ?, climb_base = ("
            "  SELECT COALESCE(MAX(step), -1) + 1 FROM escalation_steps WHERE case_id = ?"
            ") WHERE id = ? AND state != 'new'",
            (now, case_id, case_id),
        )


def replace_sealed_keys(conn: Connection, case_id: str, sealed: Sequence[SealedCaseKey]) -> None:
    conn.execute("DELETE FROM case_recipients WHERE case_id = ?", (case_id,))
    insert_sealed_keys(conn, case_id, sealed)
