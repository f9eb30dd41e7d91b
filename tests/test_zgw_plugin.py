"""Registering cases in the (fake) Zaken API: what is created, in which order, idempotently."""
from __future__ import annotations

import pytest

from bot.cases.backends import CaseBackend, get_backend
from bot.outbox import DeliveryError, DeliveryWorker, OutboxSettings, PermanentDeliveryError
from integrations.zgw.plugin import Plugin
from tests.fakes import cases
from tests.fakes.fixtures import store, zaaktypen, zgw, zgw_server  # noqa: F401 - fixtures
from tests.fakes.zgw import gemeente_with_zgw, zgw_env

MELDING = "melding_openbare_ruimte"
STATUS_KEYS = ["ontvangen", "in_behandeling", "ingepland", "afgerond", "afgewezen", "geannuleerd"]


@pytest.fixture
def plugin(zgw, zaaktypen):
    return Plugin(gemeente=gemeente_with_zgw(zgw, zaaktypen), env=zgw_env(), status_keys=STATUS_KEYS)


def _posts(zgw):
    return [(r.method, r.path) for r in zgw.requests if r.method == "POST"]


def test_plugin_is_a_case_backend(monkeypatch, zgw, zaaktypen, tmp_path):
    """get_backend("zgw") loads integrations.zgw.plugin.Plugin with gemeente.yml + env."""
    import yaml

    path = tmp_path / "gemeente.yml"
    path.write_text(yaml.safe_dump(gemeente_with_zgw(zgw, zaaktypen), allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("GEMEENTE_FILE", str(path))
    for key, value in zgw_env().items():
        monkeypatch.setenv(key, value)
    from bot import config

    config._load_yaml.cache_clear()
    try:
        backend = get_backend("zgw")
    finally:
        config._load_yaml.cache_clear()
    assert isinstance(backend, Plugin) and isinstance(backend, CaseBackend)
    assert backend.config.zaken_api == zgw.zaken_api


def test_registration_creates_zaak_status_rol_and_eigenschap(plugin, zgw, zaaktypen, store):
    case = cases.file(store, MELDING, data={
        **cases.PAYLOADS[MELDING]["data"],
        "locatie": {"postcode": "4611 AB", "huisnummer": "12", "lat": 51.4946, "lon": 4.2874},
    })
    reference = plugin.register_submission(case)

    zaak = zgw.zaak(case.zaaknummer)
    zt = zaaktypen[MELDING]
    assert reference.url == zaak["url"] and reference.identificatie == case.zaaknummer
    assert zaak["zaaktype"] == zt.zaaktype
    assert zaak["bronorganisatie"] == zaak["verantwoordelijkeOrganisatie"] == "002220647"
    assert zaak["kenmerken"] == [{"kenmerk": case.zaaknummer, "bron": "Digitale assistent"}]
    assert zaak["startdatum"] == case.created_at.astimezone(cases_tz()).date().isoformat()
    assert zaak["omschrijving"].startswith("Melding openbare ruimte: De stoeptegel ligt los")
    assert len(zaak["omschrijving"]) <= 80
    assert "Wat er aan de hand is: De stoeptegel ligt los" in zaak["toelichting"]
    assert zaak["zaakgeometrie"] == {"type": "Point", "coordinates": [4.2874, 51.4946]}

    (status,) = zgw.statussen_of(zaak["url"])
    assert status["statustype"] == zt.statustypen[0]
    (rol,) = zgw.rollen_of(zaak["url"])
    assert rol["roltype"] == zt.roltype and rol["betrokkeneType"] == "natuurlijk_persoon"
    assert rol["omschrijvingGeneriek"] == "initiator"
    assert rol["contactpersoonRol"]["emailadres"] == "melder@example.nl"
    assert "inpBsn" not in rol["betrokkeneIdentificatie"]  # no verified identity: no BSN
    (eigenschap,) = zgw.eigenschappen_of(zaak["url"])
    assert eigenschap["eigenschap"] == zt.eigenschap
    assert eigenschap["waarde"] == cases.PAYLOADS[MELDING]["data"]["samenvatting"]

    # In this order, each once, all with the CRS headers where the spec wants them.
    assert _posts(zgw) == [("POST", "zaken"), ("POST", "statussen"), ("POST", "rollen"),
                           ("POST", f"zaken/{zaak['uuid']}/zaakeigenschappen")]


def cases_tz():
    from bot.cases.models import LOCAL_TZ

    return LOCAL_TZ


def test_bsn_only_with_a_verified_identity(plugin, zgw, store):
    case = cases.file(store, "verhuizing_doorgeven")  # filed with a BSN (verified DigiD token)
    assert case.bsn == cases.TEST_BSN
    plugin.register_submission(case)
    (rol,) = zgw.rollen_of(zgw.zaak(case.zaaknummer)["url"])
    assert rol["betrokkeneIdentificatie"]["inpBsn"] == cases.TEST_BSN


def test_no_coordinates_no_zaakgeometrie(plugin, zgw, store):
    case = cases.file(store, MELDING)
    plugin.register_submission(case)
    assert zgw.zaak(case.zaaknummer)["zaakgeometrie"] is None


def test_name_and_phone_go_to_the_rol(plugin, zgw, store):
    case = cases.file(store, "afspraak_maken", contact={"naam": "Jan de Vries", "telefoon": "+31612345678"})
    plugin.register_submission(case)
    (rol,) = zgw.rollen_of(zgw.zaak(case.zaaknummer)["url"])
    assert rol["afwijkendeNaamBetrokkene"] == "Jan de Vries"
    assert rol["contactpersoonRol"] == {"naam": "Jan de Vries", "telefoonnummer": "+31612345678"}


def test_registering_twice_creates_nothing_new(plugin, zgw, store):
    case = cases.file(store, MELDING)
    first = plugin.register_submission(case)
    second = plugin.register_submission(case)
    assert first == second
    assert zgw.zaken_by_identificatie()[case.zaaknummer] == 1
    zaak_url = zgw.zaak(case.zaaknummer)["url"]
    assert len(zgw.statussen_of(zaak_url)) == len(zgw.rollen_of(zaak_url)) == len(zgw.eigenschappen_of(zaak_url)) == 1
    assert zgw.count("POST", "^zaken$") == 1


@pytest.mark.parametrize("step", ["statussen", "rollen", "zaakeigenschappen"])
def test_a_failed_step_is_resumed(plugin, zgw, store, step):
    case = cases.file(store, MELDING)
    zgw.fail(503, times=1, method="POST", path=f"{step}$")
    with pytest.raises(DeliveryError) as caught:
        plugin.register_submission(case)
    assert not isinstance(caught.value, PermanentDeliveryError)
    assert zgw.zaken_by_identificatie()[case.zaaknummer] == 1

    plugin.register_submission(case)
    zaak_url = zgw.zaak(case.zaaknummer)["url"]
    assert zgw.zaken_by_identificatie()[case.zaaknummer] == 1
    assert len(zgw.statussen_of(zaak_url)) == 1
    assert len(zgw.rollen_of(zaak_url)) == 1
    assert len(zgw.eigenschappen_of(zaak_url)) == 1


def test_lost_race_on_the_identificatie_continues_on_the_existing_zaak(plugin, zgw, store):
    """Another delivery created the zaak right after our lookup: the create fails with
    identificatie-niet-uniek and we finish the existing zaak instead of making a second."""
    case = cases.file(store, MELDING)
    zgw.fail(503, times=1, method="POST", path="statussen$")
    with pytest.raises(DeliveryError):
        plugin.register_submission(case)  # zaak exists now, without status
    zgw.hide_in_list(case.zaaknummer, times=1)
    plugin.register_submission(case)
    assert zgw.zaken_by_identificatie()[case.zaaknummer] == 1
    assert zgw.count("POST", "^zaken$") == 2  # the second was refused by the Zaken API
    zaak_url = zgw.zaak(case.zaaknummer)["url"]
    assert len(zgw.statussen_of(zaak_url)) == len(zgw.rollen_of(zaak_url)) == 1


def test_remote_status_is_read_for_the_chat(plugin, zgw, zaaktypen, store):
    case = cases.file(store, MELDING)
    reference = plugin.register_submission(case)
    store.set_remote(case.zaaknummer, reference.url, reference.identificatie)
    case = store.get(case.zaaknummer)
    assert plugin.fetch_status(case) == "ontvangen"

    zgw.set_status(case.remote_url, zaaktypen[MELDING].statustypen[1])
    details = plugin.fetch_status_details(case)
    assert details.key == "in_behandeling" and details.omschrijving == "In behandeling"
    assert details.since is not None

    zgw.stop()
    assert plugin.fetch_status(case) is None  # unreachable: the chat uses the local status
    zgw.start()
    assert plugin.fetch_status(store.get(cases.file(store, MELDING).zaaknummer)) is None  # not delivered yet


def test_status_mapping_from_config(zgw, zaaktypen, store):
    gemeente = gemeente_with_zgw(zgw, zaaktypen, statussen={"Afgerond": "afgerond"})
    plugin = Plugin(gemeente=gemeente, env=zgw_env(), status_keys=STATUS_KEYS)
    case = cases.file(store, MELDING)
    reference = plugin.register_submission(case)
    zgw.set_status(reference.url, zaaktypen[MELDING].statustypen[2])
    store.set_remote(case.zaaknummer, reference.url, reference.identificatie)
    assert plugin.fetch_status(store.get(case.zaaknummer)) == "afgerond"


def test_every_flow_ends_as_a_spec_valid_zaak_with_status_and_rol(plugin, zgw, store):
    """End to end: CaseStore.file_case(..., backend="zgw") -> outbox -> worker -> Zaken API."""
    filed = [cases.file(store, zaaktype) for zaaktype in cases.PAYLOADS]
    worker = DeliveryWorker(store, OutboxSettings(backoff_base=0.01, backoff_max=0.02),
                            worker_id="e2e", backends={"zgw": plugin})
    assert worker.drain() == len(filed)
    assert [e.state for e in store.outbox_entries()] == ["delivered"] * len(filed)
    for case in filed:
        local = store.get(case.zaaknummer)
        zaak = zgw.zaak(case.zaaknummer)
        assert local.remote_url == zaak["url"] and local.remote_identificatie == case.zaaknummer
        assert zaak["status"] is not None
        assert len(zgw.rollen_of(zaak["url"])) == 1
    # The fixture asserts that no request or answer violated the OpenAPI files.
