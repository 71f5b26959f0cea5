"""Per-case key pairs, on the GlobaLeaks model.

Each case gets its own X25519 key pair when it is created. The server keeps the
public half to seal every answer, note and attachment as it arrives, seals the
private half to each recipient (active staff and the organisation's recovery key),
then drops it. Only a recipient's private key, on a staff machine, brings it back.

HPKE `info` binds every blob to its place: an item to (case, field, seq), a sealed
case key to (case, case public key), an audit detail to (case, action, time). A
blob moved anywhere else does not open.

A case created since tamper-evident logs (`bot.crypto.caselog`) has its key sealed
with a `logged` mark in the info. Only a holder of the private key can seal it, so a
server cannot pass such a case off as one made before, whose bundles carry no log.

Python cannot promise to wipe memory; the private key object is dropped as soon as
the sealed copies exist, and OpenSSL clears its own copy when it is freed.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bot.crypto.errors import BundleError, KeyFormatError
from bot.crypto.hpke import encode_info, open_sealed, seal
from bot.crypto.keys import PrivateKey, PublicKey

__all__ = [
    "RECOVERY",
    "CaseKey",
    "Recipient",
    "SealedCaseKey",
    "check_field",
    "is_case_id",
    "new_case_id",
    "seal_audit_detail",
    "seal_item",
]

RECOVERY = "recovery"
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
_CASE_ID = re.compile(rf"^HRD-[{_ALPHABET}]{{4}}-[{_ALPHABET}]{{4}}$")
_FIELD = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


def new_case_id() -> str:
    """`HRD-7KQ4-M2XP`: random (no order or count leaks), easy to read out on a call."""
    body = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    return f"HRD-{body[:4]}-{body[4:]}"


def is_case_id(text: str) -> bool:
    return bool(_CASE_ID.match(text))


def check_field(field: str) -> str:
    """Field names are plain routing labels (`answer.where`); content goes in the blob."""
    if not _FIELD.match(field):
        raise ValueError("a field name is 1-64 of a-z 0-9 _ . - and starts with a letter")
    return field


def _item_info(case_id: str, field: str, seq: int) -> bytes:
    return encode_info("item", case_id, check_field(field), seq)


def _case_key_info(case_id: str, case_public: PublicKey, logged: bool) -> bytes:
    if logged:
        return encode_info("case-key", case_id, case_public.raw, "logged")
    return encode_info("case-key", case_id, case_public.raw)


def _audit_info(case_id: str, action: str, at: int) -> bytes:
    return encode_info("audit", case_id, action, at)


def seal_item(case_public: PublicKey, case_id: str, field: str, seq: int, data: bytes) -> bytes:
    """Seal one answer, note or attachment to its case; the server can do no more."""
    return seal(data, case_public.key, _item_info(case_id, field, seq))


def seal_audit_detail(
    public: PublicKey, case_id: str, action: str, at: int, detail: bytes
) -> bytes:
    """Seal an audit row's detail to the case key (or, with `case_id=""`, the recovery key)."""
    return seal(detail, public.key, _audit_info(case_id, action, at))


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who a case key is sealed to: `staff:<id>` or `recovery`, and their public key."""

    name: str
    public_key: PublicKey


@dataclass(frozen=True, slots=True)
class SealedCaseKey:
    """A case private key sealed to one recipient; opaque without their private key."""

    recipient: str
    fingerprint: str
    blob: bytes

    def __repr__(self) -> str:
        return f"SealedCaseKey({self.recipient!r}, {self.fingerprint!r}, <{len(self.blob)} bytes>)"


class CaseKey:
    """A case's key pair while someone legitimately holds it; never stored on the server."""

    __slots__ = ("_private", "case_id", "logged")

    def __init__(self, case_id: str, private: PrivateKey, *, logged: bool = True) -> None:
        """`logged`: the case keeps a tamper-evident log; False only for older cases."""
        self.case_id = case_id
        self._private = private
        self.logged = logged

    @classmethod
    def create(cls, case_id: str) -> CaseKey:
        return cls(case_id, PrivateKey.generate())

    @classmethod
    def open(
        cls, case_id: str, case_public: PublicKey, sealed: bytes, own_key: PrivateKey
    ) -> CaseKey:
        """Recover the case key from the copy sealed to `own_key`, and check it is this case's.
        The info it opens with says whether the case keeps a log."""
        for logged in (True, False):
            try:
                raw = open_sealed(sealed, own_key.key, _case_key_info(case_id, case_public, logged))
                private = PrivateKey.from_raw(raw)
            except (InvalidTag, KeyFormatError):
                continue
            if not private.public.same_as(case_public):
                raise BundleError(f"{case_id}: the sealed case key is not this case's key")
            return cls(case_id, private, logged=logged)
        raise BundleError(f"{case_id}: the case key does not open with this key")

    @property
    def public(self) -> PublicKey:
        return self._private.public

    def seal_to(self, recipients: Iterable[Recipient]) -> list[SealedCaseKey]:
        """One sealed copy per recipient; also how a staff machine re-seals an open case."""
        info = _case_key_info(self.case_id, self.public, self.logged)
        raw = self._private.raw()
        return [
            SealedCaseKey(r.name, r.public_key.fingerprint, seal(raw, r.public_key.key, info))
            for r in recipients
        ]

    def log_key(self) -> bytes:
        """The first link key of the case's log (`bot.crypto.caselog`): the server derives
        it at creation, before it drops this key; a staff machine derives it to check."""
        return HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=None,
            info=encode_info("case-log/key", self.case_id, self.public.raw),
        ).derive(self._private.raw())

    def open_item(self, field: str, seq: int, blob: bytes) -> bytes:
        """Plaintext of one item; `InvalidTag` if it was sealed elsewhere or altered."""
        return open_sealed(blob, self._private.key, _item_info(self.case_id, field, seq))

    def open_audit_detail(self, action: str, at: int, blob: bytes) -> bytes:
        return open_sealed(blob, self._private.key, _audit_info(self.case_id, action, at))

    def __repr__(self) -> str:
        return f"CaseKey({self.case_id!r}, public={self.public.fingerprint!r})"
