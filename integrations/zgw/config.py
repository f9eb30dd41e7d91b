"""Settings of the ZGW backend: ``gemeente.yml`` section ``zgw`` plus secrets from the environment.

Example (``gemeente.yml``)::

    zgw:
      zaken_api: https://openzaak.example.nl/zaken/api/v1/
      catalogi_api: https://openzaak.example.nl/catalogi/api/v1/
      user_id: digitale-assistent
      user_representation: Digitale assistent
      timeout_seconden: 10
      bronorganisatie: "002220647"          # default: gemeente.rsin
      zaaktypen:
        melding_openbare_ruimte:
          zaaktype: https://openzaak.example.nl/catalogi/api/v1/zaaktypen/<uuid>
          statustype: https://openzaak.example.nl/catalogi/api/v1/statustypen/<uuid>
          roltype: https://openzaak.example.nl/catalogi/api/v1/roltypen/<uuid>
          eigenschap: https://...            # optional: the answers as zaakeigenschap

Environment: ``ZGW_CLIENT_ID`` and ``ZGW_SECRET`` (required). Nothing secret
lives in the repository.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple
from urllib.parse import urlparse

from stdnum.exceptions import ValidationError
from stdnum.nl import bsn as elfproef

ENV_CLIENT_ID = "ZGW_CLIENT_ID"
ENV_SECRET = "ZGW_SECRET"

VERTROUWELIJKHEID = (
    "openbaar", "beperkt_openbaar", "intern", "zaakvertrouwelijk",
    "vertrouwelijk", "confidentieel", "geheim", "zeer_geheim",
)


class ZGWConfigError(ValueError):
    """A missing or wrong ZGW setting; the message names the setting."""


@dataclass(frozen=True)
class ZaaktypeConfig:
    """Where one of our zaaktypen (gemeente.yml ``zaaktypen`` key) lives in the ZGW catalogus."""

    key: str
    zaaktype: str
    statustype: str
    roltype: str
    bronorganisatie: str
    verantwoordelijke_organisatie: str
    eigenschap: Optional[str] = None
    vertrouwelijkheidaanduiding: Optional[str] = None

    def setting(self, name: str) -> str:
        """The gemeente.yml path of a setting, for error messages."""
        return f"zgw.zaaktypen.{self.key}.{name}"


@dataclass(frozen=True)
class ZGWConfig:
    zaken_api: str
    catalogi_api: str
    client_id: str
    secret: str
    user_id: str = "digitale-assistent"
    user_representation: str = "Digitale assistent"
    timeout: Tuple[float, float] = (5.0, 10.0)   # (connect, read) seconds
    kenmerk_bron: str = "Digitale assistent"
    zaaktypen: Dict[str, ZaaktypeConfig] = field(default_factory=dict)

    def zaaktype(self, key: str) -> ZaaktypeConfig:
        try:
            return self.zaaktypen[key]
        except KeyError:
            raise ZGWConfigError(
                f"gemeente.yml zgw.zaaktypen.{key} ontbreekt: zaaktype {key!r} gebruikt backend zgw, "
                "maar er staat geen zaaktype, statustype en roltype voor in de instellingen."
            ) from None


def _url(section: Mapping[str, Any], key: str, path: str, required: bool = True) -> Optional[str]:
    value = section.get(key)
    if value in (None, ""):
        if required:
            raise ZGWConfigError(f"gemeente.yml {path}: instelling ontbreekt (een URL).")
        return None
    parsed = urlparse(str(value))
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ZGWConfigError(f"gemeente.yml {path}: {value!r} is geen geldige http(s)-URL.")
    return str(value)


def _rsin(value: Any, path: str) -> str:
    text = str(value or "").strip()
    if not text:
        raise ZGWConfigError(f"gemeente.yml {path}: RSIN ontbreekt.")
    text = text.zfill(9)
    try:
        # An RSIN has the same 9 digits + elfproef as a BSN.
        return elfproef.validate(text)
    except ValidationError:
        raise ZGWConfigError(f"gemeente.yml {path}: {value!r} is geen geldig RSIN (9 cijfers, elfproef).") from None


def _base(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def load_config(
    gemeente: Optional[Mapping[str, Any]] = None,
    env: Optional[Mapping[str, str]] = None,
) -> ZGWConfig:
    """Build the config from the parsed gemeente.yml (default: ``bot.config.gemeente()``)
    and the environment (default: ``os.environ``). Raises ``ZGWConfigError``."""
    if gemeente is None:
        from bot import config as bot_config

        gemeente = bot_config.gemeente()
    env = os.environ if env is None else env
    section = gemeente.get("zgw")
    if not isinstance(section, Mapping):
        raise ZGWConfigError("gemeente.yml zgw: sectie ontbreekt (Zaken API, Catalogi API en zaaktypen).")
    client_id = (env.get(ENV_CLIENT_ID) or "").strip()
    secret = env.get(ENV_SECRET) or ""
    if not client_id:
        raise ZGWConfigError(f"omgevingsvariabele {ENV_CLIENT_ID} ontbreekt (client-id voor de ZGW API's).")
    if not secret:
        raise ZGWConfigError(f"omgevingsvariabele {ENV_SECRET} ontbreekt (geheim voor de ZGW API's).")

    default_rsin = section.get("bronorganisatie") or (gemeente.get("gemeente") or {}).get("rsin")
    default_rsin_path = "zgw.bronorganisatie" if section.get("bronorganisatie") else "gemeente.rsin"
    default_verantwoordelijke = section.get("verantwoordelijke_organisatie") or default_rsin
    timeout = float(section.get("timeout_seconden", 10))
    if timeout <= 0:
        raise ZGWConfigError("gemeente.yml zgw.timeout_seconden: moet groter zijn dan 0.")

    zaaktypen: Dict[str, ZaaktypeConfig] = {}
    raw_zaaktypen = section.get("zaaktypen") or {}
    if not isinstance(raw_zaaktypen, Mapping):
        raise ZGWConfigError("gemeente.yml zgw.zaaktypen: verwacht per zaaktype een blok met URL's.")
    known = set((gemeente.get("zaaktypen") or {}).keys())
    for key, raw in raw_zaaktypen.items():
        path = f"zgw.zaaktypen.{key}"
        if known and key not in known:
            raise ZGWConfigError(f"gemeente.yml {path}: {key!r} is geen zaaktype uit gemeente.yml zaaktypen.")
        if not isinstance(raw, Mapping):
            raise ZGWConfigError(f"gemeente.yml {path}: verwacht zaaktype, statustype en roltype.")
        vertrouwelijk = raw.get("vertrouwelijkheidaanduiding")
        if vertrouwelijk is not None and vertrouwelijk not in VERTROUWELIJKHEID:
            raise ZGWConfigError(
                f"gemeente.yml {path}.vertrouwelijkheidaanduiding: {vertrouwelijk!r} is geen geldige waarde "
                f"({', '.join(VERTROUWELIJKHEID)})."
            )
        zaaktypen[key] = ZaaktypeConfig(
            key=key,
            zaaktype=_url(raw, "zaaktype", f"{path}.zaaktype"),
            statustype=_url(raw, "statustype", f"{path}.statustype"),
            roltype=_url(raw, "roltype", f"{path}.roltype"),
            eigenschap=_url(raw, "eigenschap", f"{path}.eigenschap", required=False),
            bronorganisatie=_rsin(
                raw.get("bronorganisatie") or default_rsin,
                f"{path}.bronorganisatie" if raw.get("bronorganisatie") else default_rsin_path,
            ),
            verantwoordelijke_organisatie=_rsin(
                raw.get("verantwoordelijke_organisatie") or default_verantwoordelijke,
                f"{path}.verantwoordelijke_organisatie",
            ),
            vertrouwelijkheidaanduiding=vertrouwelijk,
        )
    return ZGWConfig(
        zaken_api=_base(_url(section, "zaken_api", "zgw.zaken_api")),
        catalogi_api=_base(_url(section, "catalogi_api", "zgw.catalogi_api")),
        client_id=client_id,
        secret=secret,
        user_id=str(section.get("user_id") or "digitale-assistent"),
        user_representation=str(section.get("user_representation") or "Digitale assistent"),
        timeout=(min(timeout, 5.0), timeout),
        kenmerk_bron=str(section.get("kenmerk_bron") or "Digitale assistent")[:40],
        zaaktypen=zaaktypen,
    )
