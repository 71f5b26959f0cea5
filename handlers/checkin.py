"""Safety check-ins: set them up, and answer "are you safe?" when the bot asks."""

from __future__ import annotations

from handlers.context import Args, Context, Screen
from handlers.numbers import choice_index
from handlers.screens import screen

INTERVALS = (2, 6, 24)


def render_setup(ctx: Context, args: Args) -> Screen:
    every = args.get("every")
    text = ctx.t("checkin.setup_text")
    if every:
        text += "\n\n" + ctx.t("checkin.active", hours=every)
    choices = [ctx.choice(f"checkin:every:{h}", "checkin.every", hours=h) for h in INTERVALS]
    if every:
        choices.append(ctx.choice("checkin:stop", "checkin.stop"))
    return Screen(text, (*choices, *ctx.nav()), sensitive=True)


async def open_setup(ctx: Context) -> None:
    every = await ctx.checkins.every(ctx.msg.user) if ctx.checkins else None
    ctx.go("checkin_setup", every=every)


async def choose_setup(ctx: Context, args: Args, choice: str) -> bool:
    if ctx.checkins is None:
        return False
    if choice == "checkin:stop":
        await ctx.checkins.stop(ctx.msg.user)
        ctx.home()
        ctx.notice("checkin.stopped")
        return True
    hours = choice_index(choice, "checkin:every:")
    if hours is None or hours not in INTERVALS:
        return False
    if await ctx.checkins.schedule(ctx.msg.user, ctx.msg.chat, hours):
        ctx.home()
        ctx.notice("checkin.scheduled", hours=hours)
    else:
        ctx.notice("checkin.none")
    return True


def render_ask(ctx: Context, args: Args) -> Screen:
    choices = (
        ctx.choice("checkin:safe", "checkin.safe"),
        ctx.choice("checkin:help", "checkin.help"),
        ctx.choice("checkin:stop", "checkin.stop"),
    )
    return Screen(ctx.t("checkin.ask"), choices, sensitive=True)


HELP_NOTICES = {"told": "checkin.help_sent", "trying": "checkin.help_trying"}


async def choose_ask(ctx: Context, args: Args, choice: str) -> bool:
    if ctx.checkins is None or choice not in ("checkin:safe", "checkin:help", "checkin:stop"):
        return False
    if choice == "checkin:stop":
        await ctx.checkins.stop(ctx.msg.user)
        ctx.notice("checkin.stopped")
    else:
        safe = choice == "checkin:safe"
        told = await ctx.checkins.answered(ctx.msg.user, safe=safe)
        ctx.notice(
            "checkin.thanks" if safe else HELP_NOTICES.get(told or "", "checkin.help_unsent")
        )
    ctx.back()
    return True


screen("checkin_setup", render_setup, choose_setup)
screen("checkin", render_ask, choose_ask)
