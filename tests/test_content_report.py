"""`hrd-bot content report`: per language, what is missing and what is older than English;
`--stamp` records the English source a translation was made from."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.content.freshness import files, freshness, source_hash
from bot.content.loader import load_library
from bot.content.report import StampError, report, stamp
from tests.conftest import CONTENT

GUIDES = ("phishing", "website-down")


@pytest.fixture
def content(tmp_path: Path) -> Path:
    """English with two guides; French with both, Spanish with one, all stamped as current."""
    root = tmp_path / "content"
    for code, guides in (("en", GUIDES), ("fr", GUIDES), ("es", GUIDES[:1])):
        (root / code / "guides").mkdir(parents=True)
        for name in ("strings.yaml", "interview.yaml"):
            shutil.copy(CONTENT / code / name, root / code / name)
        for guide in guides:
            shutil.copy(CONTENT / code / "guides" / f"{guide}.yaml", root / code / "guides")
    return root


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "content", "report", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_shipped_translations_are_complete_and_current() -> None:
    library, _ = load_library(CONTENT)
    assert library is not None
    for code in library.packs.keys() - {"en"}:
        found = freshness(library, code)
        assert not found.missing_files and not found.missing_strings, code
        assert not found.stale and not found.unstamped, (code, found)


def test_report_names_what_is_missing_and_what_is_older(content: Path) -> None:
    english = content / "en" / "guides" / "phishing.yaml"
    english.write_text(english.read_text().replace("title: ", "title: New ", 1))
    (content / "en" / "strings.yaml").write_text(
        (content / "en" / "strings.yaml")
        .read_text()
        .replace("  nav.back:", "  nav.extra: An extra string\n  nav.back:", 1)
    )
    library, problems = load_library(content)
    assert library is not None
    text = report(library)
    es = text.split("\n\n")[0]
    assert es.startswith("es (Español): 1 files and 1 strings missing, 2 files older than English")
    assert "  missing: guides/website-down.yaml" in es
    assert "  missing strings: nav.extra" in es
    now = source_hash(files(library.packs["en"])["guides/phishing.yaml"][0])
    assert "  older than English: guides/phishing.yaml (source_hash " in es and f"now {now})" in es
    assert "older than English: strings.yaml" in es
    fr = text.split("\n\n")[1]
    assert "0 files and 1 strings missing, 2 files older" in fr
    warned = {str(p.path.relative_to(content)) for p in problems if "older than" in p.message}
    assert warned == {
        "es/guides/phishing.yaml",
        "es/strings.yaml",
        "fr/guides/phishing.yaml",
        "fr/strings.yaml",
    }


def test_stamping_records_the_current_english_and_clears_the_warning(content: Path) -> None:
    english = content / "en" / "guides" / "phishing.yaml"
    english.write_text(english.read_text().replace("title: ", "title: New ", 1))
    french = content / "fr" / "guides" / "phishing.yaml"
    run = _cli("--folder", str(content), "--stamp", str(french))
    assert run.returncode == 0, run.stderr
    assert f"stamped {french}" in run.stdout
    assert french.read_text().count("source_hash:") == 1
    library, problems = load_library(content)
    assert library is not None
    assert not [p for p in problems if p.path == french]
    assert [p for p in problems if p.path == content / "es" / "guides" / "phishing.yaml"]
    shown = _cli("--folder", str(content))
    assert shown.returncode == 0
    assert "fr (Français): 0 files and 0 strings missing, 0 files older" in shown.stdout


def test_a_file_without_a_hash_gets_one_after_its_comments(content: Path) -> None:
    spanish = content / "es" / "guides" / "phishing.yaml"
    body = "\n".join(
        line
        for line in spanish.read_text().split("\n")
        if not line.startswith(("source_hash:", "#"))
    )
    spanish.write_text("# Fuentes: ...\n# segunda línea\n" + body)
    library, _ = load_library(content)
    assert library is not None
    assert "no source_hash (age unknown): guides/phishing.yaml" in report(library)
    stamp(library, content, [spanish])
    lines = spanish.read_text().split("\n")
    assert lines[:2] == ["# Fuentes: ...", "# segunda línea"]
    assert lines[2].startswith("source_hash: ")
    library, problems = load_library(content)
    assert library is not None and not [p for p in problems if p.path == spanish]
    assert not freshness(library, "es").unstamped


def test_stamp_refuses_english_and_files_english_lacks(content: Path) -> None:
    library, _ = load_library(content)
    assert library is not None
    before = (content / "fr" / "strings.yaml").read_bytes()
    with pytest.raises(StampError, match="only translations"):
        stamp(library, content, [content / "fr" / "strings.yaml", content / "en" / "strings.yaml"])
    assert (content / "fr" / "strings.yaml").read_bytes() == before, "nothing half done"
    (content / "fr" / "guides" / "extra.yaml").write_text("id: extra\n")
    with pytest.raises(StampError, match=r"English has no guides/extra\.yaml"):
        stamp(library, content, [content / "fr" / "guides" / "extra.yaml"])
    (content / "fr" / "guides" / "extra.yaml").unlink()
    run = _cli("--folder", str(content), "--stamp", str(content / "en" / "strings.yaml"))
    assert run.returncode == 1 and "only translations record a source hash" in run.stderr
