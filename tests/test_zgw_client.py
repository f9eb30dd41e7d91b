"""ZGW configuration, JWT authentication, the start-up check, and the fake's own contract checks."""
from __future__ import annotations

import copy
import time

import jwt
import pytest
import requests

from bot.outbox import DeliveryError, PermanentDeliveryError
from integrations.zgw.auth import make_token
from integrations.zgw.client import ZGWClient, ZGWHTTPError
from integrations.zgw.config import ZGWConfigError, load_config
from integrations.zgw.plugin import Plugin
from tests.fakes.fixtures import zaaktypen, zgw, zgw_server  # noqa: F401 - fixtures
from tests.fakes.zgw import CLIENT_ID, SECRET, gemeente_with_zgw, zgw_env

MELDING = "melding_openbare_ruimte"


def _gemeente(zgw, zaaktypen, **overrides):
    gemeente = gemeente_with_zgw(zgw, {MELDING: zaaktypen[MELDING]})
    gemeente["zgw"]["zaaktypen"][MELDING].update(overrides)
    return gemeente


# -- configuration ------------------------------------------------------------------------


def test_config_reads_gemeente_and_env(zgw, zaaktypen):
    config = load_config(_gemeente(zgw, zaaktypen), zgw_env())
    zt = config.zaaktype(MELDING)
    assert config.client_id == CLIENT_ID and config.secret == SECRET
    assert config.zaken_api == zgw.zaken_api and config.catalogi_api == zgw.catalogi_api
    assert zt.zaaktype == zaaktypen[MELDING].zaaktype
    assert zt.bronorganisatie == "002220647"  # gemeente.rsin by default
    assert zt.verantwoordelijke_organisatie == "002220647"


@pytest.mark.parametrize("missing", ["ZGW_CLIENT_ID", "ZGW_SECRET"])
def test_config_needs_secrets_from_env(zgw, zaaktypen, missing):
    env = zgw_env()
    del env[missing]
    with pytest.raises(ZGWConfigError, match=missing):
        load_config(_gemeente(zgw, zaaktypen), env)


def test_config_errors_name_the_setting(zgw, zaaktypen):
    gemeente = _gemeente(zgw, zaaktypen, statustype="niet-een-url")
    with pytest.raises(ZGWConfigError, match=r"zgw\.zaaktypen\.melding_openbare_ruimte\.statustype"):
        load_config(gemeente, zgw_env())

    gemeente = _gemeente(zgw, zaaktypen, bronorganisatie="123456789")
    with pytest.raises(ZGWConfigError, match=r"zgw\.zaaktypen\.melding_openbare_ruimte\.bronorganisatie.*RSIN"):
        load_config(gemeente, zgw_env())

    gemeente = _gemeente(zgw, zaaktypen)
    del gemeente["zgw"]["zaaktypen"][MELDING]["roltype"]
    with pytest.raises(ZGWConfigError, match=r"melding_openbare_ruimte\.roltype: instelling ontbreekt"):
        load_config(gemeente, zgw_env())

    gemeente = _gemeente(zgw, zaaktypen)
    gemeente["zgw"]["zaaktypen"]["bestaat_niet"] = dict(gemeente["zgw"]["zaaktypen"][MELDING])
    with pytest.raises(ZGWConfigError, match=r"zgw\.zaaktypen\.bestaat_niet"):
        load_config(gemeente, zgw_env())

    gemeente = copy.deepcopy(_gemeente(zgw, zaaktypen))
    del gemeente["zgw"]
    with pytest.raises(ZGWConfigError, match=r"gemeente\.yml zgw"):
        load_config(gemeente, zgw_env())


def test_unconfigured_zaaktype_is_named(zgw, zaaktypen):
    config = load_config(_gemeente(zgw, zaaktypen), zgw_env())
    with pytest.raises(ZGWConfigError, match=r"zgw\.zaaktypen\.grofvuil_ophalen"):
        config.zaaktype("grofvuil_ophalen")


# -- JWT ----------------------------------------------------------------------------------


def test_jwt_has_the_zgw_claims():
    token = make_token("mijn-client", SECRET, "gebruiker-1", "Gebruiker Een", now=1_700_000_000)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims == {
        "iss": "mijn-client",
        "iat": 1_700_000_000,
        "client_id": "mijn-client",
        "user_id": "gebruiker-1",
        "user_representation": "Gebruiker Een",
    }
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "een-ander-geheim-van-minstens-32-tekens!", algorithms=["HS256"])


