"""Mutations of a valid JSON file, for fuzzing the key-file and bundle readers.

Three kinds, as a damaged disk, a careless edit and an attacker would make them:
byte-level damage (flips, cuts, insertions, repeats), JSON-level edits (a value
replaced by any JSON value or a hostile one, a key removed or added), and bytes
that were never a file of ours.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from([0, -1, 1 << 63, 1 << 64, 10**30, "", "AAAA", "=", "\x00", "\ud800", "HRD-"]),
)
json_values = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
HOSTILE_TEXT = st.sampled_from(
    [
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 3000 + "1" + "}" * 3000,
        "9" * 5000,
        "1e999999",
        "NaN",
        "[" + "{}," * 50_000 + "{}]",
        "\ufeff{}",
        "{}" * 1000,
        '"' + "\\ud800" * 10 + '"',
    ]
)


def _paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a document: object keys and list positions, the root first."""
    found = [here]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*here, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*here, index))
    return found


def _set(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return document


def _delete(document: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        return document
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    del parent[path[-1]]
    return document


@st.composite
def json_edits(draw: st.DrawFn, document: Any) -> bytes:
    """The document with one to four of its values replaced, removed or added to."""
    edited = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(_paths(edited)))
        how = draw(st.sampled_from(["replace", "replace", "delete", "add", "hostile"]))
        if how == "replace":
            edited = _set(edited, path, draw(json_values))
        elif how == "delete":
            edited = _delete(edited, path)
        elif how == "add" and isinstance(edited_at := _at(edited, path), dict):
            edited_at[draw(st.text(max_size=10))] = draw(json_values)
        elif how == "hostile":
            marker = "@@HOSTILE@@"
            text = json.dumps(_set(edited, path, marker))
            return text.replace(json.dumps(marker), draw(HOSTILE_TEXT), 1).encode()
    return json.dumps(edited, indent=draw(st.sampled_from([None, 1]))).encode("utf-8", "replace")


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


@st.composite
def byte_damage(draw: st.DrawFn, original: bytes) -> bytes:
    """Flipped, cut, inserted, repeated or overwritten bytes."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        how = draw(st.sampled_from(["flip", "cut", "insert", "repeat", "truncate", "write"]))
        if how == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif how == "cut":
            del data[at : at + draw(st.integers(1, 16))]
        elif how == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif how == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 64))] * draw(st.integers(1, 50))
        elif how == "truncate":
            del data[at:]
        else:
            data[at : at + 1] = draw(st.sampled_from([b"{", b"[", b'"', b"\\", b"\x00", b"\xff"]))
    return bytes(data)


def variants(original: bytes) -> st.SearchStrategy[bytes]:
    """What the fuzzers feed a reader instead of `original`."""
    document = json.loads(original)
    return st.one_of(
        json_edits(document),
        json_edits(document),
        byte_damage(original),
        st.binary(max_size=512),
        HOSTILE_TEXT.map(str.encode),
    )
