"""Staff login (bot/staff/auth.py): accounts, argon2, lock-out, sessions, CSRF, cookies.

The HTTP part runs a real Sanic server (in a thread) with the login routes of
integrations/kcc/staff_routes.py and two protected routes.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from bot.staff import auth
from bot.staff.models import staff_session, staff_user
from tests.servers import ROOT, free_port

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


@pytest.fixture
def db(sqlite_url):
    return sqlite_url


def test_create_user_hashes_with_argon2_and_refuses_duplicates(db):
    user = auth.create_user(db, "Anna.KCC", PASSWORD, "kcc")
    assert user == auth.StaffUser("anna.kcc", "kcc")
    with auth.store(db).engine.connect() as conn:
        stored = conn.execute(select(staff_user.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    with pytest.raises(auth.UserExists):
        auth.create_user(db, "anna.kcc", PASSWORD, "kcc")
    with pytest.raises(ValueError):
        auth.create_user(db, "bob", PASSWORD, "admin")
    with pytest.raises(ValueError):
        auth.create_user(db, "bob", "short", "kcc")
    with pytest.raises(ValueError):
        auth.create_user(db, "<script>", PASSWORD, "kcc")


def test_authenticate_right_and_wrong_password(db):
    auth.create_user(db, "anna", PASSWORD, "redactie")
    assert auth.authenticate(db, "ANNA", PASSWORD, now=T0) == auth.StaffUser("anna", "redactie")
    with pytest.raises(auth.InvalidCredentials):
        auth.authenticate(db, "anna", "wrong password", now=T0)
    with pytest.raises(auth.InvalidCredentials):
        auth.authenticate(db, "nobody", PASSWORD, now=T0)


def test_lockout_after_five_failures_for_fifteen_minutes(db):
    auth.create_user(db, "anna", PASSWORD, "kcc")
    for _ in range(4):
        with pytest.raises(auth.InvalidCredentials):
            auth.authenticate(db, "anna", "wrong password", now=T0)
    with pytest.raises(auth.AccountLocked) as locked:
        auth.authenticate(db, "anna", "wrong password", now=T0)
    assert locked.value.until == T0 + dt.timedelta(minutes=15)
    # Even the right password is refused while locked.
    with pytest.raises(auth.AccountLocked):
        auth.authenticate(db, "anna", PASSWORD, now=T0 + dt.timedelta(minutes=14))
    assert auth.authenticate(db, "anna", PASSWORD, now=T0 + dt.timedelta(minutes=16)).username == "anna"


def test_success_resets_the_failure_count(db):
    auth.create_user(db, "anna", PASSWORD, "kcc")
    for _ in range(4):
        with pytest.raises(auth.InvalidCredentials):
            auth.authenticate(db, "anna", "wrong password", now=T0)
    auth.authenticate(db, "anna", PASSWORD, now=T0)
    for _ in range(4):
        with pytest.raises(auth.InvalidCredentials):
            auth.authenticate(db, "anna", "wrong password", now=T0)


def test_sessions_store_only_a_hash_expire_and_end(db, monkeypatch):
    user = auth.create_user(db, "anna", PASSWORD, "kcc")
    token, csrf = auth.start_session(db, user, now=T0)
    with auth.store(db).engine.connect() as conn:
        stored = conn.execute(select(staff_session.c.token_hash)).scalar_one()
    assert token not in stored and len(stored) == 64
    assert auth.session_user(db, token, now=T0 + dt.timedelta(minutes=5)) == (user, csrf)
    assert auth.session_user(db, token + "x", now=T0) is None
    # Idle timeout (default 120 min) and absolute lifetime (10 h).
    assert auth.session_user(db, token, now=T0 + dt.timedelta(hours=3)) is None
    token2, _ = auth.start_session(db, user, now=T0)
    for hours in range(1, 10):
        assert auth.session_user(db, token2, now=T0 + dt.timedelta(hours=hours)) is not None
    assert auth.session_user(db, token2, now=T0 + dt.timedelta(hours=10, minutes=1)) is None
    token3, _ = auth.start_session(db, user, now=T0)
    auth.end_session(db, token3)
    assert auth.session_user(db, token3, now=T0) is None


def test_disabling_or_new_password_ends_sessions(db):
    user = auth.create_user(db, "anna", PASSWORD, "kcc")
    token, _ = auth.start_session(db, user)
    auth.set_password(db, "anna", "another long password")
    assert auth.session_user(db, token) is None
    token, _ = auth.start_session(db, user)
    auth.set_disabled(db, "anna")
    assert auth.session_user(db, token) is None
    with pytest.raises(auth.InvalidCredentials):
        auth.authenticate(db, "anna", "another long password")


def test_accounts_lockout_and_sessions_on_postgresql(pg_url):
    user = auth.create_user(pg_url, "piet", PASSWORD, "manager")
    with pytest.raises(auth.UserExists):
        auth.create_user(pg_url, "piet", PASSWORD, "manager")
    for _ in range(4):
        with pytest.raises(auth.InvalidCredentials):
            auth.authenticate(pg_url, "piet", "wrong password", now=T0)
    with pytest.raises(auth.AccountLocked):
        auth.authenticate(pg_url, "piet", "wrong password", now=T0)
    assert auth.authenticate(pg_url, "piet", PASSWORD, now=T0 + dt.timedelta(minutes=16)) == user
    token, csrf = auth.start_session(pg_url, user, now=T0)
    assert auth.session_user(pg_url, token, now=T0) == (user, csrf)


@pytest.mark.parametrize("value, expected", [
    ("/kcc", "/kcc"), ("/kcc?x=1", "/kcc?x=1"), ("//evil.example", "/d"),
    ("https://evil.example", "/d"), ("/\\evil", "/d"), ("", "/d"), (None, "/d"),
])
def test_safe_next_prevents_open_redirects(value, expected):
    assert auth.safe_next(value, "/d") == expected


def test_cli_add_user_with_password_from_stdin(db):
    env = dict(os.environ, CASES_DB_URL=db, PYTHONPATH=str(ROOT), SQLALCHEMY_SILENCE_UBER_WARNING="1")
    run = lambda *args, stdin="": subprocess.run(  # noqa: E731
        [sys.executable, "-m", "bot.kcc", *args], cwd=ROOT, env=env, input=stdin,
        capture_output=True, text=True, timeout=60)
    ok = run("add-user", "piet", "--role", "kcc", "--password-stdin", stdin=PASSWORD + "\n")
    assert ok.returncode == 0, ok.stderr
    assert auth.authenticate(db, "piet", PASSWORD).role == "kcc"
    again = run("add-user", "piet", "--role", "kcc", "--password-stdin", stdin=PASSWORD + "\n")
    assert again.returncode == 1 and "bestaat al" in again.stderr
    listed = run("list-users")
    assert "piet\tkcc" in listed.stdout


# -- HTTP: a real Sanic server with the staff routes -------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from sanic import Blueprint, Sanic, response

    from integrations.kcc.staff_routes import add_staff_routes

    url = f"sqlite:///{tmp_path_factory.mktemp('staff') / 'cases.db'}"
    old = os.environ.get("CASES_DB_URL")
    os.environ["CASES_DB_URL"] = url
    auth.create_user(url, "kcc1", PASSWORD, "kcc")
    auth.create_user(url, "red1", PASSWORD, "redactie")
    auth.create_user(url, "lock1", PASSWORD, "kcc")

    Sanic.test_mode = True
    app = Sanic(f"staff_test_{free_port()}")
    bp = Blueprint("staff_test")
    add_staff_routes(bp)

    @bp.get("/kcc")
    async def page(request):
        denied = auth.require(request, roles={"kcc"})
        return denied or response.text(f"hallo {auth.current_user(request).username} "
                                       f"{auth.csrf_token(request)}")

    @bp.post("/kcc/api/change")
    async def change(request):
        denied = auth.require(request, roles={"kcc"}) or auth.check_csrf(request)
        return denied or response.json({"ok": True})

    app.blueprint(bp)
    port = free_port()
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run():
        asyncio.set_event_loop(loop)

        async def main():
            srv = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True)
            await srv.startup()
            ready.set()
            await srv.serve_forever()

        loop.run_until_complete(main())

    threading.Thread(target=run, daemon=True).start()
    assert ready.wait(20)
    yield f"http://127.0.0.1:{port}"
    if old is None:
        os.environ.pop("CASES_DB_URL", None)
    else:
        os.environ["CASES_DB_URL"] = old


def _login(base, username, password=PASSWORD, next_url="/kcc"):
    s = requests.Session()
    form = s.get(f"{base}/staff/login", params={"next": next_url})
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    r = s.post(f"{base}/staff/login", data={"username": username, "password": password,
                                            "csrf_token": token, "next": next_url},
               allow_redirects=False)
    return s, r


def test_anonymous_pages_redirect_and_api_gets_401(server):
    page = requests.get(f"{server}/kcc?tab=queue", allow_redirects=False)
    assert page.status_code == 303
    assert page.headers["Location"] == "/staff/login?next=/kcc%3Ftab%3Dqueue"
    api = requests.post(f"{server}/kcc/api/change", json={}, allow_redirects=False)
    assert api.status_code == 401 and api.json()["error"] == "login_required"
    fetch = requests.get(f"{server}/kcc", headers={"Sec-Fetch-Mode": "cors"}, allow_redirects=False)
    assert fetch.status_code == 401


def test_login_sets_a_strict_httponly_cookie_and_csrf_protects_changes(server):
    s, r = _login(server, "kcc1")
    assert r.status_code == 303 and r.headers["Location"] == "/kcc"
    cookie = [c for c in r.raw.headers.getlist("Set-Cookie") if c.startswith("staff_session=")][0]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    page = s.get(f"{server}/kcc")
    assert page.status_code == 200 and page.text.startswith("hallo kcc1 ")
    csrf = page.text.split()[-1]
    assert s.post(f"{server}/kcc/api/change", json={}).status_code == 403
    assert s.post(f"{server}/kcc/api/change", json={}, headers={"X-CSRF-Token": "nope"}).status_code == 403
    assert s.post(f"{server}/kcc/api/change", json={}, headers={"X-CSRF-Token": csrf}).json() == {"ok": True}
    assert s.post(f"{server}/kcc/api/change", data={"csrf_token": csrf}).status_code == 200
    # Logout needs the token too, then the session is gone on the server.
    assert s.post(f"{server}/staff/logout", allow_redirects=False).status_code == 403
    out = s.post(f"{server}/staff/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert out.status_code == 303
    stolen = requests.get(f"{server}/kcc", cookies={"staff_session": r.cookies["staff_session"]},
                          allow_redirects=False)
    assert stolen.status_code == 303


def test_login_form_needs_its_csrf_token(server):
    s = requests.Session()
    s.get(f"{server}/staff/login")
    r = s.post(f"{server}/staff/login", data={"username": "kcc1", "password": PASSWORD},
               allow_redirects=False)
    assert r.status_code == 403 and "staff_session" not in r.cookies


def test_wrong_role_is_forbidden_and_next_is_never_offsite(server):
    s, r = _login(server, "red1", next_url="https://evil.example/")
    assert r.status_code == 303 and r.headers["Location"] == "/inzichten"
    assert s.get(f"{server}/kcc", allow_redirects=False).status_code == 403


def test_lockout_over_http(server):
    for _ in range(4):
        _s, r = _login(server, "lock1", password="wrong password")
        assert r.status_code == 401
    _s, r = _login(server, "lock1", password="wrong password")
    assert r.status_code == 429
    _s, r = _login(server, "lock1")
    assert r.status_code == 429 and "15 minuten" in r.text


def test_login_page_escapes_the_username_and_has_a_strict_csp(server):
    s = requests.Session()
    form = s.get(f"{server}/staff/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    r = s.post(f"{server}/staff/login", data={"username": '"><script>alert(1)</script>',
                                             "password": "x", "csrf_token": token})
    assert "<script>alert(1)" not in r.text and "&lt;script&gt;" in r.text
    assert "unsafe-inline" not in form.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in form.headers["Content-Security-Policy"]
