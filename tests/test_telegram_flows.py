"""Every console flow, end to end: python-telegram-bot → HTTP → emulator, on a real SQLCipher file."""

from __future__ import annotations

from collections import Counter

from bot.content.countries import country_name
from bot.content.languages import telegram_code
from bot.content.script import date_text
from tests.telegram_emulator import Emulator
from tests.telegram_emulator.harness import RunningBot, library, onboard

STEP = "①"


def _no_markup_anywhere(emulator: Emulator) -> None:
    for call in emulator.calls("sendMessage"):
        assert "parse_mode" not in call.params, "text must go out as plain text"
        assert call.status == 200


async def test_the_language_question_is_asked_in_the_app_language(
    emu: Emulator,
    tg: RunningBot,
) -> None:
    ana = emu.user("Ana", "es-MX")
    welcome = await ana.ask("hola")
    assert "¿Qué idioma" in welcome.text
    assert welcome.buttons[0] == "English", "the same order for everyone"
    menu = await ana.choose("Español")
    assert "Ayuda" in menu.buttons
    _no_markup_anywhere(emu)


async def test_main_menu_by_button_and_by_number(emu: Emulator, tg: RunningBot) -> None:
    ana = emu.user()
    menu = await onboard(ana)
    assert "How can I help" in menu.text
    assert "Legal information" in menu.buttons
    number = menu.buttons.index("Legal information") + 1
    legal = await ana.ask(str(number))
    assert "Which country?" in legal.text


async def test_guide_first_step_deeper_back_start_over_and_menu(
    emu: Emulator, tg: RunningBot
) -> None:
    guide = library().translator("en").guide("account-compromised")
    assert guide is not None
    ana = emu.user()
    await onboard(ana)
    safety = await ana.choose("I have a digital security problem")
    assert "physical danger" in safety.text
    await ana.choose("Accounts and messages")
    start = await ana.choose(guide.title)
    assert STEP in start.text
    deeper = await ana.choose(guide.nodes[guide.start].options[0].label)
    assert deeper.text != start.text
    assert (await ana.choose("◂ Back")).text == start.text
    await ana.choose(guide.nodes[guide.start].options[0].label)
    assert (await ana.choose("Start this guide again")).text == start.text
    menu = await ana.choose("Main menu")
    assert "How can I help" in menu.text
    assert f"Continue: {guide.title}" in menu.buttons
    _no_markup_anywhere(emu)


async def test_legal_information_by_typed_country_and_topic(emu: Emulator, tg: RunningBot) -> None:
    ana = emu.user()
    await onboard(ana)
    await ana.choose("Legal information")
    topics = await ana.ask("colombia")
    assert country_name("CO", "en") in topics.text
    answer = await ana.choose("Arrest and detention")
    pages = [answer.text]
    while "More ▸" in answer.buttons:
        answer = await ana.choose("More ▸")
        pages.append(answer.text)
    legal = library().translator("en").legal("CO")
    assert legal is not None
    topic = legal.topics["arrest"]
    full = "\n".join(pages)
    assert str(topic.sources[0].url) in full
    assert f"Last reviewed: {date_text(topic.last_reviewed, 'en')}" in full


async def test_contacts_by_need_and_country(emu: Emulator, tg: RunningBot) -> None:
    ana = emu.user()
    await onboard(ana)
    await ana.choose("People who can help")
    await ana.choose("Digital security")
    anywhere = await ana.choose("Anywhere / prefer not to say")
    assert "Best matches first" in anywhere.text
    await ana.choose("Another kind of help")
    remembered = await ana.choose("Legal aid")
    assert "Legal aid (international)" in remembered.text, "the country is asked once"
    await ana.choose("Change country")
    typed = await ana.ask("Kenya")
    assert "Legal aid (Kenya)" in typed.text


async def test_help_cancel_and_language_commands(emu: Emulator, tg: RunningBot) -> None:
    ana = emu.user()
    await onboard(ana)
    help_screen = await ana.ask("/help")
    for command in ("/menu", "/cancel", "/language", "/forget"):
        assert command in help_screen.text
    await ana.choose("Main menu")
    await ana.choose("I have a digital security problem")
    cancelled = await ana.ask("/cancel")
    assert cancelled.text.startswith("Stopped.")
    await ana.ask("/language")
    french = await ana.choose("Français")
    assert "Aide" in french.buttons


async def test_forget_asks_then_wipes_the_chat(emu: Emulator, tg: RunningBot) -> None:
    ana = emu.user()
    await onboard(ana)
    await ana.choose("Legal information")
    confirm = await ana.ask("/forget")
    assert "Delete everything now?" in confirm.text
    kept = await ana.choose("No, keep it")
    assert "Which country?" in kept.text
    before = len(ana.seen())
    await ana.ask("/forget")
    await ana.press("Yes, delete everything")
    done = (await ana.answer(count=1)).last
    assert done.text is not None and done.text.startswith("Done.")
    await emu.world.wait_for(lambda: len(ana.seen()) == 1)
    assert ana.seen() == [done], f"{before} messages were in the chat"
    again = await ana.ask("hello")
    assert "Which language" in again.text


async def test_command_menu_is_set_per_language(emu: Emulator, tg: RunningBot) -> None:
    commands = emu.world.commands
    default = {c["command"]: c["description"] for c in commands[("default", "")]}
    assert default["forget"] == "Delete everything the bot keeps about you"
    assert set(default) == {"sos", "menu", "help", "cancel", "language", "forget"}
    assert next(iter(default)) == "sos", "first on Telegram's command list"
    for code in library().packs:
        if code != "en":
            assert ("default", telegram_code(code)) in commands, "zh-Hant's menu is Telegram's zh"
    chinese = {c["command"]: c["description"] for c in commands[("default", "zh")]}
    assert chinese["forget"] == library().translator("zh-Hant")("commands.forget")


async def test_two_people_at_once_keep_their_own_screens(emu: Emulator, tg: RunningBot) -> None:
    ana, ben = emu.user("Ana"), emu.user("Ben", "fr")
    await onboard(ana)
    await onboard(ben, "Français")
    await ana.choose("Legal information")
    ben_menu = await ben.ask("/menu")
    assert "Aide" in ben_menu.buttons
    assert "Which country?" in (await ana.ask("nowhere at all")).text


async def test_a_reply_costs_one_bot_api_call_and_a_press_one_more_beside_it(
    emu: Emulator, tg: RunningBot
) -> None:
    """Issue 16: nothing but the `sendMessage` itself on a reply's path (besides polling);
    a button press adds only its `answerCallbackQuery`, sent beside the reply."""
    ana = emu.user()
    await onboard(ana)
    start = len(emu.world.calls)
    for text in ("Legal information", "1", "/menu", "/help", "/menu"):
        await ana.ask(text)
    await ana.choose("Legal information")
    made = Counter(c.method for c in emu.world.calls[start:] if c.method != "getUpdates")
    assert made == {"sendMessage": 6, "answerCallbackQuery": 1}
