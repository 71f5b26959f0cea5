"""Troubleshooting guides: the danger question first (its "no" answers are the topics), then
a topic's guides, then a decision tree with a way back: a first step in three taps."""

from __future__ import annotations

from bot.content.library import FALLBACK
from bot.content.schema import GUIDE_TOPICS, NEEDS, Guide, contacts_need
from bot.model import Choice
from handlers.contacts import best_contacts, contact_blocks, remembered_country, show_contacts
from handlers.context import Args, Context, Screen
from handlers.numbers import choice_index
from handlers.referrals import distinct
from handlers.screens import screen
from handlers.sos import OPEN as SOS
from handlers.sos import open_sos

__all__ = [
    "DANGER_CONTACTS",
    "SCREENS",
    "STEP_MARKS",
    "choose_danger",
    "choose_guide",
    "choose_in_guide",
    "choose_topic",
    "render_danger",
    "render_guide",
    "render_guides",
    "render_topic",
    "render_topics",
]

DANGER_CONTACTS = 2


def _topic_choices(ctx: Context) -> tuple[Choice, ...]:
    present = {g.topic for g in ctx.library.packs[FALLBACK].guides.values()}
    return tuple(
        ctx.choice(f"topic:{topic}", f"topic.{topic}") for topic in GUIDE_TOPICS if topic in present
    )


def render_guides(ctx: Context, args: Args) -> Screen:
    """Safety first: the danger question, with the topics as the ways of answering "no"."""
    text = f"{ctx.t('safety.text')}\n\n{ctx.t('guides.topics')}"
    danger = ctx.choice("safety:yes", "safety.yes")
    return Screen(text, (danger, *_topic_choices(ctx), *ctx.nav()))


def render_topics(ctx: Context, args: Args) -> Screen:
    """The topics again, once the person has seen who protects people in danger."""
    return Screen(ctx.t("guides.text"), (*_topic_choices(ctx), *ctx.nav()))


async def choose_topic(ctx: Context, args: Args, choice: str) -> bool:
    if choice == "safety:yes":
        ctx.go("danger")
        return True
    topic = choice.removeprefix("topic:")
    if topic == choice or topic not in GUIDE_TOPICS:
        return False
    ctx.go("topic", topic=topic)
    return True


def _in_topic(ctx: Context, topic: str) -> list[Guide]:
    english = ctx.library.packs[FALLBACK].guides
    return [g for g in ctx.t.guides() if (e := english.get(g.id)) is not None and e.topic == topic]


def render_topic(ctx: Context, args: Args) -> Screen:
    choices = tuple(Choice(f"guide:{g.id}", g.title) for g in _in_topic(ctx, args["topic"]))
    return Screen(
        f"{ctx.t('topic.' + args['topic'])}\n\n{ctx.t('guides.text')}", (*choices, *ctx.nav())
    )


async def choose_guide(ctx: Context, args: Args, choice: str) -> bool:
    guide = ctx.t.guide(choice.removeprefix("guide:"))
    if not choice.startswith("guide:") or guide is None:
        return False
    ctx.go("guide", guide=guide.id, node=guide.start)
    return True


def render_danger(ctx: Context, args: Args) -> Screen:
    """Physical protection for the country already given (never asked here: no delay), two
    organisations with two different lines rather than one line twice."""
    found = best_contacts(ctx, "physical", remembered_country(ctx))
    blocks = contact_blocks(ctx, distinct(found, DANGER_CONTACTS), short=True)
    text = "\n\n".join([ctx.t("danger.text"), *blocks])
    choices = (
        ctx.choice(SOS, "danger.sos"),
        ctx.choice("danger:contacts", "danger.contacts"),
        ctx.choice("danger:continue", "danger.continue"),
        *ctx.nav(back=False),
    )
    return Screen(text, choices, sensitive=True)


async def choose_danger(ctx: Context, args: Args, choice: str) -> bool:
    if choice == "danger:continue":
        ctx.replace("topics")
        return True
    if choice == "danger:contacts":
        show_contacts(ctx, "physical")
        return True
    if choice == SOS:
        await open_sos(ctx)
        return True
    return False


STEP_MARKS = "①②③④⑤⑥⑦⑧⑨⑩"


def _steps(guide: Guide, node_id: str) -> str:
    """Steps are marked ①②③ so they never look like the numbered choices below them."""
    node = guide.nodes[node_id]
    marks = [STEP_MARKS[i] if i < len(STEP_MARKS) else "•" for i in range(len(node.steps))]
    steps = "\n".join(f"{mark} {step}" for mark, step in zip(marks, node.steps, strict=True))
    return "\n\n".join(part for part in (node.text, steps) if part)


def render_guide(ctx: Context, args: Args) -> Screen:
    guide = ctx.t.guide(args["guide"])
    if guide is None or args["node"] not in guide.nodes:
        ctx.notice("guide.gone")
        return Screen(ctx.t("guide.gone_text"), ctx.nav(back=False))
    node = guide.nodes[args["node"]]
    choices = [Choice(f"opt:{i}", option.label) for i, option in enumerate(node.options)]
    if node.options:
        ctx.state["resume"] = {"guide": guide.id, "node": args["node"]}
    else:
        ctx.state.pop("resume", None)
        choices.append(ctx.choice("guide:contacts", "guide.contacts"))
    if args["node"] != guide.start:
        choices.append(ctx.choice("guide:restart", "guide.restart"))
    return Screen(f"{guide.title}\n\n{_steps(guide, args['node'])}", (*choices, *ctx.nav()))


async def choose_in_guide(ctx: Context, args: Args, choice: str) -> bool:
    guide = ctx.t.guide(args["guide"])
    if guide is None or args["node"] not in guide.nodes:
        return False
    if choice == "guide:restart":
        ctx.go("guide", guide=guide.id, node=guide.start)
        return True
    if choice == "guide:contacts":
        show_contacts(ctx, guide.needs[0])
        return True
    options = guide.nodes[args["node"]].options
    index = choice_index(choice, "opt:")
    if index is None or index >= len(options):
        return False
    target = options[index].next
    need = contacts_need(target)
    if target == "@menu":
        ctx.home()
    elif need is not None:
        show_contacts(ctx, need if need in NEEDS else guide.needs[0])
    else:
        ctx.go("guide", guide=guide.id, node=target)
    return True


SCREENS = (
    screen("guides", render_guides, choose_topic),
    screen("topics", render_topics, choose_topic),
    screen("topic", render_topic, choose_guide),
    screen("danger", render_danger, choose_danger),
    screen("guide", render_guide, choose_in_guide),
)
"""This module's screens, for the router to assemble (`handlers.screens.assemble`)."""
