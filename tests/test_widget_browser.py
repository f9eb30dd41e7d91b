"""The website chat widget in a real browser: Debian's Chromium, Playwright, the real bot.

The demo page (/demo) embeds the widget with its one <script> tag; every test
drives it as a citizen would and checks what the page shows. Each test has its
own browser context, so storage never leaks between tests.
"""
from __future__ import annotations

import json
import re
import sqlite3
import time
from typing import Any, Dict, List

import pytest

from tests.browser import (axe_violations, bot_texts, chromium, click_reply,  # noqa: F401 (fixture)
                           describe_violations, horizontal_overflow, new_page, say, small_targets, tab_to,
                           wait_idle)
from tests.servers import ROOT, start_bot

SCREENSHOT = ROOT / "docs" / "img" / "widget.png"
SESSION_KEY = "gemeentechat.session"
TARGETS = ".gc-root button, .gc-root input"
SPEECH_SPY = """
window.__spoken = [];
if (window.speechSynthesis) {
  window.speechSynthesis.speak = (u) => { window.__spoken.push({ text: u.text, lang: u.lang }); };
  window.speechSynthesis.cancel = () => {};
}
"""


@pytest.fixture(scope="module")
def bot(tmp_path_factory):
    running = start_bot(tmp_path_factory.mktemp("widget-browser"))
    yield running
    running.stop()


# ----------------------------------------------------------------------------- helpers


def load_demo(page: Any, bot: Any, path: str = "/demo") -> None:
    page.goto(bot.rasa_url + path)
    page.wait_for_selector('.gc-root[data-ready="true"]', state="attached")


def open_chat(browser: Any, bot: Any, **kwargs: Any) -> Any:
    """A page with the chat open and the greeting (with its menu buttons) shown."""
    page = new_page(browser, **kwargs)
    load_demo(page, bot)
    page.locator(".gc-launcher").click()
    page.wait_for_selector(".gc-msg--bot .gc-reply")
    wait_idle(page)
    return page


def user_texts(page: Any) -> List[str]:
    return [t.removeprefix("U:").strip() for t in page.locator(".gc-msg--user .gc-bubble").all_inner_texts()]


def reply_titles(page: Any) -> List[str]:
    return page.locator(".gc-replies .gc-reply").all_inner_texts()


def stored_session(page: Any) -> Dict[str, str]:
    return json.loads(page.evaluate(f"() => sessionStorage.getItem('{SESSION_KEY}')") or "null")


def last_user_metadata(bot: Any, sender_id: str) -> Dict[str, Any]:
    with sqlite3.connect(bot.workdir / "tracker.db") as db:
        row = db.execute("SELECT data FROM events WHERE sender_id = ? AND type_name = 'user' "
                         "ORDER BY id DESC LIMIT 1", (sender_id,)).fetchone()
    return json.loads(row[0]).get("metadata") or {}


# ----------------------------------------------------------------------------- tests


def test_full_melding_flow_by_typing_and_clicking(chromium, bot):
    page = open_chat(chromium, bot)
    assert "Hallo, ik ben Zoë" in bot_texts(page)[0]
    assert page.locator(".gc-title").inner_text() == "Zoë"

    say(page, "er ligt een losse stoeptegel voor mijn deur")
    assert "Waar is het probleem?" in bot_texts(page)[-1]
    link = page.locator('.gc-bubble a[href="https://www.bergenopzoom.nl/melding"]')
    assert link.get_attribute("rel") == "noopener noreferrer"
    assert link.get_attribute("target") == "_blank"

    say(page, "Kerkstraat bij de speeltuin")
    say(page, "De tegel ligt los en steekt omhoog")
    assert "foto" in bot_texts(page)[-1].lower()
    click_reply(page, "Geen foto")
    assert user_texts(page)[-1] == "Geen foto"
    click_reply(page, "Liever niet")
    assert "Klopt dit?" in bot_texts(page)[-1]
    assert "Kerkstraat bij de speeltuin" in bot_texts(page)[-2]
    assert reply_titles(page)[:2] == ["Ja, het klopt", "Nee, iets aanpassen"]

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.mouse.move(5, 5)  # no hover effect in the picture
    page.screenshot(path=str(SCREENSHOT))

    click_reply(page, "Ja, het klopt")
    shown = "\n".join(bot_texts(page))
    match = re.search(r"Uw nummer is (BOZ-\d{4}-\d{6})", shown)
    assert match, shown
    cases = {case["zaaknummer"]: case for case in bot.cases()}
    assert cases[match.group(1)]["zaaktype"] == "melding_openbare_ruimte"
    assert cases[match.group(1)]["channel"] == "website"

    session = stored_session(page)
    metadata = last_user_metadata(bot, session["id"])
    assert metadata["channel"] == "website"
    assert metadata["page_url"] == f"{bot.rasa_url}/demo"
    assert metadata["button_title"] == "Ja, het klopt"
    assert page.errors == [] and page.dialogs == []
    page.context.close()


