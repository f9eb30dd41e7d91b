"""The Signalen backend: meldingen openbare ruimte as signals in Signalen.

``POST {api}/signals/v1/public/signals/`` with (Signalen's public create
serializer; it refuses unknown top-level keys):

* ``text``: what the citizen wrote, where it is and our zaaknummer;
* ``location.geometrie``: a GeoJSON Point (WGS84). Signalen requires one. When
  the answers carry no coordinates, ``signalen.standaard_locatie`` is used and
  the place as the citizen described it is in the text;
* ``category.sub_category``: the URL of the Signalen sub-category, mapped from
  our ``melding_categorie`` in ``signalen.categorieen`` (fallback: ``overig``);
* ``reporter``: e-mail and/or phone, ``sharing_allowed`` (config, default false);
* ``incident_date_start``: when the case was filed.

Signalen's public API has no idempotency key and no lookup by our reference.
So a retry is only made when the melding cannot have arrived: connection
refused, connect timeout, HTTP 429/502/503. When the outcome is unknown (read
timeout, connection dropped after sending, HTTP 500/504) the entry is parked
for staff with a message to look for the zaaknummer (it is in the text) in
Signalen before requeueing: no duplicate, nothing lost.

Settings (gemeente.yml ``signalen``)::

    signalen:
      api: https://api.signalen.example.nl/
      timeout_seconden: 10
      sharing_allowed: false
      standaard_locatie: {lat: 51.4946, lon: 4.2874}
      categorieen:
        straatverlichting: https://api.signalen.example.nl/signals/v1/public/terms/categories/wegen-verkeer-straatmeubilair/sub_categories/lantaarnpaal-straatverlichting
        overig: https://api.signalen.example.nl/signals/v1/public/terms/categories/overig/sub_categories/overig

Environment: ``SIGNALEN_TOKEN`` (optional): sent as Bearer token, for
installations that put the public endpoint behind a gateway.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple
from urllib.parse import urljoin, urlparse

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from bot.cases.backends import CaseBackend, RemoteReference
from bot.cases.models import Case
from bot.outbox import DeliveryError, PermanentDeliveryError
from integrations.zgw.mapping import coordinates_of, geojson_point, summary, truncate

logger = logging.getLogger(__name__)

ENV_TOKEN = "SIGNALEN_TOKEN"
SIGNALS_PATH = "signals/v1/public/signals/"
CATEGORY_KEYS = ("straatverlichting", "afval", "bestrating", "groen", "verkeersborden",
                 "speelplaats", "overlast", "ongedierte", "overig")
#: Signalen states (signals.apps.signals.workflow) -> our status keys (flows.yml statussen).
STATE_TO_STATUS = {
    "m": "ontvangen", "i": "ontvangen", "b": "in_behandeling", "h": "in_behandeling",
    "ingepland": "ingepland", "ready to send": "in_behandeling", "sent": "in_behandeling",
    "send failed": "in_behandeling", "done external": "afgerond", "o": "afgerond",
    "a": "geannuleerd", "reopened": "in_behandeling", "s": "in_behandeling",
    "closure requested": "in_behandeling", "reaction requested": "in_behandeling",
    "reaction received": "in_behandeling", "forwarded to external": "in_behandeling",
    "reopen requested": "in_behandeling",
}
TEXT_MAX = 3000
#: Answers after which the melding surely was not stored: send again later.
#: (502: the gateway could not reach Signalen; 503: unavailable; 429: too many requests.)
NOT_PROCESSED = (429, 502, 503)
STATUS_TIMEOUT = (2.0, 4.0)


class SignalenConfigError(ValueError):
    """A missing or wrong Signalen setting; the message names the setting."""


def _url(value: Any, path: str) -> str:
    parsed = urlparse(str(value or ""))
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise SignalenConfigError(f"gemeente.yml {path}: {value!r} is geen geldige http(s)-URL.")
    return str(value)


@dataclass(frozen=True)
class SignalenConfig:
    api: str
    categorieen: Dict[str, str]
    token: Optional[str] = None
    timeout: Tuple[float, float] = (5.0, 10.0)
    sharing_allowed: bool = False
    standaard_locatie: Optional[Tuple[float, float]] = None   # (lat, lon)
    statussen: Dict[str, str] = field(default_factory=dict)

    @property
    def signals_url(self) -> str:
        return urljoin(self.api, SIGNALS_PATH)


def load_config(gemeente: Optional[Mapping[str, Any]] = None,
                env: Optional[Mapping[str, str]] = None) -> SignalenConfig:
    if gemeente is None:
        from bot import config as bot_config

        gemeente = bot_config.gemeente()
    env = os.environ if env is None else env
    section = gemeente.get("signalen")
    if not isinstance(section, Mapping):
        raise SignalenConfigError("gemeente.yml signalen: sectie ontbreekt (api en categorieen).")
    api = _url(section.get("api"), "signalen.api")
    api = api if api.endswith("/") else api + "/"
    raw_categories = section.get("categorieen") or {}
    if not isinstance(raw_categories, Mapping) or not raw_categories:
        raise SignalenConfigError("gemeente.yml signalen.categorieen: geef per soort melding de URL van de subcategorie.")
    categories = {}
    for key, value in raw_categories.items():
        if key not in CATEGORY_KEYS:
            raise SignalenConfigError(
                f"gemeente.yml signalen.categorieen.{key}: onbekende soort (bekend: {', '.join(CATEGORY_KEYS)})."
            )
        categories[key] = _url(value, f"signalen.categorieen.{key}")
    if "overig" not in categories:
        raise SignalenConfigError("gemeente.yml signalen.categorieen.overig ontbreekt (nodig voor onbekende soorten).")
    locatie = section.get("standaard_locatie")
    default_point = None
    if locatie is not None:
        try:
            default_point = (float(locatie["lat"]), float(locatie["lon"]))
        except (KeyError, TypeError, ValueError):
            raise SignalenConfigError("gemeente.yml signalen.standaard_locatie: verwacht {lat: ..., lon: ...}.") from None
    timeout = float(section.get("timeout_seconden", 10))
    if timeout <= 0:
        raise SignalenConfigError("gemeente.yml signalen.timeout_seconden: moet groter zijn dan 0.")
    return SignalenConfig(
        api=api,
        categorieen=categories,
        token=(env.get(ENV_TOKEN) or None),
        timeout=(min(timeout, 5.0), timeout),
        sharing_allowed=bool(section.get("sharing_allowed", False)),
        standaard_locatie=default_point,
        statussen=dict(section.get("statussen") or {}),
    )


def _not_sent(error: requests.RequestException) -> bool:
    """True when the request cannot have reached Signalen (safe to send again)."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    if isinstance(error, requests.ConnectionError):
        reason = error.args[0] if error.args else None
        inner = getattr(reason, "reason", reason)
        return isinstance(inner, (NewConnectionError, ConnectTimeoutError))
    return False


