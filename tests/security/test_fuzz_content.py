"""Fuzzing the content loader: whatever bytes a file holds, the result is problems, never an
exception, and never the loader's last-resort catch-all (which would mean one escaped)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.content.loader import load_library
from bot.content.source import SourceError, parse
from tests.conftest import CONTENT

TARGETS = (
    "en/guides/phishing.yaml",
    "en/strings.yaml",
    "en/interview.yaml",
    "en/contacts.yaml",
    "en/legal/CO.yaml",
)
ORIGINALS = {name: (CONTENT / name).read_bytes() for name in TARGETS}
TOKENS = [
    b"&a ",
    b"*a",
    b"!!int ",
    b"!x ",
    b"<<: ",
    b"? ",
    b"- ",
    b": ",
    b"\n",
    b"  ",
    b"\t",
    b"[",
    b"]",
    b"{",
    b"}",
    b",",
    b"'",
    b'"',
    b"|",
    b">",
    b"#",
    b"\x00",
    b"\xff",
    b"\xef\xbb\xbf",
    b"yes",
    b"no",
    b"~",
    b"null",
    b"9" * 30,
    b"0x1F",
    b"1:2:3",
    b".inf",
    b"2024-13-45",
    b"2026-01-31",
    b"---\n",
    b"...\n",
    b"%YAML 1.1\n",
    b"%TAG ! tag:x,2000:\n",
    b"\\u0000",
    b"@menu",
]
YAMLISH = st.lists(
    st.one_of(st.sampled_from(TOKENS), st.binary(max_size=6), st.text(max_size=6).map(str.encode)),
    max_size=40,
).map(b"".join)
INTERNAL = ("could not be loaded", "cannot be read (")


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, bytes]:
    """A real content file with a few insertions, deletions, replacements or moved lines."""
    name = draw(st.sampled_from(TARGETS))
    data = bytearray(ORIGINALS[name])
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        span = draw(st.integers(0, 40))
        kind = draw(st.sampled_from(("insert", "delete", "replace", "line")))
        if kind == "insert":
            data[at:at] = draw(st.sampled_from(TOKENS))
        elif kind == "delete":
            del data[at : at + span]
        elif kind == "replace":
            data[at : at + span] = draw(YAMLISH)
        else:
            lines = bytes(data).split(b"\n")
            line = lines.pop(draw(st.integers(0, len(lines) - 1)))
            lines.insert(draw(st.integers(0, len(lines))), line)
            data = bytearray(b"\n".join(lines))
    return name, bytes(data)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """English only, with the files the fuzzer rewrites (restored after each example)."""
    base = tmp_path_factory.mktemp("fuzz") / "content"
    for name in ("en/guides/phishing.yaml", "en/legal/CO.yaml", *TARGETS):
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(CONTENT / name, base / name)
    return base


def _parsed_or_refused(data: bytes) -> None:
    try:
        doc = parse(Path("fuzz.yaml"), data)
    except SourceError as exc:
        refusal: SourceError | None = exc
    else:
        refusal = None
        assert doc.line_of(("nodes", "start", "options", 0, "next")) >= 1
        assert doc.line_of((0, "x", 1)) >= 1
    if refusal is not None:
        assert refusal.line >= 1 and refusal.message


@given(st.binary(max_size=4000))
def test_random_bytes_parse_or_give_a_line(data: bytes) -> None:
    _parsed_or_refused(data)


@given(YAMLISH)
def test_yamlish_bytes_parse_or_give_a_line(data: bytes) -> None:
    _parsed_or_refused(data)


@given(mutations())
def test_mutated_content_gives_problems_not_exceptions(
    root: Path, mutation: tuple[str, bytes]
) -> None:
    name, data = mutation
    target = root / name
    target.write_bytes(data)
    try:
        library, problems = load_library(root)
    finally:
        target.write_bytes(ORIGINALS[name])
    assert library is not None or problems
    for problem in problems:
        assert problem.line >= 1
        assert not any(sign in problem.message for sign in INTERNAL), str(problem)
