"""The risk report interview: one question per screen, every answer sealed as it arrives.

The session keeps only which questions are answered; answers go straight to the case
desk, which seals them. After a restart the bot can say what is answered, not what.
"""

from __future__ import annotations

from typing import Any

from bot.content.countries import country_name, find_country
from bot.content.schema import Question
from bot.model import MAX_ATTACHMENT_BYTES, Choice
from handlers.context import Args, Context, Screen
from handlers.numbers import choice_index
from handlers.screens import screen

__all__ = [
    "LABEL_CHARS",
    "SCREENS",
    "abandon",
    "attached",
    "choose_in_question",
    "choose_in_review",
    "choose_intro",
    "render_intro",
    "render_question",
    "render_review",
    "type_answer",
]

LABEL_CHARS = 40


def _draft(ctx: Context) -> dict[str, Any] | None:
    draft = ctx.state.get("report")
    return draft if isinstance(draft, dict) else None


def _questions(ctx: Context) -> tuple[Question, ...]:
    return ctx.t.interview().questions


def render_intro(ctx: Context, args: Args) -> Screen:
    draft = _draft(ctx)
    if draft is None:
        choices = (ctx.choice("report:start", "report.start"), *ctx.nav())
        return Screen(ctx.t.interview().intro, choices)
    questions = _questions(ctx)
    text = ctx.t("report.resumed", answered=len(draft["answered"]), total=len(questions))
    status = "\n".join(_status(ctx, draft, q) for q in questions)
    choices = (
        ctx.choice("report:continue", "report.continue"),
        ctx.choice("report:review", "report.send"),
        *_stop(ctx),
    )
    return Screen(f"{text}\n\n{status}", choices, sensitive=True)


def _status(ctx: Context, draft: dict[str, Any], question: Question) -> str:
    key = "report.answered" if question.id in draft["answered"] else "report.unanswered"
    return ctx.t(key, question=_short(question.text))


async def choose_intro(ctx: Context, args: Args, choice: str) -> bool:
    if choice == "report:start" and ctx.desk is not None:
        case = await ctx.desk.open_draft(ctx.msg.user, ctx.msg.chat, ctx.t.code)
        if case is None:
            ctx.notice("report.unavailable")
            return True
        ctx.state["report"] = {"case": case, "answered": [], "skipped": []}
        ctx.replace("report_question", i=0)
        return True
    if (draft := _draft(ctx)) and choice in ("report:review", "report:continue"):
        done = {*draft["answered"], *draft["skipped"]}
        left = [i for i, q in enumerate(_questions(ctx)) if q.id not in done]
        if choice == "report:continue" and left:
            ctx.replace("report_question", i=left[0])
        else:
            ctx.replace("report_review")
        return True
    return await _stop_choice(ctx, choice)


def _stop(ctx: Context) -> tuple[Choice, ...]:
    return (ctx.choice("report:stop", "report.stop"),)


async def _stop_choice(ctx: Context, choice: str) -> bool:
    if choice != "report:stop":
        return False
    await abandon(ctx)
    ctx.home()
    ctx.notice("report.cancelled")
    return True


async def abandon(ctx: Context) -> None:
    """Delete an unsent draft (on /cancel, "stop", or /forget)."""
    draft = ctx.state.pop("report", None)
    if isinstance(draft, dict) and ctx.desk is not None:
        await ctx.desk.discard(draft["case"])


def render_question(ctx: Context, args: Args) -> Screen:
    questions = _questions(ctx)
    draft = _draft(ctx)
    if draft is None:
        return render_intro(ctx, args)
    question = questions[args["i"]]
    head = ctx.t("report.progress", number=args["i"] + 1, total=len(questions))
    choices = [Choice(f"answer:{key}", label) for key, label in question.choices.items()]
    choices.append(ctx.choice("report:skip", "report.skip"))
    if args["i"] > 0:
        choices.append(ctx.choice("report:previous", "report.previous"))
    choices += _stop(ctx)
    typing = question.kind != "choice"
    return Screen(
        f"{head}\n\n{question.text}", tuple(choices), sensitive=True, typing=typing, words=typing
    )


def _advance(ctx: Context, args: Args, question: Question, answered: bool) -> None:
    draft = _draft(ctx)
    assert draft is not None
    done, other = ("answered", "skipped") if answered else ("skipped", "answered")
    if question.id not in draft[done]:
        draft[done].append(question.id)
    if question.id in draft[other] and answered:
        draft[other].remove(question.id)
    if args.get("review") or args["i"] + 1 >= len(_questions(ctx)):
        ctx.replace("report_review")
    else:
        ctx.replace("report_question", i=args["i"] + 1)


