"""A private key in a passphrase-protected file, for a staff machine (never the server).

Format (JSON, version 1): the public key in clear (so a wrong file is spotted before
typing a passphrase), Argon2id parameters and salt, a ChaCha20-Poly1305 nonce, and
the sealed 32-byte private key. Every field except the ciphertext is authenticated
as associated data, so a changed parameter or public key fails like a wrong
passphrase does: one error, "wrong passphrase, or the file was altered".

The passphrase is NFC-normalised first, so the same words typed on two keyboards
(composed or decomposed accents, as in French or Vietnamese) give the same key.

Argon2id costs 256 MiB and 3 passes by default (about a second on a laptop). Tests
set `HRD_BOT_INSECURE_FAST_KDF=1` for tiny costs, as SecureDrop's conftest does;
the parameters are stored in the file, so opening always uses the file's own,
within limits (`KdfParams.check`) checked before any derivation, so a crafted file
cannot hold a machine for minutes. The file itself is read within bounds too (a
regular file, 64 KiB, bounded nesting: see `bot.crypto.jsonfile`).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import stat
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from argon2.exceptions import Argon2Error
from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from bot.crypto.errors import CryptoError, KeyFileError, KeyFormatError
from bot.crypto.files import write_new_private_file
from bot.crypto.jsonfile import read_json_file
from bot.crypto.keys import PrivateKey, PublicKey

__all__ = [
    "FAST_KDF_ENV",
    "MAX_KEY_FILE_BYTES",
    "MAX_MEMORY_KIB",
    "MAX_PARALLELISM",
    "MAX_TIME_COST",
    "KdfParams",
    "read_private_key",
    "read_public_key",
    "write_private_key",
]

FAST_KDF_ENV = "HRD_BOT_INSECURE_FAST_KDF"
_FORMAT = "hrd-bot-private-key"
_VERSION = 1
_SALT_BYTES = 16
_MIN_SALT, _MAX_SALT = 8, 64  # Argon2's minimum; what a file may hold
_NONCE_BYTES = 12
MAX_KEY_FILE_BYTES = 64 * 1024  # a key file is about 500 bytes
_MAX_VALUES = 1_000
MAX_TIME_COST = 10
MAX_MEMORY_KIB = 1024 * 1024  # 1 GiB
MAX_PARALLELISM = 8


@dataclass(frozen=True, slots=True)
class KdfParams:
    """Argon2id costs; bounded when read so a crafted file cannot exhaust memory."""

    time_cost: int = 3
    memory_kib: int = 256 * 1024
    parallelism: int = 4

    @classmethod
    def for_env(cls, env: Mapping[str, str]) -> KdfParams:
        """The default, or tiny costs when the test-only variable is set to 1."""
        if env.get(FAST_KDF_ENV) == "1":
            return cls(time_cost=1, memory_kib=8, parallelism=1)
        return cls()

    def check(self) -> None:
        """Refuse costs a crafted file could use to hold a machine for minutes.

        The bounds are 4x the default memory and about 3x its passes: 12 s at the top
        against 0.7 s for the default on a 2-core machine (the old bounds, 64 passes and
        4 GiB, meant minutes). Parallelism beyond 8 buys nothing on a staff laptop.
        """
        for name, value, top in (
            ("time cost", self.time_cost, MAX_TIME_COST),
            ("parallelism", self.parallelism, MAX_PARALLELISM),
        ):
            if not 1 <= value <= top:
                raise KeyFileError(f"key file: Argon2id {name} {value} is out of range (1-{top})")
        low, high = 8 * self.parallelism, MAX_MEMORY_KIB
        if not low <= self.memory_kib <= high:
            raise KeyFileError(
                f"key file: Argon2id memory {self.memory_kib} KiB is out of range ({low}-{high})"
            )

    def derive(self, passphrase: str, salt: bytes) -> bytes:
        """Argon2id; costs and salt are checked first, so this fails only on a bad passphrase
        text (lone surrogates from a broken terminal) or argon2's own refusal."""
        self.check()
        _check_salt(salt)
        try:
            secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")
            return hash_secret_raw(
                secret,
                salt,
                time_cost=self.time_cost,
                memory_cost=self.memory_kib,
                parallelism=self.parallelism,
                hash_len=32,
                type=Type.ID,
            )
        except UnicodeEncodeError:
            raise KeyFileError("the passphrase is not valid text") from None
        except Argon2Error as exc:
            raise KeyFileError(f"key file: Argon2id refused its parameters ({exc})") from None


def _check_salt(salt: bytes) -> None:
    if not _MIN_SALT <= len(salt) <= _MAX_SALT:
        raise KeyFileError(f"key file: the salt has {len(salt)} bytes, not {_MIN_SALT}-{_MAX_SALT}")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: object, name: str) -> bytes:
    if not isinstance(value, str):
        raise KeyFileError(f"key file: {name} is missing")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"key file: {name} is not base64") from None


