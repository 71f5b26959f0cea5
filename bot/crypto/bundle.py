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

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag

from bot.crypto.caselog import check_log
from bot.crypto.cases import CaseKey, Recipient, SealedCaseKey, is_case_id
from bot.crypto.errors import BundleError, KeyFormatError
from bot.crypto.jsonfile import parse_json, read_json_file
from bot.crypto.keys import PrivateKey, PublicKey
from bot.crypto.records import AuditEntry, CaseMeta, CaseState, LogEnd, LogLink, SealedItem

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

    def optional_child(self, name: str) -> _Fields | None:
        return None if self._value.get(name) is None else self.child(name)

    def numbers(self, name: str) -> tuple[int, ...]:
        value = self._value.get(name)
        if not isinstance(value, list):
            raise BundleError(f"{self._where}.{name}: expected a list")
        listed = _Fields({str(i): v for i, v in enumerate(value)}, f"{self._where}.{name}")
        return tuple(listed.number(str(i)) for i in range(len(value)))

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


def _state_json(state: CaseState) -> dict[str, object]:
    return {
        "created_at": state.created_at,
        "updated_at": state.updated_at,
        "state": state.state,
        "country": state.country,
        "urgency": state.urgency,
    }


def _state(fields: _Fields) -> CaseState:
    return CaseState(
        created_at=fields.time("created_at"),
        updated_at=fields.time("updated_at"),
        state=fields.text("state"),
        country=fields.optional_text("country"),
        urgency=fields.optional_text("urgency"),
    )


def _link_json(link: LogLink | None) -> dict[str, object] | None:
    if link is None:
        return None
    shown: dict[str, object] = {"pos": link.pos, "tag": _b64(link.tag)}
    if link.after is None:
        shown["replaces"] = list(link.replaces)
    else:
        shown["case"] = _state_json(link.after)
    return shown


def _item_link(fields: _Fields | None) -> LogLink | None:
    if fields is None:
        return None
    return LogLink(fields.number("pos"), fields.blob("tag"), fields.numbers("replaces"))


def _audit_link(fields: _Fields | None) -> LogLink | None:
    if fields is None:
        return None
    return LogLink(fields.number("pos"), fields.blob("tag"), after=_state(fields.child("case")))


def _item_json(item: SealedItem) -> dict[str, object]:
    return {
        "field": item.field,
        "seq": item.seq,
        "created_at": item.created_at,
        "sealed": _b64(item.sealed),
        "log": _link_json(item.log),
    }


def _item(fields: _Fields) -> SealedItem:
    return SealedItem(
        fields.text("field"),
        fields.number("seq"),
        fields.time("created_at"),
        fields.blob("sealed"),
        _item_link(fields.optional_child("log")),
    )


def _audit_json(entry: AuditEntry) -> dict[str, object]:
    return {
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "detail": None if entry.detail is None else _b64(entry.detail),
        "log": _link_json(entry.log),
    }


def _audit(fields: _Fields, case_id: str) -> AuditEntry:
    return AuditEntry(
        at=fields.time("at"),
        actor=fields.text("actor"),
        action=fields.text("action"),
        case_id=case_id,
        detail=fields.optional_blob("detail"),
        log=_audit_link(fields.optional_child("log")),
    )


def _end_json(end: LogEnd | None) -> dict[str, object] | None:
    return None if end is None else {"count": end.count, "tag": _b64(end.tag)}


def _end(fields: _Fields | None) -> LogEnd | None:
    return None if fields is None else LogEnd(fields.number("count"), fields.blob("tag"))


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
            "version": _VERSION,
            "exported_at": self.exported_at,
            "case": _case_json(self.case),
            "sealed_keys": [_sealed_key_json(s) for s in self.sealed_keys],
            "recipients": [
                {"recipient": r.name, "public_key": r.public_key.text} for r in self.recipients
            ],
            "items": [_item_json(i) for i in self.items],
            "audit": [_audit_json(a) for a in self.audit],
            "log": _end_json(self.log),
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
            log=_end(top.optional_child("log")),
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
