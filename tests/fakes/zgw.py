"""A fake ZGW zaaksysteem: Zaken API 1.5.1 and Catalogi API 1.3.1 in memory.

Every incoming request is validated against the official OpenAPI file (via
openapi-core) before it is handled, and every answer is validated against the
same file before it is sent. A violation is recorded in ``violations`` (tests
assert it stays empty): a request the spec rejects gets HTTP 400, an answer
the spec rejects (a bug of the fake) gets HTTP 500.

Besides the OpenAPI contract the fake follows the run-time rules of the
"Specificatie van gedrag" that matter for registration: zrc-001 (zaaktype
must exist and be published), zrc-002 (identificatie unique per
bronorganisatie, code ``identificatie-niet-uniek``), zrc-009
(vertrouwelijkheidaanduiding from the zaaktype), zrc-016/018/019 (statustype,
eigenschap and roltype belong to the zaaktype), JWT authorisation (HS256 with
the client's secret; 403 otherwise).

Faults for tests (``fail``, ``delay_after_store``, ``stop``/``start``) stand for
what a gateway or network does; injected 502/503/504 answers come from "the
proxy" and are not API answers, so they are not validated against the spec.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import re
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import jwt
from sanic import Sanic
from sanic.request import Request
from sanic.response import HTTPResponse
from stdnum.nl import bsn as elfproef

from tests.fakes import openapi
from tests.fakes.faults import FaultsMixin
from tests.fakes.runner import SanicThread

API_VERSIONS = {"zaken": "1.5.1", "catalogi": "1.3.1"}
GATEWAY_STATUSES = (502, 503, 504)
#: Test credentials of the fake (HS256 keys should be at least 32 bytes).
CLIENT_ID = "digitale-assistent"
SECRET = "test-geheim-van-de-nep-zaken-api-0123456789"
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@dataclass
class LoggedRequest:
    api: str
    method: str
    path: str
    query: Dict[str, List[str]]
    status: int = 0
    body: Any = None


@dataclass
class ZaaktypeURLs:
    zaaktype: str
    statustypen: List[str]
    roltype: str
    eigenschap: Optional[str]
    all_roltypen: List[str] = field(default_factory=list)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _parse_datetime(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


class FakeZGW(FaultsMixin):
    """Start with ``FakeZGW().start()``; URLs in ``zaken_api`` and ``catalogi_api``."""

    def __init__(self, clients: Optional[Dict[str, str]] = None, port: Optional[int] = None) -> None:
        self.clients = dict(clients or {CLIENT_ID: SECRET})
        self.lock = threading.RLock()
        self.server = SanicThread(self._make_app, port)
        self.catalogus = f"{self.catalogi_api}catalogussen/{uuid.uuid4()}"
        self.reset()

    # -- lifecycle --------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self.server.url

    @property
    def zaken_api(self) -> str:
        return f"{self.base_url}{openapi.PREFIXES['zaken']}/"

    @property
    def catalogi_api(self) -> str:
        return f"{self.base_url}{openapi.PREFIXES['catalogi']}/"

    def start(self) -> "FakeZGW":
        self.server.start()
        return self

    def delay_after_store(self, seconds: float, times: int = 1, method: Optional[str] = "POST",
                          path: Optional[str] = r"^zaken$"):
        """Default: the zaak is created, the answer comes too late (the duplicate trap)."""
        return super().delay_after_store(seconds, times, method, path)

    def stop(self) -> None:
        """Go down: connections are refused until ``start()``; data is kept."""
        self.server.stop()

    def close(self) -> None:
        self.server.close()

    def reset(self) -> None:
        """Forget zaken, requests, faults and violations (the catalogus stays)."""
        with self.lock:
            if not hasattr(self, "catalogi"):
                self.catalogi: Dict[str, Dict[str, Dict[str, Any]]] = {
                    "zaaktypen": {}, "statustypen": {}, "roltypen": {}, "eigenschappen": {}
                }
            self.zaken: Dict[str, Dict[str, Any]] = {}
            self.statussen: Dict[str, Dict[str, Any]] = {}
            self.rollen: Dict[str, Dict[str, Any]] = {}
            self.zaakeigenschappen: Dict[str, Dict[str, Any]] = {}
            self.requests: List[LoggedRequest] = []
            self.violations: List[str] = []
            self.faults = []
            self.tokens: List[Dict[str, Any]] = []
            self.hidden: Counter = Counter()

    # -- catalogus ----------------------------------------------------------------------

    def add_zaaktype(
        self,
        identificatie: str,
        omschrijving: str,
        *,
        concept: bool = False,
        statustypen: Tuple[str, ...] = ("Ontvangen", "In behandeling", "Afgerond"),
        roltypen: Tuple[Tuple[str, str], ...] = (("Initiator", "initiator"), ("Behandelaar", "behandelaar")),
        eigenschap: Optional[str] = "samenvatting",
        eigenschap_lengte: int = 2000,
    ) -> ZaaktypeURLs:
        zt_uuid = str(uuid.uuid4())
        zt_url = f"{self.catalogi_api}zaaktypen/{zt_uuid}"
        status_urls, rol_urls, eigenschap_urls = [], [], []
        with self.lock:
            for number, name in enumerate(statustypen, start=1):
                st_uuid = str(uuid.uuid4())
                url = f"{self.catalogi_api}statustypen/{st_uuid}"
                self.catalogi["statustypen"][st_uuid] = {
                    "url": url,
                    "omschrijving": name,
                    "omschrijvingGeneriek": name,
                    "statustekst": f"Uw aanvraag heeft de status: {name.lower()}.",
                    "zaaktype": zt_url,
                    "catalogus": self.catalogus,
                    "zaaktypeIdentificatie": identificatie,
                    "volgnummer": number,
                    "isEindstatus": number == len(statustypen),
                    "informeren": False,
                    "doorlooptijd": None,
                    "toelichting": None,
                    "checklistitemStatustype": [],
                    "eigenschappen": [],
                    "beginGeldigheid": None,
                    "eindeGeldigheid": None,
                    "beginObject": None,
                    "eindeObject": None,
                    "zaakobjecttype": f"{self.catalogi_api}zaakobjecttypen/{uuid.uuid4()}",
                }
                status_urls.append(url)
            for name, generiek in roltypen:
                rt_uuid = str(uuid.uuid4())
                url = f"{self.catalogi_api}roltypen/{rt_uuid}"
                self.catalogi["roltypen"][rt_uuid] = {
                    "url": url,
                    "zaaktype": zt_url,
                    "zaaktypeIdentificatie": identificatie,
                    "omschrijving": name,
                    "omschrijvingGeneriek": generiek,
                    "catalogus": self.catalogus,
                    "beginGeldigheid": None,
                    "eindeGeldigheid": None,
                    "beginObject": None,
                    "eindeObject": None,
                }
                rol_urls.append(url)
            if eigenschap:
                ei_uuid = str(uuid.uuid4())
                url = f"{self.catalogi_api}eigenschappen/{ei_uuid}"
                self.catalogi["eigenschappen"][ei_uuid] = {
                    "url": url,
                    "naam": eigenschap[:20],
                    "catalogus": self.catalogus,
                    "definitie": "De antwoorden van de aanvrager",
                    "specificatie": {
                        "groep": "",
                        "formaat": "tekst",
                        "lengte": str(eigenschap_lengte),
                        "kardinaliteit": "1",
                        "waardenverzameling": [],
                    },
                    "toelichting": "",
                    "zaaktype": zt_url,
                    "zaaktypeIdentificatie": identificatie,
                    "statustype": None,
                    "beginGeldigheid": None,
                    "eindeGeldigheid": None,
                    "beginObject": None,
                    "eindeObject": None,
                }
                eigenschap_urls.append(url)
            self.catalogi["zaaktypen"][zt_uuid] = {
                "url": zt_url,
                "identificatie": identificatie,
                "omschrijving": omschrijving,
                "omschrijvingGeneriek": omschrijving,
                "vertrouwelijkheidaanduiding": "zaakvertrouwelijk",
                "doel": f"{omschrijving} registreren en afhandelen.",
                "aanleiding": "Een inwoner doet een aanvraag of melding.",
                "toelichting": "",
                "indicatieInternOfExtern": "extern",
                "handelingInitiator": "Indienen",
                "onderwerp": omschrijving,
                "handelingBehandelaar": "Behandelen",
                "doorlooptijd": "P10D",
                "servicenorm": None,
                "opschortingEnAanhoudingMogelijk": False,
                "verlengingMogelijk": False,
                "verlengingstermijn": None,
                "trefwoorden": [],
                "publicatieIndicatie": False,
                "publicatietekst": "",
                "verantwoordingsrelatie": [],
                "productenOfDiensten": [],
                "referentieproces": {"naam": omschrijving[:80]},
                "verantwoordelijke": "Gemeente",
                "zaakobjecttypen": [],
                "catalogus": self.catalogus,
                "statustypen": status_urls,
                "resultaattypen": [],
                "eigenschappen": eigenschap_urls,
                "informatieobjecttypen": "",  # the 1.3.1 spec types this as a string
                "roltypen": rol_urls,
                "besluittypen": [],
                "deelzaaktypen": [],
                "gerelateerdeZaaktypen": [],
                "beginGeldigheid": "2024-01-01",
                "eindeGeldigheid": None,
                "beginObject": None,
                "eindeObject": None,
                "versiedatum": "2024-01-01",
                "concept": concept,
            }
        return ZaaktypeURLs(
            zaaktype=zt_url,
            statustypen=status_urls,
            roltype=rol_urls[0],
            eigenschap=eigenschap_urls[0] if eigenschap_urls else None,
            all_roltypen=rol_urls,
        )

    def zaaktype_config(self, urls: ZaaktypeURLs) -> Dict[str, Any]:
        """A gemeente.yml ``zgw.zaaktypen.<key>`` block for these URLs."""
        block = {"zaaktype": urls.zaaktype, "statustype": urls.statustypen[0], "roltype": urls.roltype}
        if urls.eigenschap:
            block["eigenschap"] = urls.eigenschap
        return block

    def set_status(self, zaak_url: str, statustype_url: str, when: Optional[dt.datetime] = None) -> None:
        """What a case worker does in the zaaksysteem (no HTTP)."""
        with self.lock:
            zaak = self._zaak_by_url(zaak_url)
            assert zaak is not None, zaak_url
            self._add_status(zaak, statustype_url, when or _now(), "Gezet door een medewerker")

    def hide_in_list(self, identificatie: str, times: int = 1) -> None:
        """Leave this zaak out of the next ``times`` list answers: what a client sees
        when another client creates the same zaak right after its lookup (a race)."""
        with self.lock:
            self.hidden[identificatie] += times

    # -- inspection -------------------------------------------------------------------

    def zaken_by_identificatie(self) -> Counter:
        with self.lock:
            return Counter(z["identificatie"] for z in self.zaken.values())

    def zaak(self, identificatie: str) -> Dict[str, Any]:
        with self.lock:
            found = [z for z in self.zaken.values() if z["identificatie"] == identificatie]
        assert len(found) == 1, f"{len(found)} zaken with identificatie {identificatie}"
        return self._zaak_out(found[0])

    def statussen_of(self, zaak_url: str) -> List[Dict[str, Any]]:
        with self.lock:
            return [self._status_out(s) for s in self.statussen.values() if s["zaak"] == zaak_url]

    def rollen_of(self, zaak_url: str) -> List[Dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self.rollen.values() if r["zaak"] == zaak_url]

    def eigenschappen_of(self, zaak_url: str) -> List[Dict[str, Any]]:
        with self.lock:
            return [dict(e) for e in self.zaakeigenschappen.values() if e["zaak"] == zaak_url]

    def count(self, method: str, path_regex: str, **query: str) -> int:
        with self.lock:
            return sum(
                1 for r in self.requests
                if r.method == method and re.search(path_regex, r.path)
                and all(r.query.get(k) == [v] for k, v in query.items())
            )

    # -- HTTP ---------------------------------------------------------------------------

    def _make_app(self, name: str) -> Sanic:
        app = Sanic(name, configure_logging=False)
        app.config.KEEP_ALIVE_TIMEOUT = 30

        @app.route("/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"])
        async def handle(request: Request, path: str):
            return await self._handle(request)

        return app

    def _api_of(self, path: str) -> Tuple[Optional[str], str]:
        for api, prefix in openapi.PREFIXES.items():
            if path.startswith(prefix + "/"):
                return api, path[len(prefix) + 1:].rstrip("/")
        return None, path

    async def _handle(self, request: Request) -> HTTPResponse:
        method = request.method.upper()
        api, sub = self._api_of(request.path)
        query = {k: list(v) for k, v in request.args.items()}
        logged = LoggedRequest(api=api or "?", method=method, path=sub, query=query)
        with self.lock:
            self.requests.append(logged)
        if api is None:
            self._violation(f"{method} {request.path}: not an endpoint of the Zaken or Catalogi API")
            return HTTPResponse("Not found", status=404, content_type="text/plain")

        fault = self._take_fault(method, sub)
        if fault is not None and fault.status is not None:
            logged.status = fault.status
            if fault.status in GATEWAY_STATUSES:
                return HTTPResponse(
                    f"<html><body>{fault.status} gateway error</body></html>",
                    status=fault.status, content_type="text/html",
                )

        oa_request = openapi.OpenAPIRequest(
            method, request.path, query, dict(request.headers), request.body, request.content_type
        )
        problem = openapi.validate_request(api, oa_request)
        if problem:
            # Recorded (the test fails); the answer itself is not validated any more.
            self._violation(f"request {method} {request.path} violates the {api} spec:\n{problem}")
            status = 403 if problem.startswith("SecurityValidationError") else 400
            body = self._fout(status, "invalid", "Het verzoek voldoet niet aan de OpenAPI-specificatie.",
                              invalid=[("nonFieldErrors", "invalid", problem[:500])])
        elif fault is not None and fault.status is not None:
            status, body = fault.status, self._fout(fault.status, "error", "Injected fault")
        else:
            status, body = self._authorise(request)
            if status == 0:
                try:
                    with self.lock:
                        status, body = self._dispatch(api, method, sub, query, request)
                except Exception as error:  # a bug of the fake: make it visible
                    self._violation(f"fake crashed on {method} {request.path}: {error!r}")
                    status, body = 500, self._fout(500, "error", "Fake error")
        logged.status = status
        logged.body = body
        headers = {"API-version": API_VERSIONS[api]}
        if api == "zaken" and re.fullmatch(rf"zaken(/{UUID_RE})?", sub) and status < 400:
            headers["Content-Crs"] = "EPSG:4326"
        if status == 201 and isinstance(body, dict) and body.get("url"):
            headers["Location"] = body["url"]
        content_type = "application/json" if status < 400 else "application/problem+json"
        text = openapi.dumps(body)
        problem = None if problem else openapi.validate_response(
            api, oa_request, openapi.OpenAPIResponse(status, text, headers, content_type)
        )
        if problem:
            self._violation(f"response to {method} {request.path} ({status}) violates the {api} spec:\n{problem}")
            status, text, content_type = 500, openapi.dumps(self._fout(500, "error", "Fake bug")), "application/problem+json"
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        return HTTPResponse(text, status=status, headers=headers, content_type=content_type)

    def _violation(self, text: str) -> None:
        with self.lock:
            self.violations.append(text)

    @staticmethod
    def _fout(status: int, code: str, title: str, invalid: Optional[List[Tuple[str, str, str]]] = None) -> Dict[str, Any]:
        body: Dict[str, Any] = {
            "type": f"https://fake.invalid/ref/fouten/{code}/",
            "code": code,
            "title": title,
            "status": status,
            "detail": title,
            "instance": f"urn:uuid:{uuid.uuid4()}",
        }
        if status == 400:
            body["invalidParams"] = [{"name": n, "code": c, "reason": r} for n, c, r in (invalid or [])]
        return body

    def _invalid(self, name: str, code: str, reason: str) -> Tuple[int, Dict[str, Any]]:
        return 400, self._fout(400, "invalid", "Invalid input.", invalid=[(name, code, reason)])

    def _authorise(self, request: Request) -> Tuple[int, Any]:
        """JWT (HS256) signed with the secret of a known client; 403 otherwise (as Open Zaak)."""
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
            client_id = unverified.get("client_id") or unverified.get("iss")
            secret = self.clients.get(client_id)
            if secret is None:
                raise jwt.InvalidTokenError(f"unknown client {client_id!r}")
            claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["iat"]})
            missing = [c for c in ("iss", "client_id", "user_id", "user_representation") if c not in claims]
            if missing or claims["iss"] != claims["client_id"]:
                raise jwt.InvalidTokenError(f"claims missing or wrong: {missing}")
        except jwt.PyJWTError as error:
            return 403, self._fout(403, "permission_denied", f"Geen toegang: {error}")
        with self.lock:
            self.tokens.append(claims)
        return 0, None

    # -- resources ------------------------------------------------------------------------

    def _zaak_by_url(self, url: str) -> Optional[Dict[str, Any]]:
        match = re.search(rf"/zaken/({UUID_RE})$", url or "")
        return self.zaken.get(match.group(1)) if match and url.startswith(self.zaken_api) else None

    def _catalogus_object(self, kind: str, url: str) -> Optional[Dict[str, Any]]:
        match = re.search(rf"/{kind}/({UUID_RE})$", url or "")
        return self.catalogi[kind].get(match.group(1)) if match and url.startswith(self.catalogi_api) else None

    def _zaak_out(self, zaak: Dict[str, Any]) -> Dict[str, Any]:
        out = dict(zaak)
        statussen = sorted(
            (s for s in self.statussen.values() if s["zaak"] == zaak["url"]),
            key=lambda s: _parse_datetime(s["datumStatusGezet"]),
        )
        out["status"] = statussen[-1]["url"] if statussen else None
        out["rollen"] = [r["url"] for r in self.rollen.values() if r["zaak"] == zaak["url"]]
        out["eigenschappen"] = [e["url"] for e in self.zaakeigenschappen.values() if e["zaak"] == zaak["url"]]
        return out

    def _status_out(self, status: Dict[str, Any]) -> Dict[str, Any]:
        out = dict(status)
        latest = self._zaak_out(self.zaken[status["zaak"].rsplit("/", 1)[1]])["status"]
        out["indicatieLaatstGezetteStatus"] = latest == status["url"]
        return out

    @staticmethod
    def _page(results: List[Dict[str, Any]]) -> Dict[str, Any]:
        return {"count": len(results), "next": None, "previous": None, "results": results}

    @staticmethod
    def _json_body(request: Request) -> Dict[str, Any]:
        body = request.json
        if not isinstance(body, dict):
            raise ValueError("body is not a JSON object")
        return body

    def _dispatch(self, api: str, method: str, sub: str, query: Dict[str, List[str]], request: Request):
        one = {k: v[0] for k, v in query.items() if v}
        if api == "catalogi":
            match = re.fullmatch(rf"(zaaktypen|statustypen|roltypen|eigenschappen)/({UUID_RE})", sub)
            if method == "GET" and match:
                obj = self.catalogi[match.group(1)].get(match.group(2))
                return (200, dict(obj)) if obj else (404, self._fout(404, "not_found", "Niet gevonden."))
        else:
            if sub == "zaken" and method == "GET":
                found = [
                    self._zaak_out(z) for z in self.zaken.values()
                    if all(z.get(k) == one[k] for k in ("identificatie", "bronorganisatie", "zaaktype") if k in one)
                ]
                visible = []
                for zaak in found:
                    if self.hidden[zaak["identificatie"]] > 0:
                        self.hidden[zaak["identificatie"]] -= 1
                    else:
                        visible.append(zaak)
                return 200, self._page(visible)
            if sub == "zaken" and method == "POST":
                return self._create_zaak(self._json_body(request))
            match = re.fullmatch(rf"zaken/({UUID_RE})", sub)
            if match and method == "GET":
                zaak = self.zaken.get(match.group(1))
                return (200, self._zaak_out(zaak)) if zaak else (404, self._fout(404, "not_found", "Niet gevonden."))
            if sub == "statussen" and method == "GET":
                found = [self._status_out(s) for s in self.statussen.values()
                         if all(s.get(k) == one[k] for k in ("zaak", "statustype") if k in one)]
                return 200, self._page(found)
            if sub == "statussen" and method == "POST":
                return self._create_status(self._json_body(request))
            match = re.fullmatch(rf"statussen/({UUID_RE})", sub)
            if match and method == "GET":
                status = self.statussen.get(match.group(1))
                return (200, self._status_out(status)) if status else (404, self._fout(404, "not_found", "Niet gevonden."))
            if sub == "rollen" and method == "GET":
                found = [dict(r) for r in self.rollen.values()
                         if all(r.get(k) == one[k] for k in ("zaak", "roltype", "betrokkeneType") if k in one)]
                return 200, self._page(found)
            if sub == "rollen" and method == "POST":
                return self._create_rol(self._json_body(request))
            match = re.fullmatch(rf"rollen/({UUID_RE})", sub)
            if match and method == "GET":
                rol = self.rollen.get(match.group(1))
                return (200, dict(rol)) if rol else (404, self._fout(404, "not_found", "Niet gevonden."))
            match = re.fullmatch(rf"zaken/({UUID_RE})/zaakeigenschappen", sub)
            if match and method == "GET":
                zaak_url = f"{self.zaken_api}zaken/{match.group(1)}"
                return 200, [dict(e) for e in self.zaakeigenschappen.values() if e["zaak"] == zaak_url]
            if match and method == "POST":
                return self._create_zaakeigenschap(match.group(1), self._json_body(request))
        self._violation(f"{method} {api}/{sub}: not implemented by the fake")
        return 404, self._fout(404, "not_found", "Niet gevonden.")

    def _create_zaak(self, body: Dict[str, Any]):
        zaaktype = self._catalogus_object("zaaktypen", body["zaaktype"])
        if zaaktype is None:
            return self._invalid("zaaktype", "bad-url", "Het zaaktype kan niet opgehaald worden (zrc-001).")
        if zaaktype["concept"]:
            return self._invalid("zaaktype", "not-published", "Het zaaktype is nog een concept.")
        for key in ("bronorganisatie", "verantwoordelijkeOrganisatie"):
            if not elfproef.is_valid(body[key]):
                return self._invalid(key, "invalid", "Onjuist RSIN.")
        identificatie = body.get("identificatie") or f"ZAAK-{_now().year}-{len(self.zaken) + 1:010d}"
        if any(z["identificatie"] == identificatie and z["bronorganisatie"] == body["bronorganisatie"]
               for z in self.zaken.values()):
            return self._invalid("identificatie", "identificatie-niet-uniek",
                                 "Deze identificatie bestaat al voor deze bronorganisatie.")
        zaak_uuid = str(uuid.uuid4())
        zaak = {
            "url": f"{self.zaken_api}zaken/{zaak_uuid}",
            "uuid": zaak_uuid,
            "identificatie": identificatie,
            "bronorganisatie": body["bronorganisatie"],
            "omschrijving": body.get("omschrijving", ""),
            "toelichting": body.get("toelichting", ""),
            "zaaktype": body["zaaktype"],
            "registratiedatum": body.get("registratiedatum") or _now().date().isoformat(),
            "verantwoordelijkeOrganisatie": body["verantwoordelijkeOrganisatie"],
            "startdatum": body["startdatum"],
            "einddatum": None,
            "einddatumGepland": body.get("einddatumGepland"),
            "uiterlijkeEinddatumAfdoening": body.get("uiterlijkeEinddatumAfdoening"),
            "publicatiedatum": body.get("publicatiedatum"),
            "communicatiekanaal": body.get("communicatiekanaal", ""),
            "productenOfDiensten": body.get("productenOfDiensten", []),
            "vertrouwelijkheidaanduiding": body.get("vertrouwelijkheidaanduiding")
            or zaaktype["vertrouwelijkheidaanduiding"],
            "betalingsindicatie": body.get("betalingsindicatie", ""),
            "betalingsindicatieWeergave": "",
            "laatsteBetaaldatum": body.get("laatsteBetaaldatum"),
            "zaakgeometrie": body.get("zaakgeometrie"),
            "verlenging": None,
            "opschorting": {"indicatie": False, "reden": ""},
            "selectielijstklasse": body.get("selectielijstklasse", ""),
            "hoofdzaak": body.get("hoofdzaak"),
            "deelzaken": [],
            "relevanteAndereZaken": body.get("relevanteAndereZaken", []),
            "eigenschappen": [],
            "rollen": [],
            "status": None,
            "zaakinformatieobjecten": [],
            "zaakobjecten": [],
            "kenmerken": body.get("kenmerken", []),
            "archiefnominatie": None,
            "archiefstatus": "nog_te_archiveren",
            "archiefactiedatum": None,
            "resultaat": None,
            "opdrachtgevendeOrganisatie": body.get("opdrachtgevendeOrganisatie", ""),
            "processobjectaard": body.get("processobjectaard"),
            "startdatumBewaartermijn": None,
            "processobject": None,
        }
        self.zaken[zaak_uuid] = zaak
        return 201, self._zaak_out(zaak)

    def _add_status(self, zaak: Dict[str, Any], statustype: str, when: dt.datetime, toelichting: str) -> Dict[str, Any]:
        status_uuid = str(uuid.uuid4())
        status = {
            "url": f"{self.zaken_api}statussen/{status_uuid}",
            "uuid": status_uuid,
            "zaak": zaak["url"],
            "statustype": statustype,
            "datumStatusGezet": _iso(when),
            "statustoelichting": toelichting,
            "indicatieLaatstGezetteStatus": True,
            "zaakinformatieobjecten": [],
        }
        self.statussen[status_uuid] = status
        return status

    def _create_status(self, body: Dict[str, Any]):
        zaak = self._zaak_by_url(body["zaak"])
        if zaak is None:
            return self._invalid("zaak", "bad-url", "De zaak bestaat niet.")
        zaaktype = self._catalogus_object("zaaktypen", zaak["zaaktype"])
        if body["statustype"] not in zaaktype["statustypen"]:
            return self._invalid("statustype", "zaaktype-mismatch", "Het statustype hoort niet bij het zaaktype (zrc-016).")
        when = _parse_datetime(body["datumStatusGezet"])
        if when > _now() + dt.timedelta(minutes=1):
            return self._invalid("datumStatusGezet", "date-in-future", "De datum ligt in de toekomst.")
        status = self._add_status(zaak, body["statustype"], when, body.get("statustoelichting", ""))
        return 201, self._status_out(status)

    def _create_rol(self, body: Dict[str, Any]):
        # openapi-core does not follow the discriminator: validate the subtype schema too.
        subtype = f"{body['betrokkeneType']}_Rol"
        errors = openapi.validate_schema("zaken", subtype, body, write=True)
        if errors:
            self._violation(f"POST rollen violates {subtype}: {errors}")
            return self._invalid("betrokkeneIdentificatie", "invalid", "; ".join(errors)[:500])
        zaak = self._zaak_by_url(body["zaak"])
        if zaak is None:
            return self._invalid("zaak", "bad-url", "De zaak bestaat niet.")
        zaaktype = self._catalogus_object("zaaktypen", zaak["zaaktype"])
        roltype = self._catalogus_object("roltypen", body["roltype"])
        if roltype is None or body["roltype"] not in zaaktype["roltypen"]:
            return self._invalid("roltype", "zaaktype-mismatch", "Het roltype hoort niet bij het zaaktype (zrc-019).")
        identificatie = body.get("betrokkeneIdentificatie") or {}
        if not body.get("betrokkene") and not identificatie:
            return self._invalid("nonFieldErrors", "invalid-betrokkene",
                                 "betrokkene of betrokkeneIdentificatie is verplicht.")
        if identificatie.get("inpBsn") and not elfproef.is_valid(identificatie["inpBsn"]):
            return self._invalid("betrokkeneIdentificatie.inpBsn", "invalid", "Onjuist BSN.")
        rol_uuid = str(uuid.uuid4())
        rol = {
            "url": f"{self.zaken_api}rollen/{rol_uuid}",
            "uuid": rol_uuid,
            "zaak": zaak["url"],
            "betrokkene": body.get("betrokkene", ""),
            "betrokkeneType": body["betrokkeneType"],
            "afwijkendeNaamBetrokkene": body.get("afwijkendeNaamBetrokkene", ""),
            "roltype": body["roltype"],
            "omschrijving": roltype["omschrijving"],
            "omschrijvingGeneriek": roltype["omschrijvingGeneriek"],
            "roltoelichting": body["roltoelichting"],
            "registratiedatum": _iso(_now()),
            "indicatieMachtiging": body.get("indicatieMachtiging", ""),
            "contactpersoonRol": body.get("contactpersoonRol"),
            "statussen": [],
            "betrokkeneIdentificatie": identificatie,
        }
        self.rollen[rol_uuid] = rol
        return 201, dict(rol)

    def _create_zaakeigenschap(self, zaak_uuid: str, body: Dict[str, Any]):
        zaak = self.zaken.get(zaak_uuid)
        if zaak is None:
            return 404, self._fout(404, "not_found", "Niet gevonden.")
        if body["zaak"] != zaak["url"]:
            return self._invalid("zaak", "invalid", "De zaak in de body hoort niet bij deze URL.")
        zaaktype = self._catalogus_object("zaaktypen", zaak["zaaktype"])
        eigenschap = self._catalogus_object("eigenschappen", body["eigenschap"])
        if eigenschap is None or body["eigenschap"] not in zaaktype["eigenschappen"]:
            return self._invalid("eigenschap", "zaaktype-mismatch", "De eigenschap hoort niet bij het zaaktype (zrc-018).")
        lengte = int(eigenschap["specificatie"]["lengte"])
        if len(body["waarde"]) > lengte:
            return self._invalid("waarde", "max_length", f"Ten hoogste {lengte} tekens.")
        ze_uuid = str(uuid.uuid4())
        item = {
            "url": f"{zaak['url']}/zaakeigenschappen/{ze_uuid}",
            "uuid": ze_uuid,
            "zaak": zaak["url"],
            "eigenschap": body["eigenschap"],
            "naam": eigenschap["naam"],
            "waarde": body["waarde"],
        }
        self.zaakeigenschappen[ze_uuid] = item
        return 201, dict(item)


def gemeente_with_zgw(fake: FakeZGW, zaaktypen: Dict[str, ZaaktypeURLs], **zgw_settings: Any) -> Dict[str, Any]:
    """The real gemeente.yml with a ``zgw`` section pointing at the fake (for tests)."""
    import copy

    from bot import config

    gemeente = copy.deepcopy(config.gemeente())
    gemeente["zgw"] = {
        "zaken_api": fake.zaken_api,
        "catalogi_api": fake.catalogi_api,
        "user_id": CLIENT_ID,
        "user_representation": "Digitale assistent (test)",
        "zaaktypen": {key: fake.zaaktype_config(urls) for key, urls in zaaktypen.items()},
        **zgw_settings,
    }
    return gemeente


def zgw_env(client_id: str = CLIENT_ID, secret: str = SECRET) -> Dict[str, str]:
    return {"ZGW_CLIENT_ID": client_id, "ZGW_SECRET": secret}