def test_reload_and_another_page_keep_history_and_open_flow(chromium, bot):
    page = open_chat(chromium, bot)
    say(page, "er ligt een losse stoeptegel voor mijn deur")
    say(page, "Kerkstraat bij de speeltuin")
    assert "Wat is er aan de hand?" in bot_texts(page)[-1]
    session = stored_session(page)

    page.reload()
    page.wait_for_selector(".gc-msg--user", state="visible")
    wait_idle(page)
    assert page.locator("#gc-panel").is_visible()
    assert user_texts(page) == ["er ligt een losse stoeptegel voor mijn deur", "Kerkstraat bij de speeltuin"]
    assert "Wat is er aan de hand?" in bot_texts(page)[-1]
    assert reply_titles(page) == ["Wat bedoelt u?", "Stoppen", "Medewerker"]
    assert stored_session(page)["id"] == session["id"]

    # Another page of the same site: the open flow continues where it was.
    load_demo(page, bot, "/demo?pagina=afval")
    page.wait_for_selector(".gc-msg--user", state="visible")
    wait_idle(page)
    page.evaluate("() => window.GemeenteChat.setIdentityToken('header.payload.signature')")
    say(page, "De tegel ligt los en steekt omhoog")
    assert "foto" in bot_texts(page)[-1].lower()
    assert len(user_texts(page)) == 3
    metadata = last_user_metadata(bot, session["id"])
    assert metadata["identity_token"] == "header.payload.signature"
    assert metadata["page_url"] == f"{bot.rasa_url}/demo"  # without the query string
    assert page.errors == []
    page.context.close()


def test_keyboard_only(chromium, bot):
    page = new_page(chromium)
    load_demo(page, bot)
    assert tab_to(page, "el => el.classList.contains('gc-launcher')")
    page.keyboard.press("Enter")
    page.wait_for_selector(".gc-msg--bot .gc-reply")
    wait_idle(page)
    assert page.evaluate("() => document.activeElement.id") == "gc-input"

    page.keyboard.type("hallo")
    page.keyboard.press("Enter")
    wait_idle(page)
    assert page.evaluate("() => document.activeElement.id") == "gc-input"
    assert user_texts(page) == ["hallo"]

    assert tab_to(page, "el => el.classList.contains('gc-reply') && el.textContent === 'Contact en openingstijden'",
                  shift=True)
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # a visible focus indicator
    page.keyboard.press("Enter")
    wait_idle(page)
    assert user_texts(page)[-1] == "Contact en openingstijden"
    assert "14 0164" in "\n".join(bot_texts(page)[-3:])
    assert page.evaluate("() => document.activeElement.id") == "gc-input"

    page.keyboard.press("Escape")
    assert page.locator("#gc-panel").is_hidden()
    assert page.evaluate("() => document.activeElement.id") == "gc-launcher"
    assert page.get_attribute("#gc-launcher", "aria-expanded") == "false"
    page.keyboard.press("Enter")
    assert page.locator("#gc-panel").is_visible()
    assert page.evaluate("() => document.activeElement.id") == "gc-input"
    page.context.close()


