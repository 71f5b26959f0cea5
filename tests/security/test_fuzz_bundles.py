"""Bundle and reseal readers under mutated valid files and random bytes.

The bundle goes through `hrd-bot cases open` as the staff machine runs it (read,
open with the member's key, print), with only the passphrase prompt replaced. The
only exceptions allowed are the crypto error tree's (`bot.crypto.errors`), which the
CLI prints as one line; whatever is printed holds no control character that could
drive the staff member's terminal. `HYPOTHESIS_PROFILE=long` runs 10,000 inputs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import unicodedata
from pathlib import Path
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.cli.cases import open_command
from bot.config import Settings
from bot.crypto.bundle import Bundle, Reseal, reseal_bundle
from bot.crypto.cases import CaseKey, Recipient, new_case_id, seal_audit_detail, seal_item
from bot.crypto.errors import BundleError, CryptoError
from bot.crypto.keys import PrivateKey
from bot.crypto.records import AuditEntry, CaseMeta, SealedItem
from tests.logged import logged_bundle
from tests.security.fuzz_keyfiles_and_bundles import variants

MEMBER = PrivateKey.generate()


def _valid_bundle() -> Bundle:
    case = CaseKey.create(new_case_id())
    recipients = [
        Recipient("staff:1", MEMBER.public),
        Recipient("recovery", PrivateKey.generate().public),
    ]
    items = [
        SealedItem(field, seq, 100 + seq, seal_item(case.public, case.case_id, field, seq, data))
        for field, seq, data in (
            ("answer.what", 0, b"they followed me \x1b]0;pwned\x07"),
            ("attachment.0", 0, b"image/jpeg\nx.jpg\n\xff\xd8"),
            ("note", 1, "ملاحظة".encode()),
        )
    ]
    detail = seal_audit_detail(case.public, case.case_id, "case.note", 150, b"sealed detail")
    audit = [
        AuditEntry(140, "staff:1", "case.ack", case.case_id, None),
        AuditEntry(150, "staff:1", "case.note", case.case_id, detail),
    ]
    meta = CaseMeta(case.case_id, case.public, 100, 150, "open", "KE", "high")
    return logged_bundle(200, case, meta, recipients, recipients, items, audit)


BUNDLE = _valid_bundle().to_json().encode()
RESEAL = reseal_bundle(Bundle.from_json(BUNDLE.decode()), MEMBER).to_json().encode()


@pytest.fixture
def member_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """`cases open` asks for the key file's passphrase; here the key is at hand."""
    monkeypatch.setattr("bot.cli.cases.private_key", lambda settings, path: MEMBER)


def _cases_open(path: Path) -> str:
    """Run `cases open`; what it printed, or the one-line error the CLI would print."""
    printed = io.StringIO()
    args = argparse.Namespace(bundle=path, key=Path("member.key"))
    try:
        with contextlib.redirect_stdout(printed):
            status = open_command(cast(Settings, None), args)
    except CryptoError as refused:
        refusal = str(refused)
    else:
        assert status == 0
        return printed.getvalue()
    assert refusal and "\n" not in refusal, refusal
    return f"error: {refusal}"


def _harmless(shown: str) -> bool:
    return not any(unicodedata.category(c) in ("Cc", "Cs") and c not in "\n\t" for c in shown)


def test_the_valid_bundle_opens_and_prints_safely(member_key: None, tmp_path: Path) -> None:
    path = tmp_path / "case.json"
    path.write_bytes(BUNDLE)
    shown = _cases_open(path)
    assert "they followed me \\x1b]0;pwned\\x07" in shown
    assert _harmless(shown)


@given(data=st.data())
def test_mutated_bundles_open_or_give_one_crypto_error(
    member_key: None, tmp_path: Path, data: st.DataObject
) -> None:
    path = tmp_path / "case.json"
    path.write_bytes(data.draw(variants(BUNDLE)))
    shown = _cases_open(path)
    assert _harmless(shown), shown


@given(data=st.data())
def test_mutated_reseal_files_give_only_bundle_errors(tmp_path: Path, data: st.DataObject) -> None:
    path = tmp_path / "reseal.json"
    path.write_bytes(data.draw(variants(RESEAL)))
    with contextlib.suppress(BundleError):
        Reseal.read(path)
