"""Case keys: sealing to recipients, opening with one, binding items to case and field."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag

from bot.crypto.cases import (
    RECOVERY,
    CaseKey,
    Recipient,
    check_field,
    is_case_id,
    new_case_id,
    seal_item,
)
from bot.crypto.errors import BundleError
from bot.crypto.keys import PrivateKey


def test_case_ids_are_random_and_readable() -> None:
    ids = {new_case_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(is_case_id(i) and len(i) == 13 for i in ids)
    assert not any(c in i for i in ids for c in "01OIL")
    assert not is_case_id("HRD-0000-0000")


def test_every_recipient_opens_the_same_case_key() -> None:
    alice, bob, recovery = (PrivateKey.generate() for _ in range(3))
    case_id = new_case_id()
    case = CaseKey.create(case_id)
    sealed = case.seal_to(
        [
            Recipient("staff:1", alice.public),
            Recipient("staff:2", bob.public),
            Recipient(RECOVERY, recovery.public),
        ]
    )
    blob = seal_item(case.public, case_id, "answer.what", 0, "تهديد".encode())
    for own, copy in zip((alice, bob, recovery), sealed, strict=True):
        assert copy.fingerprint == own.public.fingerprint
        opened = CaseKey.open(case_id, case.public, copy.blob, own)
        assert opened.open_item("answer.what", 0, blob).decode() == "تهديد"


def test_a_non_recipient_cannot_open() -> None:
    alice, eve = PrivateKey.generate(), PrivateKey.generate()
    case_id = new_case_id()
    case = CaseKey.create(case_id)
    (copy,) = case.seal_to([Recipient("staff:1", alice.public)])
    with pytest.raises(BundleError, match="does not open"):
        CaseKey.open(case_id, case.public, copy.blob, eve)


def test_a_sealed_case_key_is_bound_to_its_case() -> None:
    alice = PrivateKey.generate()
    first, second = CaseKey.create(new_case_id()), CaseKey.create(new_case_id())
    (copy,) = first.seal_to([Recipient("staff:1", alice.public)])
    with pytest.raises(BundleError):
        CaseKey.open(second.case_id, first.public, copy.blob, alice)
    with pytest.raises(BundleError):
        CaseKey.open(first.case_id, second.public, copy.blob, alice)


@pytest.mark.parametrize(
    ("case_id", "field", "seq"),
    [("other", "answer.what", 0), ("same", "answer.where", 0), ("same", "answer.what", 1)],
)
def test_an_item_moved_elsewhere_does_not_open(case_id: str, field: str, seq: int) -> None:
    case = CaseKey.create(new_case_id())
    blob = seal_item(case.public, case.case_id, "answer.what", 0, b"moved")
    if case_id == "other":
        other = CaseKey.create(new_case_id())
        other_with_my_key = CaseKey(other.case_id, case._private)
        with pytest.raises(InvalidTag):
            other_with_my_key.open_item(field, seq, blob)
    else:
        with pytest.raises(InvalidTag):
            case.open_item(field, seq, blob)


def test_reseal_from_a_staff_machine_reaches_a_new_member() -> None:
    alice, carol = PrivateKey.generate(), PrivateKey.generate()
    case = CaseKey.create(new_case_id())
    (copy,) = case.seal_to([Recipient("staff:1", alice.public)])
    on_alice_machine = CaseKey.open(case.case_id, case.public, copy.blob, alice)
    (for_carol,) = on_alice_machine.seal_to([Recipient("staff:3", carol.public)])
    assert CaseKey.open(case.case_id, case.public, for_carol.blob, carol).public.same_as(
        case.public
    )


def test_reprs_hold_no_secret() -> None:
    alice = PrivateKey.generate()
    case = CaseKey.create(new_case_id())
    (copy,) = case.seal_to([Recipient("staff:1", alice.public)])
    raw = case._private.raw()
    for shown in (repr(case), repr(copy), str(case)):
        assert raw.hex() not in shown
        assert str(raw) not in shown
        assert str(copy.blob) not in shown


@pytest.mark.parametrize("bad", ["", "Answer", "1x", "a b", "x" * 65, "ans/wer"])
def test_field_names_are_plain_labels(bad: str) -> None:
    with pytest.raises(ValueError, match="field name"):
        check_field(bad)
