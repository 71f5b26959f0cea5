"""Content checks report `path:line: message`; the shipped content passes them."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bot.content import cache, loader
from bot.content.loader import load_library
from bot.content.problems import Problem
from bot.content.schema import Guide
from bot.content.source import Budget, Document, SourceError, read_yaml
from tests.conftest import CONTENT, ROOT

GUIDE = """\
id: tiny
title: Tiny
summary: A small guide.
start: a
nodes:
  a:
    text: Start here.
    steps: [Do the first thing.]
    options:
      - label: Next
        next: b
  b:
    text: Done.
    steps: [Rest.]
topic: accounts
"""


def _spanish(english: str) -> str:
    """A translation: its own words, and no topic (translations follow English's)."""
    return english.replace("Start here.", "Empieza.").replace("topic: accounts\n", "")


@pytest.fixture
def content(tmp_path: Path) -> Path:
    root = tmp_path / "content"
    (root / "en" / "guides").mkdir(parents=True)
    for name in ("strings.yaml", "interview.yaml"):
        shutil.copy(CONTENT / "en" / name, root / "en" / name)
    (root / "en" / "guides" / "tiny.yaml").write_text(GUIDE)
    return root


def _messages(root: Path) -> list[str]:
    return [str(p) for p in load_library(root)[1]]


def test_shipped_content_has_no_errors_and_no_missing_translations() -> None:
    library, problems = load_library(CONTENT)
    assert library is not None, "\n".join(map(str, problems))
    assert not problems, "\n".join(map(str, problems))
    assert set(library.packs) >= {"en", "es", "fr", "ar"}
    assert len(library.packs["en"].guides) >= 6
    assert len(library.countries()) >= 5


def test_minimal_content_loads(content: Path) -> None:
    assert _messages(content) == []


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("        next: b", "        next: nowhere", 11, "unknown node 'nowhere'"),
        ("  b:\n", "  c:\n", 12, "node 'c' cannot be reached"),
        ("    steps: [Do the first thing.]\n", "", 6, "start node must give at least one"),
        (
            "    steps: [Rest.]\n",
            "    steps: [Rest.]\n    options:\n      - {label: x, next: a}\n",
            6,
            "loop",
        ),
        ("title: Tiny", "title: Tiny\ncolour: red", 3, "Extra inputs are not permitted"),
        ("start: a", "start: [a", 5, "YAML syntax"),
        ("id: tiny", "id: other", 1, "must match the file name"),
        ("        next: b", '        next: "@contacts:lgal"', 11, "unknown need 'lgal'"),
        ("        next: b", '        next: "@contacts"', 11, "name the need"),
        ("        next: b", '        next: "@contacts:Legal aid"', 11, "should match pattern"),
    ],
)
def test_problems_name_file_and_line(
    content: Path, old: str, new: str, line: int, message: str
) -> None:
    path = content / "en" / "guides" / "tiny.yaml"
    path.write_text(GUIDE.replace(old, new))
    found = _messages(content)
    assert any(f"{path}:{line}:" in m and message in m for m in found), found
    assert load_library(content)[0] is None


@pytest.mark.parametrize(
    ("brace", "said"), [("{ Hello", "{{"), ("Hello }", "{{"), ("{case", "{{"), ("{n!z}", "{name}")]
)
def test_a_stray_brace_in_a_string_is_a_problem_not_a_crash(
    content: Path, brace: str, said: str
) -> None:
    """Found by the content fuzzer: a string that is not a valid template crashed the
    check comparing placeholders; it is now reported where it stands."""
    path = content / "en" / "strings.yaml"
    text = path.read_text()
    path.write_text(text.replace('  nav.menu: "Main menu"', f'  nav.menu: "{brace}"', 1))
    found = _messages(content)
    assert any(f"{path}:" in m and "nav.menu" in m and said in m for m in found), found
    assert load_library(content)[0] is None


