"""Staff login shared by the KCC console (``/kcc``) and the insights page.

Accounts (argon2id hashes) and server-side sessions live in the case store
database (``CASES_DB_URL``, migration ``0002_staff_and_kcc``). The browser
only holds a random session token in the cookie ``staff_session``
(``HttpOnly``, ``SameSite=Strict``, ``Path=/``; ``Secure`` on HTTPS or with
``STAFF_COOKIE_SECURE=1``).

Use in a Sanic route::

    from bot.staff import auth

    async def page(request):
        denied = auth.require(request, roles={"kcc"})
        if denied:
            return denied                  # 401 JSON / 303 to the login page / 403
        ...
    async def change(request):             # every state-changing request
        denied = auth.require(request, roles={"kcc"}) or auth.check_csrf(request)
        if denied:
            return denied

``auth.csrf_token(request)`` gives the token to put in the page
(``<meta name="csrf-token">``) and send back as header ``X-CSRF-Token`` or
form field ``csrf_token``.

Lock-out: after ``MAX_FAILURES`` (5) wrong passwords in a row an account is
refused for ``LOCKOUT`` (15 minutes), even with the right password.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import secrets
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Optional, Tuple
from urllib.parse import quote

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from bot import config
from bot.staff.models import ROLES, staff_session, staff_user

SESSION_COOKIE = "staff_session"
LOGIN_CSRF_COOKIE = "staff_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
LOGIN_PATH = "/staff/login"
MAX_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 8
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
#: Default landing page per role after login (when no ``next`` is given).
HOME_BY_ROLE = {"kcc": "/kcc", "redactie": "/inzichten", "manager": "/inzichten"}

_hasher = PasswordHasher()
# A real hash to verify against when the user does not exist (same timing).
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


#: Replaceable clock (tests); every function also takes ``now=``.
clock: Callable[[], dt.datetime] = _now


def session_max_age() -> dt.timedelta:
    """Absolute session lifetime (``STAFF_SESSION_HOURS``, default 10 hours: one working day)."""
    return dt.timedelta(hours=float(os.environ.get("STAFF_SESSION_HOURS", "10")))


def session_idle() -> dt.timedelta:
    """Idle timeout (``STAFF_SESSION_IDLE_MINUTES``, default 120)."""
    return dt.timedelta(minutes=float(os.environ.get("STAFF_SESSION_IDLE_MINUTES", "120")))


class AuthError(Exception):
    """Base class of the errors of this module."""


class UserExists(AuthError):
    pass


class UnknownUser(AuthError, LookupError):
    pass


class InvalidCredentials(AuthError):
    """Wrong username or password (deliberately not saying which)."""


class AccountLocked(AuthError):
    def __init__(self, until: dt.datetime) -> None:
        super().__init__(f"account locked until {until.isoformat()}")
        self.until = until


@dataclass(frozen=True)
class StaffUser:
    username: str
    role: str


# -- database ---------------------------------------------------------------------

_stores: Dict[str, Any] = {}
_stores_lock = threading.Lock()


def store(url: Optional[str] = None):
    """The (migrated, cached) CaseStore of ``url`` or of ``CASES_DB_URL``."""
    from bot.cases.store import CaseStore

    url = url or config.cases_db_url()
    with _stores_lock:
        found = _stores.get(url)
        if found is None:
            found = CaseStore(url)
            found.migrate()
            _stores[url] = found
        return found


def _write(url: Optional[str]):
    return store(url)._write_engine.begin()


def _read(url: Optional[str]):
    return store(url).engine.connect()


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _at(now: Optional[dt.datetime]) -> dt.datetime:
    value = now or clock()
    if value.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return value.astimezone(dt.timezone.utc)


# -- accounts ---------------------------------------------------------------------


def normalise_username(username: str) -> str:
    name = (username or "").strip().lower()
    if not USERNAME_RE.match(name):
        raise ValueError("username: 2-64 characters a-z, 0-9, '.', '_' or '-'")
    return name


def _check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")


def create_user(store_url: Optional[str], username: str, password: str, role: str) -> StaffUser:
    """Create an account. Raises ``UserExists``, or ``ValueError`` for a bad name/role/password."""
    name = normalise_username(username)
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    _check_password(password)
    try:
        with _write(store_url) as conn:
            conn.execute(insert(staff_user).values(
                username=name, password_hash=_hasher.hash(password), role=role,
                failed_logins=0, locked_until=None, disabled_at=None, last_login_at=None,
                created_at=_at(None),
            ))
    except IntegrityError as exc:
        raise UserExists(name) from exc
    return StaffUser(name, role)


def set_password(store_url: Optional[str], username: str, password: str) -> None:
    """New password; also lifts a lock-out and ends the user's sessions."""
    name = normalise_username(username)
    _check_password(password)
    with _write(store_url) as conn:
        done = conn.execute(update(staff_user).where(staff_user.c.username == name).values(
            password_hash=_hasher.hash(password), failed_logins=0, locked_until=None,
        )).rowcount
        conn.execute(delete(staff_session).where(staff_session.c.username == name))
    if not done:
        raise UnknownUser(name)


