"""Tamper-evident case logs: a case's items, audit trail and metadata, bound together.

A case's items and audit entries share one log. Each takes the next position and a tag,
HMAC-SHA256 under that position's link key over what the entry is: its kind and
position, its time, a SHA-256 of its sealed bytes; for an item its field and seq and the
positions of earlier draft items it replaced; for an audit entry its actor and action
and the case's metadata once the action was done. Link keys form a one-way chain:
`k(0)` is derived from the case private key (`CaseKey.log_key`), `k(i+1) =
HMAC(k(i), "next")`. An export ends with a tag under `k(count)` over the count and the
export time.

What the server holds: while it creates a case it has the private key, derives `k(0)`,
tags the case's first audit entry and keeps only `k(1)`. From then on it keeps only the
key of the next position, replacing it in the transaction that uses it. It never keeps
the private key or an earlier link key (the WAL frames holding the replaced one are
emptied within a checkpoint interval: `Database.empty_wal_soon`). Whoever opens the
case key (staff, recovery) derives `k(0)` and walks the chain (`check_log`).

So a server seized when a case's log had reached position n, with its database key,
cannot change, remove, reorder or duplicate any entry recorded before n, swap in an
entry of another case, change the metadata as the entry before n left it, or make an
export claim fewer than n entries: each needs a key it no longer has. It can append
entries from n on, as the running server can, and it can hand over an older genuine
export (whose export time and `case.export` audit entry show when it was made).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from bot.crypto.cases import check_field
from bot.crypto.errors import BundleError
from bot.crypto.hpke import encode_info
from bot.crypto.records import AuditEntry, CaseMeta, CaseState, LogEnd, LogLink, SealedItem

__all__ = ["audit_link", "check_log", "end_of_log", "item_link", "next_key"]

_NEXT = encode_info("case-log/next")
_METADATA = (
    ("state", "state"),
    ("urgency", "urgency"),
    ("country", "country"),
    ("created_at", "creation time"),
    ("updated_at", "update time"),
)


def next_key(key: bytes) -> bytes:
    """The link key of the next position; the earlier one cannot be computed from it."""
    return hmac.digest(key, _NEXT, "sha256")


def _digest(blob: bytes | None) -> bytes:
    return b"" if blob is None else hashlib.sha256(blob).digest()


def _optional(text: str | None) -> str | bytes:
    """None and "" encode differently: a text part and an empty bytes part."""
    return b"" if text is None else text


def _item_tag(
    key: bytes, case_id: str, pos: int, item: SealedItem, replaces: Sequence[int]
) -> bytes:
    message = encode_info(
        "case-log/item",
        case_id,
        pos,
        item.field,
        item.seq,
        item.created_at,
        _digest(item.sealed),
        b"".join(p.to_bytes(8, "big") for p in replaces),
    )
    return hmac.digest(key, message, "sha256")


def _audit_tag(key: bytes, case_id: str, pos: int, entry: AuditEntry, after: CaseState) -> bytes:
    message = encode_info(
        "case-log/audit",
        case_id,
        pos,
        entry.at,
        entry.actor,
        entry.action,
        _digest(entry.detail),
        after.created_at,
        after.updated_at,
        after.state,
        _optional(after.country),
        _optional(after.urgency),
    )
    return hmac.digest(key, message, "sha256")


def _end_tag(key: bytes, case_id: str, count: int, exported_at: int) -> bytes:
    return hmac.digest(key, encode_info("case-log/end", case_id, count, exported_at), "sha256")


def item_link(
    key: bytes, case_id: str, pos: int, item: SealedItem, replaces: Sequence[int] = ()
) -> LogLink:
    """The link of an item recorded at `pos` with `key`, that position's link key."""
    return LogLink(pos, _item_tag(key, case_id, pos, item, replaces), tuple(replaces))


def audit_link(key: bytes, case_id: str, pos: int, entry: AuditEntry, after: CaseMeta) -> LogLink:
    """The link of an audit entry recorded at `pos`; `after` is the case once it was done."""
    state = CaseState.of(after)
    return LogLink(pos, _audit_tag(key, case_id, pos, entry, state), after=state)


def end_of_log(key: bytes, case_id: str, count: int, exported_at: int) -> LogEnd:
    """The end of an export: `count` positions, tagged with `key`, the key of `count`."""
    return LogEnd(count, _end_tag(key, case_id, count, exported_at))


@dataclass(frozen=True, slots=True)
class _Entry:
    """One item or audit entry of a bundle, named as the bundle lists it."""

    where: str
    link: LogLink
    item: SealedItem | None = None
    audit: AuditEntry | None = None

    def matches(self, key: bytes, case_id: str) -> bool:
        """Its tag is the one `key` gives it (a part too long to encode gives none)."""
        try:
            if self.item is not None:
                tag = _item_tag(key, case_id, self.link.pos, self.item, self.link.replaces)
            else:
                assert self.audit is not None and self.link.after is not None
                tag = _audit_tag(key, case_id, self.link.pos, self.audit, self.link.after)
        except ValueError:
            return False
        return hmac.compare_digest(tag, self.link.tag)


def _item_name(index: int, item: SealedItem) -> str:
    """`items[2] (answer.what#0)`; a field that is not a plain label is not repeated."""
    try:
        return f"items[{index}] ({check_field(item.field)}#{item.seq})"
    except ValueError:
        return f"items[{index}]"


class _Refused:
    """Builds the one-line refusal; nothing of the tampered content is repeated."""

    def __init__(self, case_id: str) -> None:
        self.case_id = case_id

    def __call__(self, what: str) -> BundleError:
        return BundleError(f"{self.case_id}: tampered bundle, nothing is shown: {what}")


