"""A small client for the Zaken API 1.5 and the Catalogi API 1.3 (requests.Session, timeouts).

Only what case registration needs: find/create a zaak, add status, rol and
zaakeigenschap, read them back, and read zaaktype/statustype/roltype from the
catalogus. Errors:

* ``ZGWHTTPError``: the API answered with an HTTP error (status, code, the
  ``invalidParams`` of a ``ValidatieFout``);
* ``requests.RequestException``: no answer (connection refused, timeout, ...).
"""
from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urljoin

import requests

from integrations.zgw.auth import authorization_header
from integrations.zgw.config import ZGWConfig

CRS = "EPSG:4326"
#: Max pages followed in a list call (a lookup by identificatie gives one page).
MAX_PAGES = 20


class ZGWHTTPError(Exception):
    """The ZGW API answered with an HTTP error status."""

    def __init__(self, method: str, url: str, status: int, body: Any) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.body = body if isinstance(body, dict) else {}
        self.raw = body if not isinstance(body, dict) else None
        super().__init__(self.readable())

    @property
    def code(self) -> str:
        return str(self.body.get("code") or "")

    @property
    def invalid_params(self) -> List[Dict[str, Any]]:
        params = self.body.get("invalidParams")
        return [p for p in params if isinstance(p, dict)] if isinstance(params, list) else []

    def has_code(self, code: str) -> bool:
        return self.code == code or any(p.get("code") == code for p in self.invalid_params)

    def readable(self) -> str:
        parts = [f"HTTP {self.status} op {self.method} {self.url}"]
        title = self.body.get("title") or self.body.get("detail")
        if title:
            parts.append(str(title))
        for param in self.invalid_params[:5]:
            parts.append(f"{param.get('name')}: {param.get('reason')} ({param.get('code')})")
        if self.raw:
            parts.append(str(self.raw)[:200])
        return "; ".join(parts)


class ZGWClient:
    def __init__(self, config: ZGWConfig, session: Optional[requests.Session] = None) -> None:
        self.config = config
        self.session = session or requests.Session()

    # -- plumbing ----------------------------------------------------------------

    def zaken_url(self, path: str) -> str:
        return urljoin(self.config.zaken_api, path.lstrip("/"))

    def catalogi_url(self, path: str) -> str:
        return urljoin(self.config.catalogi_api, path.lstrip("/"))

    def _headers(self, crs: bool, body: bool) -> Dict[str, str]:
        headers = {
            "Authorization": authorization_header(
                self.config.client_id,
                self.config.secret,
                self.config.user_id,
                self.config.user_representation,
            ),
            "Accept": "application/json",
        }
        if body:
            headers["Content-Type"] = "application/json"
        if crs:
            # The Zaken API requires both on every /zaken call (zaakgeometrie is WGS84).
            headers["Accept-Crs"] = CRS
            headers["Content-Crs"] = CRS
        return headers

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Optional[Dict[str, Any]] = None,
        body: Optional[Dict[str, Any]] = None,
        crs: bool = False,
        timeout: Optional[Tuple[float, float]] = None,
        expect: type = dict,
    ) -> Any:
        if not url.startswith((self.config.zaken_api, self.config.catalogi_api)):
            # URLs come from answers too (status, next page): never send our token elsewhere.
            raise ZGWHTTPError(method, url, 0, "URL hoort niet bij zgw.zaken_api of zgw.catalogi_api")
        data = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else None
        response = self.session.request(
            method,
            url,
            params=params,
            data=data,
            headers=self._headers(crs=crs, body=body is not None),
            timeout=timeout or self.config.timeout,
        )
        try:
            payload = response.json() if response.content else None
        except ValueError:
            payload = response.text[:500]
        if response.status_code >= 400:
            raise ZGWHTTPError(method, url, response.status_code, payload)
        if not isinstance(payload, expect):
            raise ZGWHTTPError(
                method, url, response.status_code, f"onverwacht antwoord (geen JSON {expect.__name__}): {payload!r}"[:300]
            )
        return payload

    def get(self, url: str, *, crs: bool = False, params: Optional[Dict[str, Any]] = None, **kw: Any) -> Dict[str, Any]:
        return self.request("GET", url, params=params, crs=crs, **kw)

    def post(self, url: str, body: Dict[str, Any], *, crs: bool = False, **kw: Any) -> Dict[str, Any]:
        result = self.request("POST", url, body=body, crs=crs, **kw)
        if not result.get("url"):
            raise ZGWHTTPError("POST", url, 201, f"antwoord zonder url: {result!r}"[:300])
        return result

    def list_all(self, url: str, params: Dict[str, Any], *, crs: bool = False, **kw: Any) -> Iterator[Dict[str, Any]]:
        """Items of a paginated list (``results``), following ``next``."""
        next_url: Optional[str] = url
        next_params: Optional[Dict[str, Any]] = params
        for _ in range(MAX_PAGES):
            if not next_url:
                return
            page = self.get(next_url, params=next_params, crs=crs, **kw)
            for item in page.get("results") or []:
                if isinstance(item, dict):
                    yield item
            next_url, next_params = page.get("next"), None

    # -- Zaken API -----------------------------------------------------------------

    def find_zaken(self, identificatie: str, bronorganisatie: str) -> List[Dict[str, Any]]:
        """Zaken with this identificatie (unique per bronorganisatie, rule zrc-002)."""
        found = self.list_all(
            self.zaken_url("zaken"),
            {"identificatie": identificatie, "bronorganisatie": bronorganisatie},
            crs=True,
        )
        # Filter again: a server that ignores a filter must not make us pick a wrong zaak.
        return [
            z for z in found
            if z.get("identificatie") == identificatie and z.get("bronorganisatie") == bronorganisatie
        ]

    def create_zaak(self, body: Dict[str, Any]) -> Dict[str, Any]:
        return self.post(self.zaken_url("zaken"), body, crs=True)

    def get_zaak(self, url: str, **kw: Any) -> Dict[str, Any]:
        return self.get(url, crs=True, **kw)

    def statussen(self, zaak_url: str) -> List[Dict[str, Any]]:
        return list(self.list_all(self.zaken_url("statussen"), {"zaak": zaak_url}))

    def create_status(self, body: Dict[str, Any]) -> Dict[str, Any]:
        return self.post(self.zaken_url("statussen"), body)

    def rollen(self, zaak_url: str, roltype: Optional[str] = None) -> List[Dict[str, Any]]:
        params = {"zaak": zaak_url}
        if roltype:
            params["roltype"] = roltype
        return list(self.list_all(self.zaken_url("rollen"), params))

    def create_rol(self, body: Dict[str, Any]) -> Dict[str, Any]:
        return self.post(self.zaken_url("rollen"), body)

    def zaakeigenschappen(self, zaak_url: str) -> List[Dict[str, Any]]:
        # Not paginated in the spec: a plain JSON array.
        items = self.request("GET", zaak_url.rstrip("/") + "/zaakeigenschappen", expect=list)
        return [i for i in items if isinstance(i, dict)]

    def create_zaakeigenschap(self, zaak_url: str, body: Dict[str, Any]) -> Dict[str, Any]:
        return self.post(zaak_url.rstrip("/") + "/zaakeigenschappen", body)

    # -- Catalogi API --------------------------------------------------------------

    def get_catalogus_object(self, url: str, **kw: Any) -> Dict[str, Any]:
        """A zaaktype, statustype, roltype or eigenschap by URL."""
        return self.get(url, **kw)
