"""Passphrase-protected private key files: mode, place, passphrase rules, one clear error."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.crypto.errors import KeyFileError
from bot.crypto.keyfile import (
    KdfParams,
    read_private_key,
    read_public_key,
    write_private_key,
)
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
    with pytest.raises(KeyFileError, match=r"notes\.txt: not JSON"):
        read_private_key(path, "x")
    path.write_text('{"format": "something else"}')
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


def _doc(path: Path) -> dict[str, Any]:
    _write(path, PrivateKey.generate())
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def _save(path: Path, text: str | bytes) -> Path:
    path.unlink(missing_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    path.chmod(0o600)
    return path


def _refused_quickly(path: Path, match: str) -> None:
    """Read in a thread: a reader that hangs (a FIFO) or runs for minutes fails the test."""
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            read_private_key(path, "correct horse")
            outcome.append(None)
        except BaseException as exc:  # the test reports whatever came out
            outcome.append(exc)

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(timeout=5)
    assert outcome, "still reading after 5 s"
    assert isinstance(outcome[0], KeyFileError), repr(outcome[0])
    assert re.search(match, str(outcome[0])), str(outcome[0])
    assert "\n" not in str(outcome[0])


@pytest.mark.parametrize(
    ("name", "raw", "match"),
    [
        ("time_cost", "64", "time cost 64 is out of range"),
        ("time_cost", "11", "time cost 11 is out of range"),
        ("time_cost", "0", "time cost 0 is out of range"),
        ("memory_kib", str(4 * 1024 * 1024), "memory 4194304 KiB is out of range"),
        ("memory_kib", str(1024 * 1024 + 1), "out of range"),
        ("parallelism", "64", "parallelism 64 is out of range"),
        ("parallelism", "9", "parallelism 9 is out of range"),
        ("time_cost", "9" * 5000, "not JSON"),
        ("time_cost", "1" + "0" * 300, "out of range"),
        ("time_cost", '"3"', "not numbers"),
        ("time_cost", "true", "not numbers"),
        ("time_cost", "2.5", "not numbers"),
        ("time_cost", "NaN", "not numbers"),
    ],
)
def test_kdf_costs_beyond_honest_limits_are_refused_before_deriving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, raw: str, match: str
) -> None:
    """`raw` is the field's JSON text, so numbers json.dumps would not write can be tried."""
    path = tmp_path / "me.key"
    document = _doc(path)
    document["kdf"][name] = "@@"

    def never(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("derived a key from refused costs")

    monkeypatch.setattr("bot.crypto.keyfile.hash_secret_raw", never)
    _refused_quickly(_save(path, json.dumps(document).replace('"@@"', raw)), match)


@pytest.mark.parametrize(
    ("salt", "match"),
    [("", "salt has 0 bytes"), ("AAAA", "salt has 3 bytes"), ("A" * 100, "salt has 75 bytes")],
)
def test_a_bad_salt_is_one_clear_error(tmp_path: Path, salt: str, match: str) -> None:
    path = tmp_path / "me.key"
    document = _doc(path)
    document["kdf"]["salt"] = salt
    _refused_quickly(_save(path, json.dumps(document)), match)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d.update(version="1"), "version is unknown"),
        (lambda d: d.update(version=True), "version is unknown"),
        (lambda d: d.update(kdf=[1, 2]), "unknown key derivation"),
        (lambda d: d["kdf"].update(salt=5), "salt is missing"),
        (lambda d: d.update(cipher="chacha"), "unknown cipher"),
        (lambda d: d.update(public_key=["x"]), "public key is missing"),
        (lambda d: d.update(public_key="hrd-bot-x25519-v1:\udcff"), "base64"),
        (lambda d: d.update(ciphertext={"a": 1}), "ciphertext is missing"),
        (lambda d: d["cipher"].update(nonce="AAAA"), "bad nonce length"),
    ],
)
def test_wrong_types_are_one_clear_error(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], match: str
) -> None:
    path = tmp_path / "me.key"
    document = _doc(path)
    change(document)
    _refused_quickly(_save(path, json.dumps(document)), match)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("[" * 200_000 + "]" * 200_000, "nested too deeply|too large"),
        ("[" * 20_000 + "]" * 20_000, "nested too deeply|too many values"),
        ('{"a":' * 500 + "1" + "}" * 500, "nested too deeply"),
        ('{"format": "hrd-bot-private-key", "x": ' + "[" * 17 + "]" * 17 + "}", "too deeply"),
        ("9" * 5000, "not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        ("\x00" * 10, "not JSON"),
        ("", "not JSON"),
        (" " * (64 * 1024 + 1), "too large"),
    ],
)
def test_hostile_documents_are_one_clear_error(
    tmp_path: Path, content: str | bytes, match: str
) -> None:
    _refused_quickly(_save(tmp_path / "me.key", content), match)


def test_a_sparse_huge_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = _save(tmp_path / "me.key", b"")
    with path.open("r+b") as handle:
        handle.truncate(50 * 1024**3)
    _refused_quickly(path, "too large")


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/urandom", "/dev/null", "dir", "fifo"])
def test_a_path_that_is_not_a_regular_file_is_refused(tmp_path: Path, target: str) -> None:
    if target == "dir":
        place = tmp_path / "folder"
        place.mkdir()
    elif target == "fifo":
        place = tmp_path / "pipe"
        os.mkfifo(place, 0o600)
    else:
        place = Path(target)
    link = tmp_path / "me.key"
    link.symlink_to(place)
    for path in (place, link):
        _refused_quickly(path, "is not a regular file")


@pytest.mark.parametrize(
    ("path", "match"),
    [("missing.key", "does not exist"), ("a\x00b", "cannot be opened"), ("x" * 5000, "cannot be")],
)
def test_unopenable_paths_are_one_clear_error(tmp_path: Path, path: str, match: str) -> None:
    _refused_quickly(tmp_path / path, match)
