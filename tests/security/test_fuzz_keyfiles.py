"""Key-file reader under mutated valid files and random bytes: only `KeyFileError`.

Argon2 is replaced by a cheap stand-in that fails the test if it is ever asked for
costs beyond the honest limits or a salt Argon2 refuses: the reader must reject
those before deriving. `HYPOTHESIS_PROFILE=long` runs 10,000 inputs.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.crypto.errors import KeyFileError, KeyFormatError
from bot.crypto.keyfile import (
    MAX_MEMORY_KIB,
    MAX_PARALLELISM,
    MAX_TIME_COST,
    KdfParams,
    read_private_key,
    read_public_key,
    write_private_key,
)
from bot.crypto.keys import PUBLIC_PREFIX, PrivateKey, PublicKey
from tests.security.fuzz_keyfiles_and_bundles import variants

PASSPHRASE = "correct horse"


def _stand_in(secret: bytes, salt: bytes, **costs: object) -> bytes:
    """Checks what Argon2 would be asked, then answers quickly (and deterministically)."""
    time_cost, memory, lanes = costs["time_cost"], costs["memory_cost"], costs["parallelism"]
    assert isinstance(time_cost, int) and 1 <= time_cost <= MAX_TIME_COST
    assert isinstance(lanes, int) and 1 <= lanes <= MAX_PARALLELISM
    assert isinstance(memory, int) and 8 * lanes <= memory <= MAX_MEMORY_KIB
    assert 8 <= len(salt) <= 64
    return hashlib.sha256(repr((secret, salt, time_cost, memory, lanes)).encode()).digest()


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("bot.crypto.keyfile.hash_secret_raw", _stand_in)
        path = tmp_path_factory.mktemp("key") / "me.key"
        write_private_key(
            path, PrivateKey.generate(), PASSPHRASE, forbidden=[], params=KdfParams(3, 65536, 4)
        )
        return path.read_bytes()


@pytest.fixture
def fast_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.crypto.keyfile.hash_secret_raw", _stand_in)


def _refusal(read: Callable[[], object], allowed: type[Exception] = KeyFileError) -> str | None:
    try:
        read()
    except allowed as refused:
        return str(refused)
    return None


def _read_both(path: Path) -> None:
    for read in (lambda: read_public_key(path), lambda: read_private_key(path, PASSPHRASE)):
        message = _refusal(read)
        assert message is None or (message and "\n" not in message), message


def test_the_stand_in_opens_a_valid_file(valid: bytes, fast_kdf: None, tmp_path: Path) -> None:
    path = tmp_path / "me.key"
    path.write_bytes(valid)
    path.chmod(0o600)
    assert read_private_key(path, PASSPHRASE).public.same_as(read_public_key(path))


@given(data=st.data())
def test_mutated_key_files_give_only_key_file_errors(
    valid: bytes, fast_kdf: None, tmp_path: Path, data: st.DataObject
) -> None:
    path = tmp_path / "me.key"
    path.unlink(missing_ok=True)
    path.write_bytes(data.draw(variants(valid)))
    path.chmod(0o600)
    _read_both(path)


@given(
    text=st.one_of(
        st.text(),
        st.text().map(lambda body: PUBLIC_PREFIX + body),
        st.binary(max_size=40).map(
            lambda raw: PUBLIC_PREFIX + base64.urlsafe_b64encode(raw).decode()
        ),
    )
)
def test_public_key_text_gives_only_key_format_errors(text: str) -> None:
    """What `staff add --public-key` and every key file's `public_key` field go through."""
    refusal = _refusal(lambda: PublicKey.from_text(text), KeyFormatError)
    assert refusal is None or "\n" not in refusal, refusal
    if refusal is None:
        assert PublicKey.from_text(text).text == text.strip()
