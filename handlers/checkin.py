"""Safety check-ins: set them up (a daily local time or every few hours, a time zone, a
duress word, a note for the team), pause them, and answer "are you safe?".

The duress word typed on the question screen takes exactly the path of "I am safe": the
same notice, the same screen after it, nothing awaited that the other does not await.
"""

from __future__ import annotations

import asyncio

from bot.model import Choice
from bot.safety.checkin_times import clock_text, likely_zones, parse_clock, parse_zone
from bot.safety.duress import acceptable, normalise
from handlers.contacts import remembered_country
from handlers.context import Args, Context, Screen
from handlers.numbers import choice_index
from handlers.ports import CheckinDesk
from handlers.screens import screen

__all__ = [
    "ASK_CHOICES",
    "ASK_LABELS",
    "HELP_NOTICES",
    "INTERVALS",
    "NOTE_CHARS",
    "SCREENS",
    "TIMES",
    "ZONE",
    "choose_ask",
    "choose_duress",
    "choose_setup",
    "choose_time",
    "choose_zone",
    "open_setup",
    "render_ask",
    "render_duress",
    "render_note",
    "render_setup",
    "render_time",
    "render_zone",
    "type_answer",
    "type_duress",
    "type_note",
    "type_time",
    "type_zone",
]

INTERVALS = (2, 6, 24)
TIMES = (8 * 60, 12 * 60, 18 * 60, 21 * 60)
ZONE = "zone"
"""The session remembers the time zone (`/forget` removes the session with it)."""
NOTE_CHARS = 1000
ASK_CHOICES = ("checkin:safe", "checkin:help", "checkin:stop")
ASK_LABELS = ("checkin.safe", "checkin.help", "checkin.stop")


async def open_setup(ctx: Context) -> None:
    ctx.go("checkin_setup", **await _plan_args(ctx))


async def _plan_args(ctx: Context) -> Args:
    plan = await ctx.checkins.plan(ctx.msg.user) if ctx.checkins else None
    if plan is None:
        return {}
    return {
        "every": plan.every_hours,
        "daily": plan.daily_at,
        "zone": plan.zone,
        "paused": plan.paused,
        "duress": plan.duress,
        "country": plan.country,
    }


async def _refresh(ctx: Context, key: str, **values: object) -> None:
    """Back on the set-up screen, showing what is now scheduled, with a notice."""
    ctx.replace("checkin_setup", **await _plan_args(ctx))
    ctx.notice(key, **values)


def _status(ctx: Context, args: Args) -> list[str]:
    if args.get("daily") is not None:
        at = clock_text(int(args["daily"]))
        lines = [ctx.t("checkin.active_daily", time=at, zone=args.get("zone") or "UTC")]
    elif args.get("every"):
        lines = [ctx.t("checkin.active", hours=args["every"])]
    else:
        return []
    if args.get("paused"):
        lines.append(ctx.t("checkin.paused_note"))
    if args.get("duress"):
        lines.append(ctx.t("checkin.duress_on"))
    return lines


def render_setup(ctx: Context, args: Args) -> Screen:
    status = _status(ctx, args)
    text = "\n\n".join([ctx.t("checkin.setup_text"), *status])
    choices = [ctx.choice("checkin:daily", "checkin.daily")]
    choices += [ctx.choice(f"checkin:every:{h}", "checkin.every", hours=h) for h in INTERVALS]
    if status:
        paused = bool(args.get("paused"))
        choices += [
            ctx.choice("checkin:resume", "checkin.resume")
            if paused
            else ctx.choice("checkin:pause", "checkin.pause"),
            ctx.choice("checkin:duress", "checkin.duress"),
            ctx.choice("checkin:note", "checkin.note"),
            ctx.choice("checkin:zone", "checkin.zone"),
            ctx.choice("checkin:stop", "checkin.stop"),
        ]
    return Screen(text, (*choices, *ctx.nav()), sensitive=True)


