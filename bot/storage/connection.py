"""The connection every owner module writes through, the same over SQLCipher and PostgreSQL.

Owner modules write one SQL dialect, the subset both engines share: `?` placeholders,
`INSERT … ON CONFLICT … DO …`, `RETURNING`, no JSON functions, no `GLOB`, no `rowid`,
no `INSERT OR …`. Values that PostgreSQL would keep readable go through `seal` and
come back through `unseal` (see `bot.storage.fields`); over SQLCipher both are the
identity. `sqlite` tells the few SQLCipher-only steps (PRAGMAs, WAL) apart.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar, overload

from psycopg.pq import TransactionStatus

from bot.storage.fields import Fields

__all__ = ["Connection", "PgConnection", "to_pyformat"]

V = TypeVar("V", str, bytes)
Params = Sequence[object]


class Connection:
    """The face of either engine's connection for code that runs on the DB thread."""

    sqlite: bool = True

    def __init__(self, raw: Any, fields: Fields) -> None:
        self.raw = raw
        self.fields = fields

    def execute(self, sql: str, params: Params = ()) -> Any:
        return self.raw.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Params]) -> Any:
        return self.raw.executemany(sql, rows)

    def executescript(self, script: str) -> Any:
        return self.raw.executescript(script)

    @property
    def in_transaction(self) -> bool:
        return bool(self.raw.in_transaction)

    def close(self) -> None:
        self.raw.close()

    @overload
    def seal(self, column: str, value: V) -> V: ...
    @overload
    def seal(self, column: str, value: None) -> None: ...
    def seal(self, column: str, value: V | None) -> V | None:
        return self.fields.seal(column, value)

    @overload
    def unseal(self, column: str, value: V) -> V: ...
    @overload
    def unseal(self, column: str, value: None) -> None: ...
    def unseal(self, column: str, value: V | None) -> V | None:
        return self.fields.unseal(column, value)


@functools.lru_cache(maxsize=1024)
def to_pyformat(sql: str) -> str:
    """`?` becomes `%s` and `%` becomes `%%`, outside and inside quoted text alike for
    `%`, but `?` only outside quotes: psycopg's client-side binding reads `%` everywhere."""
    out: list[str] = []
    quote: str | None = None
    for char in sql:
        if char == "%":
            out.append("%%")
        elif quote is not None:
            out.append(char)
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
            out.append(char)
        elif char == "?":
            out.append("%s")
        else:
            out.append(char)
    return "".join(out)


def _adapt(params: Params) -> tuple[object, ...]:
    """SQLite stores booleans as integers and the schema says INTEGER: keep it so."""
    return tuple(int(p) if isinstance(p, bool) else p for p in params)


class PgConnection(Connection):
    """psycopg 3 under the shared dialect: client-side binding, like SQLite's, so an
    untyped `? IS NULL` needs no cast; `rowcount` and `RETURNING` as SQLite gives them."""

    sqlite = False

    def execute(self, sql: str, params: Params = ()) -> Any:
        return self.raw.execute(to_pyformat(sql), _adapt(params))

    def executemany(self, sql: str, rows: Iterable[Params]) -> Any:
        cursor = self.raw.cursor()
        cursor.executemany(to_pyformat(sql), [_adapt(row) for row in rows])
        return cursor

    def executescript(self, script: str) -> Any:
        return self.raw.execute(script)

    @property
    def in_transaction(self) -> bool:
        return bool(self.raw.info.transaction_status != TransactionStatus.IDLE)