def test_axe_has_no_wcag21_aa_violations_in_normal_and_high_contrast(chromium, bot):
    page = open_chat(chromium, bot)
    say(page, "er ligt een losse stoeptegel voor mijn deur")
    assert page.locator(".gc-reply").count() >= 3 and page.locator(".gc-bubble a").count() >= 1

    violations = axe_violations(page)
    assert violations == [], describe_violations(violations)
    assert small_targets(page, TARGETS) == []

    base_size = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector('.gc-bubble')).fontSize)")
    page.locator(".gc-contrast").click()
    for _ in range(4):
        page.locator(".gc-larger").click()
    assert page.get_attribute(".gc-contrast", "aria-pressed") == "true"
    assert page.get_attribute(".gc-larger", "aria-disabled") == "true"
    large_size = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector('.gc-bubble')).fontSize)")
    assert large_size >= 1.7 * base_size
    violations = axe_violations(page)
    assert violations == [], describe_violations(violations)
    assert small_targets(page, TARGETS) == []

    # 320 px wide (and 200 % zoom of a 1280 px screen): the chat fills the window, nothing scrolls sideways.
    for width, height in ((320, 640), (640, 400)):
        page.set_viewport_size({"width": width, "height": height})
        box = page.locator("#gc-panel").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5
        assert horizontal_overflow(page) == 0
        panel_overflow = page.evaluate(
            "() => { const p = document.querySelector('#gc-panel'); return p.scrollWidth - p.clientWidth; }")
        assert panel_overflow <= 0
        page.locator("#gc-input").scroll_into_view_if_needed()  # reachable, if need be by scrolling
        input_box = page.locator("#gc-input").bounding_box()
        assert input_box["y"] + input_box["height"] <= height + 0.5
        violations = axe_violations(page)
        assert violations == [], describe_violations(violations)

    page.locator(".gc-contrast").click()  # back to the normal theme, at 320 px
    violations = axe_violations(page)
    assert violations == [], describe_violations(violations)
    page.context.close()


def test_xss_payloads_are_shown_as_text(chromium, bot):
    page = open_chat(chromium, bot)
    page.evaluate("() => { window.__xss = 0; }")
    payloads = [
        '<img src=x onerror="window.__xss=1;alert(1)">',
        "<script>window.__xss=2;alert(2)</script>",
        "[klik hier](javascript:window.__xss=3)",
    ]
    for payload in payloads:
        say(page, payload)
    assert user_texts(page)[-3:] == payloads
    assert page.evaluate("() => window.__xss") == 0
    assert page.dialogs == []
    assert page.locator(".gc-messages img, .gc-messages script").count() == 0
    assert page.locator('.gc-messages a[href^="javascript"]').count() == 0

    # The renderer used for bot text: bold and http(s) links only, everything else stays text.
    rendered = page.evaluate("""() => {
        const box = document.createElement('div');
        box.appendChild(window.GemeenteChat.renderText(
          '**Let op** [Website](https://example.org/a) [x](javascript:alert(1)) <b onclick=alert(1)>b</b>\\n' +
          'Zie https://www.bergenopzoom.nl/afval. <img src=x onerror=alert(1)>'));
        return {
          strong: Array.from(box.querySelectorAll('strong')).map(e => e.textContent),
          links: Array.from(box.querySelectorAll('a')).map(a => [a.getAttribute('href'), a.rel, a.target]),
          elements: Array.from(box.querySelectorAll('*')).map(e => e.tagName).sort(),
          text: box.textContent,
        };
    }""")
    assert rendered["strong"] == ["Let op"]
    assert rendered["links"] == [["https://example.org/a", "noopener noreferrer", "_blank"],
                                 ["https://www.bergenopzoom.nl/afval", "noopener noreferrer", "_blank"]]
    assert set(rendered["elements"]) == {"A", "BR", "SPAN", "STRONG"}
    assert "[x](javascript:alert(1))" in rendered["text"]
    assert "<b onclick=alert(1)>b</b>" in rendered["text"]
    assert "<img src=x onerror=alert(1)>" in rendered["text"]
    assert page.evaluate("() => window.__xss") == 0 and page.dialogs == []
    page.context.close()


def test_another_browser_cannot_read_a_conversation_by_its_session_id(chromium, bot):
    owner = open_chat(chromium, bot)
    secret = "er ligt een losse stoeptegel voor mijn deur"
    say(owner, secret)
    say(owner, "Kerkstraat bij de speeltuin")
    session = stored_session(owner)
    assert re.fullmatch(r"[0-9a-f]{32}", session["id"])

    forged = f"v1.{int(time.time())}.{'A' * 43}"
    for token in (None, forged, session["token"][:-2] + "AA"):
        other = new_page(chromium)
        stolen = json.dumps({"id": session["id"], "token": token})
        other.add_init_script(f"sessionStorage.setItem('{SESSION_KEY}', {json.dumps(stolen)});"
                              "sessionStorage.setItem('gemeentechat.open', '1');")
        load_demo(other, bot)
        other.wait_for_selector(".gc-msg--bot .gc-reply")  # a fresh greeting, not the old conversation
        wait_idle(other)
        assert secret not in other.locator(".gc-messages").inner_text()
        assert "Kerkstraat" not in other.locator(".gc-messages").inner_text()
        assert stored_session(other)["id"] != session["id"]
        other.context.close()

    # The owner's own id and token (e.g. after a reload) do bring the conversation back.
    again = new_page(chromium)
    again.add_init_script(f"sessionStorage.setItem('{SESSION_KEY}', {json.dumps(json.dumps(session))});"
                          "sessionStorage.setItem('gemeentechat.open', '1');")
    load_demo(again, bot)
    again.wait_for_selector(".gc-msg--user", state="visible")
    assert user_texts(again) == [secret, "Kerkstraat bij de speeltuin"]
    again.context.close()
    owner.context.close()