def set_disabled(store_url: Optional[str], username: str, disabled: bool = True) -> None:
    name = normalise_username(username)
    with _write(store_url) as conn:
        done = conn.execute(update(staff_user).where(staff_user.c.username == name).values(
            disabled_at=_at(None) if disabled else None)).rowcount
        if disabled:
            conn.execute(delete(staff_session).where(staff_session.c.username == name))
    if not done:
        raise UnknownUser(name)


def list_users(store_url: Optional[str] = None) -> list:
    with _read(store_url) as conn:
        rows = conn.execute(select(staff_user).order_by(staff_user.c.username)).all()
    return [dict(username=r.username, role=r.role, locked_until=r.locked_until,
                 disabled=r.disabled_at is not None, last_login_at=r.last_login_at) for r in rows]


def authenticate(store_url: Optional[str], username: str, password: str, *,
                 now: Optional[dt.datetime] = None) -> StaffUser:
    """The user for a correct username/password. Counts failures and locks the account.

    Raises ``AccountLocked`` (even for the right password while locked) or
    ``InvalidCredentials``.
    """
    at = _at(now)
    try:
        name = normalise_username(username)
    except ValueError:
        name = None
    error: Optional[AuthError] = None
    user: Optional[StaffUser] = None
    with _write(store_url) as conn:  # failure counts must commit: errors are raised afterwards
        row = None
        if name is not None:
            row = conn.execute(select(staff_user).where(staff_user.c.username == name)).first()
        if row is None or row.disabled_at is not None:
            try:
                _hasher.verify(_DUMMY_HASH, password or "")
            except VerificationError:
                pass
            error = InvalidCredentials()
        elif row.locked_until is not None and row.locked_until > at:
            error = AccountLocked(row.locked_until)
        else:
            failures = row.failed_logins if row.locked_until is None else 0  # lock over: fresh start
            try:
                _hasher.verify(row.password_hash, password or "")
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                failures += 1
                locked = at + LOCKOUT if failures >= MAX_FAILURES else None
                conn.execute(update(staff_user).where(staff_user.c.id == row.id).values(
                    failed_logins=0 if locked else failures, locked_until=locked))
                error = AccountLocked(locked) if locked else InvalidCredentials()
            else:
                values: Dict[str, Any] = dict(failed_logins=0, locked_until=None, last_login_at=at)
                if _hasher.check_needs_rehash(row.password_hash):
                    values["password_hash"] = _hasher.hash(password)
                conn.execute(update(staff_user).where(staff_user.c.id == row.id).values(**values))
                user = StaffUser(row.username, row.role)
    if error is not None:
        raise error
    assert user is not None
    return user


# -- sessions ---------------------------------------------------------------------


def start_session(store_url: Optional[str], user: StaffUser, *,
                  now: Optional[dt.datetime] = None) -> Tuple[str, str]:
    """A new session for ``user``: (cookie token, csrf token)."""
    at = _at(now)
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    with _write(store_url) as conn:
        conn.execute(delete(staff_session).where(staff_session.c.expires_at <= at))
        conn.execute(insert(staff_session).values(
            token_hash=_hash_token(token), username=user.username, csrf_token=csrf,
            created_at=at, last_seen_at=at, expires_at=at + session_max_age(),
        ))
    return token, csrf


def end_session(store_url: Optional[str], token: Optional[str]) -> None:
    if not token:
        return
    with _write(store_url) as conn:
        conn.execute(delete(staff_session).where(staff_session.c.token_hash == _hash_token(token)))


def session_user(store_url: Optional[str], token: Optional[str], *,
                 now: Optional[dt.datetime] = None) -> Optional[Tuple[StaffUser, str]]:
    """(user, csrf token) of a valid session token, else None. Refreshes ``last_seen_at``."""
    if not token or len(token) > 200:
        return None
    at = _at(now)
    with _read(store_url) as conn:
        row = conn.execute(
            select(staff_session.c.id, staff_session.c.csrf_token, staff_session.c.last_seen_at,
                   staff_session.c.expires_at, staff_user.c.username, staff_user.c.role,
                   staff_user.c.disabled_at)
            .join(staff_user, staff_user.c.username == staff_session.c.username)
            .where(staff_session.c.token_hash == _hash_token(token))
        ).first()
    if row is None or row.disabled_at is not None:
        return None
    if row.expires_at <= at or row.last_seen_at + session_idle() <= at:
        end_session(store_url, token)
        return None
    if at - row.last_seen_at > dt.timedelta(seconds=60):
        with _write(store_url) as conn:
            conn.execute(update(staff_session).where(staff_session.c.id == row.id)
                         .values(last_seen_at=at))
    return StaffUser(row.username, row.role), row.csrf_token


