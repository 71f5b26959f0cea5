"""HPKE sealing: round trip, and every way a blob must refuse to open."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag

from bot.crypto.hpke import BLOB_OVERHEAD, encode_info, open_sealed, seal
from bot.crypto.keys import PrivateKey

INFO = encode_info("item", "HRD-2345-6789", "answer.where", 0)


def test_round_trip_and_size() -> None:
    key = PrivateKey.generate()
    blob = seal(b"the police came at night", key.public.key, INFO)
    assert len(blob) == len(b"the police came at night") + BLOB_OVERHEAD
    assert open_sealed(blob, key.key, INFO) == b"the police came at night"


def test_two_seals_of_the_same_text_differ() -> None:
    key = PrivateKey.generate()
    assert seal(b"same", key.public.key, INFO) != seal(b"same", key.public.key, INFO)


def test_wrong_info_fails() -> None:
    key = PrivateKey.generate()
    blob = seal(b"secret", key.public.key, INFO)
    other = encode_info("item", "HRD-2345-6789", "answer.where", 1)
    with pytest.raises(InvalidTag):
        open_sealed(blob, key.key, other)


def test_wrong_key_fails() -> None:
    blob = seal(b"secret", PrivateKey.generate().public.key, INFO)
    with pytest.raises(InvalidTag):
        open_sealed(blob, PrivateKey.generate().key, INFO)


@pytest.mark.parametrize("position", [0, 1, 20, 33, 40, -1])
def test_any_flipped_byte_fails(position: int) -> None:
    key = PrivateKey.generate()
    blob = bytearray(seal(b"secret answer", key.public.key, INFO))
    blob[position] ^= 0x01
    with pytest.raises(InvalidTag):
        open_sealed(bytes(blob), key.key, INFO)


def test_truncated_blob_fails() -> None:
    key = PrivateKey.generate()
    blob = seal(b"", key.public.key, INFO)
    with pytest.raises(InvalidTag):
        open_sealed(blob[:-1], key.key, INFO)


def test_info_is_length_prefixed_so_parts_cannot_shift() -> None:
    assert encode_info("item", "ab", "c") != encode_info("item", "a", "bc")
    assert encode_info("item", "1") != encode_info("item", 1)
    assert encode_info("item", b"x") != encode_info("item", "x")


def test_info_is_versioned_and_canonical() -> None:
    info = encode_info("item", "HRD-2345-6789", "answer.where", 7)
    assert info.startswith(b"hrd-bot/hpke-info\x01")
    assert info == encode_info("item", "HRD-2345-6789", "answer.where", 7)


@pytest.mark.parametrize("bad", [-1, 1 << 64])
def test_info_numbers_are_bounded(bad: int) -> None:
    with pytest.raises(ValueError, match="64 unsigned bits"):
        encode_info("item", bad)


def test_info_refuses_booleans_and_empty_purpose() -> None:
    with pytest.raises(TypeError):
        encode_info("item", True)
    with pytest.raises(ValueError, match="purpose"):
        encode_info("")
