"""Case bundles and reseal files: how a sealed case leaves the server and comes back.

A bundle (`hrd-bot cases export`) is JSON: the case's routing metadata and public
key, the case private key sealed to each recipient, every item and audit detail as
sealed base64 blobs, and the recipients the server would seal to today (active
staff and recovery, public keys only). It holds no plaintext content. It is not
signed: a bundle altered in transit can lose items, but cannot make one read as
another (HPKE info binds case, field and position).

On a staff machine, `open_bundle` recovers the case key with the member's own key
and decrypts everything; `reseal_bundle` seals the same case key to the bundle's
current recipients and produces a reseal file, which the operator applies on the
server (`hrd-bot cases apply-reseal`) so members removed since the case was opened
lose their server-side copy and members added since gain one.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag

from bot.crypto.cases import CaseKey, Recipient, SealedCaseKey, is_case_id
from bot.crypto.errors import BundleError, KeyFormatError
from bot.crypto.keys import PrivateKey, PublicKey
from bot.crypto.records import AuditEntry, CaseMeta, SealedItem

__all__ = [
    "Bundle",
    "OpenedCase",
    "OpenedItem",
    "Reseal",
    "open_bundle",
    "reseal_bundle",
]

_BUNDLE = "hrd-bot-case-bundle"
_RESEAL = "hrd-bot-case-reseal"
_VERSION = 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class _Fields:
    """Typed access to one JSON object; every problem becomes a `BundleError`."""

    def __init__(self, value: object, where: str) -> None:
        if not isinstance(value, dict):
            raise BundleError(f"{where}: expected an object")
        self._value: dict[str, Any] = value
        self._where = where

    def text(self, name: str) -> str:
        value = self._value.get(name)
        if not isinstance(value, str):
            raise BundleError(f"{self._where}.{name}: expected text")
        return value

    def optional_text(self, name: str) -> str | None:
        return None if self._value.get(name) is None else self.text(name)

    def number(self, name: str) -> int:
        value = self._value.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise BundleError(f"{self._where}.{name}: expected a whole number")
        return value

    def blob(self, name: str) -> bytes:
        try:
            return base64.b64decode(self.text(name), validate=True)
        except (binascii.Error, ValueError):
            raise BundleError(f"{self._where}.{name}: expected base64") from None

    def optional_blob(self, name: str) -> bytes | None:
        return None if self._value.get(name) is None else self.blob(name)

    def child(self, name: str) -> _Fields:
        return _Fields(self._value.get(name), f"{self._where}.{name}")

    def public_key(self, name: str) -> PublicKey:
        try:
            return PublicKey.from_text(self.text(name))
        except KeyFormatError as exc:
            raise BundleError(f"{self._where}.{name}: {exc}") from None

    def objects(self, name: str) -> list[_Fields]:
        value = self._value.get(name)
        if not isinstance(value, list):
            raise BundleError(f"{self._where}.{name}: expected a list")
        return [_Fields(v, f"{self._where}.{name}[{i}]") for i, v in enumerate(value)]


def _document(text: str, kind: str) -> _Fields:
    try:
        top = _Fields(json.loads(text), kind)
    except json.JSONDecodeError:
        raise BundleError(f"not a {kind} file (not JSON)") from None
    if top.optional_text("format") != kind:
        raise BundleError(f"not a {kind} file")
    if top.number("version") != _VERSION:
        raise BundleError(f"{kind} version is unknown to this program")
    return top


def _sealed_key_json(sealed: SealedCaseKey) -> dict[str, str]:
    return {
        "recipient": sealed.recipient,
        "fingerprint": sealed.fingerprint,
        "blob": _b64(sealed.blob),
    }


def _sealed_key(fields: _Fields) -> SealedCaseKey:
    return SealedCaseKey(fields.text("recipient"), fields.text("fingerprint"), fields.blob("blob"))


def _case_json(case: CaseMeta) -> dict[str, object]:
    return {
        "id": case.id,
        "public_key": case.public_key.text,
        "created_at": case.created_at,
        "updated_at": case.updated_at,
        "state": case.state,
        "country": case.country,
        "urgency": case.urgency,
    }


def _case(fields: _Fields) -> CaseMeta:
    case_id = fields.text("id")
    if not is_case_id(case_id):
        raise BundleError("case.id: not a case reference")
    return CaseMeta(
        id=case_id,
        public_key=fields.public_key("public_key"),
        created_at=fields.number("created_at"),
        updated_at=fields.number("updated_at"),
        state=fields.text("state"),
        country=fields.optional_text("country"),
        urgency=fields.optional_text("urgency"),
    )


def _item_json(item: SealedItem) -> dict[str, object]:
    return {
        "field": item.field,
        "seq": item.seq,
        "created_at": item.created_at,
        "sealed": _b64(item.sealed),
    }


def _item(fields: _Fields) -> SealedItem:
    return SealedItem(
        fields.text("field"),
        fields.number("seq"),
        fields.number("created_at"),
        fields.blob("sealed"),
    )


def _audit(fields: _Fields, case_id: str) -> AuditEntry:
    return AuditEntry(
        at=fields.number("at"),
        actor=fields.text("actor"),
        action=fields.text("action"),
        case_id=case_id,
        detail=fields.optional_blob("detail"),
    )


@dataclass(frozen=True, slots=True)
class Bundle:
    """Everything about one case that a staff machine needs, all content sealed."""

    exported_at: int
    case: CaseMeta
    sealed_keys: Sequence[SealedCaseKey]
    recipients: Sequence[Recipient]
    items: Sequence[SealedItem]
    audit: Sequence[AuditEntry]

    def to_json(self) -> str:
        document = {
            "format": _BUNDLE,
            "version": _VERSION,
            "exported_at": self.exported_at,
            "case": _case_json(self.case),
            "sealed_keys": [_sealed_key_json(s) for s in self.sealed_keys],
            "recipients": [
                {"recipient": r.name, "public_key": r.public_key.text} for r in self.recipients
            ],
            "items": [
                {
                    "field": i.field,
                    "seq": i.seq,
                    "created_at": i.created_at,
                    "sealed": _b64(i.sealed),
                }
                for i in self.items
            ],
            "audit": [
                {
                    "at": a.at,
                    "actor": a.actor,
                    "action": a.action,
                    "detail": None if a.detail is None else _b64(a.detail),
                }
                for a in self.audit
            ],
        }
        return json.dumps(document, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Bundle:
        top = _document(text, _BUNDLE)
        case = _case(top.child("case"))
        return cls(
            exported_at=top.number("exported_at"),
            case=case,
            sealed_keys=[_sealed_key(f) for f in top.objects("sealed_keys")],
            recipients=[
                Recipient(f.text("recipient"), f.public_key("public_key"))
                for f in top.objects("recipients")
            ],
            items=[_item(f) for f in top.objects("items")],
            audit=[_audit(f, case.id) for f in top.objects("audit")],
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
    """A decrypted case, on a staff machine only; `opened_as` names the sealed copy used."""

    case: CaseMeta
    opened_as: str
    items: Sequence[OpenedItem]
    audit: Sequence[tuple[AuditEntry, bytes | None]]

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
    except InvalidTag:
        raise BundleError(f"audit detail {entry.action}@{entry.at} does not open") from None


def open_bundle(bundle: Bundle, own_key: PrivateKey) -> OpenedCase:
    """Decrypt a whole case with a staff (or recovery) private key; any altered blob fails."""
    key, opened_as = _case_key(bundle, own_key)
    items = [_open_item(key, item) for item in bundle.items]
    audit = [(entry, _open_detail(key, entry)) for entry in bundle.audit]
    return OpenedCase(bundle.case, opened_as, items, audit)


@dataclass(frozen=True, slots=True)
class Reseal:
    """A case key sealed anew to a recipient list, for the operator to apply on the server."""

    case_id: str
    case_public: PublicKey
    sealed_keys: Sequence[SealedCaseKey]

    def to_json(self) -> str:
        document = {
            "format": _RESEAL,
            "version": _VERSION,
            "case_id": self.case_id,
            "case_public_key": self.case_public.text,
            "sealed_keys": [_sealed_key_json(s) for s in self.sealed_keys],
        }
        return json.dumps(document, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Reseal:
        top = _document(text, _RESEAL)
        case_id = top.text("case_id")
        if not is_case_id(case_id):
            raise BundleError("case_id: not a case reference")
        return cls(
            case_id=case_id,
            case_public=top.public_key("case_public_key"),
            sealed_keys=[_sealed_key(f) for f in top.objects("sealed_keys")],
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
