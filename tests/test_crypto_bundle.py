"""Bundles and reseal files, built without a database: format, opening, tampering."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from bot.crypto.bundle import (
    MAX_BUNDLE_BYTES,
    MAX_RESEAL_BYTES,
    Bundle,
    Reseal,
    open_bundle,
    reseal_bundle,
)
from bot.crypto.cases import RECOVERY, CaseKey, Recipient, new_case_id, seal_item
from bot.crypto.errors import BundleError
from bot.crypto.keys import PrivateKey
from bot.crypto.records import AuditEntry, CaseMeta, SealedItem
from tests.logged import logged_bundle

CANARY = "CANARY-bundle-7f3a"


def _bundle(members: list[PrivateKey], now: list[PrivateKey] | None = None) -> Bundle:
    case = CaseKey.create(new_case_id())
    recipients = [Recipient(f"staff:{i + 1}", k.public) for i, k in enumerate(members)]
    current = [Recipient(f"staff:{i + 1}", k.public) for i, k in enumerate(now or members)]
    items = [
        SealedItem(
            f, s, 100 + s, seal_item(case.public, case.case_id, f, s, f"{CANARY} {f}".encode())
        )
        for f, s in (("answer.what", 0), ("answer.what", 1), ("note", 0))
    ]
    meta = CaseMeta(case.case_id, case.public, 100, 105, "open", "KE", "high")
    audit = [AuditEntry(100, "system", "case.create", case.case_id, None)]
    return logged_bundle(200, case, meta, recipients, current, items, audit)


def test_json_round_trip_holds_no_plaintext() -> None:
    alice = PrivateKey.generate()
    bundle = _bundle([alice])
    text = bundle.to_json()
    assert CANARY not in text
    again = Bundle.from_json(text)
    assert again.to_json() == text
    opened = open_bundle(again, alice)
    assert opened.opened_as == "staff:1"
    assert [i.data.decode() for i in opened.items] == [
        f"{CANARY} answer.what",
        f"{CANARY} answer.what",
        f"{CANARY} note",
    ]
    assert CANARY not in repr(opened)


def test_not_a_recipient() -> None:
    with pytest.raises(BundleError, match="not sealed to your key"):
        open_bundle(_bundle([PrivateKey.generate()]), PrivateKey.generate())


def test_swapped_items_do_not_open() -> None:
    alice = PrivateKey.generate()
    document = json.loads(_bundle([alice]).to_json())
    items = document["items"]
    items[0]["sealed"], items[2]["sealed"] = items[2]["sealed"], items[0]["sealed"]
    with pytest.raises(BundleError, match="altered or moved"):
        open_bundle(Bundle.from_json(json.dumps(document)), alice)


def test_renumbered_item_does_not_open() -> None:
    alice = PrivateKey.generate()
    document = json.loads(_bundle([alice]).to_json())
    document["items"][1]["seq"] = 5
    with pytest.raises(BundleError, match=r"answer\.what#5"):
        open_bundle(Bundle.from_json(json.dumps(document)), alice)


def test_an_item_from_another_case_does_not_open() -> None:
    alice = PrivateKey.generate()
    first = json.loads(_bundle([alice]).to_json())
    second = json.loads(_bundle([alice]).to_json())
    first["items"][0] = second["items"][0]
    with pytest.raises(BundleError, match="does not open"):
        open_bundle(Bundle.from_json(json.dumps(first)), alice)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(format="other"),
        lambda d: d.update(version=2),
        lambda d: d["case"].update(id="nope"),
        lambda d: d["case"].update(public_key="garbage"),
        lambda d: d["items"][0].update(sealed="***"),
        lambda d: d["items"][0].update(seq=-1),
        lambda d: d.update(items={}),
    ],
)
def test_malformed_bundles_are_refused(change: Callable[[dict[str, Any]], None]) -> None:
    document = json.loads(_bundle([PrivateKey.generate()]).to_json())
    change(document)
    with pytest.raises(BundleError):
        Bundle.from_json(json.dumps(document))


def test_not_json() -> None:
    with pytest.raises(BundleError, match="not JSON"):
        Bundle.from_json("{")


def test_reseal_to_the_current_recipients() -> None:
    alice, bob, carol, recovery = (PrivateKey.generate() for _ in range(4))
    bundle = _bundle([alice, bob], now=[alice, carol])
    reseal = Reseal.from_json(reseal_bundle(bundle, alice).to_json())
    assert reseal.case_id == bundle.case.id
    assert [s.recipient for s in reseal.sealed_keys] == ["staff:1", "staff:2"]
    resealed = replace(bundle, sealed_keys=reseal.sealed_keys)
    assert open_bundle(resealed, carol).items[0].data.startswith(CANARY.encode())
    with pytest.raises(BundleError, match="not sealed to your key"):
        open_bundle(resealed, bob)
    explicit = reseal_bundle(bundle, bob, [Recipient(RECOVERY, recovery.public)])
    assert [s.recipient for s in explicit.sealed_keys] == [RECOVERY]


def test_reseal_refuses_an_empty_or_repeated_list() -> None:
    alice = PrivateKey.generate()
    bundle = _bundle([alice])
    with pytest.raises(BundleError, match="no recipients"):
        reseal_bundle(bundle, alice, [])
    twice = [Recipient("staff:1", alice.public)] * 2
    with pytest.raises(BundleError, match="twice"):
        reseal_bundle(bundle, alice, twice)


def _refused_quickly(read: Callable[[], object], match: str) -> None:
    """In a thread: a reader that hangs (a FIFO) or runs for long fails the test."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            read()
            outcome.append(None)
        except BaseException as exc:  # the test reports whatever came out
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert outcome, "still reading after 10 s"
    assert isinstance(outcome[0], BundleError), repr(outcome[0])
    assert re.search(match, str(outcome[0])), str(outcome[0])
    assert "\n" not in str(outcome[0])


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/urandom", "dir", "fifo"])
def test_a_bundle_path_that_is_not_a_regular_file_is_refused(tmp_path: Path, target: str) -> None:
    if target == "dir":
        place = tmp_path / "folder"
        place.mkdir()
    elif target == "fifo":
        place = tmp_path / "pipe"
        os.mkfifo(place)
    else:
        place = Path(target)
    (tmp_path / "case.json").symlink_to(place)
    for path in (place, tmp_path / "case.json"):
        _refused_quickly(partial(Bundle.read, path), "is not a regular file")
        _refused_quickly(partial(Reseal.read, path), "is not a regular file")


