"""Meldingen openbare ruimte to (a fake) Signalen, through the outbox."""
from __future__ import annotations

import random
import time

import pytest

from bot.cases.backends import get_backend
from bot.outbox import DeliveryError, DeliveryWorker, OutboxSettings, PermanentDeliveryError
from integrations.signalen.plugin import CATEGORY_KEYS, Plugin, SignalenConfigError, load_config
from tests.fakes import cases
from tests.fakes.fixtures import signalen, signalen_server, store  # noqa: F401 - fixtures

MELDING = "melding_openbare_ruimte"
#: Example sub-categories (slugs as in Signalen's default category tree).
SUBCATEGORIES = {
    "straatverlichting": ("wegen-verkeer-straatmeubilair", "lantaarnpaal-straatverlichting"),
    "afval": ("afval", "overig-afval"),
    "bestrating": ("wegen-verkeer-straatmeubilair", "bestrating"),
    "groen": ("openbaar-groen-en-water", "overig-groen-en-water"),
    "verkeersborden": ("wegen-verkeer-straatmeubilair", "verkeersbord-verkeersbesluit"),
    "speelplaats": ("wegen-verkeer-straatmeubilair", "speelplaats"),
    "overlast": ("overlast-in-de-openbare-ruimte", "overig-openbare-ruimte"),
    "ongedierte": ("overlast-van-dieren", "overig-dieren"),
    "overig": ("overig", "overig"),
}
STADHUIS = {"lat": 51.4946, "lon": 4.2874}
FAST = OutboxSettings(max_attempts=6, backoff_base=0.05, backoff_max=0.2, lease_seconds=30, delivery_budget=10)


def gemeente_for(fake, **settings):
    from bot import config

    gemeente = dict(config.gemeente())
    gemeente["signalen"] = {
        "api": fake.api,
        "standaard_locatie": STADHUIS,
        "categorieen": {key: fake.add_category(main, sub) for key, (main, sub) in SUBCATEGORIES.items()},
        **settings,
    }
    return gemeente


@pytest.fixture
def plugin(signalen):
    return Plugin(gemeente=gemeente_for(signalen), env={})


def melding(store, categorie="bestrating", **data):
    payload = {**cases.PAYLOADS[MELDING]["data"], "categorie": categorie, **data}
    return cases.file(store, MELDING, backend="signalen", data=payload)


def test_signal_body_as_signalen_expects(plugin, signalen, store):
    case = melding(store, locatie={"straat": "Kerkstraat", "omschrijving": "bij de speeltuin",
                                   "lat": 51.4951, "lon": 4.2890})
    reference = plugin.register_submission(case)
    (signal,) = signalen.signals.values()
    sent = signal["request"]
    assert reference.identificatie == "SIG-1"
    assert reference.url.endswith(f"/signals/v1/public/signals/{signal['signal_id']}")
    assert sent["text"].startswith("De stoeptegel ligt los")
    assert f"Kenmerk digitale assistent: {case.zaaknummer}" in sent["text"]
    assert "Plek volgens de melder: Kerkstraat bij de speeltuin" in sent["text"]
    assert sent["location"] == {"geometrie": {"type": "Point", "coordinates": [4.289, 51.4951]}}
    assert sent["category"] == {"sub_category": signalen.category_url("wegen-verkeer-straatmeubilair", "bestrating")}
    assert sent["reporter"] == {"email": "melder@example.nl", "sharing_allowed": False}
    assert sent["incident_date_start"] == case.created_at.isoformat()


@pytest.mark.parametrize("categorie", CATEGORY_KEYS)
def test_every_category_maps_to_its_sub_category(plugin, signalen, store, categorie):
    plugin.register_submission(melding(store, categorie))
    (signal,) = signalen.signals.values()
    assert signal["request"]["category"]["sub_category"] == signalen.category_url(*SUBCATEGORIES[categorie])


def test_unknown_category_goes_to_overig(plugin, signalen, store):
    plugin.register_submission(melding(store, "iets_nieuws"))
    (signal,) = signalen.signals.values()
    assert signal["request"]["category"]["sub_category"] == signalen.category_url("overig", "overig")


def test_without_coordinates_the_default_point_is_used_and_said(plugin, signalen, store):
    plugin.register_submission(melding(store))
    (signal,) = signalen.signals.values()
    assert signal["request"]["location"]["geometrie"]["coordinates"] == [STADHUIS["lon"], STADHUIS["lat"]]
    assert "standaardpunt" in signal["request"]["text"]


def test_phone_and_sharing_allowed_from_config(signalen, store):
    plugin = Plugin(gemeente=gemeente_for(signalen, sharing_allowed=True), env={})
    case = cases.file(store, MELDING, backend="signalen", contact={"telefoon": "+31612345678"})
    plugin.register_submission(case)
    (signal,) = signalen.signals.values()
    assert signal["request"]["reporter"] == {"phone": "+31612345678", "sharing_allowed": True}


def test_refused_melding_is_permanent(signalen, store):
    gemeente = gemeente_for(signalen)
    gemeente["signalen"]["categorieen"]["bestrating"] = signalen.category_url("bestaat", "niet")
    plugin = Plugin(gemeente=gemeente, env={})
    with pytest.raises(PermanentDeliveryError, match="keurt de melding af.*sub_category"):
        plugin.register_submission(melding(store))
    assert signalen.signals == {}


