"""Passphrase-protected private key files: mode, place, passphrase rules, one clear error."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from bot.crypto.errors import KeyFileError
from bot.crypto.keyfile import KdfParams, read_private_key, read_public_key, write_private_key
from bot.crypto.keys import PrivateKey

FAST = KdfParams(time_cost=1, memory_kib=8, parallelism=1)


def _write(
    path: Path, key: PrivateKey, passphrase: str = "correct horse", forbidden: Path | None = None
) -> None:
    write_private_key(
        path, key, passphrase, forbidden=[forbidden] if forbidden else [], params=FAST
    )


def test_round_trip(tmp_path: Path) -> None:
    key = PrivateKey.generate()
    _write(tmp_path / "me.key", key)
    assert read_private_key(tmp_path / "me.key", "correct horse").raw() == key.raw()
    assert read_public_key(tmp_path / "me.key").same_as(key.public)


def test_file_mode_is_0600_even_with_a_loose_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        _write(tmp_path / "me.key", PrivateKey.generate())
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "me.key").stat().st_mode) == 0o600


def test_file_holds_no_raw_key(tmp_path: Path) -> None:
    key = PrivateKey.generate()
    _write(tmp_path / "me.key", key)
    text = (tmp_path / "me.key").read_bytes()
    assert key.raw() not in text
    assert key.raw().hex().encode() not in text


def test_refuses_to_write_inside_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    for target in (data / "me.key", data / "sub" / "me.key"):
        with pytest.raises(KeyFileError, match="data folder"):
            _write(target, PrivateKey.generate(), forbidden=data)
        assert not target.exists()


def test_refuses_the_data_dir_through_a_symlink(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "innocent").symlink_to(data)
    with pytest.raises(KeyFileError, match="data folder"):
        _write(tmp_path / "innocent" / "me.key", PrivateKey.generate(), forbidden=data)


@pytest.mark.parametrize("passphrase", ["", "   "])
def test_refuses_an_empty_passphrase(tmp_path: Path, passphrase: str) -> None:
    with pytest.raises(KeyFileError, match="empty passphrase"):
        _write(tmp_path / "me.key", PrivateKey.generate(), passphrase)
    assert not (tmp_path / "me.key").exists()


def test_never_overwrites(tmp_path: Path) -> None:
    _write(tmp_path / "me.key", PrivateKey.generate())
    with pytest.raises(KeyFileError, match="already exists"):
        _write(tmp_path / "me.key", PrivateKey.generate())


def test_wrong_passphrase_gives_one_clear_error(tmp_path: Path) -> None:
    _write(tmp_path / "me.key", PrivateKey.generate())
    with pytest.raises(KeyFileError, match=r"^wrong passphrase for .*me\.key, or the file"):
        read_private_key(tmp_path / "me.key", "wrong horse")


def test_composed_and_decomposed_accents_open_alike(tmp_path: Path) -> None:
    key = PrivateKey.generate()
    _write(tmp_path / "me.key", key, "d\u00e9fense des droits")
    assert read_private_key(tmp_path / "me.key", "de\u0301fense des droits").raw() == key.raw()


@pytest.mark.parametrize("field", ["public_key", "kdf", "cipher", "ciphertext"])
def test_an_altered_field_fails_like_a_wrong_passphrase(tmp_path: Path, field: str) -> None:
    path = tmp_path / "me.key"
    _write(path, PrivateKey.generate())
    document = json.loads(path.read_text())
    if field == "public_key":
        document[field] = PrivateKey.generate().public.text
    elif field == "kdf":
        document[field]["time_cost"] = 2
    elif field == "cipher":
        document[field]["nonce"] = base64.b64encode(bytes(12)).decode()
    else:
        document[field] = document[field][:-4] + "AAA="
    path.write_text(json.dumps(document))
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        read_private_key(path, "correct horse")


def test_a_readable_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "me.key"
    _write(path, PrivateKey.generate())
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        read_private_key(path, "correct horse")


def test_not_a_key_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="not an hrd-bot private key file"):
        read_private_key(path, "x")


def test_crafted_costs_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "me.key"
    _write(path, PrivateKey.generate())
    document = json.loads(path.read_text())
    document["kdf"]["memory_kib"] = 1 << 40
    path.write_text(json.dumps(document))
    with pytest.raises(KeyFileError, match="out of range"):
        read_private_key(path, "correct horse")


def test_fast_costs_only_when_asked() -> None:
    assert KdfParams.for_env({}) == KdfParams()
    assert KdfParams.for_env({"HRD_BOT_INSECURE_FAST_KDF": "1"}).memory_kib == 8
    assert KdfParams().memory_kib >= 64 * 1024