def test_huge_bundle_files_are_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "case.json"
    with path.open("wb") as handle:
        handle.truncate(MAX_BUNDLE_BYTES + 1)
    _refused_quickly(lambda: Bundle.read(path), "too large")
    reseal = tmp_path / "reseal.json"
    reseal.write_bytes(b" " * (MAX_RESEAL_BYTES + 1))
    _refused_quickly(lambda: Reseal.read(reseal), "too large")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[" * 200_000 + "]" * 200_000, "nested too deeply"),
        ('{"a":' * 5000 + "1" + "}" * 5000, "nested too deeply"),
        ("[" + "{}," * 2_000_000 + "{}]", "too many values"),
        ("9" * 5000, "not JSON"),
        ("\udcff", "not UTF-8|not JSON"),
    ],
)
def test_hostile_documents_are_refused(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "case.json"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    _refused_quickly(lambda: Bundle.read(path), match)
    _refused_quickly(lambda: Bundle.from_json(text), match)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d["case"].update(state="open\x1b]0;pwned\x07"), "case.state: control"),
        (lambda d: d["case"].update(country="\ud800"), "case.country: control"),
        (lambda d: d["items"][0].update(field="note\r\n"), r"items\[0\].field: control"),
        (lambda d: d["case"].update(created_at=10**18), "created_at: expected a whole number"),
        (lambda d: d.update(exported_at=253_402_300_800), "exported_at: expected a whole"),
        (lambda d: d["items"][0].update(seq=1 << 64), "seq: expected a whole number"),
        (lambda d: d["items"][0].update(created_at=1.5), "created_at: expected a whole"),
        (lambda d: d.update(audit=[{"at": 1, "actor": "x", "action": "y", "detail": 5}]), "detail"),
    ],
)
def test_fields_that_cannot_be_shown_or_used_are_refused(
    change: Callable[[dict[str, Any]], None], match: str
) -> None:
    document = json.loads(_bundle([PrivateKey.generate()]).to_json())
    change(document)
    _refused_quickly(lambda: Bundle.from_json(json.dumps(document)), match)


def test_an_audit_detail_with_an_overlong_action_does_not_open_cleanly() -> None:
    alice = PrivateKey.generate()
    document = json.loads(_bundle([alice]).to_json())
    document["audit"] = [{"at": 1, "actor": "x", "action": "a" * 70_000, "detail": "AAAA"}]
    bundle = Bundle.from_json(json.dumps(document))
    _refused_quickly(lambda: open_bundle(bundle, alice), "does not open")
