"""Live takeover in two real browsers (Chromium): a citizen in the website chat
on /demo and a KCC employee on /kcc. KCC_ALWAYS_OPEN=1 (tests only) keeps the
test independent of the wall clock."""
from __future__ import annotations

from typing import Any

import pytest

from tests.browser import axe_violations, chromium, describe_violations, new_page  # noqa: F401 (fixture)
from tests.kcc_support import PASSWORD, add_staff
from tests.servers import start_bot
from tests.test_widget_browser import bot_texts, open_chat, say, user_texts, wait_idle

CITIZEN_XSS = '<img src=x onerror="alert(\'burger\')"> Dank u!'
EMPLOYEE_XSS = '<script>alert("medewerker")</script><b>Goedemiddag</b>, ik help u.'


@pytest.fixture(scope="module")
def bot(tmp_path_factory):
    running = start_bot(tmp_path_factory.mktemp("handoff-browser"), extra_env={
        "KCC_ALWAYS_OPEN": "1", "KCC_WAIT_SECONDS": "600"})
    add_staff(running, "anna")
    yield running
    running.stop()


def login(page: Any, bot: Any) -> None:
    page.goto(bot.rasa_url + "/kcc")
    assert "/staff/login" in page.url  # anonymous: to the login page
    page.fill("#username", "anna")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Inloggen").click()
    page.wait_for_url(bot.rasa_url + "/kcc")
    page.wait_for_selector("#user")


def transcript_texts(page: Any, who: str) -> list:
    return page.locator(f"#transcript .line--{who} .text").all_inner_texts()


def test_employee_takes_over_and_hands_back(chromium, bot):
    citizen = open_chat(chromium, bot)
    say(citizen, "ik wil een medewerker spreken")
    assert "U bent de volgende." in "\n".join(bot_texts(citizen))
    citizen.wait_for_selector("text=U wacht op een medewerker.")

    employee = new_page(chromium)
    login(employee, bot)
    employee.wait_for_selector("#queue tbody tr")
    row = employee.locator("#queue tbody tr").first
    assert "Website" in row.inner_text() and "Wacht" in row.inner_text()
    row.get_by_role("button").click()
    employee.wait_for_selector("#transcript .line--inwoner")
    assert "ik wil een medewerker spreken" in transcript_texts(employee, "inwoner")
    assert any("Hallo, ik ben Zoë" in t for t in transcript_texts(employee, "assistent"))
    employee.get_by_role("button", name="Aannemen").click()
    employee.wait_for_selector("#reply-text")

    # Employee -> citizen, markup shown as text.
    employee.fill("#reply-text", EMPLOYEE_XSS)
    employee.get_by_role("button", name="Versturen").click()
    citizen.wait_for_selector(".gc-msg--medewerker >> text=ik help u")
    shown = citizen.locator(".gc-msg--medewerker .gc-bubble").last.inner_text()
    assert "Medewerker" in shown and EMPLOYEE_XSS in shown
    assert citizen.locator(".gc-msg--medewerker script, .gc-msg--medewerker b").count() == 0
    citizen.wait_for_selector("text=U chat nu met een medewerker van de gemeente.")

    # Citizen -> employee, markup shown as text.
    say(citizen, CITIZEN_XSS)
    employee.wait_for_selector("#transcript .line--inwoner >> text=Dank u!")
    assert CITIZEN_XSS in transcript_texts(employee, "inwoner")
    assert employee.locator("#transcript img").count() == 0
    assert employee.locator("#transcript .line--medewerker .text").last.inner_text() == EMPLOYEE_XSS

    # A quick reply goes into the box; the employee sends it.
    employee.get_by_role("button", name="Ik zoek het even voor u op.").click()
    assert employee.input_value("#reply-text") == "Ik zoek het even voor u op."
    employee.press("#reply-text", "Enter")
    citizen.wait_for_selector(".gc-msg--medewerker >> text=Ik zoek het even voor u op.")

    violations = axe_violations(employee)
    assert violations == [], describe_violations(violations)

    # Back to the assistant, which answers the next question again.
    employee.get_by_role("button", name="Terug naar de assistent").click()
    citizen.wait_for_selector("text=Kan ik u nog ergens anders mee helpen?")
    assert any("De medewerker heeft het gesprek afgesloten." in t for t in bot_texts(citizen))
    employee.wait_for_selector("text=Dit gesprek is afgesloten.")
    say(citizen, "wat kost een paspoort")
    assert "paspoort" in bot_texts(citizen)[-1].lower()
    assert user_texts(citizen)[-1] == "wat kost een paspoort"

    for page in (citizen, employee):
        assert page.errors == [] and page.dialogs == [], (page.errors, page.dialogs)
        page.context.close()


def test_login_page_is_accessible_and_wrong_passwords_are_refused(chromium, bot):
    page = new_page(chromium)
    page.goto(bot.rasa_url + "/staff/login")
    violations = axe_violations(page)
    assert violations == [], describe_violations(violations)
    page.fill("#username", "anna")
    page.fill("#password", "niet-het-goede-wachtwoord")
    page.get_by_role("button", name="Inloggen").click()
    page.wait_for_selector("text=Inloggen is niet gelukt.")
    assert "/staff/login" in page.url
    page.context.close()
