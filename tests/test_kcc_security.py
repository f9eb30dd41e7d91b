"""Security of the KCC console on the real server: every route refuses anonymous
access (the list of routes is read from the console's own blueprint, so a new
route cannot be forgotten), CSRF on every state-changing request, roles,
cookie flags and page headers. XSS rendering is checked in the browser test."""
from __future__ import annotations

import re

import pytest
import requests

from integrations.kcc.channel import KccConsole
from tests.kcc_support import PASSWORD, Citizen, Console, add_staff
from tests.servers import start_bot

PUBLIC = {("/staff/login", "GET"), ("/staff/login", "POST"), ("/staff/static/staff.css", "GET")}
SAMPLE_PARAMS = {"<entry_id:int>": "1", "<zaaknummer>": "BOZ-2026-000001", "<filename>": "kcc.js"}


def console_routes():
    blueprint = KccConsole().blueprint(lambda message: None)
    routes = set()
    for route in blueprint._future_routes:
        uri = route.uri
        for placeholder, value in SAMPLE_PARAMS.items():
            uri = uri.replace(placeholder, value)
        assert "<" not in uri, f"no sample value for {route.uri}"
        for method in route.methods:
            routes.add((uri, method))
    return sorted(routes)


ROUTES = console_routes()
PROTECTED = [r for r in ROUTES if r not in PUBLIC]
CHANGES = [r for r in PROTECTED if r[1] == "POST" and r[0] != "/staff/logout"]


@pytest.fixture(scope="module")
def bot(tmp_path_factory):
    running = start_bot(tmp_path_factory.mktemp("kcc-security"), extra_env={"KCC_ALWAYS_OPEN": "1"})
    add_staff(running, "anna")
    add_staff(running, "redacteur", role="redactie")
    yield running
    running.stop()


def test_the_route_list_is_complete():
    paths = {path for path, _ in ROUTES}
    assert {"/kcc", "/kcc/api/poll", "/kcc/api/conversations/1/accept", "/kcc/api/callbacks",
            "/staff/logout"} <= paths
    assert len(PROTECTED) >= 11


@pytest.mark.parametrize("path, method", PROTECTED)
def test_no_route_without_login(bot, path, method):
    url = bot.rasa_url + path
    as_page = requests.request(method, url, allow_redirects=False, timeout=10,
                               headers={"Sec-Fetch-Mode": "navigate", "Accept": "text/html"})
    as_script = requests.request(method, url, allow_redirects=False, timeout=10,
                                 headers={"X-Requested-With": "fetch"}, json={"text": "hallo"})
    for answer in (as_page, as_script):
        assert answer.status_code in (401, 303), (path, method, answer.status_code)
        if answer.status_code == 303:
            assert answer.headers["Location"].startswith("/staff/login")
        assert "anna" not in answer.text
    if path.startswith("/kcc/api") or method == "POST" and path != "/staff/logout":
        assert as_script.status_code == 401
    # A forged or stale cookie is no session either.
    forged = requests.request(method, url, allow_redirects=False, timeout=10,
                              cookies={"staff_session": "x" * 43}, headers={"X-Requested-With": "fetch"})
    assert forged.status_code in (401, 303)


@pytest.mark.parametrize("path, method", CHANGES)
def test_every_change_needs_the_csrf_token(bot, path, method):
    anna = Console(bot, "anna")
    assert anna.post(path, {"text": "hallo", "status": "afgerond"}, csrf=False).status_code == 403
    wrong = anna.http.post(bot.rasa_url + path, json={}, timeout=10,
                           headers={"X-CSRF-Token": "forged", "X-Requested-With": "fetch"})
    assert wrong.status_code == 403


def test_logout_needs_the_token_and_ends_the_session(bot):
    anna = Console(bot, "anna")
    assert anna.http.post(bot.rasa_url + "/staff/logout", allow_redirects=False).status_code == 403
    assert anna.http.post(bot.rasa_url + "/staff/logout", data={"csrf_token": anna.csrf},
                          allow_redirects=False).status_code == 303
    assert anna.get("/kcc/api/config").status_code == 401


def test_another_role_cannot_use_the_console(bot):
    editor = requests.Session()
    form = editor.get(bot.rasa_url + "/staff/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    editor.post(bot.rasa_url + "/staff/login", data={"username": "redacteur", "password": PASSWORD,
                                                    "csrf_token": token}, allow_redirects=False)
    for path, method in PROTECTED:
        if path == "/staff/logout":
            continue
        answer = editor.request(method, bot.rasa_url + path, allow_redirects=False, timeout=10,
                                headers={"X-Requested-With": "fetch"})
        assert answer.status_code == 403, (path, method)


def test_session_cookie_and_page_headers(bot):
    session = requests.Session()
    form = session.get(bot.rasa_url + "/staff/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    login = session.post(bot.rasa_url + "/staff/login", allow_redirects=False, data={
        "username": "anna", "password": PASSWORD, "csrf_token": token})
    cookie = next(c for c in login.raw.headers.getlist("Set-Cookie") if c.startswith("staff_session="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = session.get(bot.rasa_url + "/kcc")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Cache-Control"] == "no-store"
    api = session.get(bot.rasa_url + "/kcc/api/poll", params={"wait": 0})
    assert api.headers["Content-Type"].startswith("application/json")


def test_markup_from_a_citizen_reaches_the_console_only_as_json_text(bot):
    citizen = Citizen(bot)
    try:
        citizen.start()
        citizen.say("ik wil een medewerker spreken")
        payload = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
        citizen.say(payload)
        anna = Console(bot, "anna")
        entry = anna.entry_for(lambda e: e["state"] == "waiting")
        raw = anna.get("/kcc/api/poll", wait=0, conversation=entry["id"])
        assert raw.headers["Content-Type"].startswith("application/json")
        lines = raw.json()["conversation"]["transcript"]
        # Stored and passed on verbatim, as data: the console puts it in the page as text.
        assert ("inwoner", payload) in [(line["van"], line["tekst"]) for line in lines]
        assert "<img" not in anna.get("/kcc").text
    finally:
        citizen.close()
