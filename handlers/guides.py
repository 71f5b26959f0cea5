"""Troubleshooting guides: the safety question first, then a decision tree with a way back."""

from __future__ import annotations

from bot.content.schema import NEEDS, Guide, contacts_need
from bot.model import Choice
from handlers.contacts import best_contacts, contact_blocks, remembered_country, show_contacts
from handlers.context import Args, Context, Screen
from handlers.numbers import choice_index
from handlers.referrals import distinct
from handlers.screens import screen
from handlers.sos import OPEN as SOS
from handlers.sos import open_sos

DANGER_CONTACTS = 2


def render_guides(ctx: Context, args: Args) -> Screen:
    guides = ctx.t.guides()
    choices = tuple(Choice(f"guide:{g.id}", g.title) for g in guides)
    return Screen(ctx.t("guides.text"), (*choices, *ctx.nav()))


async def choose_guide(ctx: Context, args: Args, choice: str) -> bool:
    guide_id = choice.removeprefix("guide:")
    if guide_id == choice or ctx.t.guide(guide_id) is None:
        return False
    ctx.go("safety", guide=guide_id)
    return True


def render_safety(ctx: Context, args: Args) -> Screen:
    return Screen(
        ctx.t("safety.text"),
        (
            ctx.choice("safety:no", "safety.no"),
            ctx.choice("safety:yes", "safety.yes"),
            *ctx.nav(),
        ),
    )


def _open(ctx: Context, guide_id: str) -> bool:
    guide = ctx.t.guide(guide_id)
    if guide is None:
        return False
    ctx.replace("guide", guide=guide.id, node=guide.start)
    return True


async def choose_safety(ctx: Context, args: Args, choice: str) -> bool:
    if choice == "safety:no":
        return _open(ctx, args["guide"])
    if choice == "safety:yes":
        ctx.replace("danger", guide=args["guide"])
        return True
    return False


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
        ctx.go("safety", **args)
        return _open(ctx, args["guide"])
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


screen("guides", render_guides, choose_guide)
screen("safety", render_safety, choose_safety)
screen("danger", render_danger, choose_danger)
screen("guide", render_guide, choose_in_guide)
