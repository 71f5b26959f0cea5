"""A reporter's thread with the protection team: write to the team about a sent case,
answer a team reply, and ask where the case stands (in plain words, never a name).

A team reply arrives outside any screen (the staff room's `/reply`). The first message
the reporter sends after it is read as if the reply were the screen they are on: its one
choice, "Answer the team", or their words, which go to the team (`enter_on_reply`).
"""

from __future__ import annotations

from bot.cases.views import ANSWER_TEAM, ThreadCase
from bot.model import MAX_ATTACHMENT_BYTES, Choice
from handlers.context import Args, Context, Screen
from handlers.ports import ThreadDesk
from handlers.screens import screen

__all__ = [
    "MY_CASE",
    "REPORTER",
    "SCREENS",
    "SEEN",
    "THREAD_SCREENS",
    "WHERE",
    "WRITE",
    "attached",
    "choose_from_menu",
    "choose_in_state",
    "choose_in_thread",
    "enter_on_reply",
    "forget",
    "menu_choices",
    "my_case",
    "prepare",
    "render_state",
    "render_thread",
    "takes_file",
    "type_in_thread",
]

WHERE = "thread:where"
WRITE = "thread:write"
MY_CASE = "my_case"
"""Session key: the case the menu or a thread screen shows, as [id, plain state]."""
REPORTER = "reporter"
"""Session key: this person started a report, so the menu looks up their sent case."""
SEEN = "reply_seen"
"""Session key: when the team reply they have already been shown was written."""
THREAD_SCREENS = ("thread", "case_state")


def _desk(ctx: Context) -> ThreadDesk | None:
    return None if ctx.desk is None else ctx.desk.thread


def my_case(ctx: Context) -> ThreadCase | None:
    """The case last looked up for this screen (see `prepare`)."""
    found = ctx.state.get(MY_CASE)
    return ThreadCase(str(found[0]), str(found[1])) if found else None


def _shown(ctx: Context, case_id: str) -> ThreadCase:
    case = my_case(ctx)
    return case if case is not None and case.id == case_id else ThreadCase(case_id, "received")


async def enter_on_reply(ctx: Context) -> None:
    """If the team wrote since this reporter last wrote anything, their message is read
    on the team reply's screen: the reply's one choice, or words for the team."""
    thread = _desk(ctx)
    if thread is None or (wrote := await thread.team_wrote(ctx.msg.user)) is None:
        return
    if wrote.at <= int(ctx.state.get(SEEN, 0)):
        return
    ctx.state[SEEN] = wrote.at
    if await thread.status(ctx.msg.user, wrote.case) is None:
        return  # the case was purged (retention) since: nothing to answer
    ctx.state[REPORTER] = True
    name, args = ctx.at
    if name == "thread" and args.get("case") == wrote.case:
        ctx.replace("thread", case=wrote.case)
    else:
        ctx.go("thread", case=wrote.case)
    ctx.state["offered"] = [[ANSWER_TEAM, ctx.t("thread.answer")]]
    ctx.state["typing"] = True
    ctx.state["words"] = False


async def prepare(ctx: Context) -> None:
    """Before a screen is drawn: look up the case the menu or a thread screen shows."""
    thread = _desk(ctx)
    if thread is None:
        return
    if "report" in ctx.state:
        ctx.state[REPORTER] = True
    name, args = ctx.at
    if name in THREAD_SCREENS:
        case = await thread.status(ctx.msg.user, str(args.get("case")))
        if case is not None:
            ctx.state[MY_CASE] = [case.id, case.state]
            return
        ctx.notice("thread.gone")
        ctx.home()
    if ctx.at[0] == "menu":
        case = await thread.latest(ctx.msg.user) if ctx.state.get(REPORTER) else None
        if case is None:
            ctx.state.pop(MY_CASE, None)
        else:
            ctx.state[MY_CASE] = [case.id, case.state]


def menu_choices(ctx: Context) -> list[Choice]:
    """First in the main menu while the reporter has a sent case."""
    case = my_case(ctx)
    if case is None:
        return []
    where = ctx.choice("menu:where", "menu.where")
    return [where] if case.closed else [ctx.choice("menu:thread", "menu.thread"), where]


def choose_from_menu(ctx: Context, choice: str) -> bool:
    case = my_case(ctx)
    if case is None or choice not in ("menu:thread", "menu:where"):
        return False
    ctx.go("thread" if choice == "menu:thread" else "case_state", case=case.id)
    return True


def render_thread(ctx: Context, args: Args) -> Screen:
    """Typed words go to the team; a choice's number picks it (Matrix and the console list
    choices by number, and a message that is only "2" is far likelier meant as one)."""
    case = _shown(ctx, args["case"])
    key = "thread.text_closed" if case.closed else "thread.text"
    text = ctx.t(key, case=case.id, limit=MAX_ATTACHMENT_BYTES // (1024 * 1024))
    choices = (ctx.choice(WHERE, "menu.where"), *ctx.nav())
    return Screen(text, choices, sensitive=True, typing=True)


async def choose_in_thread(ctx: Context, args: Args, choice: str) -> bool:
    if choice == ANSWER_TEAM:
        ctx.replace("thread", case=args["case"])
        return True
    if choice == WHERE:
        ctx.go("case_state", case=args["case"])
        return True
    return False


def _delivered(ctx: Context, case: ThreadCase | None, key: str) -> None:
    if case is None:
        ctx.notice("thread.gone")
        ctx.home()
        return
    ctx.notice("thread.delivered_closed" if case.closed else key)


async def type_in_thread(ctx: Context, args: Args, text: str) -> bool:
    thread = _desk(ctx)
    if thread is None:
        return False
    case = await thread.write(ctx.msg.user, args["case"], text)
    _delivered(ctx, case, "thread.delivered")
    return True


def takes_file(ctx: Context) -> bool:
    """Whether a file sent now is for the thread (else the report interview takes it).
    Outside the thread, a reporter with a sent case is told where files go."""
    if ctx.at[0] == "thread":
        return True
    case = my_case(ctx)
    if "report" not in ctx.state and case is not None and not case.closed:
        ctx.notice("thread.file_here")
        return True
    return False


async def attached(ctx: Context) -> None:
    """A file on the thread screen: sealed with its caption, within the report limit."""
    attachment, thread = ctx.msg.attachment, _desk(ctx)
    assert attachment is not None
    name, args = ctx.at
    if name != "thread":
        return
    if attachment.data is None or attachment.size > MAX_ATTACHMENT_BYTES:
        ctx.notice("report.attachment_too_big", limit=MAX_ATTACHMENT_BYTES // (1024 * 1024))
    elif thread is not None:
        caption = (ctx.msg.text or "").strip()
        case = await thread.send_file(ctx.msg.user, args["case"], attachment, caption)
        _delivered(ctx, case, "thread.file_delivered")


def render_state(ctx: Context, args: Args) -> Screen:
    case = _shown(ctx, args["case"])
    text = ctx.t(f"thread.state_{case.state}", case=case.id)
    choices = (ctx.choice(WRITE, "menu.thread"), *ctx.nav())
    return Screen(text, choices, sensitive=True)


async def choose_in_state(ctx: Context, args: Args, choice: str) -> bool:
    if choice != WRITE:
        return False
    ctx.go("thread", case=args["case"])
    return True


def forget(ctx: Context) -> None:
    if (thread := _desk(ctx)) is not None:
        thread.forget(ctx.msg.user)


SCREENS = (
    screen("thread", render_thread, choose_in_thread, type_in_thread),
    screen("case_state", render_state, choose_in_state),
)
"""This module's screens, for the router to assemble (`handlers.screens.assemble`)."""