def test_every_request_carries_a_fresh_valid_token(zgw, zaaktypen):
    config = load_config(_gemeente(zgw, zaaktypen), zgw_env())
    client = ZGWClient(config)
    before = int(time.time())
    client.get_catalogus_object(zaaktypen[MELDING].zaaktype)
    client.find_zaken("BOZ-2026-999999", "002220647")
    assert len(zgw.tokens) == 2
    for claims in zgw.tokens:
        assert claims["client_id"] == claims["iss"] == CLIENT_ID
        assert claims["user_id"] == "digitale-assistent"
        assert claims["iat"] >= before


def test_wrong_secret_is_refused(zgw, zaaktypen):
    config = load_config(_gemeente(zgw, zaaktypen), zgw_env(secret="fout-geheim-fout-geheim-fout-geheim-123"))
    with pytest.raises(ZGWHTTPError) as caught:
        ZGWClient(config).get_catalogus_object(zaaktypen[MELDING].zaaktype)
    assert caught.value.status == 403


# -- start-up check -----------------------------------------------------------------------


def test_check_accepts_a_published_zaaktype(zgw, zaaktypen):
    Plugin(gemeente=_gemeente(zgw, zaaktypen, eigenschap=None), env=zgw_env()).check()


def test_check_refuses_a_concept_zaaktype(zgw):
    concept = zgw.add_zaaktype("ZT-CONCEPT", "Nog niet klaar", concept=True)
    gemeente = gemeente_with_zgw(zgw, {MELDING: concept})
    with pytest.raises(ZGWConfigError) as caught:
        Plugin(gemeente=gemeente, env=zgw_env()).check()
    message = str(caught.value)
    assert "zgw.zaaktypen.melding_openbare_ruimte.zaaktype" in message
    assert "concept" in message and "ZT-CONCEPT" in message


def test_check_refuses_an_unknown_zaaktype_url(zgw, zaaktypen):
    missing = zaaktypen[MELDING].zaaktype.rsplit("/", 1)[0] + "/00000000-0000-4000-8000-000000000000"
    with pytest.raises(ZGWConfigError, match=r"melding_openbare_ruimte\.zaaktype: .* bestaat niet"):
        Plugin(gemeente=_gemeente(zgw, zaaktypen, zaaktype=missing), env=zgw_env()).check()


def test_check_refuses_types_of_another_zaaktype(zgw, zaaktypen):
    other = zaaktypen["grofvuil_ophalen"]
    with pytest.raises(ZGWConfigError, match=r"melding_openbare_ruimte\.statustype: .*hoort niet bij"):
        Plugin(gemeente=_gemeente(zgw, zaaktypen, statustype=other.statustypen[0]), env=zgw_env()).check()
    with pytest.raises(ZGWConfigError, match=r"melding_openbare_ruimte\.roltype: .*hoort niet bij"):
        Plugin(gemeente=_gemeente(zgw, zaaktypen, roltype=other.roltype), env=zgw_env()).check()
    with pytest.raises(ZGWConfigError, match=r"melding_openbare_ruimte\.eigenschap: .*hoort niet bij"):
        Plugin(gemeente=_gemeente(zgw, zaaktypen, eigenschap=other.eigenschap), env=zgw_env()).check()


def test_check_wants_the_initiator_roltype(zgw, zaaktypen):
    behandelaar = zaaktypen[MELDING].all_roltypen[1]
    with pytest.raises(ZGWConfigError, match=r"melding_openbare_ruimte\.roltype: .*initiator"):
        Plugin(gemeente=_gemeente(zgw, zaaktypen, roltype=behandelaar), env=zgw_env()).check()


def test_check_with_wrong_credentials_is_permanent(zgw, zaaktypen):
    plugin = Plugin(gemeente=_gemeente(zgw, zaaktypen), env=zgw_env(secret="x" * 40))
    with pytest.raises(PermanentDeliveryError, match="ZGW_SECRET"):
        plugin.check()


