"""The words of what the engine reports to staff rooms, on-call chats and reporters
(`bot.cases.words.StaffWords`): alerts, relays, delivery outcomes, the team's replies.

What an outsider wrote is framed by `bot.cases.quoting` (every line quoted, invisible
characters shown), so none of its lines passes for the bot's own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from bot.cases.attachments import Held, file_kind, file_name, scaled_size
from bot.cases.claims import CLAIM
from bot.cases.quoting import quoted
from bot.cases.views import ANSWER_TEAM
from bot.cases.words import (
    CaseAlert,
    CheckinAlert,
    Climb,
    Reached,
    Relay,
    Relayed,
    Settled,
    SosAlert,
)
from bot.content.countries import country_name
from bot.content.library import Library, Translator
from bot.model import Attachment, ChatRef, Choice, Reply
from handlers.case_terms import urgency_name
from handlers.output import directed, paginate

__all__ = [
    "RELAY_CHARS",
    "StaffText",
    "alert_lines",
    "claimable",
    "files_reply",
    "framed",
]

RELAY_CHARS = 3500
"""Each relayed or team-reply part stays under Telegram's 4,096 characters, marker and
quoting included, so no platform splits one into a message without its marker."""
Say = Callable[..., str]
"""A translator: `say(key, **values)`."""
TIER_LABELS = {2: "staff.oncall_label", 3: "staff.lead_label"}
"""How staff see a chat of an escalation tier named: by number and platform, never a name."""


class StaffText:
    """Implements `bot.cases.words.StaffWords` from the current content (a reload applies
    at the next message) in the staff rooms' language."""

    def __init__(self, library: Callable[[], Library], staff_language: str = "en") -> None:
        self._library = library
        self._language = staff_language

    def _staff(self) -> Translator:
        return self._library().translator(self._language)

    def alert(
        self, alert: CaseAlert | SosAlert | CheckinAlert, room: ChatRef, *, claim: bool = True
    ) -> Reply:
        t = self._staff()
        if isinstance(alert, CaseAlert):
            reply = Reply(_case_alert(t, alert))
        elif isinstance(alert, SosAlert):
            key = ("staff.duress" if alert.duress else "staff.sos") + (
                "_new" if alert.opened else "_open"
            )
            country = country_name(alert.country, t.code) if alert.country else "?"
            reply = Reply(t(key, case=alert.case, country=country), urgent=True)
        else:
            reply = _checkin_alert(t, alert)
        return claimable(t, room, reply) if claim else reply

    def answers(self, answers: Mapping[str, str]) -> Reply:
        """A message of its own: if a transport must withhold it, the alert still arrives."""
        t = self._staff()
        questions = {q.id: q for q in t.interview().questions}
        lines = [t("staff.alert_answers")]
        for field, value in answers.items():
            question = questions.get(field.removeprefix("answer."))
            label = question.text.split("\n")[0] if question else field
            shown = question.choices.get(value, value) if question else value
            lines.append(f"• {label}\n{quoted(shown)}")
        return Reply("\n".join(lines), sensitive=True)

    def files(self, case: str, files: Sequence[Held]) -> Reply | None:
        return files_reply(self._staff(), case, files)

    def relay(self, relay: Relay) -> Relayed:
        t = self._staff()
        if relay.via == "sos":
            key = "staff.sos_location" if relay.place else "staff.sos_message"
            notice = Reply(t(key, case=relay.case), urgent=True)
            marker = t("staff.sos_marker", case=relay.case)
            parts = framed(marker, relay.words)
            return Relayed(notice, tuple(Reply(p, sensitive=True, urgent=True) for p in parts))
        note = ""
        if relay.file is not None:
            kind, size = relay.file
            note = t("staff.thread_file", kind=kind, size=_size(size))
        key = "staff.thread_closed" if relay.closed else "staff.thread_new"
        marker = t("staff.thread_marker", case=relay.case)
        parts = framed(marker, relay.words, note)
        notice = Reply(t(key, case=relay.case))
        return Relayed(notice, tuple(Reply(p, sensitive=True) for p in parts))

    def escalated(self, case: str, urgency: str) -> Reply:
        t = self._staff()
        return Reply(t("staff.escalated", case=case, urgency=urgency_name(t, urgency)))

    def oncall(self, chats: Sequence[tuple[int, str]]) -> str:
        return _labels(self._staff(), TIER_LABELS[2], chats)

    def settled(self, settled: Settled) -> Reply:
        t = self._staff()
        if settled.what == "escalation":
            arrived, failed = "staff.escalation_arrived", "staff.escalation_failed"
        else:
            arrived, failed = "staff.reply_delivered", "staff.reply_failed"
        if settled.arrived:
            return Reply(t(arrived, case=settled.case))
        reasons = "; ".join(t(f"delivery.reason.{r}") for r in sorted(settled.reasons))
        return Reply(t(failed, case=settled.case, reason=reasons))

    def page(self, climb: Climb) -> Reply:
        t = self._staff()
        return Reply(t("staff.escalation_page", **_climb_values(t, climb)))

    def climbing(self, climb: Climb) -> Reply:
        t = self._staff()
        values = _climb_values(t, climb)
        if not climb.chats:
            text = t("staff.escalation_nobody", tier=climb.tier, setting=climb.setting, **values)
            return Reply(text)
        who = _labels(t, TIER_LABELS[climb.tier], climb.chats)
        return Reply(t("staff.escalation_step", tier=climb.tier, who=who, **values))

    def reached(self, reached: Reached) -> Reply:
        t, label, case = self._staff(), TIER_LABELS[reached.tier], reached.case
        lines = []
        if reached.reached:
            who = _labels(t, label, reached.reached)
            lines.append(t("staff.escalation_reached", case=case, who=who))
        if reached.missed:
            reasons = "; ".join(sorted({t(f"delivery.reason.{r}") for *_, r in reached.missed}))
            who = _labels(t, label, [(n, p) for n, p, _ in reached.missed])
            lines.append(t("staff.escalation_unreached", case=case, who=who, reason=reasons))
        return Reply("\n".join(lines))

    def team_reply(self, language: str, text: str) -> list[Reply]:
        t = self._library().translator(language)
        parts = paginate(text, RELAY_CHARS)
        replies = []
        for number, part in enumerate(parts, 1):
            marked = t("report.from_team", text=part)
            if len(parts) > 1:
                marked += f" ({number}/{len(parts)})"
            label = directed(t("thread.answer"), t.rtl)
            answer = (Choice(ANSWER_TEAM, label),) if number == len(parts) else ()
            replies.append(Reply(directed(marked, t.rtl), answer, sensitive=True, rtl=t.rtl))
        return replies

    def reply_queued(self, case: str, parts: int) -> Reply:
        return Reply(self._staff()("staff.done.reply", case=case, value=parts))

    def room_down(self, kind: str, number: int, platform: str, reason: str, hours: int) -> str:
        t = self._staff()
        why = t(f"delivery.reason.{reason}")
        return t(f"delivery.{kind}_down", room=number, platform=platform, reason=why, hours=hours)

    def room_up(self, kind: str, number: int, platform: str) -> str:
        return self._staff()(f"delivery.{kind}_up", room=number, platform=platform)

    def stopped(
        self,
        lost: Sequence[tuple[str, str | None, float]],
        unsure: Sequence[tuple[str, str | None, float]],
    ) -> str:
        """Which messages a stop lost or left uncertain, so staff can send them again."""
        t = self._staff()
        blocks = [
            "\n".join([t(key, count=len(found)), *(_unsent_line(t, *row) for row in found)])
            for key, found in (("delivery.lost", lost), ("delivery.unsure", unsure))
            if found
        ]
        return "\n\n".join(blocks)


