"""Checks across a file or across languages that a schema alone cannot express."""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.content.library import FALLBACK, LanguagePack
from bot.content.problems import Problem
from bot.content.schema import (
    GUIDE_TOPICS,
    NEEDS,
    PLURAL_CATEGORIES,
    REQUIRED_QUESTIONS,
    URGENCIES,
    Guide,
    Interview,
    Plural,
    contacts_need,
    exit_of,
)
from bot.content.script import bidi_problem, plural_categories
from bot.content.source import Document

__all__ = ["SCREEN_CHARS", "check_guide", "check_interviews", "check_strings", "check_translations"]

SCREEN_CHARS = 900


def _targets(guide: Guide, node_id: str) -> list[str]:
    return [o.next for o in guide.nodes[node_id].options if o.next in guide.nodes]


def _ends(guide: Guide) -> set[str]:
    return {
        node_id
        for node_id, node in guide.nodes.items()
        if not node.options or any(exit_of(o.next) for o in node.options)
    }


def _reachable(starts: set[str], edges: Mapping[str, list[str]]) -> set[str]:
    seen, todo = set(starts), list(starts)
    while todo:
        for nxt in edges.get(todo.pop(), []):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _target_problem(guide: Guide, target: str) -> str | None:
    """Why an option's `next` leads nowhere, if it does: an unknown node or need."""
    need = contacts_need(target)
    if need == "":
        return f"name the need the contacts are for, e.g. @contacts:legal ({', '.join(NEEDS)})"
    if need is not None and need not in NEEDS:
        return f"unknown need {need!r} in {target!r}: use one of {', '.join(NEEDS)}"
    if need is None and target not in guide.nodes and exit_of(target) is None:
        return f"unknown node {target!r}"
    return None


def check_guide(guide: Guide, doc: Document) -> list[Problem]:
    """Targets exist, every node is reachable, every node can reach an end, the start acts."""
    problems: list[Problem] = []

    def add(at: tuple[str | int, ...], message: str, *, warning: bool = False) -> None:
        problems.append(Problem(doc.path, doc.line_of(at), message, warning))

    if guide.start not in guide.nodes:
        add(("start",), f"start node {guide.start!r} does not exist")
        return problems
    if not guide.nodes[guide.start].steps:
        add(("nodes", guide.start), "the start node must give at least one concrete step")
    for node_id, node in guide.nodes.items():
        for i, option in enumerate(node.options):
            if (problem := _target_problem(guide, option.next)) is not None:
                add(("nodes", node_id, "options", i, "next"), problem)
        for text in (node.text, *node.steps, *(o.label for o in node.options)):
            if (problem := bidi_problem(text)) is not None:
                add(("nodes", node_id), problem)
        size = len(node.text) + sum(len(s) for s in node.steps)
        if size > SCREEN_CHARS:
            add(
                ("nodes", node_id), f"{size} characters: longer than one phone screen", warning=True
            )
    edges = {node_id: _targets(guide, node_id) for node_id in guide.nodes}
    for node_id in sorted(set(guide.nodes) - _reachable({guide.start}, edges)):
        add(("nodes", node_id), f"node {node_id!r} cannot be reached from {guide.start!r}")
    backwards: dict[str, list[str]] = {}
    for source, targets in edges.items():
        for target in targets:
            backwards.setdefault(target, []).append(source)
    for node_id in sorted(set(guide.nodes) - _reachable(_ends(guide), backwards)):
        add(("nodes", node_id), f"node {node_id!r} is in a loop with no way out")
    return problems


def _fields(template: str | Plural) -> set[str]:
    """The placeholders; none for a text that is not a valid template (`_brace_problem`
    says why, so such a text never reaches the screen)."""
    if isinstance(template, Plural):
        return {name for text in template.forms().values() for name in _fields(text)}
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name}
    except ValueError:
        return set()


def _brace_problem(text: str) -> str | None:
    """A text the bot could not fill in: a lone brace, or a placeholder with a conversion
    or format (`{n!z}`, `{n:>4}`), which only plain `{name}` placeholders may not raise."""
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError:
        return "a { or } that is not part of a {placeholder}: write {{ or }} for the mark itself"
    if any(conversion or spec for _, name, spec, conversion in fields if name is not None):
        return "a placeholder is written {name}, with nothing after the name"
    return None


