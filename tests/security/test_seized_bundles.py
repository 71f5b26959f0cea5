"""A seized server: copy the data dir and look for what reporters said, with and without the key.

Cases full of canary strings are written through the real store. Then every byte of
the data dir (database, -wal, -shm) is read twice: raw, as a thief without the key
sees it, and decrypted page by page with the SQLCipher key (every page and WAL frame,
free space included), as a thief who also took the key sees it. No canary and no
private key may appear in either view. Probes make each view prove it can see
plaintext (routing metadata shows once decrypted), and the staff key opens it all.

SQLCipher 4 page layout used to decrypt: AES-256-CBC, 4096-byte pages, 80 reserved
bytes at the end of each page (16-byte IV, then the HMAC); page 1 starts after the
16-byte salt. A raw `x'…'` key is the AES key itself.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.cases.store import CasesStore
from bot.crypto.bundle import Bundle, open_bundle
from bot.crypto.cases import CaseKey
from bot.crypto.keys import PrivateKey
from bot.storage import Database, DbKey

PAGE = 4096
RESERVED = 80
WAL_HEADER, FRAME_HEADER = 32, 24
CANARIES = [
    "CANARY-3f9a-they-beat-my-brother",
    "Amina Benali, +216 55 123 456",
    "كناري-سري-الشرطة",
    "CANARY-attachment-0d41",
]
LABEL_PROBE = "Probe-Staff-Label-91c2"
URGENCY_PROBE = "probeurgency"


def _encodings(text: str) -> list[bytes]:
    return [text.encode("utf-8"), text.encode("utf-16-le"), text.encode("utf-16-be")]


def _decrypt_page(key: bytes, page: bytes, first: bool) -> bytes:
    iv = page[PAGE - RESERVED : PAGE - RESERVED + 16]
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return decryptor.update(page[16 if first else 0 : PAGE - RESERVED]) + decryptor.finalize()


def _database_pages(key: bytes, raw: bytes) -> Iterator[bytes]:
    assert len(raw) % PAGE == 0
    for offset in range(0, len(raw), PAGE):
        yield _decrypt_page(key, raw[offset : offset + PAGE], offset == 0)


def _wal_frames(key: bytes, raw: bytes) -> Iterator[bytes]:
    offset = WAL_HEADER
    while offset + FRAME_HEADER + PAGE <= len(raw):
        page_number = int.from_bytes(raw[offset : offset + 4], "big")
        page = raw[offset + FRAME_HEADER : offset + FRAME_HEADER + PAGE]
        yield _decrypt_page(key, page, page_number == 1)
        offset += FRAME_HEADER + PAGE


def _raw_view(data_dir: Path) -> bytes:
    files = sorted(p for p in data_dir.rglob("*") if p.is_file())
    assert {p.name for p in files} >= {"hrd-bot.db"}
    return b"".join(p.read_bytes() for p in files)


def _keyed_view(data_dir: Path, key: bytes) -> bytes:
    """Every decrypted page and WAL frame; the -shm index is not encrypted, so it is raw."""
    database = (data_dir / "hrd-bot.db").read_bytes()
    pages = list(_database_pages(key, database))
    assert pages[0][:2] == PAGE.to_bytes(2, "big"), "page 1 did not decrypt"
    wal = data_dir / "hrd-bot.db-wal"
    if wal.exists():
        pages += _wal_frames(key, wal.read_bytes())
    shm = data_dir / "hrd-bot.db-shm"
    return b"".join(pages) + (shm.read_bytes() if shm.exists() else b"")


def _assert_nothing_leaks(view: bytes, secrets_: list[bytes]) -> None:
    for canary in CANARIES:
        for encoded in _encodings(canary):
            assert encoded not in view, f"canary {canary!r} found on disk"
    for secret in secrets_:
        assert secret not in view, "a private key is on disk"


async def _fill(store: CasesStore, staff: list[PrivateKey]) -> list[str]:
    for i, key in enumerate(staff):
        await store.add_staff(f"{LABEL_PROBE}-{i}", [f"telegram:{1000 + i}"], key.public)
    ids = []
    for n in range(5):
        case = await store.create_case(country="TN", urgency=URGENCY_PROBE)
        for canary in CANARIES[:3]:
            await store.add_item(case.id, "answer.what", f"case {n}: {canary}".encode())
        attachment = secrets.token_bytes(3000) + CANARIES[3].encode() + secrets.token_bytes(900)
        await store.add_item(case.id, "attachment", attachment)
        ids.append(case.id)
    return ids


async def test_a_seized_data_dir_holds_no_content_or_private_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    db_key = secrets.token_bytes(32)
    staff = [PrivateKey.generate(), PrivateKey.generate()]
    recovery = PrivateKey.generate()
    db = await Database.open(data_dir / "hrd-bot.db", DbKey(db_key.hex()))
    store = CasesStore(db)
    await store.set_recovery(recovery.public)
    case_ids = await _fill(store, staff)
    bundles = [await store.export_bundle(case_id) for case_id in case_ids]
    mine = staff[0].public.fingerprint
    case_keys = [
        CaseKey.open(b.case.id, b.case.public_key, s.blob, staff[0])
        for b in bundles
        for s in b.sealed_keys
        if s.fingerprint == mine
    ]
    assert len(case_keys) == len(case_ids)
    private = [k.raw() for k in (*staff, recovery)] + [k._private.raw() for k in case_keys]

    assert (data_dir / "hrd-bot.db-wal").stat().st_size > 0, "the WAL must be part of the test"
    for view in (_raw_view(data_dir), _keyed_view(data_dir, db_key)):
        _assert_nothing_leaks(view, private)
    assert URGENCY_PROBE.encode() in _keyed_view(data_dir, db_key)
    assert LABEL_PROBE.encode() in _keyed_view(data_dir, db_key)
    assert URGENCY_PROBE.encode() not in _raw_view(data_dir)
    assert LABEL_PROBE.encode() not in _raw_view(data_dir)

    await db.close()
    for view in (_raw_view(data_dir), _keyed_view(data_dir, db_key)):
        _assert_nothing_leaks(view, private)
    assert URGENCY_PROBE.encode() in _keyed_view(data_dir, db_key)

    for bundle in bundles:
        text = bundle.to_json()
        assert not any(c in text for c in CANARIES)
        opened = open_bundle(Bundle.from_json(text), staff[1])
        joined = b"".join(item.data for item in opened.items)
        assert all(canary.encode() in joined for canary in CANARIES)
