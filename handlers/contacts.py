"""People who can help: by need, in the user's country (asked once, remembered), nearest first."""

from __future__ import annotations

from collections.abc import Sequence

from bot.content.countries import country_name, find_country
from bot.content.schema import NEEDS, Contact
from bot.content.script import isolate, language_names
from bot.model import Choice
from handlers.context import Args, Context, Screen
from handlers.referrals import ANYWHERE, Line, lines, ranked
from handlers.screens import screen

__all__ = [
    "COUNTRY",
    "SCREENS",
    "best_contacts",
    "choose_country",
    "choose_need",
    "choose_result",
    "contact_block",
    "contact_blocks",
    "remembered_country",
    "render_country",
    "render_need",
    "render_results",
    "show_contacts",
    "type_country",
]

COUNTRY = "country"
"""Session key of the remembered country: an ISO code, or ANYWHERE ("prefer not to say").
Sessions are deleted by /forget, so the country goes with them."""


def remembered_country(ctx: Context) -> str | None:
    """The country the user gave, ANYWHERE if they preferred not to say, None if never asked."""
    value = ctx.state.get(COUNTRY)
    return value if isinstance(value, str) else None


def best_contacts(ctx: Context, need: str, country: str | None) -> list[Contact]:
    """Contacts for `need` in `country`, local first; `None` means international only."""
    return ranked(ctx.t.contacts(), need, country, ctx.t.code)


def show_contacts(ctx: Context, need: str) -> None:
    """Open the contacts for `need`, asking the country first if it was never given."""
    if remembered_country(ctx) is None:
        ctx.go("contacts_country", need=need)
    else:
        ctx.go("contacts_results", need=need)


def _line(ctx: Context, line: Line) -> str:
    kind = ctx.t("channel." + line.channel.kind)
    if line.first_shown_by is not None:
        return "• " + ctx.t("contacts.same_number", channel=kind, name=line.first_shown_by)
    return f"• {kind}: {isolate(line.channel.value, ctx.t.rtl)}"


def _block(ctx: Context, contact: Contact, shown: list[Line], short: bool) -> str:
    head = f"{isolate(contact.name, ctx.t.rtl)} · {ctx.t('contacts.scope.' + contact.scope)}"
    channels = "\n".join(_line(ctx, line) for line in shown)
    if short:
        return "\n".join([head, channels, contact.hours])
    timing = ctx.t("contacts.timing", hours=contact.hours, response=contact.response_time)
    languages = ctx.t("contacts.languages", languages=language_names(contact.languages, ctx.t.code))
    return "\n".join([head, contact.description, channels, timing, languages])


def contact_blocks(ctx: Context, contacts: Sequence[Contact], *, short: bool = False) -> list[str]:
    """One block per contact; a number already shown above is named, not repeated.
    `short`: name, channels and hours only, for a screen read in a hurry."""
    return [_block(ctx, contact, shown, short) for contact, shown in lines(contacts)]


def contact_block(ctx: Context, contact: Contact) -> str:
    return contact_blocks(ctx, [contact])[0]


def render_need(ctx: Context, args: Args) -> Screen:
    choices = tuple(ctx.choice(f"need:{n}", f"need.{n}") for n in NEEDS)
    return Screen(ctx.t("contacts.need"), (*choices, *ctx.nav()))


async def choose_need(ctx: Context, args: Args, choice: str) -> bool:
    need = choice.removeprefix("need:")
    if need not in NEEDS:
        return False
    show_contacts(ctx, need)
    return True


def _countries_offered(ctx: Context) -> list[str]:
    """Countries with a local organisation or legal information: a short list of buttons
    (the name of any other country can be typed)."""
    served = {code for c in ctx.t.contacts() if c.scope == "local" for code in c.countries}
    return sorted(served | set(ctx.library.countries()), key=lambda c: country_name(c, ctx.t.code))


def render_country(ctx: Context, args: Args) -> Screen:
    lang = ctx.t.code
    choices = [Choice(f"country:{c}", country_name(c, lang)) for c in _countries_offered(ctx)]
    choices.insert(0, ctx.choice(f"country:{ANYWHERE}", "contacts.anywhere"))
    return Screen(ctx.t("contacts.country"), (*choices, *ctx.nav()), typing=True)


def _remember(ctx: Context, args: Args, country: str) -> None:
    """Remember the country and show the contacts in place of this question, so Back
    leads to where the person asked for help, not to the question again."""
    ctx.state[COUNTRY] = country
    ctx.replace("contacts_results", need=args["need"])


async def choose_country(ctx: Context, args: Args, choice: str) -> bool:
    country = choice.removeprefix("country:")
    if country == choice or (country != ANYWHERE and country not in _countries_offered(ctx)):
        return False
    _remember(ctx, args, country)
    return True


async def type_country(ctx: Context, args: Args, text: str) -> bool:
    country = find_country(text, ctx.library.packs)
    if country is None:
        ctx.notice("country.unknown")
        return True
    _remember(ctx, args, country)
    return True


def _shown_country(ctx: Context, args: Args) -> str | None:
    """A country given with the screen (legal information's), else the remembered one."""
    given = args.get("country")
    country = given if isinstance(given, str) else remembered_country(ctx)
    return None if country == ANYWHERE else country


def render_results(ctx: Context, args: Args) -> Screen:
    need, country = args["need"], _shown_country(ctx, args)
    found = best_contacts(ctx, need, country)
    where = country_name(country, ctx.t.code) if country else ctx.t("contacts.international")
    key = "contacts.results" if found else "contacts.none"
    head = ctx.t(key, need=ctx.t(f"need.{need}"), where=where)
    text = "\n\n".join([head, *contact_blocks(ctx, found)])
    choices = (
        ctx.choice("contacts:country", "contacts.change_country"),
        ctx.choice("contacts:other", "contacts.other"),
        *ctx.nav(),
    )
    return Screen(text, choices, sensitive=True)


async def choose_result(ctx: Context, args: Args, choice: str) -> bool:
    if choice == "contacts:country":
        ctx.replace("contacts_country", need=args["need"])
    elif choice == "contacts:other":
        ctx.go("contacts_need")
    else:
        return False
    return True


SCREENS = (
    screen("contacts_need", render_need, choose_need),
    screen("contacts_country", render_country, choose_country, type_country),
    screen("contacts_results", render_results, choose_result),
)
"""This module's screens, for the router to assemble (`handlers.screens.assemble`)."""