def test_translation_may_lag_but_may_not_invent(content: Path) -> None:
    (content / "es").mkdir()
    (content / "es" / "strings.yaml").write_text(
        "language: {name: Español}\nstrings:\n  nav.back: Atrás\n  nav.bogus: x\n"
        "  menu.resume: 'Seguir: {titulo}'\n"
    )
    found = _messages(content)
    assert any("es/strings.yaml:4: unknown string 'nav.bogus'" in m for m in found)
    assert any("es/strings.yaml:5: menu.resume: placeholders must be {title}" in m for m in found)
    assert any("warning: missing string 'nav.menu'" in m for m in found)
    assert any("warning: missing guide 'tiny'" in m for m in found)


AR_FORMS = {
    "zero": "لم تُحذف أي رسالة.",
    "one": "حُذفت رسالة واحدة.",
    "two": "حُذفت رسالتان.",
    "few": "حُذفت {count} رسائل.",
    "many": "حُذفت {count} رسالة.",
    "other": "حُذفت {count} رسالة.",
}


def _arabic(content: Path, forms: dict[str, str], key: str = "telegram.forget.gone") -> None:
    lines = [f"    {category}: '{text}'" for category, text in forms.items()]
    (content / "ar").mkdir(exist_ok=True)
    (content / "ar" / "strings.yaml").write_text(
        "language: {name: العربية, direction: rtl}\nstrings:\n"
        f"  {key}:\n" + "\n".join(lines) + "\n"
    )


def test_plural_strings_need_every_category_of_their_language(content: Path) -> None:
    """A missing form is a warning (`other` is shown instead; `--strict` refuses it)."""
    _arabic(content, {c: t for c, t in AR_FORMS.items() if c not in ("two", "many")})
    found = _messages(content)
    assert any(
        "ar/strings.yaml:3: warning: telegram.forget.gone: plural forms missing: two, many "
        "(this language needs zero, one, two, few, many, other)" in m
        for m in found
    ), found
    _arabic(content, AR_FORMS)
    assert not [m for m in _messages(content) if "telegram.forget.gone" in m]


def test_plural_forms_are_chosen_by_cldr_rules(content: Path) -> None:
    _arabic(content, AR_FORMS)
    library, _ = load_library(content)
    assert library is not None
    t = library.translator("ar")
    shown = {n: t("telegram.forget.gone", count=n) for n in (0, 1, 2, 3, 11, 100)}
    assert shown[0] == AR_FORMS["zero"] and shown[1] == AR_FORMS["one"]
    assert shown[2] == AR_FORMS["two"]
    assert shown[3] == "حُذفت \u20683\u2069 رسائل."
    assert shown[11] == "حُذفت \u206811\u2069 رسالة." and "100" in shown[100]
    english = library.translator("en")
    assert "1 message of" in english("telegram.forget.gone", count=1)
    assert "2 messages of" in english("telegram.forget.gone", count=2)


def test_plural_forms_keep_placeholders_and_go_only_where_english_counts(content: Path) -> None:
    _arabic(content, {**AR_FORMS, "few": "حُذفت {total} رسائل."})
    assert any("few: placeholders must be {count}" in m for m in _messages(content))
    _arabic(content, AR_FORMS, key="nav.back")
    assert any("nav.back: takes no count in English" in m for m in _messages(content))
    (content / "ar" / "strings.yaml").write_text(
        "language: {name: العربية, direction: rtl}\nstrings:\n"
        "  telegram.forget.gone: 'حُذفت {count} رسالة.'\n"
    )
    assert any(
        "telegram.forget.gone: takes a count: give the forms zero, one, two, few, many, other" in m
        for m in _messages(content)
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("رقم \u2066+353 1 210 0489 للطوارئ", "not closed by a PDI"),
        ("رقم +353\u2069 للطوارئ", "closes no isolate"),
        ("رقم \u202a+353 1 210 0489\u202c", "use an isolate"),
        ("رقم \u2066+353\n1\u2069", "not closed by a PDI"),
    ],
)
def test_direction_controls_in_content_must_be_balanced_isolates(
    content: Path, text: str, problem: str
) -> None:
    (content / "ar").mkdir()
    (content / "ar" / "strings.yaml").write_text(
        f"language: {{name: العربية, direction: rtl}}\nstrings:\n  nav.back: {json.dumps(text)}\n"
    )
    found = _messages(content)
    assert any("ar/strings.yaml:3: nav.back: an" in m or problem in m for m in found), found
    assert any(problem in m for m in found), found
    guide = GUIDE.replace("text: Done.", f"text: {json.dumps(text)}")
    (content / "en" / "guides" / "tiny.yaml").write_text(guide)
    assert any("tiny.yaml" in m and problem in m for m in _messages(content))