def test_toolbar_read_aloud_text_size_contrast_and_new_conversation(chromium, bot):
    page = new_page(chromium)
    page.add_init_script(SPEECH_SPY)
    load_demo(page, bot)
    page.locator(".gc-launcher").click()
    page.wait_for_selector(".gc-msg--bot .gc-reply")
    wait_idle(page)

    # Read one message aloud, in Dutch.
    page.locator(".gc-speak").first.click()
    spoken = page.evaluate("() => window.__spoken")
    assert spoken[-1]["lang"] == "nl-NL"
    assert "Hallo, ik ben Zoë" in spoken[-1]["text"]

    # Read new messages aloud automatically.
    page.locator(".gc-autoread").click()
    assert page.get_attribute(".gc-autoread", "aria-pressed") == "true"
    say(page, "er ligt een losse stoeptegel voor mijn deur")
    texts = [s["text"] for s in page.evaluate("() => window.__spoken")]
    assert any("Waar is het probleem?" in t for t in texts)
    assert any("Meer informatie: link" in t for t in texts)  # URLs are not spelled out

    # Larger text (several steps) and high contrast are remembered after a reload.
    size = "() => parseFloat(getComputedStyle(document.querySelector('.gc-bubble')).fontSize)"
    before = page.evaluate(size)
    for _ in range(3):
        page.locator(".gc-larger").click()
    page.locator(".gc-contrast").click()
    after = page.evaluate(size)
    assert after >= 1.45 * before
    assert page.evaluate("() => getComputedStyle(document.querySelector('.gc-panel')).backgroundColor") == "rgb(0, 0, 0)"
    page.reload()
    page.wait_for_selector(".gc-msg--user", state="visible")
    assert page.get_attribute(".gc-root", "data-scale") == "3"
    assert page.get_attribute(".gc-contrast", "aria-pressed") == "true"
    assert page.get_attribute(".gc-autoread", "aria-pressed") == "true"
    assert page.evaluate(size) == pytest.approx(after)
    page.locator(".gc-smaller").click()
    assert page.get_attribute(".gc-root", "data-scale") == "2"

    # "Nieuw gesprek" asks first, then starts over with a new session.
    old_session = stored_session(page)["id"]
    page.locator(".gc-new").click()
    assert page.evaluate("() => document.activeElement.textContent") == "Ja, nieuw gesprek"
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => !(sessionStorage.getItem('{SESSION_KEY}') || '').includes('{old_session}')")
    page.wait_for_selector(".gc-msg--bot .gc-reply")
    wait_idle(page)
    assert user_texts(page) == []
    assert "Hallo, ik ben Zoë" in bot_texts(page)[0]
    assert stored_session(page)["id"] != old_session
    assert page.evaluate("() => document.activeElement.id") == "gc-input"
    assert page.errors == []
    page.context.close()


def test_a_very_long_message_is_refused_in_dutch_and_kept_in_the_input(chromium, bot):
    """70,000 characters (a pasted document): more than a socket.io frame may carry.

    The widget says the message is too long, sends nothing and keeps the text so
    the citizen can shorten it; the connection stays up and the next message is
    answered.
    """
    page = open_chat(chromium, bot)
    bots_before = len(bot_texts(page))
    users_before = len(user_texts(page))
    long_text = "Ik heb een vraag over mijn paspoort. " * 1900  # ~70,000 characters
    page.fill("#gc-input", long_text)
    page.press("#gc-input", "Enter")
    page.wait_for_function(f"() => document.querySelectorAll('.gc-msg--bot .gc-bubble').length > {bots_before}")
    assert bot_texts(page)[-1].endswith("Uw bericht is te lang. Typt u een korter bericht?")
    assert len(user_texts(page)) == users_before  # nothing was sent
    assert page.input_value("#gc-input") == long_text  # nothing was lost
    assert page.locator(".gc-root").get_attribute("data-busy") == "false"
    say(page, "wat kost een paspoort")
    assert user_texts(page)[-1] == "wat kost een paspoort"
    assert "paspoort" in bot_texts(page)[-1].lower()
    page.context.close()
