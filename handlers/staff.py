"""Protection staff's commands in their own room. Anyone else, anywhere else, is refused.

A staff account is not enough: the command must also come from a device the operator
listed for staff (`Incoming.verified_device`). A password used on another device is
refused, and the room is told whose account it was. Where the platform has no device
identity (Telegram), the `StaffScope` decides: by default (`triage`) such a room may
list, show, acknowledge and claim cases only, since anyone holding a staff member's
Telegram session could otherwise speak to a reporter as the team.

A claim (a 👍 or ✋ reaction on an alert in a Matrix staff room, the Claim button on one
in a Telegram staff group: `Incoming.claim_of`) is a triage action under the same rules:
staff only, and on Matrix only from a listed device. The room is told who won it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from bot.cases.views import CaseView, CaseworkError
from bot.content.library import Translator
from bot.model import Incoming, Reply
from handlers.case_terms import urgency_name
from handlers.output import said
from handlers.ports import StaffDesk
from handlers.queues import line, queue_reply

__all__ = [
    "ACTIONS",
    "COMMANDS",
    "TRIAGE",
    "Action",
    "StaffScope",
    "is_staff_command",
    "respond_staff",
]

log = logging.getLogger("hrd_bot.staff")
COMMANDS = (
    "/cases",
    "/case",
    "/ack",
    "/assign",
    "/escalate",
    "/note",
    "/reply",
    "/close",
    "/export",
    "/language",
)
StaffScope = Literal["triage", "all"]
"""What staff may do from a platform without device identity: `triage` (the default)
is /cases, /case, /ack and /assign to oneself; `all` is every command."""
TRIAGE = frozenset({"/cases", "/case", "/ack"})


def is_staff_command(text: str | None) -> bool:
    return bool(text) and (text or "").split()[0].split("@")[0].lower() in COMMANDS


def _detail(t: Translator, case: CaseView) -> str:
    events = [
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(at))} {action} ({actor})"
        for at, actor, action in case.history
    ]
    return "\n".join([line(case, time.time(), t), t("staff.history"), *events])


Action = Callable[[StaffDesk, str, Incoming, str], Awaitable[str | None]]
"""Runs a command; returns the answer's string key (`key:value`), or None when the
engine answers the room itself."""


def _simple(method: str) -> Action:
    async def run(desk: StaffDesk, case: str, msg: Incoming, rest: str) -> str:
        await getattr(desk, method)(case, msg.user)
        return f"staff.done.{method}"

    return run


def _with_text(method: str) -> Action:
    async def run(desk: StaffDesk, case: str, msg: Incoming, rest: str) -> str:
        if not rest:
            raise CaseworkError("staff.needs_text")
        await getattr(desk, method)(case, msg.user, rest)
        return f"staff.done.{method}"

    return run


async def _reply(desk: StaffDesk, case: str, msg: Incoming, rest: str) -> None:
    """The engine tells the room "queued", then edits that into the outcome."""
    if not rest:
        raise CaseworkError("staff.needs_text")
    await desk.reply(case, msg.user, rest, msg.chat)


async def _escalate(desk: StaffDesk, case: str, msg: Incoming, rest: str) -> str:
    urgency, told, who = await desk.escalate(case, msg.user, msg.chat)
    return f"staff.done.escalate_{told}:{urgency}:{who}"


async def _export(desk: StaffDesk, case: str, msg: Incoming, rest: str) -> str:
    return "staff.done.export:" + await desk.export(case, msg.user)


ACTIONS: dict[str, Action] = {
    "/ack": _simple("acknowledge"),
    "/assign": _with_text("assign"),
    "/escalate": _escalate,
    "/note": _with_text("note"),
    "/reply": _reply,
    "/close": _with_text("close"),
    "/export": _export,
}


def _parse(text: str) -> tuple[str, str, str]:
    """(command, case id as typed, the rest)."""
    command, _, rest = text.partition(" ")
    case_id, _, rest = rest.strip().partition(" ")
    return command.split("@")[0].lower(), case_id, rest.strip()


def _device_refusal(
    msg: Incoming, label: str, command: str, rest: str, scope: StaffScope, t: Translator
) -> Reply | None:
    """Why a staff member's command may not run from where it was sent, or None."""
    if msg.verified_device is True:
        return None
    if msg.verified_device is False:
        log.warning("staff command refused: it did not come from a listed staff device")
        return said(t, t("staff.unlisted_device", who=label))
    claims = command == "/assign" and rest.casefold() == label.casefold()
    if scope == "all" or command in TRIAGE or claims:
        return None
    log.info("staff command refused: no device identity here, and only triage is allowed")
    return said(t, t("staff.triage_only", command=command))


