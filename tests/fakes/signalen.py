"""A fake Signalen: the public signals endpoint, in memory.

There is no official OpenAPI file for Signalen in ../shared/specs. The request
and response schemas below are written from Signalen's public API as the
Signalen code documents it (Amsterdam/signals: ``PublicSignalCreateSerializer``
for ``POST /signals/v1/public/signals/`` - which refuses unknown top-level keys -
with its nested location/category/reporter serializers, and
``PublicSignalSerializerDetail`` for the answer and for
``GET /signals/v1/public/signals/{uuid}``). Every request and answer is checked
against them; a violation is recorded in ``violations``.

Also like Signalen: the sub-category URL must exist
(``/signals/v1/public/terms/categories/{main}/sub_categories/{sub}``), and the
point must lie in the configured bounding box (default: the Netherlands).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import re
import threading
import uuid
from typing import Any, Dict, List, Optional, Tuple

from jsonschema import Draft7Validator, FormatChecker
from sanic import Sanic
from sanic.request import Request
from sanic.response import HTTPResponse

from tests.fakes.faults import FaultsMixin
from tests.fakes.openapi import dumps
from tests.fakes.runner import SanicThread

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
NL_BOUNDS = (50.6, 53.7, 3.2, 7.3)  # lat_min, lat_max, lon_min, lon_max

_POINT = {
    "type": "object",
    "required": ["type", "coordinates"],
    "properties": {
        "type": {"const": "Point"},
        "coordinates": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
    },
}

CREATE_SCHEMA: Dict[str, Any] = {
    "type": "object",
    "required": ["text", "location", "category", "reporter", "incident_date_start"],
    "additionalProperties": False,  # "Extra properties present: ..."
    "properties": {
        "source": {"type": "string", "const": "online"},
        "text": {"type": "string", "minLength": 1, "maxLength": 3000},
        "text_extra": {"type": "string", "maxLength": 10000},
        "location": {
            "type": "object",
            "required": ["geometrie"],
            "properties": {
                "geometrie": _POINT,
                "address": {"type": ["object", "null"]},
                "stadsdeel": {"type": ["string", "null"]},
                "buurt_code": {"type": ["string", "null"]},
                "area_type_code": {"type": ["string", "null"]},
                "area_code": {"type": ["string", "null"]},
                "extra_properties": {"type": ["object", "array", "null"]},
            },
        },
        "category": {
            "type": "object",
            "oneOf": [{"required": ["sub_category"]}, {"required": ["category_url"]}],
            "properties": {
                "sub_category": {"type": "string", "pattern": "^https?://"},
                "category_url": {"type": "string", "pattern": "^https?://"},
                "text": {"type": "string"},
            },
        },
        "reporter": {
            "type": "object",
            "properties": {
                "email": {"anyOf": [{"type": "string", "format": "email", "maxLength": 254},
                                    {"const": ""}, {"type": "null"}]},
                "phone": {"type": ["string", "null"], "maxLength": 17},
                "sharing_allowed": {"type": "boolean"},
            },
        },
        "incident_date_start": {"type": "string", "format": "date-time"},
        "incident_date_end": {"type": ["string", "null"], "format": "date-time"},
        "extra_properties": {"type": ["array", "null"]},
        "session": {"type": ["string", "null"]},
    },
}

DETAIL_SCHEMA: Dict[str, Any] = {
    "type": "object",
    "required": ["_links", "_display", "id", "id_display", "signal_id", "status", "created_at",
                 "updated_at", "incident_date_start", "incident_date_end"],
    "additionalProperties": False,
    "properties": {
        "_links": {
            "type": "object",
            "required": ["self"],
            "properties": {"self": {"type": "object", "required": ["href"],
                                    "properties": {"href": {"type": "string", "pattern": "^https?://"}}}},
        },
        "_display": {"type": "string"},
        "id": {"type": "integer"},
        "id_display": {"type": "string"},
        "signal_id": {"type": "string", "format": "uuid"},
        "status": {
            "type": "object",
            "required": ["state", "state_display"],
            "properties": {"state": {"type": "string"}, "state_display": {"type": "string"}},
        },
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "incident_date_start": {"type": "string", "format": "date-time"},
        "incident_date_end": {"type": ["string", "null"], "format": "date-time"},
    },
}

STATE_DISPLAY = {"m": "Gemeld", "i": "In afwachting van behandeling", "b": "In behandeling",
                 "ingepland": "Ingepland", "o": "Afgehandeld", "a": "Geannuleerd"}

_FORMATS = FormatChecker()


def _errors(schema: Dict[str, Any], instance: Any) -> List[str]:
    validator = Draft7Validator(schema, format_checker=_FORMATS)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(instance)]


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).isoformat()


class FakeSignalen(FaultsMixin):
    PREFIX = "/signals/v1/public"

    def __init__(self, token: Optional[str] = None, port: Optional[int] = None,
                 bounds: Tuple[float, float, float, float] = NL_BOUNDS) -> None:
        self.token = token
        self.bounds = bounds
        self.lock = threading.RLock()
        self.server = SanicThread(self._make_app, port)
        self.categories: Dict[Tuple[str, str], str] = {}
        self.reset()

    @property
    def api(self) -> str:
        return self.server.url + "/"

    def category_url(self, main: str, sub: str) -> str:
        return f"{self.server.url}{self.PREFIX}/terms/categories/{main}/sub_categories/{sub}"

    def add_category(self, main: str, sub: str, name: Optional[str] = None) -> str:
        with self.lock:
            self.categories[(main, sub)] = name or sub
        return self.category_url(main, sub)

    def start(self) -> "FakeSignalen":
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def close(self) -> None:
        self.server.close()

    def reset(self) -> None:
        with self.lock:
            self.signals: Dict[str, Dict[str, Any]] = {}
            self.violations: List[str] = []
            self.faults = []
            self.posts = 0

    def set_state(self, signal_id: str, state: str) -> None:
        with self.lock:
            self.signals[signal_id]["status"] = {"state": state, "state_display": STATE_DISPLAY.get(state, state)}

    def signals_with(self, text: str) -> List[Dict[str, Any]]:
        with self.lock:
            return [s for s in self.signals.values() if text in s["request"]["text"]]

    # -- HTTP ------------------------------------------------------------------------

    def _make_app(self, name: str) -> Sanic:
        app = Sanic(name, configure_logging=False)

        @app.route("/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        async def handle(request: Request, path: str):
            return await self._handle(request)

        return app

    def _detail(self, signal: Dict[str, Any]) -> Dict[str, Any]:
        return {
            "_links": {"self": {"href": f"{self.server.url}{self.PREFIX}/signals/{signal['signal_id']}"}},
            "_display": signal["id_display"],
            "id": signal["id"],
            "id_display": signal["id_display"],
            "signal_id": signal["signal_id"],
            "status": signal["status"],
            "created_at": signal["created_at"],
            "updated_at": signal["created_at"],
            "incident_date_start": signal["request"]["incident_date_start"],
            "incident_date_end": signal["request"].get("incident_date_end"),
        }

    async def _handle(self, request: Request) -> HTTPResponse:
        method = request.method.upper()
        path = request.path
        sub = path[len(self.PREFIX) + 1:] if path.startswith(self.PREFIX + "/") else path
        if method == "POST" and sub.rstrip("/") == "signals":
            with self.lock:
                self.posts += 1  # every attempt, also those that get an injected fault
        fault = self._take_fault(method, sub)
        if fault is not None and fault.status is not None:
            return HTTPResponse(dumps({"detail": f"Injected {fault.status}"}), status=fault.status,
                                content_type="application/json")
        if self.token is not None and request.headers.get("authorization") != f"Bearer {self.token}":
            return HTTPResponse(dumps({"detail": "Authenticatiegegevens zijn niet opgegeven."}), status=401,
                                content_type="application/json")
        with self.lock:
            status, body = self._dispatch(method, sub, request)
        if status in (200, 201):
            problems = _errors(DETAIL_SCHEMA, body)
            if problems:
                self.violations.append(f"answer to {method} {path} violates the detail schema: {problems}")
                status, body = 500, {"detail": "fake bug"}
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        return HTTPResponse(dumps(body), status=status, content_type="application/json")

    def _dispatch(self, method: str, sub: str, request: Request):
        if sub.rstrip("/") == "signals" and method == "POST":
            if not sub.endswith("/"):
                self.violations.append("POST without the trailing slash of /signals/v1/public/signals/")
            return self._create(request)
        match = re.fullmatch(rf"signals/({UUID_RE})/?", sub)
        if match and method == "GET":
            signal = self.signals.get(match.group(1))
            return (200, self._detail(signal)) if signal else (404, {"detail": "Niet gevonden."})
        self.violations.append(f"{method} {request.path}: not an endpoint of the fake Signalen")
        return 404, {"detail": "Niet gevonden."}

    def _create(self, request: Request):
        if (request.content_type or "").split(";")[0] != "application/json":
            self.violations.append(f"POST signals with content type {request.content_type!r}")
            return 415, {"detail": "Unsupported media type"}
        try:
            body = request.json
        except Exception:  # noqa: BLE001 - sanic raises its own error type
            body = None
        problems = _errors(CREATE_SCHEMA, body) if isinstance(body, dict) else ["body is not a JSON object"]
        if problems:
            self.violations.append(f"POST signals violates the create schema: {problems}")
            return 400, {"non_field_errors": problems}
        sub_url = body["category"].get("sub_category") or body["category"].get("category_url")
        match = re.fullmatch(
            rf"{re.escape(self.server.url + self.PREFIX)}/terms/categories/([\w-]+)/sub_categories/([\w-]+)", sub_url
        )
        if not match or (match.group(1), match.group(2)) not in self.categories:
            return 400, {"category": {"sub_category": ["Ongeldige hyperlink - Object bestaat niet."]}}
        lon, lat = body["location"]["geometrie"]["coordinates"]
        lat_min, lat_max, lon_min, lon_max = self.bounds
        if not (lat_min <= lat <= lat_max and lon_min <= lon <= lon_max):
            return 400, {"location": ["Location coordinates not within the bounding box"]}
        number = len(self.signals) + 1
        signal_id = str(uuid.uuid4())
        signal = {
            "id": number,
            "id_display": f"SIG-{number}",
            "signal_id": signal_id,
            "status": {"state": "m", "state_display": STATE_DISPLAY["m"]},
            "created_at": _iso(dt.datetime.now(dt.timezone.utc)),
            "request": body,
        }
        self.signals[signal_id] = signal
        return 201, self._detail(signal)
