"""The KCC console (``/kcc``) and the staff login (``/staff/login``), served by Rasa.

Configured in ``credentials.yml`` as ``integrations.kcc.channel.KccConsole``.
Only for employees with role ``kcc`` (accounts: ``python -m bot.kcc add-user``).

Routes (every one refuses anonymous access: pages 303 to the login, the API 401):

======================================================  =====================================
``GET  /kcc``                                           the console (queue, chat, call-backs)
``GET  /kcc/static/<file>``                             its JS and CSS
``GET  /kcc/api/config``                                user, quick replies, call-back statuses
``GET  /kcc/api/poll?etag=&conversation=``              long poll: queue + one conversation
``POST /kcc/api/conversations/<id>/accept``             take a waiting conversation (one winner)
``POST /kcc/api/conversations/<id>/messages``           ``{"text"}``: write to the citizen
``POST /kcc/api/conversations/<id>/handback``           "terug naar de assistent"
``GET  /kcc/api/callbacks``                             call-back requests with their status
``GET  /kcc/api/callbacks/<zaaknummer>``                one, with the transcript
``POST /kcc/api/callbacks/<zaaknummer>/status``         ``{"status"}``
======================================================  =====================================

Every POST needs the CSRF token (header ``X-CSRF-Token``). ``/staff/login``
(GET/POST) and ``/staff/static/staff.css`` are the only public routes.

Real time: the console long-polls ``/kcc/api/poll``. The request waits (up to
20 s) until the queue or the open conversation changed, woken at once by the
hub (``console`` topic: a citizen wrote, an employee acted -- on any Rasa
process) and re-checking the stores every second. Plain HTTP keeps the
cookie/CSRF model of every other request, works through any proxy, needs no
second socket.io server, and loses nothing: the tracker store and the queue
table are the truth, the hub only says "look again".
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import config
from bot.kcc import texts
from bot.kcc.hub import get_hub
from bot.kcc.models import OPEN_STATES, STATE_ACTIVE, STATE_WAITING
from bot.kcc.transcript import flow_answers, transcript
from bot.staff import auth
from integrations.kcc.bridge import CONSOLE_TOPIC, KccBridge
from integrations.kcc.staff_routes import add_staff_routes
from integrations.webchat import pages

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
TEMPLATE_DIR = HERE / "templates"
ROLES = {"kcc"}
POLL_SECONDS = 20.0
RECHECK_SECONDS = 1.0
CALLBACK_ZAAKTYPE = "terugbelverzoek"
CALLBACK_STATUSES = {
    "ontvangen": "Nieuw",
    "in_behandeling": "Wordt gebeld",
    "afgerond": "Gebeld",
    "geannuleerd": "Vervallen",
}
CHANNEL_LABELS = {"website": "Website", "hulpplein": "Digitaal Hulpplein"}


def _json(body: Any, status: int = 200) -> HTTPResponse:
    return response.json(body, status=status, headers={"Cache-Control": "no-store",
                                                       "X-Content-Type-Options": "nosniff"})


def _entry_view(entry: Any, now: Any) -> Dict[str, Any]:
    view = entry.as_dict(now)
    view.pop("sender_id", None)  # the chat session id stays on the server
    view["channel_label"] = CHANNEL_LABELS.get(entry.channel, entry.channel)
    return view


def _without(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, key) for k, v in value.items() if k != key}
    if isinstance(value, list):
        return [_without(v, key) for v in value]
    return value


class KccConsole(InputChannel):
    """The KCC console and the staff login routes."""

    @classmethod
    def name(cls) -> Text:
        return "kcc"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        c = credentials or {}
        return cls(enabled=str(c.get("enabled", True)).lower() not in ("false", "0", "no"))

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def url_prefix(self) -> Text:
        return "/"  # Rasa joins this onto "/webhooks/": "/" gives the site root

    # -- data -----------------------------------------------------------------

    @staticmethod
    def bridge(request: Request) -> KccBridge:
        return KccBridge.of(request.app)

    async def conversation(self, request: Request, entry_id: int,
                           user: auth.StaffUser) -> Optional[Dict[str, Any]]:
        bridge = self.bridge(request)
        entry = bridge.queue.get(entry_id)
        if entry is None:
            return None
        lines: List[Dict[str, Any]] = []
        answers: List[Dict[str, str]] = []
        agent = bridge.agent
        if agent is not None and agent.tracker_store is not None:
            tracker = await agent.tracker_store.retrieve(entry.sender_id)
            if tracker is not None:
                lines = transcript([event.as_dict() for event in tracker.events])
                answers = flow_answers(tracker.current_slot_values())
        now = bridge.queue.now()
        view = _entry_view(entry, now)
        view.update({
            "transcript": lines,
            "answers": answers,
            "mine": entry.employee == user.username,
            "can_accept": entry.state == STATE_WAITING,
            "can_reply": entry.state == STATE_ACTIVE and entry.employee == user.username,
        })
        return view

    async def snapshot(self, request: Request, user: auth.StaffUser,
                       conversation_id: Optional[int]) -> Dict[str, Any]:
        bridge = self.bridge(request)
        now = bridge.queue.now()
        entries = bridge.queue.list(OPEN_STATES)
        body: Dict[str, Any] = {
            "queue": [_entry_view(e, now) | {"mine": e.employee == user.username} for e in entries],
            "conversation": (await self.conversation(request, conversation_id, user)
                             if conversation_id else None),
        }
        # Waiting times change every second; the browser counts those itself.
        stable = json.dumps(_without(body, "waiting_seconds"), sort_keys=True, default=str)
        body["etag"] = hashlib.sha256(stable.encode()).hexdigest()[:32]
        body["server_time"] = now.isoformat()
        return body

    def callbacks(self, limit: int = 100) -> List[Dict[str, Any]]:
        from bot import validators

        items = []
        for case in auth.store().list_cases(limit=limit, zaaktype=CALLBACK_ZAAKTYPE):
            data, contact = case.data or {}, case.contact or {}
            phone = contact.get("telefoon") or data.get("telefoon") or ""
            try:
                shown_phone = validators.format_phone(phone) if phone else ""
            except Exception:  # noqa: BLE001
                shown_phone = str(phone)
            dagdeel = data.get("dagdeel") or ""
            items.append({
                "zaaknummer": case.zaaknummer,
                "status": case.status,
                "status_label": CALLBACK_STATUSES.get(case.status, case.status),
                "created_at": case.created_at.isoformat(),
                "naam": contact.get("naam") or data.get("naam") or "",
                "telefoon": shown_phone,
                "vraag": data.get("vraag") or "",
                "dagdeel": str(dagdeel).replace("_", " "),
                "channel_label": CHANNEL_LABELS.get(case.channel, case.channel),
            })
        return items

    # -- routes ---------------------------------------------------------------

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint("kcc_console", __name__)
        add_staff_routes(bp)

        @bp.listener("after_server_start")
        async def start_bridge(app: Any, _loop: Any) -> None:
            await KccBridge.of(app).start()

        @bp.route("/staff/static/staff.css", methods=["GET"])
        async def staff_css(_: Request) -> HTTPResponse:
            return pages.static_file(STATIC_DIR, "staff.css")

        def guard(request: Request, change: bool = False) -> Optional[HTTPResponse]:
            if not self.enabled:
                return response.text("Niet gevonden", status=404)
            denied = auth.require(request, roles=ROLES)
            if denied is None and change:
                denied = auth.check_csrf(request)
            return denied

        @bp.route("/kcc", methods=["GET"])
        async def console(request: Request) -> HTTPResponse:
            denied = guard(request)
            if denied:
                return denied
            user = auth.current_user(request)
            g = config.gemeente()
            return pages.html_page(request, TEMPLATE_DIR / "console.html", {
                "gemeente": (g.get("gemeente") or {}).get("naam", ""),
                "user": user.username,
                "csrf": auth.csrf_token(request),
            }, frame_ancestors=("'none'",))

        @bp.route("/kcc/static/<filename>", methods=["GET"])
        async def static(request: Request, filename: str) -> HTTPResponse:
            denied = guard(request)
            if denied:
                return denied
            return pages.static_file(STATIC_DIR, filename, max_age=60)

        @bp.route("/kcc/api/config", methods=["GET"])
        async def console_config(request: Request) -> HTTPResponse:
            denied = guard(request)
            if denied:
                return denied
            return _json({"user": auth.current_user(request).username,
                          "quick_replies": texts.quick_replies(),
                          "callback_statuses": CALLBACK_STATUSES})

        @bp.route("/kcc/api/poll", methods=["GET"])
        async def poll(request: Request) -> HTTPResponse:
            denied = guard(request)
            if denied:
                return denied
            user = auth.current_user(request)
            etag = request.args.get("etag") or ""
            try:
                conversation_id = int(request.args.get("conversation") or 0) or None
            except ValueError:
                return _json({"error": "bad_request"}, 400)
            try:
                wait = min(max(float(request.args.get("wait") or POLL_SECONDS), 0.0), POLL_SECONDS)
            except ValueError:
                wait = POLL_SECONDS
            sub = get_hub().subscribe(CONSOLE_TOPIC)
            try:
                deadline = time.monotonic() + wait
                while True:
                    body = await self.snapshot(request, user, conversation_id)
                    if body["etag"] != etag or time.monotonic() >= deadline:
                        return _json(body)
                    await sub.get(timeout=min(RECHECK_SECONDS, max(deadline - time.monotonic(), 0.05)))
            finally:
                sub.close()

        async def entry_action(request: Request, entry_id: int) -> Any:
            denied = guard(request, change=True)
            if denied:
                return denied, None
            return None, auth.current_user(request)

        @bp.route("/kcc/api/conversations/<entry_id:int>/accept", methods=["POST"])
        async def accept(request: Request, entry_id: int) -> HTTPResponse:
            denied, user = await entry_action(request, entry_id)
            if denied:
                return denied
            entry = await self.bridge(request).accept(entry_id, user.username)
            if entry is None:
                return _json({"error": "taken",
                              "message": "Een collega heeft dit gesprek al aangenomen."}, 409)
            return _json({"ok": True, "conversation": await self.conversation(request, entry_id, user)})

        @bp.route("/kcc/api/conversations/<entry_id:int>/messages", methods=["POST"])
        async def send(request: Request, entry_id: int) -> HTTPResponse:
            denied, user = await entry_action(request, entry_id)
            if denied:
                return denied
            body = request.json if isinstance(request.json, dict) else {}
            outcome = await self.bridge(request).send(entry_id, user.username, str(body.get("text") or ""))
            status = {"ok": 200, "empty": 400, "too_long": 400, "closed": 409, "not_yours": 403}[outcome]
            return _json({"ok": outcome == "ok", "error": None if outcome == "ok" else outcome}, status)

        @bp.route("/kcc/api/conversations/<entry_id:int>/handback", methods=["POST"])
        async def hand_back(request: Request, entry_id: int) -> HTTPResponse:
            denied, user = await entry_action(request, entry_id)
            if denied:
                return denied
            if not await self.bridge(request).hand_back(entry_id, user.username):
                return _json({"error": "closed"}, 409)
            return _json({"ok": True})

        @bp.route("/kcc/api/callbacks", methods=["GET"])
        async def callbacks(request: Request) -> HTTPResponse:
            denied = guard(request)
            if denied:
                return denied
            return _json({"callbacks": self.callbacks()})

        @bp.route("/kcc/api/callbacks/<zaaknummer>", methods=["GET"])
        async def callback(request: Request, zaaknummer: str) -> HTTPResponse:
            denied = guard(request)
            if denied:
                return denied
            case = auth.store().get(zaaknummer)
            if case is None or case.zaaktype != CALLBACK_ZAAKTYPE:
                return _json({"error": "not_found"}, 404)
            item = next((c for c in self.callbacks(limit=1000) if c["zaaknummer"] == case.zaaknummer),
                        {"zaaknummer": case.zaaknummer})
            item["transcript"] = (case.data or {}).get("transcript") or []
            item["answers"] = (case.data or {}).get("eerdere_antwoorden") or []
            return _json(item)

        @bp.route("/kcc/api/callbacks/<zaaknummer>/status", methods=["POST"])
        async def callback_status(request: Request, zaaknummer: str) -> HTTPResponse:
            denied = guard(request, change=True)
            if denied:
                return denied
            body = request.json if isinstance(request.json, dict) else {}
            status = body.get("status")
            if status not in CALLBACK_STATUSES:
                return _json({"error": "bad_status"}, 400)
            store = auth.store()
            case = store.get(zaaknummer)
            if case is None or case.zaaktype != CALLBACK_ZAAKTYPE:
                return _json({"error": "not_found"}, 404)
            user = auth.current_user(request)
            store.set_status(case.zaaknummer, status, f"KCC-console: {user.username}")
            return _json({"ok": True})

        return bp