def test_check_while_remote_is_down_is_temporary(zgw, zaaktypen):
    plugin = Plugin(gemeente=_gemeente(zgw, zaaktypen), env=zgw_env())
    zgw.stop()
    with pytest.raises(DeliveryError) as caught:
        plugin.check()
    assert not isinstance(caught.value, PermanentDeliveryError)
    assert "niet bereikbaar" in str(caught.value)


# -- the fake enforces the specification ----------------------------------------------------


def _headers(**extra):
    headers = {"Authorization": f"Bearer {make_token(CLIENT_ID, SECRET, 'u', 'U')}",
               "Accept-Crs": "EPSG:4326", "Content-Crs": "EPSG:4326"}
    headers.update(extra)
    return headers


def test_fake_rejects_requests_that_violate_the_spec(zgw, zaaktypen):
    """A request the spec rejects is answered 400 and recorded (which fails a test)."""
    base = zgw.zaken_api
    body = {"bronorganisatie": "002220647", "verantwoordelijkeOrganisatie": "002220647",
            "startdatum": "2026-01-02"}  # no zaaktype
    response = requests.post(base + "zaken", json=body, headers=_headers(), timeout=5)
    assert response.status_code == 400
    missing_crs = {k: v for k, v in _headers().items() if k != "Accept-Crs"}
    response = requests.get(base + "zaken", params={"identificatie": "X"}, headers=missing_crs, timeout=5)
    assert response.status_code == 400
    rol = {"zaak": base + "zaken/00000000-0000-4000-8000-000000000000", "betrokkeneType": "natuurlijk_persoon",
           "roltype": zaaktypen[MELDING].roltype, "roltoelichting": "x",
           "betrokkeneIdentificatie": {"inpBsn": "1234567890"}}  # BSN too long (subtype schema)
    response = requests.post(base + "rollen", json=rol, headers=_headers(), timeout=5)
    assert response.status_code == 400
    no_token = {k: v for k, v in _headers().items() if k != "Authorization"}
    response = requests.get(zaaktypen[MELDING].zaaktype, headers=no_token, timeout=5)
    assert response.status_code == 403
    violations, zgw.violations[:] = list(zgw.violations), []
    assert len(violations) == 4
    assert "zaaktype" in violations[0] and "Accept-Crs" in violations[1]
    assert "inpBsn" in violations[2] or "too long" in violations[2]
    assert "Security" in violations[3] or "JWT" in violations[3]


def test_fake_applies_the_run_time_rules(zgw, zaaktypen):
    base = zgw.zaken_api
    zt = zaaktypen[MELDING]
    body = {"identificatie": "BOZ-2026-424242", "bronorganisatie": "002220647",
            "verantwoordelijkeOrganisatie": "002220647", "zaaktype": zt.zaaktype, "startdatum": "2026-01-02"}
    first = requests.post(base + "zaken", json=body, headers=_headers(), timeout=5)
    assert first.status_code == 201, first.text
    assert first.headers["Content-Crs"] == "EPSG:4326" and first.headers["Location"] == first.json()["url"]
    again = requests.post(base + "zaken", json=body, headers=_headers(), timeout=5)
    assert again.status_code == 400
    assert again.json()["invalidParams"][0]["code"] == "identificatie-niet-uniek"
    status = {"zaak": first.json()["url"], "statustype": zaaktypen["grofvuil_ophalen"].statustypen[0],
              "datumStatusGezet": "2026-01-02T10:00:00Z"}
    wrong = requests.post(base + "statussen", json=status, headers=_headers(), timeout=5)
    assert wrong.status_code == 400 and wrong.json()["invalidParams"][0]["code"] == "zaaktype-mismatch"
    assert zgw.violations == []


def test_token_is_never_sent_outside_the_configured_apis(zgw, zaaktypen):
    config = load_config(_gemeente(zgw, zaaktypen), zgw_env())
    with pytest.raises(ZGWHTTPError, match="hoort niet bij"):
        ZGWClient(config).get("http://elders.invalid/api/v1/zaken")
    elsewhere = "http://127.0.0.1:9/catalogi/api/v1/zaaktypen/00000000-0000-4000-8000-000000000000"
    with pytest.raises(ZGWConfigError, match=r"melding_openbare_ruimte\.zaaktype: .*zgw\.catalogi_api"):
        Plugin(gemeente=_gemeente(zgw, zaaktypen, zaaktype=elsewhere), env=zgw_env()).check()