async def choose_setup(ctx: Context, args: Args, choice: str) -> bool:
    desk = ctx.checkins
    if desk is None:
        return False
    user = ctx.msg.user
    if choice == "checkin:stop":
        await desk.stop(user)
        ctx.home()
        ctx.notice("checkin.stopped")
    elif choice in ("checkin:pause", "checkin:resume"):
        paused = choice == "checkin:pause"
        if not await desk.pause(user, paused):  # stopped meanwhile (their case closed)
            await _refresh(ctx, "checkin.stopped")
        else:
            await _refresh(ctx, "checkin.paused" if paused else "checkin.resumed")
    elif choice == "checkin:daily" and ctx.state.get(ZONE):
        ctx.go("checkin_time", zone=ctx.state[ZONE])
    elif choice in ("checkin:daily", "checkin:zone"):
        country = remembered_country(ctx) or args.get("country")
        await asyncio.to_thread(likely_zones, country)  # reads the tz database once
        then = "time" if choice == "checkin:daily" else "setup"
        ctx.go("checkin_zone", then=then, country=country)
    elif choice == "checkin:duress":
        ctx.go("checkin_duress", duress=bool(args.get("duress")))
    elif choice == "checkin:note":
        ctx.go("checkin_note")
    else:
        return await _every(ctx, desk, choice)
    return True


async def _every(ctx: Context, desk: CheckinDesk, choice: str) -> bool:
    hours = choice_index(choice, "checkin:every:")
    if hours is None or hours not in INTERVALS:
        return False
    await desk.schedule(ctx.msg.user, ctx.msg.chat, hours, language=ctx.t.code)
    ctx.home()
    ctx.notice("checkin.scheduled", hours=hours)
    return True


def render_zone(ctx: Context, args: Args) -> Screen:
    """The zones of the person's country (the one they gave for contacts, or their
    case's), then UTC; or a name or offset typed."""
    known = ctx.state.get(ZONE)
    text = ctx.t("checkin.zone_ask")
    if known:
        text += "\n\n" + ctx.t("checkin.zone_now", zone=known)
    zones = [z for z in likely_zones(args.get("country")) if z != "UTC"]
    choices = [Choice(f"checkin:zone:{z}", z) for z in (*zones, "UTC")]
    return Screen(text, (*choices, *ctx.nav()), sensitive=True, typing=True)


async def choose_zone(ctx: Context, args: Args, choice: str) -> bool:
    if not choice.startswith("checkin:zone:"):
        return False
    return await _zone_chosen(ctx, args, choice.removeprefix("checkin:zone:"))


async def type_zone(ctx: Context, args: Args, text: str) -> bool:
    zone = await asyncio.to_thread(parse_zone, text[:64])
    if zone is None:
        ctx.notice("checkin.zone_unknown")
        return True
    return await _zone_chosen(ctx, args, zone)


async def _zone_chosen(ctx: Context, args: Args, zone: str) -> bool:
    if ctx.checkins is None:
        return False
    ctx.state[ZONE] = zone
    await ctx.checkins.set_zone(ctx.msg.user, zone)
    if args.get("then") == "time":
        ctx.replace("checkin_time", zone=zone)
    else:
        ctx.back()
        await _refresh(ctx, "checkin.zone_set", zone=zone)
    return True


def render_time(ctx: Context, args: Args) -> Screen:
    text = ctx.t("checkin.time_ask", zone=args.get("zone") or "UTC")
    choices = [ctx.choice(f"checkin:at:{m}", "checkin.at", time=clock_text(m)) for m in TIMES]
    return Screen(text, (*choices, *ctx.nav()), sensitive=True, typing=True)


async def choose_time(ctx: Context, args: Args, choice: str) -> bool:
    minutes = choice_index(choice, "checkin:at:")
    return minutes in TIMES and await _daily(ctx, args, minutes)


async def type_time(ctx: Context, args: Args, text: str) -> bool:
    minutes = parse_clock(text)
    if minutes is None:
        ctx.notice("checkin.time_unknown")
        return True
    return await _daily(ctx, args, minutes)


