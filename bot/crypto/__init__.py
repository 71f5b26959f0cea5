"""Sealing for risk reports: per-case HPKE key pairs, staff key files, case bundles.

Modules by job: `hpke` (seal and open bytes, canonical `info`), `keys` (key pairs,
public key text, fingerprints), `keyfile` (passphrase-protected private key files),
`cases` (case keys, items, sealing to recipients), `caselog` (the tamper-evident log
binding a case's items, audit trail and metadata), `records` and `bundle` (what the
server exports and a staff machine opens), `bundle_json` (their JSON form, read with
bounds), `errors` (the error tree).

The server only ever holds public keys, and of each case's log only the link key of its
next position; private keys live on staff machines.
"""

from bot.crypto.errors import BundleError, CryptoError, KeyFileError, KeyFormatError
from bot.crypto.keys import PrivateKey, PublicKey

__all__ = [
    "BundleError",
    "CryptoError",
    "KeyFileError",
    "KeyFormatError",
    "PrivateKey",
    "PublicKey",
]
