"""The Digitaal Hulpplein page in a real browser: Debian's Chromium, Playwright, the real bot.

A volunteer starts with "Nieuwe bezoeker", asks the visitor's consent, runs a melding
with the tip panel beside the chat, prints the summary (Chromium's print-to-PDF, read
back with poppler's pdftotext), and wipes the screen ("Gesprek afsluiten" and the
idle wipe). Each test has its own browser context.
"""
from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import time
from typing import Any, Dict, List

import pytest
import requests

from bot import config
from tests.browser import (axe_violations, bot_texts, chromium, click_reply,  # noqa: F401 (fixture)
                           describe_violations, new_page, say, wait_idle)
from tests.servers import ROOT, new_sender, start_bot
from tests.test_webchat_channel import ChatClient

SCREENSHOT = ROOT / "docs" / "img" / "hulpplein.png"
SESSION_KEY = "gemeentechat.session"
PHONE = "0612345678"
BSN = "111222333"  # passes the 11-test, like a real BSN


def ensure_pdftotext() -> str:
    """pdftotext from Debian's poppler-utils; installed when missing (like scripts/ensure_chromium.sh)."""
    if shutil.which("pdftotext") is None and shutil.which("apt-get"):
        subprocess.run("apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive "
                       "apt-get install -y -qq poppler-utils >/dev/null", shell=True, check=True, timeout=900)
    path = shutil.which("pdftotext")
    if path is None:
        raise RuntimeError("pdftotext not found; install Debian's poppler-utils")
    return path


@pytest.fixture(scope="module")
def bot(tmp_path_factory):
    running = start_bot(tmp_path_factory.mktemp("hulpplein-browser"),
                        extra_env={"HULPPLEIN_IDLE_OVERRIDE": "true"})
    yield running
    running.stop()


# ----------------------------------------------------------------------------- helpers


def open_page(page: Any, bot: Any, query: str = "") -> None:
    page.goto(f"{bot.rasa_url}/hulpplein{query}")
    page.wait_for_selector('body[data-ready="true"]', state="attached")


def new_visitor(page: Any, consent: bool = True) -> None:
    """ "Nieuwe bezoeker", the consent question, then the chat with its greeting."""
    page.get_by_role("button", name="Nieuwe bezoeker").click()
    assert page.get_by_role("heading", name="Mag de vrijwilliger u helpen met invullen?").is_visible()
    page.get_by_role("button", name="Ja, dat mag" if consent else "Nee, ik vul het zelf in").click()
    page.wait_for_selector(".gc-msg--bot .gc-reply")
    wait_idle(page)


def chat_text(page: Any) -> str:
    return "\n".join(page.locator(".gc-msg .gc-bubble").all_inner_texts())


def wait_for_tip(page: Any, step: str) -> str:
    page.wait_for_function(f"() => document.getElementById('hp-staptip').dataset.stap === '{step}'")
    return page.locator("#hp-staptip-tekst").inner_text()


def step_tip(flow: str, slot: str) -> str:
    step = next(s for s in config.flows()["flows"][flow]["stappen"] if s["slot"] == slot)
    return step["tip"]


def stored_session(page: Any) -> Dict[str, str]:
    return json.loads(page.evaluate(f"() => sessionStorage.getItem('{SESSION_KEY}')") or "null")


def tracker_rows(bot: Any, sender_id: str) -> int:
    with sqlite3.connect(bot.workdir / "tracker.db") as db:
        return db.execute("SELECT COUNT(*) FROM events WHERE sender_id = ?", (sender_id,)).fetchone()[0]


def user_metadata(bot: Any, sender_id: str) -> List[Dict[str, Any]]:
    """The metadata of every user message of a conversation, as the tracker store has it."""
    with sqlite3.connect(bot.workdir / "tracker.db") as db:
        rows = db.execute("SELECT data FROM events WHERE sender_id = ? AND type_name = 'user' ORDER BY id",
                          (sender_id,)).fetchall()
    return [json.loads(row[0]).get("metadata") or {} for row in rows]