def _header_aad(header: Mapping[str, Any]) -> bytes:
    """Canonical bytes of everything but the ciphertext, authenticated by the AEAD."""
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _check_passphrase(passphrase: str) -> None:
    if not passphrase.strip():
        raise KeyFileError("an empty passphrase is refused")


def _refuse_forbidden(target: Path, forbidden: Iterable[Path]) -> None:
    """The server's data dir must never hold a staff private key, even through a symlink."""
    parent = target.parent.resolve()
    for folder in forbidden:
        place = folder.expanduser().resolve()
        if parent == place or parent.is_relative_to(place):
            raise KeyFileError(
                f"refusing to write a private key inside the server's data folder {folder}; "
                "keep it on your own machine"
            )


def write_private_key(
    path: Path,
    key: PrivateKey,
    passphrase: str,
    *,
    forbidden: Iterable[Path],
    params: KdfParams,
) -> None:
    """Create `path` (mode 0600, never overwriting) holding `key` sealed under `passphrase`."""
    _check_passphrase(passphrase)
    _refuse_forbidden(path, forbidden)
    salt, nonce = secrets.token_bytes(_SALT_BYTES), secrets.token_bytes(_NONCE_BYTES)
    header = {
        "format": _FORMAT,
        "version": _VERSION,
        "public_key": key.public.text,
        "kdf": {"name": "argon2id", "salt": _b64(salt), **asdict(params)},
        "cipher": {"name": "chacha20-poly1305", "nonce": _b64(nonce)},
    }
    wrapping = ChaCha20Poly1305(params.derive(passphrase, salt))
    sealed = wrapping.encrypt(nonce, key.raw(), _header_aad(header))
    text = json.dumps({**header, "ciphertext": _b64(sealed)}, indent=2) + "\n"
    try:
        write_new_private_file(path, text)
    except CryptoError as exc:
        raise KeyFileError(str(exc)) from None


def _load(path: Path) -> dict[str, Any]:
    """The document, read within bounds (see `bot.crypto.jsonfile`), owner-only, version 1."""
    document, status = read_json_file(
        path, "key file", KeyFileError, max_bytes=MAX_KEY_FILE_BYTES, max_values=_MAX_VALUES
    )
    if status.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"key file {path} is readable by others; run: chmod 600 {path}")
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        raise KeyFileError(f"{path} is not an hrd-bot private key file")
    version = document.get("version")
    if type(version) is not int or version != _VERSION:
        raise KeyFileError(f"{path}: this key file version is unknown to this program")
    return document


def _params(document: Mapping[str, Any]) -> tuple[KdfParams, bytes]:
    kdf = document.get("kdf")
    if not isinstance(kdf, dict) or kdf.get("name") != "argon2id":
        raise KeyFileError("key file: unknown key derivation")
    costs: list[int] = []
    for name in ("time_cost", "memory_kib", "parallelism"):
        value = kdf.get(name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise KeyFileError("key file: Argon2id costs are not numbers")
        costs.append(value)
    params = KdfParams(*costs)
    params.check()
    salt = _unb64(kdf.get("salt"), "salt")
    _check_salt(salt)
    return params, salt


def _claimed_public(document: Mapping[str, Any]) -> PublicKey:
    text = document.get("public_key")
    if not isinstance(text, str):
        raise KeyFileError("key file: public key is missing")
    try:
        return PublicKey.from_text(text)
    except KeyFormatError as exc:
        raise KeyFileError(f"key file: {exc}") from None


def read_public_key(path: Path) -> PublicKey:
    """The public key a file claims; `read_private_key` confirms it against the secret."""
    return _claimed_public(_load(path))


def read_private_key(path: Path, passphrase: str) -> PrivateKey:
    """Open a key file; any wrong passphrase or altered byte gives the same clear error.

    Everything is checked before the (deliberately slow) key derivation runs."""
    document = _load(path)
    claimed = _claimed_public(document)
    params, salt = _params(document)
    cipher = document.get("cipher")
    if not isinstance(cipher, dict) or cipher.get("name") != "chacha20-poly1305":
        raise KeyFileError("key file: unknown cipher")
    nonce = _unb64(cipher.get("nonce"), "nonce")
    sealed = _unb64(document.get("ciphertext"), "ciphertext")
    if len(nonce) != _NONCE_BYTES:
        raise KeyFileError("key file: bad nonce length")
    header = {k: v for k, v in document.items() if k != "ciphertext"}
    wrapping = ChaCha20Poly1305(params.derive(passphrase, salt))
    try:
        raw = wrapping.decrypt(nonce, sealed, _header_aad(header))
        key = PrivateKey.from_raw(raw)
    except (InvalidTag, KeyFormatError):
        raise KeyFileError(f"wrong passphrase for {path}, or the file was altered") from None
    if not key.public.same_as(claimed):
        raise KeyFileError(f"wrong passphrase for {path}, or the file was altered")
    return key
