"""The insights page for the municipality, served by the Rasa server itself.

Configured in ``credentials.yml`` as ``integrations.insights.channel.InsightsPage``
(a Rasa input channel only for its routes; it receives no chat messages):

* ``GET /inzichten``: the page (period filter ``periode=week|maand|aangepast``
  with ``datum`` or ``van``/``tot``);
* ``GET /inzichten/export/<table>.csv``: every table as CSV (same filter);
* ``POST /inzichten/toewijzen``: assign an unrecognised question to an intent
  (role ``redactie`` only, CSRF token required): a training example in
  ``data/nlu/review.yml``;
* ``GET /inzichten/static/<file>``: the stylesheet.

Access: the staff login of :mod:`bot.staff.auth` (routes ``/staff/login`` and
``/staff/logout`` are served by the KCC channel). Roles ``redactie`` and
``manager`` may see the page; ``kcc`` gets 403; without login pages redirect
(303) to the login page and CSV/API requests get 401.

Figures come from the tracker store Rasa itself uses (``agent.tracker_store``,
a SQL tracker store) and the case store; see :mod:`bot.insights`. The work runs
in a worker thread, so the chat keeps answering while a page is computed.
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import time
from typing import Any, Awaitable, Callable, Dict, Optional, Text
from urllib.parse import urlencode

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from bot.insights import cache, report as reports
from bot.insights.extract import normalise, tracker_engine_from_store
from bot.insights.review import AssignError, assign
from integrations.insights import render
from integrations.webchat import pages

logger = logging.getLogger(__name__)

PAGE_PATH = "/inzichten"
VIEW_ROLES = frozenset({"redactie", "manager"})
ASSIGN_ROLES = frozenset({"redactie"})
_TABLE_RE = re.compile(r"^[a-z_]{1,40}$")
FLASH = {
    "toegewezen": ("ok", "Toegewezen. Het voorbeeld staat in data/nlu/review.yml en telt mee bij de volgende training."),
    "bestond": ("ok", "Dit voorbeeld stond er al. Er is niets veranderd."),
}


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() not in ("0", "false", "no", "nee", "off", "")


class InsightsPage(InputChannel):
    """Routes of the insights page; no messages come in through this channel."""

    @classmethod
    def name(cls) -> Text:
        return "insights"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "InsightsPage":
        return cls(**(credentials or {}))

    def __init__(self, enabled: Any = True, frame_ancestors: Any = None, refresh_budget_seconds: float = 1.0,
                 background_refresh_seconds: float = 60.0, background_budget_seconds: float = 0.5,
                 tracker_db_url: Optional[str] = None) -> None:
        env = os.environ.get("INSIGHTS_PAGE")
        self.enabled = _truthy(env) if env is not None else _truthy(enabled)
        self.frame_ancestors = pages.parse_sources(frame_ancestors, default=("'none'",))
        self.refresh_budget = float(os.environ.get("INSIGHTS_REFRESH_BUDGET", refresh_budget_seconds))
        self.background_every = float(os.environ.get("INSIGHTS_BACKGROUND_REFRESH", background_refresh_seconds))
        self.background_budget = float(background_budget_seconds)
        self.tracker_db_url = os.environ.get("INSIGHTS_TRACKER_DB_URL") or tracker_db_url
        self._insights: Optional[render.Insights] = None
        self._tracker: Optional[Engine] = None
        self._lock = threading.Lock()

    def url_prefix(self) -> Text:
        # "/" (not ""): Rasa joins this onto "/webhooks/", and only "/" gives the site root.
        return "/"

    # -- shared state -------------------------------------------------------
    def insights(self) -> render.Insights:
        with self._lock:
            if self._insights is None:
                self._insights = render.Insights(cache.open_cache(), refresh_budget=self.refresh_budget)
            return self._insights

    def tracker(self, request: Request) -> Optional[Engine]:
        return self._tracker_of(request.app)

    def _tracker_of(self, app: Any) -> Optional[Engine]:
        if self.tracker_db_url:
            if self._tracker is None:
                self._tracker = create_engine(self.tracker_db_url)
            return self._tracker
        agent = getattr(app.ctx, "agent", None)
        return tracker_engine_from_store(getattr(agent, "tracker_store", None))

    def _background(self, app: Any) -> None:
        """Warm up (imports), then keep the cache up to date in small steps, so a page
        view seldom has new events to read. One short refresh per interval: the GIL is
        shared with the chat, so each step is bounded (``background_budget_seconds``)."""
        try:
            render.warm_up()
        except Exception:  # noqa: BLE001 - the page works without warm-up, only slower the first time
            logger.warning("insights: warm-up failed", exc_info=True)
        while self.background_every > 0:
            time.sleep(self.background_every)
            try:
                tracker = self._tracker_of(app)
                if tracker is not None:
                    self.insights().refresh(tracker, budget=self.background_budget)
            except Exception:  # noqa: BLE001 - try again next interval
                logger.warning("insights: background refresh failed", exc_info=True)

    def _headers(self, request: Request) -> Dict[str, str]:
        return pages.security_headers(request, self.frame_ancestors)

    # -- routes -------------------------------------------------------------
    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint("insights_page", __name__)
        if not self.enabled:
            return bp

        @bp.listener("after_server_start")
        async def start_background(app: Any, _loop: Any) -> None:
            threading.Thread(target=self._background, args=(app,), name="insights-refresh",
                             daemon=True).start()

        @bp.route(f"{PAGE_PATH}/static/<filename>", methods=["GET"])
        async def static(request: Request, filename: str) -> HTTPResponse:
            return pages.static_file(render.STATIC, filename)

        @bp.route(PAGE_PATH, methods=["GET"])
        async def page(request: Request) -> HTTPResponse:
            from bot.staff import auth

            denied = auth.require(request, roles=VIEW_ROLES)
            if denied:
                return denied
            user = auth.current_user(request)
            period_error = ""
            try:
                period = reports.parse_period(request.args)
            except reports.PeriodError as error:
                period_error = str(error)
                period = reports.parse_period({})
            flash = self._flash(request)
            csrf = auth.csrf_token(request)
            tracker = self.tracker(request)
            insights = self.insights()
            loop = asyncio.get_running_loop()
            rendered = await loop.run_in_executor(None, lambda: insights.page(
                tracker, period, user=user, csrf=csrf, period_error=period_error, flash=flash))
            logger.info("insights page %s in %.2f s %s", period.label, rendered.timings["total"],
                        {k: round(v, 3) for k, v in rendered.timings.items()})
            return response.html(rendered.html, status=400 if period_error else 200,
                                 headers=self._headers(request))

        @bp.route(f"{PAGE_PATH}/export/<name>", methods=["GET"])
        async def export(request: Request, name: str) -> HTTPResponse:
            from bot.staff import auth

            denied = auth.require(request, roles=VIEW_ROLES)
            if denied:
                return denied
            table = name[:-4] if name.endswith(".csv") else ""
            if not _TABLE_RE.match(table):
                return response.text("Niet gevonden", status=404)
            try:
                period = reports.parse_period(request.args)
            except reports.PeriodError as error:
                return response.text(str(error), status=400)
            tracker = self.tracker(request)
            insights = self.insights()
            loop = asyncio.get_running_loop()
            body = await loop.run_in_executor(None, lambda: insights.export(tracker, period, table))
            if body is None:
                return response.text("Niet gevonden", status=404)
            filename = f"inzichten-{table}-{period.start.isoformat()}-{period.end.isoformat()}.csv"
            return response.raw(body, content_type="text/csv; charset=utf-8", headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})

        @bp.route(f"{PAGE_PATH}/toewijzen", methods=["POST"])
        async def assign_route(request: Request) -> HTTPResponse:
            from bot.staff import auth

            denied = auth.require(request, roles=ASSIGN_ROLES) or auth.check_csrf(request)
            if denied:
                return denied
            user = auth.current_user(request)
            form = request.form or {}
            back = {k: form.get(k) for k in ("periode", "datum", "van", "tot") if form.get(k)}
            text = form.get("tekst") or ""
            intent = form.get("intent") or ""
            source = form.get("bron") or ""
            loop = asyncio.get_running_loop()
            try:
                result = await loop.run_in_executor(None, lambda: assign(text, intent))
            except AssignError as error:
                return self._redirect(back, fout=error.code, bij=",".join(error.intents))
            insights = self.insights()
            await loop.run_in_executor(None, lambda: self._remember(insights, source or result.text,
                                                                    result.text, intent, user.username))
            logger.info("insights: %s assigned an example to %s (added=%s)", user.username, intent, result.added)
            return self._redirect(back, melding="toegewezen" if result.added else "bestond")

        return bp

    # -- helpers ------------------------------------------------------------
    @staticmethod
    def _remember(insights: render.Insights, source: str, text: str, intent: str, username: str) -> None:
        with insights.cache_engine.begin() as conn:
            conn.execute(cache.assignment.insert().values(
                normalised=normalise(source) if source else normalise(text), text=text, intent=intent,
                username=username, at=time.time()))

    @staticmethod
    def _redirect(back: Dict[str, str], **extra: str) -> HTTPResponse:
        query = dict(back)
        query.update(extra)
        return response.redirect(f"{PAGE_PATH}?{urlencode(query)}#niet-herkend", status=303,
                                 headers={"Cache-Control": "no-store"})

    @staticmethod
    def _flash(request: Request) -> Optional[Dict[str, str]]:
        code = request.args.get("melding")
        if code in FLASH:
            kind, text = FLASH[code]
            return {"kind": kind, "text": text}
        code = request.args.get("fout")
        if code in AssignError.MESSAGES:
            # Only known codes and intent names: no text from the URL reaches the page.
            known = set(render.assignable_intents())
            where = [i for i in (request.args.get("bij") or "").split(",") if i in known]
            message = str(AssignError(code, where)) if code == "dubbel" else AssignError.MESSAGES[code]
            return {"kind": "error", "text": f"Toewijzen is niet gelukt. {message}"}
        return None
