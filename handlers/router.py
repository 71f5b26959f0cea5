"""Entry point for every message: check the input, run commands and choices, render one screen."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Awaitable, Callable

from bot.cases.views import CaseworkError
from bot.content.countries import fold
from bot.content.library import Library
from bot.conversation.state import EXPIRED, SENT, Session
from bot.model import Choice, Incoming, Reply
from handlers import checkin, contacts, guides, legal, menu, report, sos, thread
from handlers.context import BACK, MENU, MORE, Context
from handlers.numbers import typed_number
from handlers.output import directed, directed_choices, paginate
from handlers.ports import CaseDesk, CheckinDesk
from handlers.screens import assemble
from handlers.staff import is_staff_command

__all__ = [
    "MAX_INPUT_CHARS",
    "SCREENS",
    "input_problem",
    "match_choice",
    "prompt",
    "render",
    "respond",
]

log = logging.getLogger("hrd_bot.handlers")

MAX_INPUT_CHARS = 4000
_ALLOWED_CONTROLS = {"\n", "\t", "\r"}
SCREENS = assemble(
    menu.SCREENS,
    guides.SCREENS,
    legal.SCREENS,
    contacts.SCREENS,
    report.SCREENS,
    sos.SCREENS,
    thread.SCREENS,
    checkin.SCREENS,
)
"""Every screen by name, from the modules that define them."""


def input_problem(msg: Incoming) -> str | None:
    """The strings key explaining why this message cannot be read, if it cannot."""
    if msg.choice is not None or msg.attachment is not None or msg.location is not None:
        return None
    if msg.text is None:
        return "error.unsupported"
    if len(msg.text) > MAX_INPUT_CHARS or msg.raw_size > MAX_INPUT_CHARS * 4:
        return "error.too_long"
    for ch in msg.text:
        if ch == "\ufffd" or (
            unicodedata.category(ch) in ("Cc", "Cs", "Co") and ch not in _ALLOWED_CONTROLS
        ):
            return "error.binary"
    if not msg.text.strip():
        return "error.empty"
    return None


def _offered(ctx: Context) -> list[tuple[str, str]]:
    return [(str(i), str(label)) for i, label in ctx.state.get("offered", [])]


def match_choice(text: str, offered: list[tuple[str, str]], *, answer: bool = False) -> str | None:
    """A typed number (1-based) or label picks that choice; so does the unique start of a
    label. Numbers count in any script ("٣", "３", "①"): see `handlers.numbers`.

    Where typed text is an answer (`answer`), only the whole label picks: a number or the
    start of a label could be someone's words, and "2" typed as "when did it happen?"
    must not press the second button (which may be "Stop and delete this report")."""
    number = None if answer else typed_number(text)
    if number is not None and 1 <= number <= len(offered):
        return offered[number - 1][0]
    wanted = fold(text)
    exact = [cid for cid, label in offered if fold(label) == wanted]
    if exact or answer or len(wanted) < 3:
        return exact[0] if exact else None
    starts = [cid for cid, label in offered if fold(label).startswith(wanted)]
    return starts[0] if len(starts) == 1 else None


async def _choose(ctx: Context, choice: str) -> None:
    if choice == BACK:
        ctx.back()
    elif choice == MENU:
        ctx.home()
    elif choice == MORE:
        ctx.state["page"] = int(ctx.state.get("page", 0)) + 1
    else:
        name, args = ctx.at
        if not await SCREENS[name].choose(ctx, args, choice):
            ctx.notice("error.stale")


async def _command(ctx: Context, command: str) -> None:
    """`/start` from someone the bot knows resumes where they were (after a restart, too)."""
    name = command.split()[0].split("@")[0].lower()
    if ctx.session.language is None and name in ("/start", "/menu"):
        ctx.replace("language")
    elif name == "/start":
        ctx.notice("start.again")
        if "report" in ctx.state:
            ctx.replace("report_intro")
    elif name == "/menu":
        ctx.home()
    elif name == sos.COMMAND:
        await sos.open_sos(ctx)
    elif name == "/cancel":
        had_report = "report" in ctx.state
        await report.abandon(ctx)
        ctx.home()
        ctx.notice("report.cancelled" if had_report else "cancel.done")
    elif name in ("/help", "/language", "/forget"):
        ctx.go(name[1:])
    elif is_staff_command(name):
        log.warning("staff command refused: outside the staff room")
        ctx.notice("staff.only_in_room")
    else:
        ctx.notice("error.command")


async def _handle(ctx: Context) -> None:
    if ctx.state.pop(EXPIRED, None) and _report_expired(ctx):
        return
    if (sent := ctx.state.pop(SENT, None)) and _report_sent(ctx, str(sent)):
        return
    try:
        await thread.enter_on_reply(ctx)
        await _dispatch(ctx)
    except CaseworkError as ended:
        ctx.state.pop("report", None)
        ctx.home()
        ctx.notice(ended.key)


def _report_expired(ctx: Context) -> bool:
    """Retention deleted this user's unsent report: say so once. On a report screen the
    message was meant for that report, so it goes no further (True)."""
    ctx.notice("report.expired")
    if not ctx.at[0].startswith("report_"):
        return False
    ctx.home()
    return True


def _report_sent(ctx: Context, case: str) -> bool:
    """The report was submitted but the reply saying so was lost (the bot stopped): say it
    now. On a report screen the message was meant for that report, so it goes no further."""
    ctx.notice("report.sent", case=case)
    ctx.sensitive = True
    if not ctx.at[0].startswith("report_"):
        return False
    ctx.home()
    return True


async def _dispatch(ctx: Context) -> None:
    msg = ctx.msg
    if (problem := input_problem(msg)) is not None:
        ctx.notice(problem)
        return
    if msg.location is not None:
        await sos.located(ctx)
        return
    if msg.attachment is not None:
        await (thread.attached if thread.takes_file(ctx) else report.attached)(ctx)
        return
    if msg.choice is not None:
        if msg.choice in {cid for cid, _ in _offered(ctx)}:
            await _choose(ctx, msg.choice)
        else:
            ctx.notice("error.stale")
        return
    text = (msg.text or "").strip()
    if text.startswith("/") and not msg.forwarded:
        await _command(ctx, text)
    elif not msg.forwarded and (
        choice := match_choice(text, _offered(ctx), answer=bool(ctx.state.get("words")))
    ):
        await _choose(ctx, choice)
    elif ctx.state.get("typing"):
        name, args = ctx.at
        if not await SCREENS[name].typed(ctx, args, text):
            ctx.notice("error.choose")
    elif ctx.session.known:
        ctx.notice("error.choose")


def render(ctx: Context) -> Reply:
    name, args = ctx.at
    if name not in SCREENS:
        ctx.home()
        name, args = ctx.at
    screen = SCREENS[name].render(ctx, args)
    pages = paginate(screen.text)
    page = min(int(ctx.state.get("page", 0)), len(pages) - 1)
    text = pages[page] + (f"\n\n({page + 1}/{len(pages)})" if len(pages) > 1 else "")
    choices = screen.choices
    if page < len(pages) - 1:
        choices = (Choice(MORE, ctx.t("nav.more")), *choices)
    if ctx.t.fell_back:
        ctx.notices.append(ctx.t("fallback.note"))
    ctx.state["offered"] = [[c.id, c.label] for c in choices]
    ctx.state["typing"] = screen.typing
    ctx.state["words"] = screen.words
    rtl = ctx.t.rtl
    body = "\n\n".join([*ctx.notices, text])
    sensitive = screen.sensitive or ctx.sensitive
    return Reply(
        directed(body, rtl),
        directed_choices(choices, rtl),
        sensitive=sensitive,
        rtl=rtl,
        urgent=screen.urgent,
    )


async def respond(
    msg: Incoming,
    session: Session,
    library: Library,
    forget: Callable[[], Awaitable[None]],
    desk: CaseDesk | None = None,
    checkins: CheckinDesk | None = None,
) -> Reply:
    """Handle one message; the caller saves `session` unless the reply erases the chat.

    Outside a private chat nothing is read or shown: only a pointer to a private chat.
    """
    ctx = Context(msg, session, library, forget, desk, checkins)
    if not msg.chat.private:
        return Reply(directed(ctx.t("group.pointer"), ctx.t.rtl), rtl=ctx.t.rtl)
    await _handle(ctx)
    if ctx.forgotten:
        done = directed(ctx.t("forget.done"), ctx.t.rtl)
        return Reply(done, sensitive=True, rtl=ctx.t.rtl, erase_chat=True, language=ctx.t.code)
    await thread.prepare(ctx)
    return render(ctx)


def prompt(
    msg: Incoming, session: Session, library: Library, screen: str, checkins: CheckinDesk
) -> Reply:
    """A screen the bot opens by itself (a check-in question); Back returns to where they were."""
    ctx = Context(msg, session, library, _nothing_to_forget, checkins=checkins)
    ctx.go(screen)
    return render(ctx)


async def _nothing_to_forget() -> None:
    return None
