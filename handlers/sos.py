"""SOS: "I am in danger now", from the main menu, `/sos` or the danger screen.

One confirmation, then the alert (`SosDesk.raise_alert`). The reporter is told in plain
words whether the team has it yet, what the team will do, and what to do meanwhile,
with the physical-protection contacts for their country. After that, what they type on
the screen is a message for the team and a location they share goes to the team too,
each sealed. Where reporting is not set up the screen says so and shows the contacts.
"""

from __future__ import annotations

from bot.content.countries import fold
from bot.content.library import Library
from bot.model import Incoming, Location
from handlers.contacts import best_contacts, contact_blocks, remembered_country
from handlers.context import Args, Context, Screen
from handlers.numbers import typed_number
from handlers.ports import SosDesk
from handlers.referrals import distinct
from handlers.screens import screen

__all__ = [
    "CHOICE",
    "COMMAND",
    "CONFIRM",
    "CONTACTS_SHOWN",
    "LABELS",
    "LABEL_CHARS",
    "MESSAGE_CHARS",
    "NO_LOCATION",
    "OPEN",
    "SCREENS",
    "choose_confirm",
    "located",
    "open_sos",
    "render_confirm",
    "render_raised",
    "type_message",
    "urgent",
]

COMMAND = "/sos"
CHOICE = "sos:"
"""Every SOS choice id starts with this: the flood guard lets them by (`urgent`)."""
OPEN = CHOICE + "open"
CONFIRM = CHOICE + "confirm"
MESSAGE_CHARS = 1000
CONTACTS_SHOWN = 2
NO_LOCATION = ("console",)
LABELS = ("menu.sos", "danger.sos", "sos.confirm_yes")
"""What someone types to press an SOS choice (where they type: Matrix, the console)."""
LABEL_CHARS = 80


def urgent(msg: Incoming, library: Library) -> bool:
    """Whether a message may be part of an SOS: `/sos`, an SOS button or its label typed
    in any language, "1" (the SOS on the menu, the confirmation on its screen), or a
    shared location. The flood guard takes these from the SOS bucket (`bot.conversation.flood`)."""
    if msg.location is not None:
        return True
    if msg.choice is not None:
        return msg.choice.startswith(CHOICE)
    text = (msg.text or "").strip()
    if msg.forwarded or not text or len(text) > LABEL_CHARS:
        return False
    if text.split("@")[0].split(" ")[0].lower() == COMMAND or typed_number(text) == 1:
        return True
    typed = fold(text)
    return any(
        typed == fold(library.translator(code)(key)) for code in library.packs for key in LABELS
    )


def _desk(ctx: Context) -> SosDesk | None:
    return None if ctx.desk is None else ctx.desk.sos


async def _confirmation(ctx: Context) -> Args:
    """The confirmation's arguments: whether an alert can be sent, and how many SOS the
    open case has had, so a press repeated after a lost answer alerts once."""
    desk = _desk(ctx)
    ready = desk is not None and await desk.ready()
    seen = await desk.raised(ctx.msg.user) if desk is not None and ready else None
    return {"ready": ready, "seen": seen}


async def open_sos(ctx: Context) -> None:
    """The confirmation screen, or, where nobody could receive an alert, the contacts."""
    ctx.go("sos", **await _confirmation(ctx))


def _contacts(ctx: Context, country: str | None) -> list[str]:
    """The first physical-protection contacts for the case's country, else the one the
    person gave before (never asked here: someone in danger is not stopped by a
    question), short, each number once: a name and a way to reach it, on one screen."""
    where = country or remembered_country(ctx)
    found = distinct(best_contacts(ctx, "physical", where), CONTACTS_SHOWN)
    return contact_blocks(ctx, found, short=True)


def render_confirm(ctx: Context, args: Args) -> Screen:
    if not args.get("ready"):
        text = "\n\n".join([ctx.t("sos.unavailable"), *_contacts(ctx, None)])
        return Screen(text, ctx.nav(), sensitive=True, urgent=True)
    choices = (ctx.choice(CONFIRM, "sos.confirm_yes"), *ctx.nav())
    return Screen(ctx.t("sos.confirm"), choices, sensitive=True, urgent=True)


async def choose_confirm(ctx: Context, args: Args, choice: str) -> bool:
    desk = _desk(ctx)
    if choice != CONFIRM or desk is None or not args.get("ready"):
        return False
    raised = await desk.raise_alert(ctx.msg.user, ctx.msg.chat, ctx.t.code, seen=args.get("seen"))
    if raised is None:
        ctx.replace("sos", ready=False)
        return True
    ctx.replace("sos_raised", case=raised.case, country=raised.country)
    ctx.notice(f"sos.{raised.told}", case=raised.case)
    return True


def render_raised(ctx: Context, args: Args) -> Screen:
    add = "sos.add" if ctx.msg.chat.platform in NO_LOCATION else "sos.add_or_locate"
    parts = [
        ctx.t("sos.team_will", case=args["case"]),
        ctx.t("sos.meanwhile"),
        *_contacts(ctx, args.get("country")),
        ctx.t(add),
    ]
    return Screen(
        "\n\n".join(parts),
        ctx.nav(back=False),
        sensitive=True,
        typing=True,
        words=True,
        urgent=True,
    )


async def type_message(ctx: Context, args: Args, text: str) -> bool:
    if len(text) > MESSAGE_CHARS:
        ctx.notice("sos.message_long", limit=MESSAGE_CHARS)
        return True
    await _add(ctx, args["case"], text=text)
    return True


async def located(ctx: Context) -> None:
    """A shared location: for the SOS case on its screen; elsewhere the SOS comes first
    (where it cannot be raised, its screen says so)."""
    name, args = ctx.at
    location = ctx.msg.location
    assert location is not None
    if name == "sos_raised":
        await _add(ctx, args["case"], location=location)
        return
    confirmation = await _confirmation(ctx)
    if confirmation["ready"]:
        ctx.notice("sos.location_first")
    if name == "sos":
        ctx.replace("sos", **confirmation)
    else:
        ctx.go("sos", **confirmation)


async def _add(
    ctx: Context, case: str, text: str | None = None, location: Location | None = None
) -> None:
    """Sealed to the case; the notice says whether the team has been told yet."""
    desk = _desk(ctx)
    told = (
        None if desk is None else await desk.add(ctx.msg.user, case, text=text, location=location)
    )
    what = "message" if location is None else "location"
    ctx.notice(f"sos.{what}_{told}" if told else "sos.gone")


SCREENS = (
    screen("sos", render_confirm, choose_confirm),
    screen("sos_raised", render_raised, typed=type_message),
)
"""This module's screens, for the router to assemble (`handlers.screens.assemble`)."""
