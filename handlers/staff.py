"""Protection staff's commands in their own room. Anyone else, anywhere else, is refused."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from bot.content.library import Translator
from bot.model import Incoming, Reply
from handlers.ports import CaseView, CaseworkError, StaffDesk

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
)


def is_staff_command(text: str | None) -> bool:
    return bool(text) and (text or "").split()[0].split("@")[0].lower() in COMMANDS


def _age(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 1440}d" if minutes >= 1440 else f"{minutes // 60}h{minutes % 60:02d}m"


def _line(case: CaseView, now: float) -> str:
    who = f" → {case.assignee}" if case.assignee else ""
    age = _age(now - case.created_at)
    return f"{case.id} [{case.urgency or '?'}] {case.country or '??'} {case.state}{who} · {age}"


def _detail(t: Translator, case: CaseView) -> str:
    events = [
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(at))} {action} ({actor})"
        for at, actor, action in case.history
    ]
    return "\n".join([_line(case, time.time()), t("staff.history"), *events])


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


async def respond_staff(msg: Incoming, desk: StaffDesk, t: Translator) -> Reply | None:
    """Commands from allowlisted staff; chatter between staff is left alone."""
    text = (msg.text or "").strip()
    if not is_staff_command(text):
        return None
    if await desk.staff_label(msg.user) is None:
        log.warning("staff command refused: sender is not on the staff list")
        return Reply(t("staff.refused"))
    command, _, rest = text.partition(" ")
    command = command.split("@")[0].lower()
    case_id, _, rest = rest.strip().partition(" ")
    try:
        if command == "/cases":
            now = time.time()
            listing = [_line(case, now) for case in await desk.open_cases()]
            return Reply("\n".join(listing) or t("staff.no_open_cases"))
        if not case_id:
            raise CaseworkError("staff.needs_case")
        if command == "/case":
            return Reply(_detail(t, await desk.case(case_id.upper())))
        outcome = await ACTIONS[command](desk, case_id.upper(), msg, rest.strip())
    except CaseworkError as refusal:
        return Reply(t(refusal.key))
    if outcome is None:
        return None
    key, _, value = outcome.partition(":")
    value, _, who = value.partition(":")
    return Reply(t(key, case=case_id.upper(), value=value, who=who))
