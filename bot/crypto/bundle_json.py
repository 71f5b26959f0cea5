"""The JSON form of case bundles and reseal files (`bot.crypto.bundle`): each sealed record
to a JSON object and back, read field by field with bounds.

A bundle comes from a server that may be seized and edited, and is read on a staff
machine: every field is checked for its type and range as it is read, and every problem
is one `BundleError` naming the field and what it should hold.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import Any

from bot.crypto.cases import SealedCaseKey, is_case_id
from bot.crypto.errors import BundleError, KeyFormatError
from bot.crypto.jsonfile import parse_json, read_json_file
from bot.crypto.keys import PublicKey
from bot.crypto.records import AuditEntry, CaseMeta, CaseState, LogEnd, LogLink, SealedItem

__all__ = [
    "VERSION",
    "Fields",
    "audit_from",
    "audit_json",
    "case_from",
    "case_json",
    "end_from",
    "end_json",
    "item_from",
    "item_json",
    "parsed",
    "read_document",
    "sealed_key_from",
    "sealed_key_json",
    "top_level",
]

_MAX_VALUES = 2_000_000  # JSON values, counted before parsing (see `bot.crypto.jsonfile`)
_MAX_NUMBER = (1 << 63) - 1
_MAX_TIME = 253_402_300_799  # 9999-12-31 23:59:59 UTC
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
VERSION = 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class Fields:
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

    def child(self, name: str) -> Fields:
        return Fields(self._value.get(name), f"{self._where}.{name}")

    def optional_child(self, name: str) -> Fields | None:
        return None if self._value.get(name) is None else self.child(name)

    def numbers(self, name: str) -> tuple[int, ...]:
        value = self._value.get(name)
        if not isinstance(value, list):
            raise BundleError(f"{self._where}.{name}: expected a list")
        listed = Fields({str(i): v for i, v in enumerate(value)}, f"{self._where}.{name}")
        return tuple(listed.number(str(i)) for i in range(len(value)))

    def public_key(self, name: str) -> PublicKey:
        try:
            return PublicKey.from_text(self.text(name))
        except KeyFormatError as exc:
            raise BundleError(f"{self._where}.{name}: {exc}") from None

    def objects(self, name: str) -> list[Fields]:
        value = self._value.get(name)
        if not isinstance(value, list):
            raise BundleError(f"{self._where}.{name}: expected a list")
        return [Fields(v, f"{self._where}.{name}[{i}]") for i, v in enumerate(value)]


def top_level(document: object, kind: str) -> Fields:
    top = Fields(document, kind)
    if top.optional_text("format") != kind:
        raise BundleError(f"not a {kind} file")
    if top.number("version") != VERSION:
        raise BundleError(f"{kind} version is unknown to this program")
    return top


def parsed(text: str, where: str) -> object:
    return parse_json(text, where, BundleError, max_values=_MAX_VALUES)


def read_document(path: Path, kind: str, max_bytes: int) -> object:
    document, _ = read_json_file(
        path, kind, BundleError, max_bytes=max_bytes, max_values=_MAX_VALUES
    )
    return document


def sealed_key_json(sealed: SealedCaseKey) -> dict[str, str]:
    return {
        "recipient": sealed.recipient,
        "fingerprint": sealed.fingerprint,
        "blob": _b64(sealed.blob),
    }


def sealed_key_from(fields: Fields) -> SealedCaseKey:
    return SealedCaseKey(fields.text("recipient"), fields.text("fingerprint"), fields.blob("blob"))


def case_json(case: CaseMeta) -> dict[str, object]:
    return {
        "id": case.id,
        "public_key": case.public_key.text,
        "created_at": case.created_at,
        "updated_at": case.updated_at,
        "state": case.state,
        "country": case.country,
        "urgency": case.urgency,
    }


def case_from(fields: Fields) -> CaseMeta:
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


def _state(fields: Fields) -> CaseState:
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


def _item_link(fields: Fields | None) -> LogLink | None:
    if fields is None:
        return None
    return LogLink(fields.number("pos"), fields.blob("tag"), fields.numbers("replaces"))


def _audit_link(fields: Fields | None) -> LogLink | None:
    if fields is None:
        return None
    return LogLink(fields.number("pos"), fields.blob("tag"), after=_state(fields.child("case")))


def item_json(item: SealedItem) -> dict[str, object]:
    return {
        "field": item.field,
        "seq": item.seq,
        "created_at": item.created_at,
        "sealed": _b64(item.sealed),
        "log": _link_json(item.log),
    }


def item_from(fields: Fields) -> SealedItem:
    return SealedItem(
        fields.text("field"),
        fields.number("seq"),
        fields.time("created_at"),
        fields.blob("sealed"),
        _item_link(fields.optional_child("log")),
    )


def audit_json(entry: AuditEntry) -> dict[str, object]:
    return {
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "detail": None if entry.detail is None else _b64(entry.detail),
        "log": _link_json(entry.log),
    }


def audit_from(fields: Fields, case_id: str) -> AuditEntry:
    return AuditEntry(
        at=fields.time("at"),
        actor=fields.text("actor"),
        action=fields.text("action"),
        case_id=case_id,
        detail=fields.optional_blob("detail"),
        log=_audit_link(fields.optional_child("log")),
    )


def end_json(end: LogEnd | None) -> dict[str, object] | None:
    return None if end is None else {"count": end.count, "tag": _b64(end.tag)}


def end_from(fields: Fields | None) -> LogEnd | None:
    return None if fields is None else LogEnd(fields.number("count"), fields.blob("tag"))
