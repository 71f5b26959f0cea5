"""Staff queues: `/cases`, `/cases mine`, `/cases unacked`, `/cases urgent` and
`/cases country XX`, one screen each; a page number (`/cases mine 2`) shows more.

Each line is routing metadata only (reference, urgency, country, state, who has it,
age): a queue never shows what a reporter said, nor who they are.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence

from bot.cases.views import CaseView
from bot.content.countries import country_name
from bot.content.library import Translator
from bot.model import Reply
from handlers.case_terms import state_name, urgency_name
from handlers.output import said
from handlers.ports import StaffDesk

__all__ = ["PAGE", "queue_reply"]

PAGE = 15
"""Lines per screen: well inside one Telegram message (4,096 characters)."""
URGENT = frozenset({"critical", "high"})
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
Pick = Callable[[CaseView], bool]


def _age(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 1440}d" if minutes >= 1440 else f"{minutes // 60}h{minutes % 60:02d}m"


def line(case: CaseView, now: float, t: Translator) -> str:
    who = f" → {case.assignee}" if case.assignee else ""
    age = _age(now - case.created_at)
    country = country_name(case.country, t.code) if case.country else "?"
    urgency, state = urgency_name(t, case.urgency), state_name(t, case.state)
    return f"{case.id} [{urgency}] {country} {state}{who} · {age}"


def _country(code: str) -> str | None:
    """An ISO 3166 two-letter code, upper case; None for anything else."""
    upper = code.upper()
    if not _COUNTRY.match(code) or country_name(upper, "en") == upper:
        return None
    return upper


def _pick(
    words: Sequence[str], label: str, language: str
) -> tuple[Pick, str, dict[str, str]] | str:
    """What the queue keeps, its title's string key and values; or a refusal's key."""
    name = words[0].lower() if words else ""
    if len(words) > (2 if name == "country" else 1):
        return "staff.queue.unknown"
    if name == "":
        return (lambda case: True), "staff.queue.all", {}
    if name == "mine":
        mine = label.casefold()
        return (lambda c: (c.assignee or "").casefold() == mine), "staff.queue.mine", {}
    if name == "unacked":
        return (lambda case: case.state == "new"), "staff.queue.unacked", {}
    if name == "urgent":
        return (lambda case: case.urgency in URGENT), "staff.queue.urgent", {}
    if name == "country":
        code = _country(words[1]) if len(words) > 1 else None
        if code is None:
            return "staff.queue.bad_country"
        named = {"country": country_name(code, language)}
        return (lambda case: case.country == code), "staff.queue.country", named
    return "staff.queue.unknown"


def _page(words: Sequence[str]) -> tuple[list[str], int] | None:
    """The queue's words and the page asked for (1 when none); None for a bad page."""
    if words and words[-1].isdecimal() and words[-1].isascii():
        number = int(words[-1])
        return (list(words[:-1]), number) if 1 <= number <= 10_000 else None
    return list(words), 1


async def queue_reply(desk: StaffDesk, t: Translator, label: str, rest: str) -> Reply:
    """One screen of the queue `rest` names (see the module)."""
    paged = _page(rest.split())
    if paged is None:
        return said(t, t("staff.queue.unknown"))
    words, number = paged
    picked = _pick(words, label, t.code)
    if isinstance(picked, str):
        return said(t, t(picked))
    keep, title, values = picked
    cases = [case for case in await desk.open_cases() if keep(case)]
    if not cases:
        return said(t, t("staff.no_open_cases") if not words else t("staff.queue.empty"))
    now = time.time()
    shown = cases[(number - 1) * PAGE : number * PAGE]
    head = t(title, count=len(cases), **values)
    if not shown:
        return said(t, head + "\n" + t("staff.queue.past_end", pages=-(-len(cases) // PAGE)))
    lines = [head, *(line(case, now, t) for case in shown)]
    left = len(cases) - number * PAGE
    if left > 0:
        more = " ".join(["/cases", *words, str(number + 1)])
        lines.append(t("staff.queue.more", count=left, command=more))
    return said(t, "\n".join(lines))
