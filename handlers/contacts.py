"""Emergency contacts filtered by need, country and language, best matches first."""

from __future__ import annotations

from bot.content.schema import NEEDS, Contact
from bot.countries import country_name, find_country
from bot.model import Choice
from handlers.context import Args, Context, Screen
from handlers.screens import screen

ANYWHERE = "*"


def best_contacts(ctx: Context, need: str, country: str | None) -> list[Contact]:
    """Serving the country beats international; speaking the user's language breaks ties."""
    language = ctx.t.code
    scored: list[tuple[int, int, int, Contact]] = []
    for order, contact in enumerate(ctx.t.contacts()):
        if need not in contact.needs:
            continue
        if country and country in contact.countries:
            place = 2
        elif ANYWHERE in contact.countries:
            place = 1
        else:
            continue
        scored.append((-place, -(language in contact.languages), order, contact))
    return [contact for *_, contact in sorted(scored, key=lambda s: s[:3])]


def contact_block(ctx: Context, contact: Contact) -> str:
    channels = "\n".join(f"• {ctx.t('channel.' + c.kind)}: {c.value}" for c in contact.channels)
    timing = ctx.t("contacts.timing", hours=contact.hours, response=contact.response_time)
    languages = ", ".join(contact.languages)
    return "\n".join(
        [
            contact.name,
            contact.description,
            channels,
            timing,
            ctx.t("contacts.languages", languages=languages),
        ]
    )


def render_need(ctx: Context, args: Args) -> Screen:
    choices = tuple(ctx.choice(f"need:{n}", f"need.{n}") for n in NEEDS)
    return Screen(ctx.t("contacts.need"), (*choices, *ctx.nav()))


async def choose_need(ctx: Context, args: Args, choice: str) -> bool:
    need = choice.removeprefix("need:")
    if need not in NEEDS:
        return False
    ctx.go("contacts_country", need=need)
    return True


def _countries_offered(ctx: Context) -> list[str]:
    served = {code for c in ctx.t.contacts() for code in c.countries if code != ANYWHERE}
    return sorted(served | set(ctx.library.countries()), key=lambda c: country_name(c, ctx.t.code))


def render_country(ctx: Context, args: Args) -> Screen:
    lang = ctx.t.code
    choices = [Choice(f"country:{c}", country_name(c, lang)) for c in _countries_offered(ctx)]
    choices.insert(0, ctx.choice(f"country:{ANYWHERE}", "contacts.anywhere"))
    return Screen(ctx.t("contacts.country"), (*choices, *ctx.nav()), typing=True)


async def choose_country(ctx: Context, args: Args, choice: str) -> bool:
    country = choice.removeprefix("country:")
    if country == choice:
        return False
    ctx.go("contacts_results", need=args["need"], country=None if country == ANYWHERE else country)
    return True


async def type_country(ctx: Context, args: Args, text: str) -> bool:
    country = find_country(text, ctx.library.packs)
    if country is None:
        ctx.notice("country.unknown")
        return True
    ctx.go("contacts_results", need=args["need"], country=country)
    return True


def render_results(ctx: Context, args: Args) -> Screen:
    need, country = args["need"], args.get("country")
    found = best_contacts(ctx, need, country)
    where = country_name(country, ctx.t.code) if country else ctx.t("contacts.international")
    head = ctx.t("contacts.results", need=ctx.t(f"need.{need}"), where=where)
    if not found:
        head = ctx.t("contacts.none", need=ctx.t(f"need.{need}"), where=where)
    text = "\n\n".join([head, *(contact_block(ctx, c) for c in found)])
    choices = (ctx.choice("contacts:other", "contacts.other"), *ctx.nav())
    return Screen(text, choices, sensitive=True)


async def choose_result(ctx: Context, args: Args, choice: str) -> bool:
    if choice != "contacts:other":
        return False
    ctx.go("contacts_need")
    return True


screen("contacts_need", render_need, choose_need)
screen("contacts_country", render_country, choose_country, type_country)
screen("contacts_results", render_results, choose_result)
