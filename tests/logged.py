"""Hand-made bundles with a real case log, for tests that build bundles without a store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from bot.crypto.bundle import Bundle
from bot.crypto.caselog import audit_link, end_of_log, item_link, next_key
from bot.crypto.cases import CaseKey, Recipient
from bot.crypto.records import AuditEntry, CaseMeta, SealedItem


def logged_bundle(
    exported_at: int,
    case: CaseKey,
    meta: CaseMeta,
    recipients: Sequence[Recipient],
    current: Sequence[Recipient],
    items: Sequence[SealedItem],
    audit: Sequence[AuditEntry],
) -> Bundle:
    """The items, then the audit entries (each leaving the case as `meta`), logged in that
    order with the link keys a server would have used, and the log's end."""
    key = case.log_key()
    linked_items, linked_audit = [], []
    for pos, item in enumerate(items):
        linked_items.append(replace(item, log=item_link(key, case.case_id, pos, item)))
        key = next_key(key)
    for pos, entry in enumerate(audit, start=len(items)):
        linked_audit.append(replace(entry, log=audit_link(key, case.case_id, pos, entry, meta)))
        key = next_key(key)
    end = end_of_log(key, case.case_id, len(items) + len(audit), exported_at)
    sealed = case.seal_to(recipients)
    return Bundle(exported_at, meta, sealed, current, linked_items, linked_audit, end)
