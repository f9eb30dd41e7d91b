"""The ZGW case backend: registers a case as a zaak in a Zaken API (e.g. Open Zaak).

``register_submission(case)`` creates, in this order, and skips what exists:

1. the zaak (identificatie = our zaaknummer, a kenmerk with the same value,
   startdatum, omschrijving, toelichting with the answers, zaakgeometrie when
   the answers carry coordinates; Accept-Crs/Content-Crs EPSG:4326);
2. the initial status (``statustype`` from the config);
3. the initiator rol (natuurlijk_persoon, contact details; the BSN only when
   the case has one, i.e. a verified DigiD identity token was present);
4. the answers as zaakeigenschap, when an ``eigenschap`` is configured (the
   summary is always in the zaak's toelichting as well).

Delivery is at least once, so every call first looks the zaak up by its
identificatie (``GET /zaken?identificatie=&bronorganisatie=``) and resumes the
missing steps. The Zaken API keeps identificatie unique per bronorganisatie
(zrc-002): if two deliveries race, the second create fails with
``identificatie-niet-uniek`` and resumes on the zaak of the first. Result:
exactly one remote zaak per local case.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import requests

from bot.cases.backends import CaseBackend, RemoteReference
from bot.cases.models import Case
from bot.outbox import DeliveryError, PermanentDeliveryError
from integrations.zgw import mapping
from integrations.zgw.client import ZGWClient, ZGWHTTPError
from integrations.zgw.config import ZaaktypeConfig, ZGWConfig, ZGWConfigError, load_config

logger = logging.getLogger(__name__)

#: Status lookup in the chat must answer quickly: at most this many seconds in total.
STATUS_BUDGET = 5.0


@dataclass(frozen=True)
class RemoteStatus:
    key: str                 # our status key (flows.yml statussen) or the remote omschrijving
    omschrijving: str        # statustype omschrijving in the catalogus
    since: Optional[dt.datetime]
    statustekst: str = ""


def describe_transport_error(error: requests.RequestException, what: str = "De Zaken API") -> str:
    if isinstance(error, requests.ConnectTimeout):
        return f"{what} is niet bereikbaar (verbinding maken duurde te lang)."
    if isinstance(error, requests.ReadTimeout):
        return (f"{what} gaf geen antwoord op tijd. Mogelijk is het verzoek wel verwerkt; "
                "bij de volgende poging wordt eerst gezocht of de zaak al bestaat.")
    if isinstance(error, requests.ConnectionError):
        return f"{what} is niet bereikbaar (verbinding geweigerd of verbroken)."
    return f"{what}: {type(error).__name__}: {error}"


class Plugin(CaseBackend):
    name = "zgw"

    def __init__(
        self,
        config: Optional[ZGWConfig] = None,
        *,
        gemeente: Optional[Mapping[str, Any]] = None,
        env: Optional[Mapping[str, str]] = None,
        session: Optional[requests.Session] = None,
        status_keys: Optional[Iterable[str]] = None,
    ) -> None:
        """Without arguments (as ``get_backend("zgw")`` does): gemeente.yml + os.environ.

        Tests pass ``config`` (a ``ZGWConfig``) or ``gemeente``/``env`` mappings.
        No network traffic here; see ``check()``.
        """
        if gemeente is None:
            from bot import config as bot_config

            gemeente = bot_config.gemeente()
        self.gemeente = gemeente
        self.config = config or load_config(gemeente, env)
        self.client = ZGWClient(self.config, session=session)
        self._status_keys = list(status_keys) if status_keys is not None else None
        self._checked = False
        self._eigenschap_lengte: Dict[str, Optional[int]] = {}

    # -- start-up check --------------------------------------------------------------

    def check(self) -> None:
        """Check every configured zaaktype in the Catalogi API: it exists, it is
        published (``concept: false``), and the statustype, roltype (initiator)
        and eigenschap belong to it.

        Raises ``ZGWConfigError`` naming the wrong setting, ``PermanentDeliveryError``
        when access is refused (401/403), ``DeliveryError`` when the API cannot be
        reached (try again later).
        """
        for zt in self.config.zaaktypen.values():
            self._check_zaaktype(zt)
        self._checked = True

    def _fetch(self, url: str, setting: str) -> Dict[str, Any]:
        try:
            return self.client.get_catalogus_object(url)
        except ZGWHTTPError as error:
            if error.status in (401, 403):
                raise self._access_refused(error, "Catalogi API") from error
            if error.status == 0:
                raise ZGWConfigError(
                    f"gemeente.yml {setting}: {url} begint niet met zgw.catalogi_api ({self.config.catalogi_api})."
                ) from error
            if error.status in (400, 404, 410):
                raise ZGWConfigError(
                    f"gemeente.yml {setting}: {url} bestaat niet in de Catalogi API (HTTP {error.status})."
                ) from error
            raise DeliveryError(f"Catalogi API: {error.readable()}") from error
        except requests.RequestException as error:
            raise DeliveryError(describe_transport_error(error, "De Catalogi API")) from error

    def _check_zaaktype(self, zt: ZaaktypeConfig) -> None:
        zaaktype = self._fetch(zt.zaaktype, zt.setting("zaaktype"))
        if "statustypen" not in zaaktype or "concept" not in zaaktype:
            raise ZGWConfigError(f"gemeente.yml {zt.setting('zaaktype')}: {zt.zaaktype} is geen zaaktype.")
        if zaaktype.get("concept") is not False:
            raise ZGWConfigError(
                f"gemeente.yml {zt.setting('zaaktype')}: zaaktype {zaaktype.get('identificatie') or zt.zaaktype} "
                "is nog een concept (niet gepubliceerd). Publiceer het zaaktype in de catalogus, "
                "of kies de URL van de gepubliceerde versie."
            )
        statustype = self._fetch(zt.statustype, zt.setting("statustype"))
        if zt.statustype not in (zaaktype.get("statustypen") or []) or statustype.get("zaaktype") != zt.zaaktype:
            raise ZGWConfigError(
                f"gemeente.yml {zt.setting('statustype')}: dit statustype hoort niet bij zaaktype {zt.zaaktype}."
            )
        roltype = self._fetch(zt.roltype, zt.setting("roltype"))
        if zt.roltype not in (zaaktype.get("roltypen") or []) or roltype.get("zaaktype") != zt.zaaktype:
            raise ZGWConfigError(
                f"gemeente.yml {zt.setting('roltype')}: dit roltype hoort niet bij zaaktype {zt.zaaktype}."
            )
        if roltype.get("omschrijvingGeneriek") != "initiator":
            raise ZGWConfigError(
                f"gemeente.yml {zt.setting('roltype')}: verwacht een roltype met omschrijvingGeneriek "
                f"'initiator', maar dit is '{roltype.get('omschrijvingGeneriek')}'."
            )
        if zt.eigenschap:
            eigenschap = self._fetch(zt.eigenschap, zt.setting("eigenschap"))
            if zt.eigenschap not in (zaaktype.get("eigenschappen") or []) or eigenschap.get("zaaktype") != zt.zaaktype:
                raise ZGWConfigError(
                    f"gemeente.yml {zt.setting('eigenschap')}: deze eigenschap hoort niet bij zaaktype {zt.zaaktype}."
                )
            spec = eigenschap.get("specificatie") or {}
            lengte = str(spec.get("lengte") or "")
            self._eigenschap_lengte[zt.eigenschap] = (
                int(lengte) if spec.get("formaat") == "tekst" and lengte.isdigit() else None
            )

    def _ensure_checked(self) -> None:
        if not self._checked:
            self.check()

    # -- registration --------------------------------------------------------------

    def register_submission(self, case: Case) -> RemoteReference:
        zt = self.config.zaaktype(case.zaaktype)
        try:
            self._ensure_checked()
            zaak = self._register(case, zt)
        except ZGWHTTPError as error:
            raise self._translate(error) from error
        except requests.RequestException as error:
            raise DeliveryError(describe_transport_error(error)) from error
        return RemoteReference(url=zaak["url"], identificatie=str(zaak.get("identificatie") or case.zaaknummer))

    def _find(self, case: Case, zt: ZaaktypeConfig) -> Optional[Dict[str, Any]]:
        found = self.client.find_zaken(case.zaaknummer, zt.bronorganisatie)
        if not found:
            return None
        if len(found) > 1:  # cannot happen with zrc-002; never guess
            raise PermanentDeliveryError(
                f"De Zaken API heeft {len(found)} zaken met identificatie {case.zaaknummer}. "
                "Kijk in het zaaksysteem welke de juiste is."
            )
        zaak = found[0]
        if zaak.get("zaaktype") != zt.zaaktype:
            raise PermanentDeliveryError(
                f"Identificatie {case.zaaknummer} is in de Zaken API al in gebruik door een zaak van een "
                f"ander zaaktype ({zaak.get('zaaktype')}). Kijk in het zaaksysteem wat er aan de hand is."
            )
        return zaak

    def _register(self, case: Case, zt: ZaaktypeConfig) -> Dict[str, Any]:
        zaak = self._find(case, zt)
        fresh = zaak is None
        if zaak is None:
            omschrijving = str(((self.gemeente.get("zaaktypen") or {}).get(case.zaaktype) or {}).get(
                "omschrijving") or case.zaaktype)
            body = mapping.zaak_body(case, zt, omschrijving, self.config.kenmerk_bron)
            try:
                zaak = self.client.create_zaak(body)
            except ZGWHTTPError as error:
                if not (error.status == 400 and error.has_code("identificatie-niet-uniek")):
                    raise
                # Another delivery of the same case won the race: continue on its zaak.
                zaak = self._find(case, zt)
                if zaak is None:
                    raise DeliveryError(
                        f"Identificatie {case.zaaknummer} is in gebruik, maar de zaak is niet te vinden."
                    ) from error
                fresh = False
        zaak_url = zaak["url"]

        if fresh or not any(s.get("statustype") == zt.statustype for s in self.client.statussen(zaak_url)):
            self.client.create_status(mapping.status_body(zaak_url, zt.statustype, case))
        if fresh or not self.client.rollen(zaak_url, roltype=zt.roltype):
            self.client.create_rol(mapping.rol_body(zaak_url, zt.roltype, case))
        if zt.eigenschap and (
            fresh or not any(e.get("eigenschap") == zt.eigenschap for e in self.client.zaakeigenschappen(zaak_url))
        ):
            self.client.create_zaakeigenschap(
                zaak_url,
                mapping.eigenschap_body(zaak_url, zt.eigenschap, case, self._eigenschap_lengte.get(zt.eigenschap)),
            )
        return zaak

    @staticmethod
    def _access_refused(error: ZGWHTTPError, api: str = "Zaken API") -> PermanentDeliveryError:
        return PermanentDeliveryError(
            f"De {api} weigert de toegang (HTTP {error.status}). Controleer ZGW_CLIENT_ID en ZGW_SECRET, "
            "en of deze applicatie in het zaaksysteem rechten heeft op dit zaaktype. "
            f"Details: {error.readable()}"
        )

    def _translate(self, error: ZGWHTTPError) -> DeliveryError:
        if error.status in (401, 403):
            return self._access_refused(error)
        if error.status == 400:
            return PermanentDeliveryError(
                f"De Zaken API keurt de gegevens af. Details: {error.readable()}"
            )
        if error.status in (0, 404, 405, 410):
            return PermanentDeliveryError(
                f"Adres niet gevonden in de Zaken API. Controleer zgw.zaken_api in gemeente.yml. "
                f"Details: {error.readable()}"
            )
        return DeliveryError(f"De Zaken API gaf een fout. Details: {error.readable()}")

    # -- status lookup -------------------------------------------------------------

    def _known_status_keys(self) -> List[str]:
        if self._status_keys is None:
            from bot import config as bot_config

            self._status_keys = list((bot_config.flows().get("statussen") or {}).keys())
        return self._status_keys

    def fetch_status_details(self, case: Case) -> Optional[RemoteStatus]:
        """The current remote status (zaak → status → statustype), None when unknown
        or unreachable. Never raises: the chat falls back to the local status."""
        if not case.remote_url:
            return None
        deadline = time.monotonic() + STATUS_BUDGET

        def timeout() -> Tuple[float, float]:
            left = deadline - time.monotonic()
            if left < 0.2:
                raise requests.Timeout(f"status lookup took more than {STATUS_BUDGET} s")
            return (min(2.0, left), left)

        try:
            zaak = self.client.get_zaak(case.remote_url, timeout=timeout())
            if not zaak.get("status"):
                return None
            status = self.client.get(zaak["status"], timeout=timeout())
            statustype = self.client.get_catalogus_object(status["statustype"], timeout=timeout())
        except (ZGWHTTPError, requests.RequestException, KeyError, TypeError) as error:
            logger.warning("remote status of %s unknown: %s", case.zaaknummer, error)
            return None
        omschrijving = str(statustype.get("omschrijving") or "").strip()
        if not omschrijving:
            return None
        since = None
        try:
            since = dt.datetime.fromisoformat(str(status.get("datumStatusGezet")).replace("Z", "+00:00"))
            if since.tzinfo is None:
                since = since.replace(tzinfo=dt.timezone.utc)
        except ValueError:
            pass
        key = mapping.status_key(
            omschrijving, (self.gemeente.get("zgw") or {}).get("statussen"), self._known_status_keys()
        )
        return RemoteStatus(key=key, omschrijving=omschrijving, since=since,
                            statustekst=str(statustype.get("statustekst") or ""))

    def fetch_status(self, case: Case) -> Optional[str]:
        details = self.fetch_status_details(case)
        return details.key if details else None
