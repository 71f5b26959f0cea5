"""Outsiders' words as staff see them: framed, so no line of theirs passes for the bot's.

Everything a reporter (or anyone not on the staff list) wrote reaches staff output only
through this module: alert answers, relayed thread messages, `hrd-bot cases open`.

- **The frame.** Every line of outsider text starts with `QUOTE` ("> "; a blank line is
  ">"), the quoting convention of e-mail and Markdown. The bot's own lines never start
  with ">" (tests/security/test_spoofing.py checks every staff string), so a line that
  does not start with it is the bot's, and a reporter cannot produce one.
- **Line breaks.** Every break a client may show is one (`str.splitlines`: "\\r",
  "\\r\\n", VT, FF, U+001C-U+001E, U+0085, U+2028, U+2029), so each becomes a framed line.
  Lines longer than `LINE_CHARS` are broken (at a space where one is near), so no
  transport splitting a long message into parts ever cuts inside a framed line.
- **Invisible characters are made visible**, never silently dropped (staff may need to
  know a message tried tricks): bidi controls (U+202A-U+202E, U+2066-U+2069, U+200E,
  U+200F, U+061C) and every other format character (category Cf: zero-width space,
  U+FEFF, tag characters, soft hyphen...) show as "⟨U+202E⟩"; Hangul filler letters
  that render as nothing likewise; control characters show as "\\x1b". The one
  exception: ZWNJ and ZWJ (U+200C, U+200D) between two non-ASCII letters, marks or
  emoji stay, as Persian, Arabic and Indic words and emoji sequences need them, and
  they cannot reorder or hide anything. (Subdivision flags, such as England's, still
  show their tag characters.)
- **HTML.** Where a formatted body goes out (Matrix), `html_framed` turns the framed
  lines into `<blockquote>` and escapes everything, so a client draws the quote bar
  beside every row of the quote, wrapped rows included, and no markup of theirs is read.
- **Spaces.** Tabs and other space characters become one plain space, and runs of them
  one space, so padding cannot push a fake line to the start of a client's wrapped row.

A client may still wrap a long framed line on screen; the wrapped row is then visibly
part of the quote that began on the row above, never a line of its own.
"""

from __future__ import annotations

import html
import re
import unicodedata

__all__ = ["LINE_CHARS", "QUOTE", "clean_line", "html_framed", "inline", "is_framed", "quoted"]

QUOTE = "> "
LINE_CHARS = 1000
"""Well under half of the smallest page a transport splits at (3,500 for relays), so a
page break always falls between framed lines."""
JOINERS = frozenset("\u200c\u200d")
FILLERS = frozenset("\u115f\u1160\u3164\uffa0")
"""Hangul filler letters: category Lo, yet shown as nothing (a known way to fake blank
names and lines)."""
IGNORABLE_UNASSIGNED = ((0x2060, 0x206F), (0xFFF0, 0xFFF8), (0xE0000, 0xE0FFF))
"""Code points reserved as default-ignorable: invisible wherever a font knows the rule."""
BREAK_SHOWN = " ⏎ "
_SPACES = re.compile(" {2,}")


def _joinable(char: str) -> bool:
    """A letter, mark or emoji a joiner may sit beside: not ASCII, and shown as it is."""
    category = unicodedata.category(char)
    return (
        not char.isascii()
        and (category[0] in "LM" or category in ("So", "Sk"))
        and (char not in FILLERS)
    )


def _hidden(char: str) -> bool:
    category = unicodedata.category(char)
    if category in ("Cf", "Zl", "Zp") or char in FILLERS:
        return True
    code = ord(char)
    return category == "Cn" and any(low <= code <= high for low, high in IGNORABLE_UNASSIGNED)


def _shown(line: str, index: int) -> str:
    """How one character of `line` is shown in staff output."""
    char = line[index]
    category = unicodedata.category(char)
    if char == "\t" or category == "Zs":
        return " "
    if category == "Cc":
        return f"\\x{ord(char):02x}"
    if not _hidden(char):
        return char
    if char in JOINERS and _between_letters(line, index):
        return char
    return f"⟨U+{ord(char):04X}⟩"


def _between_letters(line: str, index: int) -> bool:
    return 0 < index < len(line) - 1 and _joinable(line[index - 1]) and _joinable(line[index + 1])


def clean_line(line: str) -> str:
    """One line (no breaks in it) with every character shown as staff output shows it."""
    return _SPACES.sub(" ", "".join(_shown(line, i) for i in range(len(line))))


def _wrapped(line: str) -> list[str]:
    """`line` in pieces of at most `LINE_CHARS`, broken at the last space of each if any."""
    pieces = []
    while len(line) > LINE_CHARS:
        cut = _cut(line)
        pieces.append(line[:cut])
        line = line[cut:].lstrip(" ")
    return [*pieces, line]


def _cut(line: str) -> int:
    """Where to break a long line: at its last space in reach, else before a character
    that starts a cluster (never beside a joiner, before a mark, or inside "⟨U+…⟩")."""
    low = LINE_CHARS // 2
    if (space := line.rfind(" ", low, LINE_CHARS + 1)) >= 0:
        return space
    cut = LINE_CHARS
    token = line.rfind("⟨", low, cut)
    if token >= 0 and "⟩" not in line[token:cut]:
        cut = token
    while cut > low and (_clings(line[cut]) or line[cut - 1] in JOINERS):
        cut -= 1
    return cut


def _clings(char: str) -> bool:
    return char in JOINERS or unicodedata.category(char)[0] == "M"


def quoted(text: str) -> str:
    """Outsider text as framed staff lines: every line starts with `QUOTE` (">" alone
    for a blank one), and nothing in it is invisible or a hidden line break."""
    lines = [piece for line in text.splitlines() for piece in _wrapped(clean_line(line))]
    return "\n".join(QUOTE + line if line.strip() else QUOTE.rstrip() for line in lines or [""])


def inline(text: str) -> str:
    """Outsider text inside one of the bot's own lines (a bundle's field, an audit
    detail): on that one line, its line breaks shown as "⏎"."""
    return BREAK_SHOWN.join(clean_line(line) for line in text.splitlines())


def is_framed(line: str) -> bool:
    """Whether a line of staff output is an outsider's (the bot's never start with ">")."""
    return line == QUOTE.rstrip() or line.startswith(QUOTE)


def html_framed(text: str) -> str | None:
    """Staff output as HTML: each run of framed lines in one `<blockquote>`, everything
    escaped, lines kept with `<br>`; None when `text` has no framed line (plain will do)."""
    lines = text.split("\n")
    if not any(is_framed(line) for line in lines):
        return None
    out: list[str] = []
    inside = False
    for line in lines:
        framed = is_framed(line)
        if framed != inside:
            out.append("<blockquote>" if framed else "</blockquote>")
            inside = framed
        elif out and out[-1] not in ("<blockquote>", "</blockquote>"):
            out.append("<br>")
        out.append(html.escape(line[len(QUOTE) :] if framed else line))
    return "".join(out) + ("</blockquote>" if inside else "")