async def respond_staff(
    msg: Incoming, desk: StaffDesk, t: Translator, scope: StaffScope = "triage"
) -> Reply | None:
    """Commands from allowlisted staff on a listed device; chatter is left alone.

    `scope` applies where the platform cannot show the sending device (see `StaffScope`).
    """
    if msg.claim_of is not None:
        return await _claim(msg, msg.claim_of, desk, t)
    text = (msg.text or "").strip()
    if not is_staff_command(text):
        return None
    label = await desk.staff_label(msg.user)
    if label is None:
        log.warning("staff command refused: sender is not on the staff list")
        return said(t, t("staff.refused"))
    command, case_id, rest = _parse(text)
    if command == "/language":
        return await _language(desk, msg, case_id, t)
    if (blocked := _device_refusal(msg, label, command, rest, scope, t)) is not None:
        return blocked
    try:
        if command == "/cases":
            return await queue_reply(desk, t, label, f"{case_id} {rest}")
        if not case_id:
            raise CaseworkError("staff.needs_case")
        if command == "/case":
            return said(t, _detail(t, await desk.case(case_id.upper())))
        outcome = await ACTIONS[command](desk, case_id.upper(), msg, rest)
    except CaseworkError as refusal:
        return said(t, t(refusal.key))
    if outcome is None:
        return None
    key, _, value = outcome.partition(":")
    value, _, who = value.partition(":")
    if key.startswith("staff.done.escalate"):
        value = urgency_name(t, value)
    return said(t, t(key, case=case_id.upper(), value=value, who=who))


async def _language(desk: StaffDesk, msg: Incoming, code: str, t: Translator) -> Reply:
    """Any member may choose the language of answers to them: it grants nothing."""
    packs = t.library.packs
    if code not in packs:
        names = ", ".join(f"{c} ({p.info.name})" for c, p in sorted(packs.items()))
        return said(t, t("staff.language_list", languages=names))
    await desk.choose_language(msg.user, code)
    chosen = t.library.translator(code)
    return said(chosen, chosen("staff.language_set", language=packs[code].info.name))


async def _claim(msg: Incoming, alert: str, desk: StaffDesk, t: Translator) -> Reply | None:
    """Claim the alert's case: the winner and a later claimer are both told, by label.
    A reaction on anything but an alert is left alone (staff 👍 each other's messages)."""
    if await desk.alerted(msg.chat, alert) is None:
        log.info("a reaction on a message that is no alert was left alone")
        return None
    label = await desk.staff_label(msg.user)
    if label is None:
        log.warning("claim refused: sender is not on the staff list")
        return said(t, t("staff.claim_refused"))
    if msg.verified_device is False:
        log.warning("claim refused: it did not come from a listed staff device")
        return said(t, t("staff.claim_unlisted_device", who=label))
    try:
        claimed = await desk.claim(msg.chat, alert, msg.user, label)
    except CaseworkError as refusal:
        return said(t, t(refusal.key))
    if claimed is None:
        return None
    if claimed.won:
        return said(t, t("staff.claimed", case=claimed.case, who=label))
    return said(t, t("staff.claim_taken", case=claimed.case, who=claimed.holder, claimer=label))