def _drf_errors(payload: Any) -> str:
    """Django REST framework errors ({"field": ["msg"], ...}) as one line."""
    if isinstance(payload, Mapping):
        parts = []
        for key, value in payload.items():
            parts.append(f"{key}: {_drf_errors(value)}")
        return "; ".join(parts)
    if isinstance(payload, list):
        return ", ".join(_drf_errors(v) for v in payload)
    return str(payload)


class Plugin(CaseBackend):
    name = "signalen"

    def __init__(
        self,
        config: Optional[SignalenConfig] = None,
        *,
        gemeente: Optional[Mapping[str, Any]] = None,
        env: Optional[Mapping[str, str]] = None,
        session: Optional[requests.Session] = None,
    ) -> None:
        self.config = config or load_config(gemeente, env)
        self.session = session or requests.Session()

    def _headers(self) -> Dict[str, str]:
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if self.config.token:
            headers["Authorization"] = f"Bearer {self.config.token}"
        return headers

    # -- body ------------------------------------------------------------------------

    def category_url(self, case: Case) -> str:
        key = case.data.get("categorie")
        return self.config.categorieen.get(key) or self.config.categorieen["overig"]

    def signal_body(self, case: Case) -> Dict[str, Any]:
        position = coordinates_of(case.data)
        if position is None:
            if self.config.standaard_locatie is None:
                raise PermanentDeliveryError(
                    "Deze melding heeft geen coördinaten en gemeente.yml signalen.standaard_locatie "
                    "ontbreekt. Signalen heeft altijd een punt op de kaart nodig."
                )
            position = self.config.standaard_locatie
        omschrijving = str(case.data.get("omschrijving") or "").strip()
        locatie = case.data.get("locatie")
        plek = ""
        if isinstance(locatie, Mapping):
            parts = [locatie.get("straat"), locatie.get("postcode"), locatie.get("huisnummer"),
                     locatie.get("omschrijving")]
            plek = " ".join(str(p) for p in parts if p)
        elif isinstance(locatie, str):
            plek = locatie
        lines = [omschrijving or "Melding via de digitale assistent."]
        if plek:
            lines.append(f"Plek volgens de melder: {plek}")
        if coordinates_of(case.data) is None:
            lines.append("Let op: het punt op de kaart is een standaardpunt, niet de plek van de melding.")
        if case.data.get("foto"):
            lines.append(f"Foto: {case.data['foto']}")
        lines.append(f"Kenmerk digitale assistent: {case.zaaknummer}")
        text = truncate("\n".join(lines), TEXT_MAX)
        # The kenmerk must survive truncation: staff search Signalen for it.
        if case.zaaknummer not in text:
            tail = f"\nKenmerk digitale assistent: {case.zaaknummer}"
            text = truncate("\n".join(lines[:-1]), TEXT_MAX - len(tail)) + tail
        reporter: Dict[str, Any] = {"sharing_allowed": self.config.sharing_allowed}
        contact = case.contact or {}
        if contact.get("email"):
            reporter["email"] = str(contact["email"])
        if contact.get("telefoon"):
            reporter["phone"] = str(contact["telefoon"])
        return {
            "text": text,
            "text_extra": truncate(f"Kenmerk: {case.zaaknummer}\n{summary(case)}", 10000),
            "location": {"geometrie": geojson_point(*position)},
            "category": {"sub_category": self.category_url(case)},
            "reporter": reporter,
            "incident_date_start": case.created_at.astimezone(dt.timezone.utc).isoformat(),
        }

    # -- registration ----------------------------------------------------------------

    def register_submission(self, case: Case) -> RemoteReference:
        body = self.signal_body(case)
        url = self.config.signals_url
        try:
            response = self.session.post(
                url, data=json.dumps(body, ensure_ascii=False).encode("utf-8"),
                headers=self._headers(), timeout=self.config.timeout,
            )
        except requests.RequestException as error:
            if _not_sent(error):
                raise DeliveryError(f"Signalen is niet bereikbaar: {type(error).__name__}.") from error
            raise PermanentDeliveryError(
                f"Signalen gaf geen antwoord ({type(error).__name__}). De melding is misschien wel "
                f"aangekomen. Zoek in Signalen op kenmerk {case.zaaknummer}. Staat hij er niet in? "
                "Zet hem dan opnieuw klaar met: python -m bot.cases requeue <id>."
            ) from error
        try:
            payload = response.json() if response.content else None
        except ValueError:
            payload = response.text[:300]
        status = response.status_code
        if status in (401, 403):
            raise PermanentDeliveryError(
                f"Signalen weigert de toegang (HTTP {status}). Controleer SIGNALEN_TOKEN en signalen.api. "
                f"Details: {_drf_errors(payload)[:300]}"
            )
        if status == 400:
            raise PermanentDeliveryError(f"Signalen keurt de melding af (HTTP 400): {_drf_errors(payload)[:500]}")
        if status in (404, 405, 410):
            raise PermanentDeliveryError(f"Signalen: adres niet gevonden (HTTP {status}). Controleer signalen.api.")
        if status in NOT_PROCESSED:
            raise DeliveryError(f"Signalen gaf HTTP {status}: {_drf_errors(payload)[:300]}")
        if status >= 400:
            # 500/504 and others: Signalen may have stored the melding before the error.
            raise PermanentDeliveryError(
                f"Signalen gaf HTTP {status}. De melding is misschien wel aangekomen. Zoek in Signalen op "
                f"kenmerk {case.zaaknummer}. Staat hij er niet in? Zet hem dan opnieuw klaar met: "
                "python -m bot.cases requeue <id>."
            )
        if not isinstance(payload, Mapping) or not payload.get("signal_id"):
            raise PermanentDeliveryError(
                f"Signalen gaf een onverwacht antwoord (HTTP {status}); controleer in Signalen of "
                f"melding {case.zaaknummer} is aangekomen."
            )
        signal_url = urljoin(url, f"{payload['signal_id']}")
        identificatie = str(payload.get("id_display") or payload.get("id") or payload["signal_id"])
        return RemoteReference(url=signal_url, identificatie=identificatie)

    # -- status lookup ---------------------------------------------------------------

    def fetch_status(self, case: Case) -> Optional[str]:
        """Our status key for the signal's state; None when unknown. Never raises."""
        if not case.remote_url:
            return None
        try:
            response = self.session.get(case.remote_url, headers=self._headers(), timeout=STATUS_TIMEOUT)
            if response.status_code != 200:
                return None
            state = str(((response.json() or {}).get("status") or {}).get("state") or "")
        except (requests.RequestException, ValueError, AttributeError) as error:
            logger.warning("Signalen status of %s unknown: %s", case.zaaknummer, error)
            return None
        if not state:
            return None
        return self.config.statussen.get(state) or STATE_TO_STATUS.get(state)