def assert_no_axe_violations(page: Any, where: str) -> None:
    violations = axe_violations(page)
    assert violations == [], f"{where}:\n" + describe_violations(violations)


def browser_is_empty(page: Any) -> None:
    """Nothing of a conversation in this browser: screen, storage, cookies."""
    assert page.locator(".gc-msg").count() == 0
    assert page.evaluate("() => sessionStorage.length + localStorage.length") == 0
    assert page.evaluate("() => document.cookie") == ""
    assert page.context.cookies() == []


def old_session_is_gone(bot: Any, session: Dict[str, str]) -> None:
    """The old session id and token resume nothing and read nothing back."""
    client = ChatClient(bot)
    try:
        info = client.start(session["id"], session["token"])
        assert not info["resumed"] and info["session_id"] != session["id"]
        assert client.history() == []
    finally:
        client.close()
    assert tracker_rows(bot, session["id"]) == 0
    again = requests.post(f"{bot.rasa_url}/webchat/session/close", timeout=10,
                          data=json.dumps({"session_id": session["id"], "token": session["token"]}))
    assert again.status_code == 403


# ----------------------------------------------------------------------------- tests


def test_page_headers_and_wipe_endpoint(bot):
    page = requests.get(f"{bot.rasa_url}/hulpplein", timeout=10)
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'self'" in csp
    assert page.headers["Cache-Control"] == "no-store"
    assert 'data-idle-seconds="600"' in page.text and 'data-warning-seconds="60"' in page.text
    assert "14 0164" in page.text and "<script>" not in page.text.replace('<script src=', '')
    shortened = requests.get(f"{bot.rasa_url}/hulpplein?inactief_seconden=8", timeout=10).text
    assert 'data-idle-seconds="8"' in shortened   # this server allows it (HULPPLEIN_IDLE_OVERRIDE)
    wipe = requests.post(f"{bot.rasa_url}/hulpplein/wissen", timeout=10)
    assert wipe.status_code == 204 and wipe.headers["Clear-Site-Data"] == '"cache", "cookies", "storage"'
    assert requests.get(f"{bot.rasa_url}/hulpplein/static/..%2Fchannel.py", timeout=10).status_code == 404
    assert requests.get(f"{bot.rasa_url}/hulpplein/static/hulpplein.js", timeout=10).status_code == 200