async def _daily(ctx: Context, args: Args, minutes: int | None) -> bool:
    if ctx.checkins is None or minutes is None:
        return False
    zone = str(args.get("zone") or ctx.state.get(ZONE) or "UTC")
    await ctx.checkins.schedule(
        ctx.msg.user, ctx.msg.chat, daily_at=minutes, zone=zone, language=ctx.t.code
    )
    ctx.home()
    ctx.notice("checkin.scheduled_daily", time=clock_text(minutes), zone=zone)
    return True


def render_duress(ctx: Context, args: Args) -> Screen:
    choices = [ctx.choice("checkin:duress:off", "checkin.duress_off")] if args.get("duress") else []
    text = ctx.t("checkin.duress_text")
    return Screen(text, (*choices, *ctx.nav()), sensitive=True, typing=True, words=True)


async def choose_duress(ctx: Context, args: Args, choice: str) -> bool:
    if ctx.checkins is None or choice != "checkin:duress:off":
        return False
    await ctx.checkins.set_duress(ctx.msg.user, None)
    ctx.back()
    await _refresh(ctx, "checkin.duress_removed")
    return True


async def type_duress(ctx: Context, args: Args, text: str) -> bool:
    """The word is hashed at once and never kept in the session or a log."""
    if ctx.checkins is None:
        return False
    labels = {normalise(ctx.t(key)) for key in ASK_LABELS}
    if not acceptable(text) or normalise(text) in labels:
        ctx.notice("checkin.duress_bad")
        return True
    if not await ctx.checkins.set_duress(ctx.msg.user, text):
        ctx.home()
        ctx.notice("checkin.duress_needs_checkins")
        return True
    ctx.back()
    await _refresh(ctx, "checkin.duress_saved")
    return True


def render_note(ctx: Context, args: Args) -> Screen:
    text = ctx.t("checkin.note_text", limit=NOTE_CHARS)
    return Screen(text, ctx.nav(), sensitive=True, typing=True, words=True)


async def type_note(ctx: Context, args: Args, text: str) -> bool:
    if ctx.checkins is None:
        return False
    if len(text) > NOTE_CHARS:
        ctx.notice("checkin.note_long", limit=NOTE_CHARS)
        return True
    case = await ctx.checkins.add_note(ctx.msg.user, text)
    ctx.back()
    if case is None:
        await _refresh(ctx, "checkin.note_no_case")
    else:
        await _refresh(ctx, "checkin.note_saved", case=case)
    return True


def render_ask(ctx: Context, args: Args) -> Screen:
    choices = tuple(ctx.choice(c, k) for c, k in zip(ASK_CHOICES, ASK_LABELS, strict=True))
    return Screen(ctx.t("checkin.ask"), choices, sensitive=True, typing=True)


HELP_NOTICES = {"told": "checkin.help_sent", "trying": "checkin.help_trying"}


async def choose_ask(ctx: Context, args: Args, choice: str) -> bool:
    """Every answer is sensitive: that check-ins are in use must not linger on a phone."""
    if ctx.checkins is None or choice not in ASK_CHOICES:
        return False
    ctx.sensitive = True
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


async def type_answer(ctx: Context, args: Args, text: str) -> bool:
    """The duress word answers as "I am safe" does; any other text is not an answer."""
    if ctx.checkins is None or not await ctx.checkins.answered_word(ctx.msg.user, text):
        return False
    ctx.sensitive = True
    ctx.notice("checkin.thanks")
    ctx.back()
    return True


SCREENS = (
    screen("checkin_setup", render_setup, choose_setup),
    screen("checkin_zone", render_zone, choose_zone, type_zone),
    screen("checkin_time", render_time, choose_time, type_time),
    screen("checkin_duress", render_duress, choose_duress, type_duress),
    screen("checkin_note", render_note, typed=type_note),
    screen("checkin", render_ask, choose_ask, type_answer),
)
"""This module's screens, for the router to assemble (`handlers.screens.assemble`)."""
