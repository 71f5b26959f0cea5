"""The main menu, help, language choice and `/forget`."""

from __future__ import annotations

from bot.model import Choice
from handlers import thread
from handlers.checkin import open_setup
from handlers.context import BACK, Args, Context, Screen
from handlers.report import abandon
from handlers.screens import screen
from handlers.sos import OPEN as SOS
from handlers.sos import open_sos

__all__ = [
    "SCREENS",
    "choose_forget",
    "choose_language",
    "choose_menu",
    "render_forget",
    "render_help",
    "render_language",
    "render_menu",
]

_MENU = {
    "menu:report": "report_intro",
    "menu:guides": "guides",
    "menu:legal": "legal_countries",
    "menu:contacts": "contacts_need",
    "menu:checkin": "checkin_setup",
    "menu:language": "language",
    "menu:forget": "forget",
    "menu:help": "help",
}


def render_menu(ctx: Context, args: Args) -> Screen:
    """ "I am in danger now" comes first, in every language."""
    choices: list[Choice] = [ctx.choice(SOS, "menu.sos"), *thread.menu_choices(ctx)]
    resume = ctx.state.get("resume")
    if resume and (guide := ctx.t.guide(resume["guide"])) is not None:
        choices.append(ctx.choice("menu:resume", "menu.resume", title=guide.title))
    choices += [ctx.choice(cid, cid.replace(":", ".")) for cid in _MENU]
    return Screen(ctx.t("menu.text"), tuple(choices))


async def choose_menu(ctx: Context, args: Args, choice: str) -> bool:
    if choice == SOS:
        await open_sos(ctx)
        return True
    if thread.choose_from_menu(ctx, choice):
        return True
    if choice == "menu:resume" and (resume := ctx.state.get("resume")):
        ctx.go("guide", **resume)
        return True
    if choice == "menu:checkin":
        await open_setup(ctx)
        return True
    if target := _MENU.get(choice):
        ctx.go(target)
        return True
    return False


def render_help(ctx: Context, args: Args) -> Screen:
    return Screen(ctx.t("help.text"), ctx.nav())


def render_language(ctx: Context, args: Args) -> Screen:
    """The same order on every screen, so a number always means the same language; the
    app's language shows in the question itself."""
    choices = tuple(Choice(f"lang:{p.code}", p.info.name) for p in ctx.library.languages())
    first = ctx.session.language is None
    text = ctx.t("language.welcome" if first else "language.text")
    return Screen(text, choices if first else (*choices, *ctx.nav()))


async def choose_language(ctx: Context, args: Args, choice: str) -> bool:
    code = choice.removeprefix("lang:")
    if code == choice or code not in ctx.library.packs:
        return False
    ctx.session.language = code
    ctx.t = ctx.library.translator(code)
    ctx.home()
    ctx.notice("language.set")
    return True


def render_forget(ctx: Context, args: Args) -> Screen:
    return Screen(
        ctx.t("forget.text"),
        (ctx.choice("forget:yes", "forget.yes"), ctx.choice(BACK, "forget.no")),
        sensitive=True,
    )


async def choose_forget(ctx: Context, args: Args, choice: str) -> bool:
    if choice != "forget:yes":
        return False
    await abandon(ctx)
    thread.forget(ctx)
    await ctx.forget_user()
    ctx.forgotten = True
    return True


SCREENS = (
    screen("menu", render_menu, choose_menu),
    screen("help", render_help),
    screen("language", render_language, choose_language),
    screen("forget", render_forget, choose_forget),
)
"""This module's screens, for the router to assemble (`handlers.screens.assemble`)."""