def test_volunteer_files_a_melding_with_consent_tips_and_a_printed_summary(chromium, bot):
    page = new_page(chromium)
    open_page(page, bot)
    assert_no_axe_violations(page, "start screen")
    page.get_by_role("button", name="Nieuwe bezoeker").click()
    assert_no_axe_violations(page, "consent question")
    page.get_by_role("button", name="Ja, dat mag").click()
    page.wait_for_selector(".gc-msg--bot .gc-reply")
    wait_idle(page)
    # The chat fills its column with large text; no launcher and no close button.
    assert page.locator(".gc-root").get_attribute("data-scale") == "2"
    assert page.locator(".gc-launcher").is_hidden() and page.locator(".gc-close").count() == 0
    assert page.evaluate("() => document.activeElement.id") == "gc-input"

    say(page, "er ligt een losse stoeptegel voor mijn deur")
    assert wait_for_tip(page, "melding_locatie") == step_tip("melding_openbare_ruimte", "melding_locatie")
    assert page.locator("#hp-staptip-vraag").inner_text() == "Vraag: Plek"
    say(page, "Kerkstraat 12 bij de speeltuin")
    assert wait_for_tip(page, "melding_omschrijving") == step_tip("melding_openbare_ruimte", "melding_omschrijving")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.mouse.move(5, 5)  # no hover effect in the picture
    page.screenshot(path=str(SCREENSHOT))
    say(page, f"De tegel ligt los. Mijn BSN is {BSN}.")
    assert wait_for_tip(page, "melding_foto") == step_tip("melding_openbare_ruimte", "melding_foto")
    click_reply(page, "Geen foto")
    wait_for_tip(page, "melding_contact")
    say(page, PHONE)
    assert "Klopt dit?" in bot_texts(page)[-1]
    wait_for_tip(page, "flow_bevestiging")
    # Tips stay in their panel: never in the chat.
    shown = chat_text(page)
    for slot in ("melding_locatie", "melding_omschrijving", "melding_foto", "melding_contact"):
        assert step_tip("melding_openbare_ruimte", slot) not in shown
    assert_no_axe_violations(page, "chat with tip panel")
    page.get_by_role("button", name="Bel de gemeente mee").click()
    assert "14 0164" in page.locator("#hp-bel-paneel").inner_text()
    assert_no_axe_violations(page, "call panel open")
    page.get_by_role("button", name="Bel de gemeente mee").click()

    click_reply(page, "Ja, het klopt")
    match = re.search(r"Uw nummer is (BOZ-\d{4}-\d{6})", chat_text(page))
    assert match, chat_text(page)
    number = match.group(1)
    page.wait_for_selector("#hp-klaar", state="visible")
    assert page.locator("#hp-klaar-nummer").inner_text() == number
    assert_no_axe_violations(page, "after filing")

    # The print button prints (window.print), and the print view is what Chromium prints.
    page.evaluate("() => { window.__printed = 0; window.print = () => { window.__printed += 1; }; }")
    page.locator("#hp-afdrukken").click()
    assert page.evaluate("() => window.__printed") == 1
    pdf = bot.workdir / "samenvatting.pdf"
    pdf.write_bytes(page.pdf(prefer_css_page_size=True, print_background=True))  # @page size: A4
    text = subprocess.run([ensure_pdftotext(), "-layout", str(pdf), "-"], check=True,
                          capture_output=True, text=True).stdout
    assert "Samenvatting van uw aanvraag" in text and number in text
    zaaktype = config.gemeente()["zaaktypen"]["melding_openbare_ruimte"]
    flat = " ".join(text.split())
    assert zaaktype["behandeltermijn"] in flat and "14 0164" in flat
    assert "Kerkstraat 12 bij de speeltuin" in flat
    assert BSN not in text.replace(" ", "") and "[BSN weggelaten]" in flat
    assert PHONE[2:] not in text.replace(" ", "") and "********78" in flat
    assert "Zoë" not in text and "Tips" not in text       # only the summary is printed
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    assert "(A4)" in info and re.search(r"Pages:\s+1\n", info), info   # one A4 sheet

    # The case: channel hulpplein and the consent.
    case = {c["zaaknummer"]: c for c in bot.cases()}[number]
    assert case["channel"] == "hulpplein" and case["data"]["toestemming_vrijwilliger"] is True
    metadata = user_metadata(bot, stored_session(page)["id"])
    assert len(metadata) >= 7
    assert all(m["channel"] == "hulpplein" and m["toestemming_vrijwilliger"] is True for m in metadata)
    assert page.errors == [] and page.dialogs == []
    page.context.close()


def test_consent_no_over_rest_and_tips_only_for_the_hulpplein(bot):
    sender = new_sender()
    meta = {"channel": "hulpplein", "toestemming_vrijwilliger": False}
    answers = bot.say(sender, "er ligt een losse stoeptegel voor mijn deur", metadata=meta)
    tips = [m["custom"] for m in answers if m.get("custom")]
    assert [t["stap"] for t in tips] == ["melding_locatie"]
    for text in ("Kerkstraat 1 bij de kerk", "De tegel ligt los", "geen", "geen"):
        bot.say(sender, text, metadata=meta)
    answers = bot.say(sender, "/affirm", metadata=meta)
    summary = next(m["custom"] for m in answers if m.get("custom", {}).get("type") == "hulpplein_samenvatting")
    case = {c["zaaknummer"]: c for c in bot.cases()}[summary["zaaknummer"]]
    assert case["channel"] == "hulpplein" and case["data"]["toestemming_vrijwilliger"] is False

    website = bot.say(new_sender(), "er ligt een losse stoeptegel voor mijn deur", metadata={"channel": "website"})
    assert not any(m.get("custom") for m in website)


