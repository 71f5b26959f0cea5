"""Public key text, fingerprints, and private keys that never print themselves."""

from __future__ import annotations

import pytest

from bot.crypto.errors import KeyFormatError
from bot.crypto.keys import PUBLIC_PREFIX, PrivateKey, PublicKey, fingerprint


def test_public_key_text_round_trip() -> None:
    public = PrivateKey.generate().public
    assert public.text.startswith(PUBLIC_PREFIX)
    again = PublicKey.from_text(f"  {public.text}\n")
    assert again.same_as(public)
    assert again.fingerprint == public.fingerprint


def test_fingerprint_is_eight_blocks_of_four_hex() -> None:
    blocks = PrivateKey.generate().public.fingerprint.split(" ")
    assert len(blocks) == 8
    assert all(len(b) == 4 and all(c in "0123456789ABCDEF" for c in b) for b in blocks)


def test_fingerprints_differ_between_keys() -> None:
    assert PrivateKey.generate().public.fingerprint != PrivateKey.generate().public.fingerprint
    assert fingerprint(b"\x01" * 32) != fingerprint(b"\x02" * 32)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ssh-ed25519 AAAA",
        "hrd-bot-x25519-v2:" + "A" * 43,
        PUBLIC_PREFIX + "not base64 !!",
        PUBLIC_PREFIX + "AAAA",
        PUBLIC_PREFIX + "A" * 43,  # the all-zero point: a low-order key
    ],
)
def test_bad_public_keys_are_refused(text: str) -> None:
    with pytest.raises(KeyFormatError):
        PublicKey.from_text(text)


def test_non_canonical_text_is_refused() -> None:
    public = PrivateKey.generate().public
    with pytest.raises(KeyFormatError, match="canonical"):
        PublicKey.from_text(public.text + "=")


def test_private_key_repr_holds_no_secret() -> None:
    key = PrivateKey.generate()
    raw = key.raw()
    for shown in (repr(key), str(key), f"{key}"):
        assert key.public.fingerprint in shown
        assert raw.hex() not in shown
        assert str(raw) not in shown


def test_private_key_raw_round_trip() -> None:
    key = PrivateKey.generate()
    assert PrivateKey.from_raw(key.raw()).public.same_as(key.public)
    with pytest.raises(KeyFormatError):
        PrivateKey.from_raw(b"short")


def test_stored_keys_may_skip_the_point_check() -> None:
    zero = bytes(32)
    with pytest.raises(KeyFormatError, match="low-order"):
        PublicKey.from_raw(zero)
    assert PublicKey.from_raw(zero, check_point=False).raw == zero