def test_balanced_isolates_in_content_pass(content: Path) -> None:
    (content / "ar").mkdir()
    (content / "ar" / "strings.yaml").write_text(
        "language: {name: العربية, direction: rtl}\nstrings:\n"
        "  nav.back: 'رقم \u2066+353 1 210 0489\u2069 للطوارئ'\n"
    )
    assert not [m for m in _messages(content) if "nav.back" in m]


def test_a_translation_older_than_its_english_source_is_a_warning(content: Path) -> None:
    (content / "es" / "guides").mkdir(parents=True)
    (content / "es" / "strings.yaml").write_text("language: {name: Español}\nstrings: {}\n")
    (content / "es" / "guides" / "tiny.yaml").write_text(_spanish(GUIDE))
    library, _ = load_library(content)
    assert library is not None
    from bot.content.freshness import files, source_hash

    current = source_hash(files(library.packs["en"])["guides/tiny.yaml"][0])
    stamped = f"source_hash: {current}\n" + _spanish(GUIDE)
    (content / "es" / "guides" / "tiny.yaml").write_text(stamped)
    assert not [m for m in _messages(content) if "older than" in m]
    english = content / "en" / "guides" / "tiny.yaml"
    english.write_text("# a comment changes nothing\n" + GUIDE)
    assert not [m for m in _messages(content) if "older than" in m]
    english.write_text(GUIDE.replace("Start here.", "Start here, now."))
    found = _messages(content)
    assert any(
        m.endswith(
            "es/guides/tiny.yaml:1: warning: older than en/guides/tiny.yaml, which "
            "changed since this was translated (hrd-bot content report shows what "
            "to update)"
        )
        for m in found
    ), found
    library, _ = load_library(content)
    assert library is not None, "a stale translation is shown, with a warning"


def test_missing_translation_falls_back_to_english_and_says_so(content: Path) -> None:
    (content / "es").mkdir()
    (content / "es" / "strings.yaml").write_text(
        "language: {name: Español}\nstrings:\n  nav.back: Atrás\n"
    )
    library, _ = load_library(content)
    assert library is not None
    t = library.translator("es")
    assert t("nav.back") == "Atrás" and not t.fell_back
    assert t("nav.menu") == "Main menu" and t.fell_back
    note = library.translator("es")
    assert note.guide("tiny") is not None and note.fell_back