# -- Sanic helpers ----------------------------------------------------------------


def _ctx_get(request, name: str, default=None):
    return getattr(request.ctx, name, default)


def _session(request) -> Optional[Tuple[StaffUser, str]]:
    """Cached per request: (user, csrf) or None."""
    if not hasattr(request.ctx, "_staff_session"):
        token = request.cookies.get(SESSION_COOKIE)
        request.ctx._staff_session = session_user(None, token)
    return request.ctx._staff_session


def current_user(request) -> Optional[StaffUser]:
    """The logged-in staff user of this request, or None."""
    found = _session(request)
    return found[0] if found else None


def wants_json(request) -> bool:
    """True for API paths and script (fetch/XHR) requests: they get 401 JSON, not a redirect."""
    path = request.path or ""
    if "/api/" in path or path.endswith("/api") or request.method not in ("GET", "HEAD"):
        return True
    mode = request.headers.get("sec-fetch-mode")
    if mode and mode != "navigate":
        return True
    if request.headers.get("x-requested-with"):
        return True
    accept = request.headers.get("accept", "")
    return "json" in accept and "text/html" not in accept


def safe_next(value: Optional[str], default: str = "/kcc") -> str:
    """Only local absolute paths ("/kcc?x"), never "//host" or "https://..." (open redirect)."""
    if (not value or not value.startswith("/") or value.startswith("//") or "\\" in value
            or any(ord(c) < 32 for c in value)):
        return default
    return value


def require(request, roles: Iterable[str]) -> Optional[Any]:
    """None when the request has a session with one of ``roles``; else the response to return.

    Anonymous: 401 JSON for API/script requests, 303 to ``/staff/login?next=...`` for pages.
    Logged in with another role: 403.
    """
    from sanic import response

    user = current_user(request)
    if user is None:
        if wants_json(request):
            return response.json({"error": "login_required", "login": LOGIN_PATH}, status=401,
                                 headers={"Cache-Control": "no-store"})
        target = request.path + (f"?{request.query_string}" if request.query_string else "")
        return response.redirect(f"{LOGIN_PATH}?next={quote(target, safe='/')}", status=303,
                                 headers={"Cache-Control": "no-store"})
    if user.role not in set(roles):
        if wants_json(request):
            return response.json({"error": "forbidden"}, status=403)
        return response.text("U heeft geen toegang tot deze pagina.", status=403,
                             headers={"Cache-Control": "no-store"})
    return None


def csrf_token(request) -> str:
    """The CSRF token to embed in a page: the session's, or (login page) a pre-login token.

    For the pre-login token call :func:`set_login_csrf_cookie` on the response.
    """
    found = _session(request)
    if found:
        return found[1]
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or _ctx_get(request, "_staff_login_csrf")
    if not token or len(token) > 100:
        token = secrets.token_urlsafe(32)
    request.ctx._staff_login_csrf = token
    return token


def _submitted_csrf(request) -> str:
    value = request.headers.get(CSRF_HEADER) or ""
    if not value:
        try:
            form = request.form
        except Exception:  # noqa: BLE001 - unparsable body: no token
            form = None
        if form:
            value = form.get(CSRF_FIELD) or ""
    return value


def check_csrf(request) -> Optional[Any]:
    """None when the request carries the right CSRF token; else a 403 response to return.

    With a session the token must equal the session's; without one (login form)
    it must equal the pre-login cookie (double submit).
    """
    from sanic import response

    submitted = _submitted_csrf(request)
    found = _session(request)
    expected = found[1] if found else request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if expected and submitted and secrets.compare_digest(submitted.encode(), expected.encode()):
        return None
    return response.json({"error": "csrf"}, status=403)


def _secure(request) -> bool:
    return os.environ.get("STAFF_COOKIE_SECURE", "") in ("1", "true") or request.scheme == "https"


def _set_cookie(response, request, name: str, value: str, max_age: int) -> None:
    response.cookies[name] = value
    morsel = response.cookies[name]
    morsel["httponly"] = True
    morsel["samesite"] = "Strict"
    morsel["path"] = "/"
    morsel["max-age"] = max_age
    if _secure(request):
        morsel["secure"] = True


def set_session_cookie(response, request, token: str) -> None:
    _set_cookie(response, request, SESSION_COOKIE, token, int(session_max_age().total_seconds()))
    if LOGIN_CSRF_COOKIE in request.cookies:
        _set_cookie(response, request, LOGIN_CSRF_COOKIE, "", 0)


def clear_session_cookie(response, request) -> None:
    _set_cookie(response, request, SESSION_COOKIE, "", 0)


def set_login_csrf_cookie(response, request) -> None:
    _set_cookie(response, request, LOGIN_CSRF_COOKIE, csrf_token(request), 3600)