def test_gesprek_afsluiten_then_reload_and_back_show_nothing(chromium, bot):
    page = new_page(chromium)
    # A page before the Hulpplein in the history, with a chat of its own in this tab.
    page.goto(f"{bot.rasa_url}/demo")
    page.wait_for_selector('.gc-root[data-ready="true"]', state="attached")
    page.locator(".gc-launcher").click()
    page.wait_for_selector(".gc-msg--bot .gc-reply")
    wait_idle(page)
    earlier = stored_session(page)
    open_page(page, bot)
    new_visitor(page)
    # "Nieuwe bezoeker" starts clean: the earlier chat of this tab is closed, not resumed.
    assert stored_session(page)["id"] != earlier["id"]
    deadline = time.monotonic() + 15
    while tracker_rows(bot, earlier["id"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert tracker_rows(bot, earlier["id"]) == 0
    say(page, "er ligt een losse stoeptegel voor mijn deur")
    say(page, "Kerkstraat 12 bij de speeltuin")
    session = stored_session(page)
    assert tracker_rows(bot, session["id"]) > 0
    # A reload during the conversation keeps it (the volunteer pressed F5 by mistake).
    page.reload()
    page.wait_for_selector(".gc-msg--user", state="visible")
    wait_idle(page)
    assert "Kerkstraat 12 bij de speeltuin" in chat_text(page)
    assert page.locator("#hp-staptip").get_attribute("data-stap") == "melding_omschrijving"
    page.evaluate("() => { document.cookie = 'gemeentechat_test=1; path=/'; }")
    page.context.add_cookies([{"name": "bezoeker", "value": "x", "url": bot.rasa_url, "httpOnly": True}])

    page.get_by_role("button", name="Gesprek afsluiten").click()
    assert page.get_by_role("alertdialog", name="Gesprek afsluiten?").is_visible()
    assert_no_axe_violations(page, "confirm dialog")
    page.get_by_role("button", name="Ja, afsluiten en wissen").click()
    page.wait_for_selector("#hp-gewist:has-text('Het vorige gesprek is gewist.')")
    assert page.url == f"{bot.rasa_url}/hulpplein"
    assert page.get_by_role("button", name="Nieuwe bezoeker").is_visible()
    browser_is_empty(page)
    old_session_is_gone(bot, session)

    page.reload()
    page.wait_for_selector('body[data-ready="true"]', state="attached")
    assert page.get_by_role("button", name="Nieuwe bezoeker").is_visible()
    assert "Kerkstraat" not in page.content()
    browser_is_empty(page)

    page.go_back()                                 # the page before: nothing of the visitor either
    page.wait_for_load_state()
    assert page.url.startswith(f"{bot.rasa_url}/demo")
    assert "Kerkstraat" not in page.content()
    assert stored_session(page) is None
    page.go_forward()
    page.wait_for_selector('body[data-ready="true"]', state="attached")
    assert page.get_by_role("button", name="Nieuwe bezoeker").is_visible()
    assert page.locator(".gc-msg").count() == 0 and "Kerkstraat" not in page.content()
    assert page.errors == []
    page.context.close()


def test_idle_wipe_warns_first_and_then_wipes(chromium, bot):
    page = new_page(chromium)
    open_page(page, bot, "?inactief_seconden=8")
    new_visitor(page, consent=False)
    session = stored_session(page)
    assert session and session["id"]
    warning = page.get_by_role("alertdialog", name="Bent u er nog?")
    warning.wait_for(state="visible", timeout=15_000)
    assert page.evaluate("() => document.activeElement.id") == "hp-inactief-verder"
    assert_no_axe_violations(page, "idle warning")
    page.get_by_role("button", name="Ik ben er nog").click()
    assert warning.is_hidden()
    assert page.locator(".gc-msg--bot").count() > 0          # still the same conversation

    warning.wait_for(state="visible", timeout=15_000)         # nobody answers this time
    page.wait_for_selector("#hp-gewist:has-text('omdat er een tijd niets gebeurde')", timeout=20_000)
    assert page.get_by_role("button", name="Nieuwe bezoeker").is_visible()
    browser_is_empty(page)
    old_session_is_gone(bot, session)
    assert page.errors == []
    page.context.close()