def test_cli_validate_reports_and_exits_nonzero(content: Path) -> None:
    path = content / "en" / "guides" / "tiny.yaml"
    path.write_text(GUIDE.replace("next: b", "next: nowhere"))
    run = subprocess.run(
        [sys.executable, "-m", "bot.cli", "content", "validate", str(content)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1
    assert f"{path}:11: unknown node 'nowhere'" in run.stderr
    path.write_text(GUIDE)
    ok = subprocess.run(
        [sys.executable, "-m", "bot.cli", "content", "validate", str(content)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr


def test_binary_file_is_reported(content: Path) -> None:
    (content / "en" / "guides" / "tiny.yaml").write_bytes(b"\xff\xfe\x00garbage")
    assert any("not UTF-8" in m for m in _messages(content))


def test_committed_json_schemas_match_the_models() -> None:
    from bot.content.jsonschema import render_schemas

    for name, text in render_schemas().items():
        committed = ROOT / "content" / "_schema" / name
        assert committed.read_text(encoding="utf-8") == text, (
            f"run: hrd-bot content schema ({name})"
        )


def test_a_translated_option_must_lead_to_the_same_need(content: Path) -> None:
    path = content / "en" / "guides" / "tiny.yaml"
    path.write_text(
        GUIDE.replace(
            "    steps: [Rest.]\n",
            '    steps: [Rest.]\n    options:\n      - {label: Help, next: "@contacts:physical"}\n',
        )
    )
    assert _messages(content) == []
    (content / "es" / "guides").mkdir(parents=True)
    shutil.copy(content / "en" / "strings.yaml", content / "es" / "strings.yaml")
    shutil.copy(content / "en" / "interview.yaml", content / "es" / "interview.yaml")
    spanish = content / "es" / "guides" / "tiny.yaml"
    spanish.write_text(path.read_text().replace("@contacts:physical", "@contacts:digital"))
    found = _messages(content)
    assert any(
        f"{spanish}:16: leads to '@contacts:digital' where English leads to '@contacts:physical'"
        in m
        for m in found
    ), found
    assert load_library(content)[0] is None


CONTACT = """\
contacts:
  - id: near
    name: Near
    description: A local group.
    countries: [PK]
    languages: [en]
    needs: [legal]
    scope: local
    channels: [{kind: web, value: "https://example.org/"}]
    hours: Office hours.
    response_time: A day.
    source: https://example.org/
"""


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("scope: local", "scope: international", "scope international goes with"),
        ("countries: [PK]", 'countries: ["*"]', "scope international goes with"),
        ("scope: local", "scope: national", "Input should be 'local', 'regional'"),
        ("needs: [legal]", "needs: [lgal]", "Input should be 'digital'"),
        ("    scope: local\n", "", "scope: Field required"),
        ("{kind: web, value:", "{kind: phone, value:", "is not what channel kind 'phone' holds"),
        (
            'value: "https://example.org/"',
            'value: "help@example"',
            "is not what channel kind 'web'",
        ),
        (
            '{kind: web, value: "https://example.org/"}',
            '{kind: email, value: "+44 20 7946 0000"}',
            "is not what channel kind 'email'",
        ),
        (
            '{kind: web, value: "https://example.org/"}',
            '{kind: sms, value: "help@example.org"}',
            "is not what channel kind 'sms'",
        ),
    ],
)
def test_contact_scope_and_needs_are_checked(
    content: Path, old: str, new: str, message: str
) -> None:
    path = content / "en" / "contacts.yaml"
    path.write_text(CONTACT)
    assert _messages(content) == []
    path.write_text(CONTACT.replace(old, new))
    found = _messages(content)
    assert any(f"{path}:" in m and message in m for m in found), found
    assert load_library(content)[0] is None


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("  - id: when\n", "  - id: whenever\n", "missing question 'when'"),
        ("      high: Within", "      soon: Within", "question 'urgency' must have kind choice"),
        ("    kind: country\n", "", "question 'where' must have kind country"),
    ],
)
def test_interview_keeps_the_questions_routing_needs(
    content: Path, old: str, new: str, message: str
) -> None:
    path = content / "en" / "interview.yaml"
    path.write_text(path.read_text().replace(old, new))
    assert any(message in m for m in _messages(content)), _messages(content)


def test_translated_interview_must_match_english(content: Path) -> None:
    (content / "es").mkdir()
    shutil.copy(content / "en" / "strings.yaml", content / "es" / "strings.yaml")
    english = (content / "en" / "interview.yaml").read_text()
    (content / "es" / "interview.yaml").write_text(english.replace('"no": No', '"nope": No'))
    assert any(
        "es/interview.yaml:1: questions, kinds and choices must match" in m
        for m in _messages(content)
    )


