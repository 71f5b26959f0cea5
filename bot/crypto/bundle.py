"""Case bundles and reseal files: how a sealed case leaves the server and comes back.

A bundle (`hrd-bot cases export`) is JSON: the case's routing metadata and public
key, the case private key sealed to each recipient, every item and audit detail as
sealed base64 blobs, and the recipients the server would seal to today (active
staff and recovery, public keys only). It holds no plaintext content.

Each item and audit entry carries its place in the case's tamper-evident log, and the
bundle the log's end (`bot.crypto.caselog`). `open_bundle` checks them before it
decrypts anything: a bundle with an item or audit entry removed, added, duplicated,
reordered or changed, or with other metadata, is refused with one line naming what
differs. A case created before the log existed (its case key is sealed without the
`logged` mark, which only a holder of the private key could add) opens with
`tamper_evident` False, for the caller to warn.

On a staff machine, `open_bundle` recovers the case key with the member's own key
and decrypts everything; `reseal_bundle` seals the same case key to the bundle's
current recipients and produces a reseal file, which the operator applies on the
server (`hrd-bot cases apply-reseal`) so members removed since the case was opened
lose their server-side copy and members added since gain one. The recipient list is
not covered by the log: `cases reseal` prints each fingerprint for the member to check.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag

from bot.crypto.bundle_json import (
    VERSION,
    audit_from,
    audit_json,
    case_from,
    case_json,
    end_from,
    end_json,
    item_from,
    item_json,
    parsed,
    read_document,
    sealed_key_from,
    sealed_key_json,
    top_level,
)
from bot.crypto.caselog import check_log
from bot.crypto.cases import CaseKey, Recipient, SealedCaseKey, is_case_id
from bot.crypto.errors import BundleError
from bot.crypto.keys import PrivateKey, PublicKey
from bot.crypto.records import AuditEntry, CaseMeta, LogEnd, SealedItem

__all__ = [
    "MAX_BUNDLE_BYTES",
    "MAX_RESEAL_BYTES",
    "Bundle",
    "OpenedCase",
    "OpenedItem",
    "Reseal",
    "open_bundle",
    "reseal_bundle",
]

MAX_BUNDLE_BYTES = 512 * 1024 * 1024  # some fifty 10 MB attachments, sealed and in base64
MAX_RESEAL_BYTES = 1024 * 1024
_BUNDLE = "hrd-bot-case-bundle"
_RESEAL = "hrd-bot-case-reseal"


@dataclass(frozen=True, slots=True)
class Bundle:
    """Everything about one case that a staff machine needs, all content sealed.
    `log` is the end of the case's log at export (None for a case made before logs)."""

    exported_at: int
    case: CaseMeta
    sealed_keys: Sequence[SealedCaseKey]
    recipients: Sequence[Recipient]
    items: Sequence[SealedItem]
    audit: Sequence[AuditEntry]
    log: LogEnd | None = None

    def to_json(self) -> str:
        document = {
            "format": _BUNDLE,
            "version": VERSION,
            "exported_at": self.exported_at,
            "case": case_json(self.case),
            "sealed_keys": [sealed_key_json(s) for s in self.sealed_keys],
            "recipients": [
                {"recipient": r.name, "public_key": r.public_key.text} for r in self.recipients
            ],
            "items": [item_json(i) for i in self.items],
            "audit": [audit_json(a) for a in self.audit],
            "log": end_json(self.log),
        }
        return json.dumps(document, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Bundle:
        return cls._from_document(parsed(text, "bundle"))

    @classmethod
    def read(cls, path: Path) -> Bundle:
        """A bundle file, read within bounds (see `bot.crypto.jsonfile`)."""
        return cls._from_document(read_document(path, "bundle", MAX_BUNDLE_BYTES))

    @classmethod
    def _from_document(cls, document: object) -> Bundle:
        top = top_level(document, _BUNDLE)
        case = case_from(top.child("case"))
        return cls(
            exported_at=top.time("exported_at"),
            case=case,
            sealed_keys=[sealed_key_from(f) for f in top.objects("sealed_keys")],
            recipients=[
                Recipient(f.text("recipient"), f.public_key("public_key"))
                for f in top.objects("recipients")
            ],
            items=[item_from(f) for f in top.objects("items")],
            audit=[audit_from(f, case.id) for f in top.objects("audit")],
            log=end_from(top.optional_child("log")),
        )

    def __repr__(self) -> str:
        return f"Bundle({self.case.id!r}, {len(self.items)} items)"


@dataclass(frozen=True, slots=True)
class OpenedItem:
    field: str
    seq: int
    created_at: int
    data: bytes

    def __repr__(self) -> str:
        return f"OpenedItem({self.field!r}, {self.seq}, <{len(self.data)} bytes>)"


@dataclass(frozen=True, slots=True)
class OpenedCase:
    """A decrypted case, on a staff machine only; `opened_as` names the sealed copy used.
    `tamper_evident` is False for a case made before logs: nothing could be checked."""

    case: CaseMeta
    opened_as: str
    items: Sequence[OpenedItem]
    audit: Sequence[tuple[AuditEntry, bytes | None]]
    tamper_evident: bool

    def __repr__(self) -> str:
        return f"OpenedCase({self.case.id!r}, {len(self.items)} items)"


def _case_key(bundle: Bundle, own_key: PrivateKey) -> tuple[CaseKey, str]:
    """Find the copy sealed to `own_key` (by fingerprint) and open it."""
    mine = own_key.public.fingerprint
    for sealed in bundle.sealed_keys:
        if sealed.fingerprint == mine:
            key = CaseKey.open(bundle.case.id, bundle.case.public_key, sealed.blob, own_key)
            return key, sealed.recipient
    raise BundleError(f"{bundle.case.id} is not sealed to your key (fingerprint {mine})")


def _open_item(key: CaseKey, item: SealedItem) -> OpenedItem:
    try:
        data = key.open_item(item.field, item.seq, item.sealed)
    except (InvalidTag, ValueError):
        raise BundleError(f"item {item.field}#{item.seq} does not open: altered or moved") from None
    return OpenedItem(item.field, item.seq, item.created_at, data)


def _open_detail(key: CaseKey, entry: AuditEntry) -> bytes | None:
    if entry.detail is None:
        return None
    try:
        return key.open_audit_detail(entry.action, entry.at, entry.detail)
    except (InvalidTag, ValueError):
        raise BundleError(f"audit detail {entry.action}@{entry.at} does not open") from None


def open_bundle(bundle: Bundle, own_key: PrivateKey) -> OpenedCase:
    """Decrypt a whole case with a staff (or recovery) private key, once its log shows
    nothing was changed; any altered blob fails too."""
    key, opened_as = _case_key(bundle, own_key)
    if key.logged:
        check_log(
            key.log_key(), bundle.case, bundle.items, bundle.audit, bundle.log, bundle.exported_at
        )
    items = [_open_item(key, item) for item in bundle.items]
    audit = [(entry, _open_detail(key, entry)) for entry in bundle.audit]
    return OpenedCase(bundle.case, opened_as, items, audit, tamper_evident=key.logged)


@dataclass(frozen=True, slots=True)
class Reseal:
    """A case key sealed anew to a recipient list, for the operator to apply on the server."""

    case_id: str
    case_public: PublicKey
    sealed_keys: Sequence[SealedCaseKey]

    def to_json(self) -> str:
        document = {
            "format": _RESEAL,
            "version": VERSION,
            "case_id": self.case_id,
            "case_public_key": self.case_public.text,
            "sealed_keys": [sealed_key_json(s) for s in self.sealed_keys],
        }
        return json.dumps(document, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Reseal:
        return cls._from_document(parsed(text, "reseal file"))

    @classmethod
    def read(cls, path: Path) -> Reseal:
        return cls._from_document(read_document(path, "reseal file", MAX_RESEAL_BYTES))

    @classmethod
    def _from_document(cls, document: object) -> Reseal:
        top = top_level(document, _RESEAL)
        case_id = top.text("case_id")
        if not is_case_id(case_id):
            raise BundleError("case_id: not a case reference")
        return cls(
            case_id=case_id,
            case_public=top.public_key("case_public_key"),
            sealed_keys=[sealed_key_from(f) for f in top.objects("sealed_keys")],
        )


def reseal_bundle(
    bundle: Bundle, own_key: PrivateKey, recipients: Sequence[Recipient] | None = None
) -> Reseal:
    """Seal the case key to `recipients` (default: the bundle's current recipient list)."""
    chosen = list(bundle.recipients if recipients is None else recipients)
    if not chosen:
        raise BundleError("no recipients to reseal to")
    names = [r.name for r in chosen]
    if len(set(names)) != len(names):
        raise BundleError("a recipient is listed twice")
    key, _ = _case_key(bundle, own_key)
    return Reseal(bundle.case.id, bundle.case.public_key, key.seal_to(chosen))
