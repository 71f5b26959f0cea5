"""The rows of `bot.cluster.relay`: the public key of the leader's term, and the
sensitive messages followers sealed to it.

`cluster_leader` holds one row: the term id and public key the leader published when
it was elected (the key sealed by the database key, so a key planted by someone without
it does not open and nothing is sealed to it). `outbox_handover` holds, per queued
outbox row, its reply sealed with HPKE to that key; the leader deletes it as it reads
it. Neither the database nor its key opens a blob: only the private key in the memory
of the leader of that term, which is never written anywhere.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace

from bot.cluster.leader_only import OUTBOX
from bot.cluster.listen import notify
from bot.crypto.hpke import encode_info, seal
from bot.crypto.keys import PublicKey
from bot.delivery import rows
from bot.delivery.outcome import Outcome, Reason
from bot.model import Reply
from bot.storage.database import Connection

__all__ = [
    "LEADER_KEY",
    "decode",
    "encode",
    "info",
    "leader",
    "outcomes",
    "publish",
    "store",
    "take",
    "withdraw",
]

LEADER_KEY = "cluster_leader.public_key"
Outcomes = dict[int, Outcome | None]
"""Per row id: its outcome once settled, None while queued; absent when the row is gone."""


def info(row_id: int, term: str) -> bytes:
    """A blob opens only for its row and its term."""
    return encode_info("outbox-handover", row_id, term)


def encode(reply: Reply) -> bytes:
    """A sensitive reply as `rows.body` writes others, with what it does not keep."""
    body = rows.body(replace(reply, sensitive=False))
    extra = {"urgent": reply.urgent, "language": reply.language, "erase": reply.erase_chat}
    return json.dumps({"body": body} | extra).encode()


def decode(data: bytes) -> Reply:
    found = json.loads(data)
    reply = rows.reply_from(str(found["body"]))
    if reply is None:
        raise ValueError("a handed-over reply without a body")
    language = found["language"]
    return replace(
        reply,
        sensitive=True,
        urgent=bool(found["urgent"]),
        language=None if language is None else str(language),
        erase_chat=bool(found["erase"]),
    )


def publish(term: str, public: PublicKey) -> Callable[[Connection], None]:
    """This worker leads now: seal followers' sensitive messages to `public`."""

    def run(conn: Connection) -> None:
        conn.execute(
            "INSERT INTO cluster_leader (id, term, public_key, elected_at) VALUES (1, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET term = excluded.term,"
            " public_key = excluded.public_key, elected_at = excluded.elected_at",
            (term, conn.seal(LEADER_KEY, public.text), int(time.time())),
        )

    return run


def withdraw(term: str) -> Callable[[Connection], None]:
    """This term ended: nothing more is sealed to its key (unless another began)."""

    def run(conn: Connection) -> None:
        conn.execute("DELETE FROM cluster_leader WHERE term = ?", (term,))

    return run


def leader(conn: Connection) -> tuple[str, PublicKey] | None:
    """The current term and its public key, if a leader published them."""
    row = conn.execute("SELECT term, public_key FROM cluster_leader WHERE id = 1").fetchone()
    if row is None:
        return None
    return str(row[0]), PublicKey.from_text(conn.unseal(LEADER_KEY, str(row[1])))


def store(row_id: int, reply: Reply) -> Callable[[Connection], bool]:
    """Seal `reply` to the leader's key for the queued row `row_id`, and wake the leader;
    False when no leader published a key (try again later)."""

    def run(conn: Connection) -> bool:
        current = leader(conn)
        if current is None:
            return False
        term, public = current
        blob = seal(encode(reply), public.key, info(row_id, term))
        conn.execute(
            "INSERT INTO outbox_handover (outbox_id, term, sealed)"
            " SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM outbox WHERE id = ? AND state = 'queued')"
            " ON CONFLICT (outbox_id) DO NOTHING",
            (row_id, term, blob, row_id),
        )
        notify(OUTBOX)(conn)
        return True

    return run


def take(ids: list[int]) -> Callable[[Connection], dict[int, tuple[str, bytes]]]:
    """The blobs of these rows (term, blob), deleted as they are read."""

    def run(conn: Connection) -> dict[int, tuple[str, bytes]]:
        found: dict[int, tuple[str, bytes]] = {}
        for row_id in ids:
            row = conn.execute(
                "DELETE FROM outbox_handover WHERE outbox_id = ? RETURNING term, sealed",
                (row_id,),
            ).fetchone()
            if row is not None:
                found[row_id] = (str(row[0]), bytes(row[1]))
        return found

    return run


def outcomes(ids: list[int]) -> Callable[[Connection], Outcomes]:
    """What became of these outbox rows (see `Outcomes`)."""

    def run(conn: Connection) -> Outcomes:
        marks = ", ".join("?" * len(ids))
        found = conn.execute(
            f"SELECT id, state, reason, message_ids FROM outbox WHERE id IN ({marks})",  # noqa: S608
            tuple(ids),
        ).fetchall()
        return {int(r[0]): _outcome(conn, str(r[1]), r[2], r[3]) for r in found}

    return run


def _outcome(conn: Connection, state: str, reason: object, ids: object) -> Outcome | None:
    if state == "queued":
        return None
    if state == "delivered":
        return Outcome(tuple(str(i) for i in json.loads(str(ids))) if ids else ())
    told = None if reason is None else conn.unseal(rows.REASON, str(reason))
    return Outcome(reason=Reason(told) if told in set(Reason) else Reason.LOST)