def test_an_unforeseen_failure_in_one_file_is_that_files_problem(
    content: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = content / "en" / "guides" / "tiny.yaml"
    real = read_yaml

    def read(path: Path, budget: Budget | None = None) -> Document:
        if path == broken:
            raise RecursionError("somewhere deep")
        return real(path, budget)

    monkeypatch.setattr(loader, "read_yaml", read)
    library, problems = load_library(content)
    assert library is None
    assert [str(p) for p in problems] == [f"{broken}:1: cannot be read (RecursionError)"]


def test_load_library_never_raises(content: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*_: object) -> list[Problem]:
        raise MemoryError

    monkeypatch.setattr(loader, "check_translations", explode)
    assert load_library(content) == (
        None,
        [Problem(content, 1, "content could not be loaded (MemoryError)")],
    )


def test_total_size_is_bounded(content: Path) -> None:
    path = content / "en" / "guides" / "tiny.yaml"
    with pytest.raises(SourceError, match="content is over 64 MB in total: not read"):
        read_yaml(path, Budget(bytes_left=10))
    with pytest.raises(SourceError, match="more than 20,000 content files"):
        read_yaml(path, Budget(files_left=0))


def test_linked_language_folder_is_refused(content: Path) -> None:
    (content / "es").symlink_to(content / "en")
    assert f"{content / 'es'}:1: a symbolic link: language folders must be real" in _messages(
        content
    )


@pytest.mark.parametrize(
    ("yaml_text", "value"),
    [
        ("order: 12", 12),
        ("order: 0x1F", 31),
        ("order: 999999999999999999", 999999999999999999),
        ("sample: no", False),
        ("sample: ~", None),
        ("day: 2026-01-31", dt.date(2026, 1, 31)),
        ("text: 'yes'", "yes"),
        ("text: Not a boolean", "Not a boolean"),
        ("ratio: 1.5", 1.5),
    ],
)
def test_scalars_read_as_yaml_1_1_does(tmp_path: Path, yaml_text: str, value: object) -> None:
    path = tmp_path / "one.yaml"
    path.write_text(yaml_text + "\n")
    assert list(read_yaml(path).data.values()) == [value]
    assert read_yaml(path).data == yaml.safe_load(yaml_text)


def test_lines_of_nested_values(tmp_path: Path) -> None:
    path = tmp_path / "guide.yaml"
    path.write_text(GUIDE)
    doc = read_yaml(path)
    assert doc.line_of(("nodes", "a", "options", 0, "next")) == 11
    assert doc.line_of(("nodes", "b", "steps", 0)) == 14
    assert doc.line_of(("nodes", "missing", "x")) == 5


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loads that happen well after the files were written, as a reload usually does."""
    monkeypatch.setattr(cache, "time_ns", lambda: time.time_ns() + 60 * 10**9)


def _tiny(root: Path) -> Guide:
    library, problems = load_library(root)
    assert library is not None, problems
    return library.packs["en"].guides["tiny"]


@pytest.mark.usefixtures("later")
def test_unchanged_files_are_reused_and_changed_ones_read_again(content: Path) -> None:
    first = _tiny(content)
    assert _tiny(content) is first
    path = content / "en" / "guides" / "tiny.yaml"
    path.write_text(GUIDE.replace("Tiny", "Tinier"))
    changed = _tiny(content)
    assert changed is not first and changed.title == "Tinier"


def test_a_file_changed_within_the_clock_granularity_is_read_again(content: Path) -> None:
    """Same size, written right after a load: its times may not differ, so it is not reused."""
    path = content / "en" / "guides" / "tiny.yaml"
    assert _tiny(content).title == "Tiny"
    path.write_text(GUIDE.replace("Tiny", "Tinx"))
    assert _tiny(content).title == "Tinx"


@pytest.mark.usefixtures("later")
def test_a_reused_file_replaced_by_a_pipe_is_refused(content: Path) -> None:
    _tiny(content)
    path = content / "en" / "guides" / "tiny.yaml"
    path.unlink()
    os.mkfifo(path)
    assert _messages(content) == [
        f"{path}:1: a named pipe (FIFO): content files must be regular files"
    ]