async def _save(ctx: Context, args: Args, question: Question, value: str) -> None:
    draft = _draft(ctx)
    assert draft is not None and ctx.desk is not None
    await ctx.desk.record(draft["case"], f"answer.{question.id}", value.encode())
    if question.id == "where":
        await ctx.desk.route(draft["case"], country=value)
    elif question.id == "urgency":
        await ctx.desk.route(draft["case"], urgency=value)
    ctx.notice("report.saved")
    _advance(ctx, args, question, answered=True)


async def choose_in_question(ctx: Context, args: Args, choice: str) -> bool:
    question = _questions(ctx)[args["i"]]
    if choice.startswith("answer:") and choice.removeprefix("answer:") in question.choices:
        await _save(ctx, args, question, choice.removeprefix("answer:"))
    elif choice == "report:skip":
        ctx.notice("report.skipped")
        _advance(ctx, args, question, answered=False)
    elif choice == "report:previous" and args["i"] > 0:
        ctx.replace("report_question", i=args["i"] - 1)
    else:
        return await _stop_choice(ctx, choice)
    return True


async def type_answer(ctx: Context, args: Args, text: str) -> bool:
    question = _questions(ctx)[args["i"]]
    if question.kind == "choice":
        ctx.notice("report.choose")
        return True
    if question.kind == "country":
        country = find_country(text, ctx.library.packs)
        if country is None:
            ctx.notice("country.unknown")
            return True
        text = country
    await _save(ctx, args, question, text)
    return True


async def attached(ctx: Context) -> None:
    """A file sent during the interview: sealed with the first question (its caption as an
    item of its own), refused elsewhere."""
    draft, attachment = _draft(ctx), ctx.msg.attachment
    name, args = ctx.at
    assert attachment is not None
    if draft is None or name != "report_question" or not _questions(ctx)[args["i"]].attachments:
        ctx.notice("report.attachment_here")
    elif attachment.data is None or attachment.size > MAX_ATTACHMENT_BYTES:
        ctx.notice("report.attachment_too_big", limit=MAX_ATTACHMENT_BYTES // (1024 * 1024))
    elif ctx.desk is not None:
        count = int(draft.get("files", 0))
        header = f"{attachment.media_type}\n{attachment.name}\n".encode()
        await ctx.desk.record(draft["case"], f"attachment.{count}", header + attachment.data)
        if caption := (ctx.msg.text or "").strip():
            await ctx.desk.record(draft["case"], f"caption.{count}", caption.encode())
        draft["files"] = count + 1
        ctx.notice("report.attachment_saved")


def _short(text: str) -> str:
    line = text.strip().split("\n")[0]
    return line if len(line) <= LABEL_CHARS else line[: LABEL_CHARS - 1] + "…"


def _answer_shown(ctx: Context, question: Question, answer: str | None) -> str | None:
    """An answer as the review shows it: a choice's label, a country's name."""
    if answer is None:
        return None
    if question.kind == "country":
        return country_name(answer, ctx.t.code)
    return question.choices.get(answer, answer)


def render_review(ctx: Context, args: Args) -> Screen:
    draft = _draft(ctx)
    if draft is None or ctx.desk is None:
        return render_intro(ctx, args)
    known = ctx.desk.peek(draft["case"])
    lines, choices = [], []
    for i, question in enumerate(_questions(ctx)):
        mark = _status(ctx, draft, question)
        answer = (known or {}).get(f"answer.{question.id}")
        shown = _answer_shown(ctx, question, answer)
        lines.append(mark + (f"\n   {shown}" if shown else ""))
        choices.append(Choice(f"report:edit:{i}", mark))
    head = ctx.t("report.review" if known is not None else "report.review_sealed")
    text = "\n\n".join([head, "\n".join(lines)])
    choices = [ctx.choice("report:send", "report.send"), *choices, *_stop(ctx)]
    return Screen(text, tuple(choices), sensitive=True)


async def choose_in_review(ctx: Context, args: Args, choice: str) -> bool:
    draft = _draft(ctx)
    if draft is None or ctx.desk is None:
        return False
    if choice == "report:send":
        told = await ctx.desk.submit(draft["case"])
        del ctx.state["report"]
        ctx.home()
        ctx.notice("report.sent" if told else "report.sent_trying", case=draft["case"])
        ctx.sensitive = True
        return True
    index = choice_index(choice, "report:edit:")
    if index is not None and index < len(_questions(ctx)):
        ctx.replace("report_question", i=index, review=True)
        return True
    return await _stop_choice(ctx, choice)


SCREENS = (
    screen("report_intro", render_intro, choose_intro),
    screen("report_question", render_question, choose_in_question, type_answer),
    screen("report_review", render_review, choose_in_review),
)
"""This module's screens, for the router to assemble (`handlers.screens.assemble`)."""