def test_token_from_env(signalen, store):
    signalen.token = "geheim-token"
    try:
        with pytest.raises(PermanentDeliveryError, match="SIGNALEN_TOKEN"):
            Plugin(gemeente=gemeente_for(signalen), env={}).register_submission(melding(store))
        Plugin(gemeente=gemeente_for(signalen), env={"SIGNALEN_TOKEN": "geheim-token"}).register_submission(
            melding(store))
        assert len(signalen.signals) == 1
    finally:
        signalen.token = None


def test_config_errors_name_the_setting(signalen):
    gemeente = gemeente_for(signalen)
    del gemeente["signalen"]["categorieen"]["overig"]
    with pytest.raises(SignalenConfigError, match=r"signalen\.categorieen\.overig"):
        load_config(gemeente, {})
    gemeente = gemeente_for(signalen)
    gemeente["signalen"]["categorieen"]["fietsen"] = signalen.api
    with pytest.raises(SignalenConfigError, match=r"signalen\.categorieen\.fietsen"):
        load_config(gemeente, {})
    gemeente = gemeente_for(signalen, api="geen-url")
    with pytest.raises(SignalenConfigError, match=r"signalen\.api"):
        load_config(gemeente, {})


def test_no_point_and_no_default_is_parked_with_advice(signalen, store):
    gemeente = gemeente_for(signalen)
    del gemeente["signalen"]["standaard_locatie"]
    with pytest.raises(PermanentDeliveryError, match="standaard_locatie"):
        Plugin(gemeente=gemeente, env={}).register_submission(melding(store))


def test_status_of_the_signal(plugin, signalen, store):
    case = melding(store)
    reference = plugin.register_submission(case)
    store.set_remote(case.zaaknummer, reference.url, reference.identificatie)
    case = store.get(case.zaaknummer)
    assert plugin.fetch_status(case) == "ontvangen"
    (signal_id,) = signalen.signals
    signalen.set_state(signal_id, "b")
    assert plugin.fetch_status(case) == "in_behandeling"
    signalen.set_state(signal_id, "o")
    assert plugin.fetch_status(case) == "afgerond"
    signalen.stop()
    assert plugin.fetch_status(case) is None


# -- through the outbox ---------------------------------------------------------------------


def _worker(store, plugin):
    return DeliveryWorker(store, FAST, worker_id="s1", backends={"signalen": plugin}, rng=random.Random(2))


def _deliver(worker, store, timeout=30):
    deadline = time.monotonic() + timeout
    while store.outbox_entries(state="pending"):
        assert time.monotonic() < deadline
        if worker.run_once() == 0:
            time.sleep(0.02)


@pytest.mark.parametrize("status", [502, 503, 429])
def test_unavailable_then_recovered_gives_one_signal(plugin, signalen, store, status):
    filed = [melding(store) for _ in range(3)]
    signalen.fail(status, times=3, method="POST")
    _deliver(_worker(store, plugin), store)
    assert [e.state for e in store.outbox_entries()] == ["delivered"] * 3
    for case in filed:
        assert len(signalen.signals_with(case.zaaknummer)) == 1
        assert store.get(case.zaaknummer).remote_identificatie.startswith("SIG-")


def test_connection_refused_is_retried(plugin, signalen, store):
    case = melding(store)
    signalen.stop()
    with pytest.raises(DeliveryError) as caught:
        plugin.register_submission(case)
    assert not isinstance(caught.value, PermanentDeliveryError)
    signalen.start()
    _deliver(_worker(store, plugin), store)
    assert len(signalen.signals_with(case.zaaknummer)) == 1


@pytest.mark.parametrize("fault", ["timeout", "500"])
def test_unknown_outcome_is_parked_not_doubled(signalen, store, fault):
    """Signalen cannot be asked whether it has our melding: after a lost answer the
    entry is parked for staff (nothing lost) instead of sent again (no duplicate)."""
    gemeente = gemeente_for(signalen, timeout_seconden=0.4)
    plugin = Plugin(gemeente=gemeente, env={})
    case = melding(store)
    if fault == "timeout":
        signalen.delay_after_store(1.2, times=1)
    else:
        signalen.fail(500, times=1, method="POST")
    _worker(store, plugin).drain()
    (entry,) = store.outbox_entries()
    assert entry.state == "parked" and entry.attempts == 1
    assert case.zaaknummer in entry.last_error and "requeue" in entry.last_error
    assert signalen.posts == 1
    assert len(signalen.signals_with(case.zaaknummer)) == (1 if fault == "timeout" else 0)


def test_get_backend_loads_signalen(monkeypatch, signalen, tmp_path):
    import yaml

    from bot import config

    path = tmp_path / "gemeente.yml"
    path.write_text(yaml.safe_dump(gemeente_for(signalen), allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("GEMEENTE_FILE", str(path))
    config._load_yaml.cache_clear()
    try:
        backend = get_backend("signalen")
    finally:
        config._load_yaml.cache_clear()
    assert isinstance(backend, Plugin) and backend.config.api == signalen.api