def _unsent_line(t: Translator, kind: str, case: str | None, created_at: float) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(created_at))
    return f"• {t(f'delivery.kind.{kind}')} · {case or '—'} · {when} UTC"


def _climb_values(t: Translator, climb: Climb) -> dict[str, object]:
    return {
        "case": climb.case,
        "urgency": urgency_name(t, climb.urgency),
        "minutes": climb.minutes,
    }


def _labels(t: Translator, key: str, chats: Sequence[tuple[int, str]]) -> str:
    return ", ".join(t(key, n=n, platform=platform) for n, platform in chats)


def claimable(t: Translator, room: ChatRef, alert: Reply) -> Reply:
    """The alert as `room`'s platform offers claiming from it (`bot.cases.claims`)."""
    if room.platform == "telegram":
        return replace(alert, choices=(*alert.choices, Choice(CLAIM, t("staff.claim_button"))))
    if room.platform == "matrix":
        return replace(alert, text=f"{alert.text}\n{t('staff.claim_hint')}")
    return alert


def _case_alert(t: Translator, alert: CaseAlert) -> str:
    country = country_name(alert.country, t.code) if alert.country else "?"
    urgency = urgency_name(t, alert.urgency)
    head = t("staff.alert", case=alert.case, urgency=urgency, country=country)
    return head + alert_lines(t, alert.files, alert.unknown_files)