def _plural_problem(text: Plural, english: str | Plural) -> str | None:
    """Why a plural string is wrong, if it is: plural where English is, the same `number`
    placeholder, and each form keeping every other placeholder."""
    forms = text.forms()
    if isinstance(english, str):
        return "takes no count in English: write one text, not plural forms"
    if text.number != english.number:
        return f"the count is {{{english.number}}} in English, not {{{text.number}}}"
    wanted = _fields(english)
    if text.number not in wanted:
        return f"number: {{{text.number}}} is not a placeholder of this string"
    for category, form in forms.items():
        got = _fields(form)
        if not wanted - {text.number} <= got <= wanted:
            return f"{category}: placeholders must be {{{', '.join(sorted(wanted))}}}"
    return None


def _missing_forms(code: str, text: str | Plural) -> str | None:
    """The plural categories `code` needs that `text` lacks: a warning, as the `other`
    form is shown instead (grammatically off, never wrong about the number)."""
    if isinstance(text, str):
        return None
    need = plural_categories(code)
    missing = [c for c in PLURAL_CATEGORIES if c in need - text.forms().keys()]
    if not missing:
        return None
    return f"plural forms missing: {', '.join(missing)} (this language needs {_listed(need)})"


def _listed(categories: frozenset[str]) -> str:
    return ", ".join(c for c in PLURAL_CATEGORIES if c in categories)


def _string_problem(code: str, text: str | Plural, english: str | Plural) -> str | None:
    for form in [text] if isinstance(text, str) else text.forms().values():
        if (problem := bidi_problem(form) or _brace_problem(form)) is not None:
            return problem
    if isinstance(text, Plural):
        return _plural_problem(text, english)
    if isinstance(english, Plural):
        return f"takes a count: give the forms {_listed(plural_categories(code))}"
    if _fields(text) != _fields(english):
        want = ", ".join(sorted(_fields(english))) or "none"
        return f"placeholders must be {{{want}}}"
    return None


def check_strings(pack: LanguagePack, english: LanguagePack, doc: Document | None) -> list[Problem]:
    """Keys English has, the same placeholders, balanced isolates, and plural forms for
    every category the language needs (English itself included; missing ones warn)."""
    problems: list[Problem] = []
    path = doc.path if doc else Path(pack.code) / "strings.yaml"
    for key, text in pack.strings.items():
        if key not in english.strings:
            message = f"unknown string {key!r} (not in English)"
        elif (problem := _string_problem(pack.code, text, english.strings[key])) is not None:
            message = f"{key}: {problem}"
        elif (missing := _missing_forms(pack.code, text)) is not None:
            line = doc.line_of(("strings", key)) if doc else 1
            problems.append(Problem(path, line, f"{key}: {missing}", warning=True))
            continue
        else:
            continue
        problems.append(Problem(path, doc.line_of(("strings", key)) if doc else 1, message))
    for key in english.strings:
        if key not in pack.strings:
            problems.append(Problem(path, 1, f"missing string {key!r}", warning=True))
    return problems


def check_translations(
    root: Path, packs: Mapping[str, LanguagePack], docs: Mapping[Path, Document]
) -> list[Problem]:
    """Other languages may lag English (it is shown instead) but may not invent keys."""
    english = packs[FALLBACK]
    problems: list[Problem] = []
    for code, pack in packs.items():
        folder = root / code
        problems += check_strings(pack, english, docs.get(folder / "strings.yaml"))
        if code == FALLBACK:
            problems += _without_topic(pack, folder)
            continue
        for kind, mine, theirs in (
            ("guide", pack.guides, english.guides),
            ("legal country", pack.legal, english.legal),
            ("contact", {c.id: c for c in pack.contacts}, {c.id: c for c in english.contacts}),
        ):
            for item in sorted(set(theirs) - set(mine)):
                message = f"missing {kind} {item!r} that English has (English is shown)"
                problems.append(Problem(folder, 1, message, warning=True))
        for guide_id, guide in pack.guides.items():
            if (original := english.guides.get(guide_id)) is None:
                continue
            path = folder / "guides" / f"{guide_id}.yaml"
            if set(guide.nodes) != set(original.nodes):
                problems.append(
                    Problem(path, 1, "nodes differ from the English guide", warning=True)
                )
            problems += _check_needs(guide, original, path, docs.get(path))
            if guide.topic is not None:
                message = "topic is set in the English guide only (translations follow it)"
                problems.append(Problem(path, _Line(docs.get(path), ("topic",))(), message))
    return problems