def _entries(
    items: Sequence[SealedItem], audit: Sequence[AuditEntry], refuse: _Refused
) -> tuple[list[_Entry], list[_Entry]]:
    found_items, found_audit = [], []
    for i, item in enumerate(items):
        if item.log is None or item.log.after is not None:
            raise refuse(f"{_item_name(i, item)} does not open: it has no place in the case's log")
        found_items.append(_Entry(_item_name(i, item), item.log, item=item))
    for i, entry in enumerate(audit):
        if entry.log is None or entry.log.after is None or entry.log.replaces:
            raise refuse(f"audit[{i}] does not open: it has no place in the case's log")
        found_audit.append(_Entry(f"audit[{i}]", entry.log, audit=entry))
    return found_items, found_audit


def _check_tags(
    first: bytes, case_id: str, entries: list[_Entry], end: LogEnd, exported_at: int
) -> str | None:
    """Every entry's tag under its position's key, and the end tag under the count's key;
    what does not match, or None. Positions were checked to lie below the count."""
    at: dict[int, list[_Entry]] = {}
    for entry in entries:
        at.setdefault(entry.link.pos, []).append(entry)
    key = first
    for pos in range(end.count):
        for entry in at.get(pos, ()):
            if not entry.matches(key, case_id):
                return (
                    f"{entry.where} does not open as part of this case: altered or moved "
                    "(it does not match the case's log)"
                )
        key = next_key(key)
    if not hmac.compare_digest(_end_tag(key, case_id, end.count, exported_at), end.tag):
        return (
            "the end of the case's log does not match: entries were removed from its end, "
            "or its count or export time was changed"
        )
    return None


def _check_places(entries: list[_Entry], end: LogEnd) -> str | None:
    """No more positions than entries and replaced drafts, and each entry's below the count:
    checked before the walk along the key chain, so the walk stays short."""
    replaced = {p for e in entries for p in e.link.replaces}
    if end.count > len(entries) + len(replaced):
        held = len(entries)
        return (
            f"the case's log has {end.count} entries and this bundle only {held}: "
            "items or audit entries were removed (or the count was changed)"
        )
    for entry in entries:
        if entry.link.pos >= end.count:
            return f"{entry.where} lies beyond the end of the case's log: added or moved"
    return None


def _check_order(items: list[_Entry], audit: list[_Entry]) -> str | None:
    """Each position once; items, and audit entries, each in the order they were logged."""
    seen: dict[int, str] = {}
    for entry in (*items, *audit):
        if (first := seen.setdefault(entry.link.pos, entry.where)) != entry.where:
            return f"{entry.where} repeats {first}: an entry was duplicated"
    for listed, name in ((items, "items"), (audit, "audit entries")):
        for before, entry in pairwise(listed):
            if entry.link.pos < before.link.pos:
                return f"{name} are out of order at {entry.where}: reordered"
    return None


def _check_complete(entries: list[_Entry], end: LogEnd) -> str | None:
    """Every position is in the bundle, or was replaced in the draft by a later item."""
    present = {e.link.pos for e in entries}
    for entry in entries:
        for pos in entry.link.replaces:
            if pos >= entry.link.pos or pos in present:
                return f"{entry.where} replaced a draft item that is in the bundle again"
    replaced = {p for e in entries for p in e.link.replaces}
    missing = [p for p in range(end.count) if p not in present and p not in replaced]
    if missing:
        return (
            f"{len(missing)} of the {end.count} entries of the case's log are missing "
            f"(the first at position {missing[0]}): items or audit entries were removed"
        )
    return None


def _check_metadata(case: CaseMeta, entries: list[_Entry]) -> str | None:
    """The case as the last audit entry left it; an item after it moves `updated_at`."""
    logged = [e for e in entries if e.audit is not None]
    if not logged:
        return "the case's log holds no audit entry"
    last = max(logged, key=lambda e: e.link.pos)
    assert last.link.after is not None
    expected = last.link.after
    later = [e for e in entries if e.item is not None and e.link.pos > last.link.pos]
    if later:
        newest = max(later, key=lambda e: e.link.pos)
        assert newest.item is not None
        expected = CaseState(
            expected.created_at,
            newest.item.created_at,
            expected.state,
            expected.country,
            expected.urgency,
        )
    shown = CaseState.of(case)
    names = [name for field, name in _METADATA if getattr(shown, field) != getattr(expected, field)]
    if names:
        verb = "does" if len(names) == 1 else "do"
        return f"the case's {' and '.join(names)} {verb} not match its log: metadata was changed"
    return None


def check_log(
    first: bytes,
    case: CaseMeta,
    items: Sequence[SealedItem],
    audit: Sequence[AuditEntry],
    end: LogEnd | None,
    exported_at: int,
) -> None:
    """Refuse (`BundleError`, one line) a bundle whose items, audit entries or metadata
    differ from the case's log; `first` is the case's first link key."""
    refuse = _Refused(case.id)
    if end is None:
        raise refuse("the case's tamper-evident log was removed from the bundle")
    listed_items, listed_audit = _entries(items, audit, refuse)
    entries = [*listed_items, *listed_audit]
    problem = (
        _check_places(entries, end)
        or _check_tags(first, case.id, entries, end, exported_at)
        or _check_order(listed_items, listed_audit)
        or _check_complete(entries, end)
        or _check_metadata(case, entries)
    )
    if problem is not None:
        raise refuse(problem)