def _checkin_alert(t: Translator, alert: CheckinAlert) -> Reply:
    """A missed check-in names the case's country by its code, as it always has."""
    if alert.what == "help":
        return Reply(t("staff.checkin_help", case=alert.case))
    key = "staff.checkin_missed_new" if alert.opened else "staff.checkin_missed"
    text = t(key, case=alert.case, minutes=alert.minutes, country=alert.country or "?")
    return Reply(text, urgent=True)


def framed(marker: str, words: str, note: str = "", limit: int = RELAY_CHARS) -> list[str]:
    """Parts of at most `limit` characters, each starting with `marker` (and "(n/N)" when
    there are several), then `note` in the first, then the outsider's words framed by
    `bot.cases.quoting` (every line quoted, invisible characters shown)."""
    room = limit - len(marker) - len(note) - 16
    size = room
    while True:
        bodies = [quoted(page) for page in paginate(words, size)] if words else []
        if all(len(body) <= room for body in bodies) or size < 64:
            break
        size = size * 3 // 4
    count = len(bodies)
    parts = []
    for number, body in enumerate(bodies or [""], 1):
        head = marker + (f" ({number}/{count})" if count > 1 else "")
        lines = [head, note if number == 1 else "", body]
        parts.append("\n".join(line for line in lines if line))
    return parts


def _size(size: int) -> str:
    return f"{size / 1024:.0f} KB" if size < 1024 * 1024 else f"{size / (1024 * 1024):.1f} MB"


def described(say: Say, held: Held) -> str:
    """`photo (6.2 KB)` in `say`'s words."""
    number, unit = scaled_size(held.size, say("staff.file_size.decimal_mark"))
    kind = say(f"staff.file_kind.{file_kind(held.media_type)}")
    return say("staff.file_item", kind=kind, size=say(f"staff.file_size.{unit}", n=number))


def alert_lines(say: Say, files: Sequence[Held], unknown: int = 0) -> str:
    """What the alert adds about files: kinds and sizes, never a name ('' without files)."""
    lines = []
    if files:
        lines.append(say("staff.alert_files", files=", ".join(described(say, f) for f in files)))
    if unknown > 0:
        lines.append(say("staff.alert_files_unknown", count=unknown))
    return "".join(f"\n{line}" for line in lines)


def files_reply(say: Say, case_id: str, files: Sequence[Held]) -> Reply | None:
    """The files themselves, for an end-to-end encrypted staff room only (`sensitive`).

    The text names each file as it is sent (a generated name), with its caption; a file
    over the memory budget is named too, with where to find it."""
    if not files:
        return None
    lines = [say("staff.files_sent", case=case_id)]
    for held in files:
        name = file_name(case_id, held.number, held.media_type)
        lines.append(f"• {name}: {described(say, held)}")
        if held.caption:
            lines.append(f"  {held.caption}")
        if held.data is None:
            lines.append("  " + say("staff.file_not_relayed"))
    attachments = tuple(
        Attachment(file_name(case_id, f.number, f.media_type), f.media_type, f.size, f.data)
        for f in files
        if f.data is not None
    )
    return Reply("\n".join(lines), files=attachments, sensitive=True)