def _without_topic(english: LanguagePack, folder: Path) -> list[Problem]:
    topics = ", ".join(GUIDE_TOPICS)
    return [
        Problem(
            folder / "guides" / f"{guide_id}.yaml", 1, f"a guide needs a topic: one of {topics}"
        )
        for guide_id, guide in english.guides.items()
        if guide.topic is None
    ]


def _check_needs(guide: Guide, english: Guide, path: Path, doc: Document | None) -> list[Problem]:
    """A translated option leads to the same kind of help as the English one: a person must
    not get digital contacts in Arabic where English readers get physical protection."""
    problems = []
    for node_id, node in guide.nodes.items():
        theirs = english.nodes.get(node_id)
        if theirs is None:
            continue
        for i, (mine, original) in enumerate(zip(node.options, theirs.options, strict=False)):
            want, got = contacts_need(original.next), contacts_need(mine.next)
            if want is not None and got is not None and want != got:
                line = _Line(doc, ("nodes", node_id, "options", i, "next"))()
                message = f"leads to {mine.next!r} where English leads to {original.next!r}"
                problems.append(Problem(path, line, message))
    return problems


_KINDS = {
    "where": ("country", None),
    "urgency": ("choice", URGENCIES),
    "consent": ("choice", ("yes", "no")),
}


def _interview_shape(interview: Interview) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(q.id, q.kind, tuple(q.choices)) for q in interview.questions]


@dataclass(frozen=True, slots=True)
class _Line:
    """A line looked up only when a problem needs it: finding lines re-reads the file."""

    doc: Document | None
    at: tuple[str | int, ...]

    def __call__(self) -> int:
        return self.doc.line_of(self.at) if self.doc else 1


def _check_english_interview(
    interview: Interview | None, path: Path, doc: Document | None
) -> list[Problem]:
    if interview is None:
        return [
            Problem(path, 1, "English needs an interview.yaml (risk reports ask its questions)")
        ]
    problems = []
    ids = [q.id for q in interview.questions]
    for wanted in REQUIRED_QUESTIONS:
        if wanted not in ids:
            problems.append(Problem(path, 1, f"interview: missing question {wanted!r}"))
    for i, question in enumerate(interview.questions):
        line = _Line(doc, ("questions", i))
        kind, keys = _KINDS.get(question.id, (question.kind, None))
        if question.kind != kind or (
            keys is not None and tuple(sorted(question.choices)) != tuple(sorted(keys))
        ):
            want = f"kind {kind}" + (f" with choices {', '.join(keys)}" if keys else "")
            problems.append(Problem(path, line(), f"question {question.id!r} must have {want}"))
        if (question.kind == "choice") != bool(question.choices):
            problems.append(
                Problem(path, line(), f"question {question.id!r}: choices go with kind choice")
            )
    if len(set(ids)) != len(ids):
        problems.append(Problem(path, 1, "interview: question ids must be unique"))
    return problems


def check_interviews(
    root: Path, packs: Mapping[str, LanguagePack], docs: Mapping[Path, Document]
) -> list[Problem]:
    """English defines the interview; a translation has the same questions and choices."""
    english_path = root / FALLBACK / "interview.yaml"
    english = packs[FALLBACK].interview
    problems = _check_english_interview(english, english_path, docs.get(english_path))
    if english is None:
        return problems
    for code, pack in packs.items():
        path = root / code / "interview.yaml"
        if code == FALLBACK:
            continue
        if pack.interview is None:
            problems.append(Problem(path, 1, "missing interview (English is shown)", warning=True))
        elif _interview_shape(pack.interview) != _interview_shape(english):
            problems.append(Problem(path, 1, "questions, kinds and choices must match English"))
    return problems
