"""Legal information by country and topic, with sources, review date and a sample warning."""

from __future__ import annotations

from bot.content.countries import country_name, find_country
from bot.content.schema import TOPICS
from bot.model import Choice
from handlers.context import Args, Context, Screen
from handlers.screens import screen

__all__ = [
    "SCREENS",
    "choose_country",
    "choose_in_topic",
    "choose_topic",
    "render_countries",
    "render_topic",
    "render_topics",
    "type_country",
]


def _aliases(ctx: Context) -> list[tuple[str, str]]:
    return [
        (name, legal.country)
        for pack in ctx.library.packs.values()
        for legal in pack.legal.values()
        for name in legal.names
    ]


def render_countries(ctx: Context, args: Args) -> Screen:
    lang = ctx.t.code
    codes = sorted(ctx.library.countries(), key=lambda c: country_name(c, lang))
    choices = tuple(Choice(f"country:{c}", country_name(c, lang)) for c in codes)
    return Screen(ctx.t("legal.countries"), (*choices, *ctx.nav()), typing=True)


def _open_country(ctx: Context, country: str) -> None:
    if country in ctx.library.countries():
        ctx.go("legal_topics", country=country)
    else:
        ctx.notice("legal.no_country", country=country_name(country, ctx.t.code))


async def choose_country(ctx: Context, args: Args, choice: str) -> bool:
    country = choice.removeprefix("country:")
    if country == choice:
        return False
    _open_country(ctx, country)
    return True


async def type_country(ctx: Context, args: Args, text: str) -> bool:
    country = find_country(text, ctx.library.packs, _aliases(ctx))
    if country is None:
        ctx.notice("country.unknown")
    else:
        _open_country(ctx, country)
    return True


def render_topics(ctx: Context, args: Args) -> Screen:
    legal = ctx.t.legal(args["country"])
    name = country_name(args["country"], ctx.t.code)
    if legal is None:
        return Screen(ctx.t("legal.no_country", country=name), ctx.nav())
    choices = [ctx.choice(f"topic:{t}", f"topic.{t}") for t in TOPICS if t in legal.topics]
    choices.append(ctx.choice("legal:contacts", "legal.contacts"))
    text = ctx.t("legal.topics", country=name)
    if legal.sample:
        text += "\n\n" + ctx.t("legal.sample")
    return Screen(text, (*choices, *ctx.nav()))


async def choose_topic(ctx: Context, args: Args, choice: str) -> bool:
    if choice == "legal:contacts":
        ctx.go("contacts_results", need="legal", country=args["country"])
        return True
    topic = choice.removeprefix("topic:")
    legal = ctx.t.legal(args["country"])
    if legal is None or topic not in legal.topics:
        return False
    ctx.go("legal_topic", country=args["country"], topic=topic)
    return True


def render_topic(ctx: Context, args: Args) -> Screen:
    legal = ctx.t.legal(args["country"])
    if legal is None or (item := legal.topics.get(args["topic"])) is None:
        return Screen(ctx.t("guide.gone_text"), ctx.nav())
    sources = "\n".join(f"• {s.title}: {s.url}" for s in item.sources)
    parts = [
        f"{ctx.t('topic.' + args['topic'])} — {country_name(args['country'], ctx.t.code)}",
        item.text,
        f"{ctx.t('legal.sources')}\n{sources}",
        ctx.t("legal.reviewed", date=item.last_reviewed),
    ]
    if legal.sample:
        parts.append(ctx.t("legal.sample"))
    choices = (ctx.choice("legal:contacts", "legal.contacts"), *ctx.nav())
    return Screen("\n\n".join(parts), choices)


async def choose_in_topic(ctx: Context, args: Args, choice: str) -> bool:
    if choice != "legal:contacts":
        return False
    ctx.go("contacts_results", need="legal", country=args["country"])
    return True


SCREENS = (
    screen("legal_countries", render_countries, choose_country, type_country),
    screen("legal_topics", render_topics, choose_topic),
    screen("legal_topic", render_topic, choose_in_topic),
)
"""This module's screens, for the router to assemble (`handlers.screens.assemble`)."""
