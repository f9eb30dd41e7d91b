"""From a local case (``bot.cases.models.Case``) to ZGW request bodies.

Also used by the Signalen backend (coordinates, summary).
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

from bot.cases.models import LOCAL_TZ, Case

#: Keys under which the answers may carry a position (a map widget, a geocoder).
_LAT_KEYS = ("lat", "latitude", "breedtegraad")
_LON_KEYS = ("lon", "lng", "longitude", "lengtegraad")


def truncate(text: str, limit: int) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return None
    try:
        number = float(str(value).replace(",", ".")) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None  # NaN


def _point(candidate: Mapping[str, Any]) -> Optional[Tuple[float, float]]:
    """(lat, lon) from {"lat", "lon"}-like keys or a GeoJSON Point ({"coordinates": [lon, lat]})."""
    lat = next((_number(candidate[k]) for k in _LAT_KEYS if k in candidate), None)
    lon = next((_number(candidate[k]) for k in _LON_KEYS if k in candidate), None)
    if lat is None or lon is None:
        geometry = candidate.get("geometrie") or candidate.get("geometry") or candidate
        if isinstance(geometry, Mapping) and geometry.get("type") == "Point":
            coords = geometry.get("coordinates")
            if isinstance(coords, (list, tuple)) and len(coords) == 2:
                lon, lat = _number(coords[0]), _number(coords[1])
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return lat, lon


def coordinates_of(data: Mapping[str, Any]) -> Optional[Tuple[float, float]]:
    """The WGS84 position (lat, lon) of a case, when the answers carry one."""
    found = _point(data)
    if found:
        return found
    for value in data.values():
        if isinstance(value, Mapping):
            found = _point(value)
            if found:
                return found
    return None


def geojson_point(lat: float, lon: float) -> Dict[str, Any]:
    # GeoJSON order is [longitude, latitude] (EPSG:4326 axis order as used by ZGW).
    return {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]}


def summary(case: Case) -> str:
    """The answers as readable lines (the flow engine stores them as ``samenvatting``)."""
    text = case.data.get("samenvatting")
    if isinstance(text, str) and text.strip():
        return text.strip()
    lines = []
    for key, value in case.data.items():
        if isinstance(value, Mapping):
            value = ", ".join(f"{k}: {v}" for k, v in value.items() if v not in (None, ""))
        elif isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value)
        lines.append(f"{key}: {value}")
    return "\n".join(lines)


def local_date(moment: dt.datetime) -> str:
    return moment.astimezone(LOCAL_TZ).date().isoformat()


def zaak_body(
    case: Case,
    zaaktype: Any,  # ZaaktypeConfig
    omschrijving: str,
    kenmerk_bron: str,
) -> Dict[str, Any]:
    """POST /zaken body. identificatie = our zaaknummer (unique per bronorganisatie, zrc-002):
    that makes a repeated delivery findable (GET /zaken?identificatie=...)."""
    detail = case.data.get("omschrijving")
    title = f"{omschrijving}: {detail}" if isinstance(detail, str) and detail.strip() else omschrijving
    intro = f"Ingediend via de digitale assistent (kanaal: {case.channel}), nummer {case.zaaknummer}."
    body: Dict[str, Any] = {
        "identificatie": case.zaaknummer,
        "bronorganisatie": zaaktype.bronorganisatie,
        "verantwoordelijkeOrganisatie": zaaktype.verantwoordelijke_organisatie,
        "zaaktype": zaaktype.zaaktype,
        "omschrijving": truncate(title, 80),
        "toelichting": truncate(f"{intro}\n{summary(case)}", 1000),
        "startdatum": local_date(case.created_at),
        "registratiedatum": local_date(case.created_at),
        "kenmerken": [{"kenmerk": case.zaaknummer[:40], "bron": kenmerk_bron[:40]}],
    }
    if zaaktype.vertrouwelijkheidaanduiding:
        body["vertrouwelijkheidaanduiding"] = zaaktype.vertrouwelijkheidaanduiding
    position = coordinates_of(case.data)
    if position:
        body["zaakgeometrie"] = geojson_point(*position)
    return body


def status_body(zaak_url: str, statustype: str, case: Case) -> Dict[str, Any]:
    return {
        "zaak": zaak_url,
        "statustype": statustype,
        "datumStatusGezet": case.created_at.astimezone(dt.timezone.utc).isoformat(),
        "statustoelichting": "Ontvangen via de digitale assistent",
    }


def rol_body(zaak_url: str, roltype: str, case: Case) -> Dict[str, Any]:
    """The initiator as natuurlijk_persoon. BSN only when the case has one (a
    verified DigiD identity token); the name and contact details as given in the chat."""
    contact = case.contact or {}
    naam = str(contact.get("naam") or "").strip()
    email = str(contact.get("email") or "").strip()
    telefoon = str(contact.get("telefoon") or "").strip()
    identificatie: Dict[str, Any] = {}
    if case.bsn:
        identificatie["inpBsn"] = case.bsn
    if naam:
        # The chat asks for one full name; it is not split into voornamen/geslachtsnaam.
        identificatie["geslachtsnaam"] = naam[:200]
    if not identificatie:
        identificatie["geslachtsnaam"] = "Onbekend"
    body: Dict[str, Any] = {
        "zaak": zaak_url,
        "betrokkeneType": "natuurlijk_persoon",
        "roltype": roltype,
        "roltoelichting": f"Indiener via de digitale assistent (kanaal: {case.channel})",
        "betrokkeneIdentificatie": identificatie,
    }
    if naam:
        body["afwijkendeNaamBetrokkene"] = naam[:625]
    if email or telefoon:
        contactpersoon: Dict[str, Any] = {"naam": (naam or "Indiener")[:200]}
        if email:
            contactpersoon["emailadres"] = email[:254]
        if telefoon:
            contactpersoon["telefoonnummer"] = telefoon[:20]
        body["contactpersoonRol"] = contactpersoon
    return body


def eigenschap_body(zaak_url: str, eigenschap: str, case: Case, max_length: Optional[int] = None) -> Dict[str, Any]:
    value = summary(case)
    if max_length:
        value = truncate(value, max_length)
    return {"zaak": zaak_url, "eigenschap": eigenschap, "waarde": value}


def status_key(omschrijving: str, mapping: Optional[Mapping[str, str]] = None, known: Iterable[str] = ()) -> str:
    """A remote statustype omschrijving as one of our status keys (flows.yml ``statussen``).

    ``mapping`` (gemeente.yml ``zgw.statussen``) wins; otherwise "In behandeling"
    becomes "in_behandeling" when that is a known key; else the omschrijving as is.
    """
    if mapping and omschrijving in mapping:
        return mapping[omschrijving]
    key = "_".join(omschrijving.strip().lower().replace("-", " ").split())
    return key if key in set(known) else omschrijving
