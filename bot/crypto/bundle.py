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
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag

from bot.crypto.cases import CaseKey, Recipient, SealedCaseKey, is_case_id
from bot.crypto.errors import BundleError, KeyFormatError
from bot.crypto.jsonfile import parse_json, read_json_file
from bot.crypto.keys import PrivateKey, PublicKey
from bot.crypto.records import AuditEntry, CaseMeta, SealedItem

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
_MAX_VALUES = 2_000_000  # JSON values, counted before parsing (see `bot.crypto.jsonfile`)
_MAX_NUMBER = (1 << 63) - 1
_MAX_TIME = 253_402_300_799  # 9999-12-31 23:59:59 UTC
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_BUNDLE = "hrd-bot-case-bundle"
_RESEAL = "hrd-bot-case-reseal"
_VERSION = 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class _Fields:
    """Typed access to one JSON object; every problem becomes a `BundleError`.

    Text is refused if it holds control characters or broken UTF-16 (lone surrogates):
    every field is a label or base64, and the staff member's terminal prints them.
    Numbers fit 63 bits; times fall within years 1970-9999, so they print."""

    def __init__(self, value: object, where: str) -> None:
        if not isinstance(value, dict):
            raise BundleError(f"{where}: expected an object")
        self._value: dict[str, Any] = value
        self._where = where

    def text(self, name: str) -> str:
        value = self._value.get(name)
        if not isinstance(value, str):
            raise BundleError(f"{self._where}.{name}: expected text")
        if _UNPRINTABLE.search(value):
            raise BundleError(f"{self._where}.{name}: control characters or broken text")
        return value

    def optional_text(self, name: str) -> str | None:
        return None if self._value.get(name) is None else self.text(name)

    def number(self, name: str, top: int = _MAX_NUMBER) -> int:
        value = self._value.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top:
            raise BundleError(f"{self._where}.{name}: expected a whole number (0-{top})")
        return value

    def time(self, name: str) -> int:
        return self.number(name, _MAX_TIME)

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


def _document(document: object, kind: str) -> _Fields:
    top = _Fields(document, kind)
    if top.optional_text("format") != kind:
        raise BundleError(f"not a {kind} file")
    if top.number("version") != _VERSION:
        raise BundleError(f"{kind} version is unknown to this program")
    return top


def _parsed(text: str, where: str) -> object:
    return parse_json(text, where, BundleError, max_values=_MAX_VALUES)


def _read(path: Path, kind: str, max_bytes: int) -> object:
    document, _ = read_json_file(
        path, kind, BundleError, max_bytes=max_bytes, max_values=_MAX_VALUES
    )
    return document


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
        created_at=fields.time("created_at"),
        updated_at=fields.time("updated_at"),
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
        fields.time("created_at"),
        fields.blob("sealed"),
    )


def _audit(fields: _Fields, case_id: str) -> AuditEntry:
    return AuditEntry(
        at=fields.time("at"),
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
        return cls._from_document(_parsed(text, "bundle"))

    @classmethod
    def read(cls, path: Path) -> Bundle:
        """A bundle file, read within bounds (see `bot.crypto.jsonfile`)."""
        return cls._from_document(_read(path, "bundle", MAX_BUNDLE_BYTES))

    @classmethod
    def _from_document(cls, document: object) -> Bundle:
        top = _document(document, _BUNDLE)
        case = _case(top.child("case"))
        return cls(
            exported_at=top.time("exported_at"),
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
    except (InvalidTag, ValueError):
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
        return cls._from_document(_parsed(text, "reseal file"))

    @classmethod
    def read(cls, path: Path) -> Reseal:
        return cls._from_document(_read(path, "reseal file", MAX_RESEAL_BYTES))

    @classmethod
    def _from_document(cls, document: object) -> Reseal:
        top = _document(document, _RESEAL)
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
