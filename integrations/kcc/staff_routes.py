"""The staff login routes, shared by the KCC console and the insights page.

``/staff/login`` (GET form, POST), ``/staff/logout`` (POST, CSRF). Registered
on the KCC channel's blueprint (see ``integrations/kcc/channel.py``).
"""
from __future__ import annotations

import logging
from pathlib import Path

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import config
from bot.staff import auth
from integrations.webchat import pages

logger = logging.getLogger(__name__)

TEMPLATE = Path(__file__).resolve().parent / "templates" / "login.html"

MESSAGES = {
    "failed": "Inloggen is niet gelukt. Controleer uw gebruikersnaam en wachtwoord.",
    "locked": "Te vaak een verkeerd wachtwoord. Probeer het over 15 minuten opnieuw.",
    "csrf": "Uw inlogscherm was verlopen. Probeer het opnieuw.",
}


def _login_page(request: Request, *, next_url: str, error: str = "", username: str = "",
                status: int = 200) -> HTTPResponse:
    values = {
        "gemeente": (config.gemeente().get("gemeente") or {}).get("naam", ""),
        "csrf": auth.csrf_token(request),
        "next": next_url,
        "error": error,
        "error_hidden": "" if error else "hidden",
        "username": username,
    }
    # error_hidden is an attribute name, not user data: keep it out of escaping trouble.
    resp = pages.html_page(request, TEMPLATE, values, frame_ancestors=("'none'",), status=status)
    auth.set_login_csrf_cookie(resp, request)
    return resp


def _home(user: auth.StaffUser) -> str:
    return auth.HOME_BY_ROLE.get(user.role, "/kcc")


def add_staff_routes(bp: Blueprint) -> None:
    @bp.route(auth.LOGIN_PATH, methods=["GET"])
    async def login_form(request: Request) -> HTTPResponse:
        user = auth.current_user(request)
        next_url = auth.safe_next(request.args.get("next"), "")
        if user is not None:
            return response.redirect(next_url or _home(user), status=303)
        return _login_page(request, next_url=next_url)

    @bp.route(auth.LOGIN_PATH, methods=["POST"])
    async def login_submit(request: Request) -> HTTPResponse:
        form = request.form or {}
        next_url = auth.safe_next(form.get("next"), "")
        username = (form.get("username") or "").strip()[:64]
        if auth.check_csrf(request) is not None:
            return _login_page(request, next_url=next_url, error=MESSAGES["csrf"],
                               username=username, status=403)
        try:
            user = auth.authenticate(None, username, form.get("password") or "")
        except auth.AccountLocked:
            logger.warning("staff login refused: account locked")
            return _login_page(request, next_url=next_url, error=MESSAGES["locked"],
                               username=username, status=429)
        except auth.InvalidCredentials:
            return _login_page(request, next_url=next_url, error=MESSAGES["failed"],
                               username=username, status=401)
        token, _csrf = auth.start_session(None, user)
        resp = response.redirect(next_url or _home(user), status=303,
                                 headers={"Cache-Control": "no-store"})
        auth.set_session_cookie(resp, request, token)
        return resp

    @bp.route("/staff/logout", methods=["POST"])
    async def logout(request: Request) -> HTTPResponse:
        if auth.current_user(request) is None:
            return response.redirect(auth.LOGIN_PATH, status=303)
        denied = auth.check_csrf(request)
        if denied:
            return denied
        auth.end_session(None, request.cookies.get(auth.SESSION_COOKIE))
        resp = response.redirect(auth.LOGIN_PATH, status=303)
        auth.clear_session_cookie(resp, request)
        return resp
