"""Delivery through the outbox under faults: nothing lost, nothing doubled.

Every scenario ends by checking, for every local case, exactly one remote zaak
(and one status and one rol), and that no case is lost (delivered, or parked
with a readable error when that is the expected outcome).
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List

import pytest
import yaml

from bot.cases import CaseStore
from bot.config import REPO_ROOT
from bot.outbox import DeliveryWorker, OutboxSettings, backoff_delay
from integrations.zgw.plugin import Plugin
from tests.fakes import cases
from tests.fakes.fixtures import store, zaaktypen, zgw, zgw_server  # noqa: F401 - fixtures
from tests.fakes.zgw import gemeente_with_zgw, zgw_env

MELDING = "melding_openbare_ruimte"
FAST = OutboxSettings(max_attempts=8, backoff_base=0.05, backoff_max=0.2, batch_size=10,
                      lease_seconds=30, poll_seconds=0.05, delivery_budget=10)


def make_plugin(zgw, zaaktypen, env=None, **zgw_settings) -> Plugin:
    gemeente = gemeente_with_zgw(zgw, {MELDING: zaaktypen[MELDING]}, **zgw_settings)
    return Plugin(gemeente=gemeente, env=env or zgw_env(), status_keys=["ontvangen"])


def make_worker(store, plugin, settings=FAST, name="w1") -> DeliveryWorker:
    return DeliveryWorker(store, settings, worker_id=name, backends={"zgw": plugin}, rng=random.Random(4))


def deliver_all(worker: DeliveryWorker, store: CaseStore, timeout: float = 60) -> None:
    """Run the worker until no entry is pending (failed attempts wait their backoff)."""
    deadline = time.monotonic() + timeout
    while store.outbox_entries(state="pending"):
        assert time.monotonic() < deadline, f"still pending: {store.outbox_entries(state='pending')}"
        if worker.run_once() == 0:
            time.sleep(0.02)


def assert_exactly_once(zgw, store: CaseStore, filed) -> None:
    """One remote zaak (with one status and one rol) per local case; no case lost."""
    counts = zgw.zaken_by_identificatie()
    entries = {e.zaaknummer: e for e in store.outbox_entries()}
    assert len(entries) == len(filed)
    for case in filed:
        assert counts[case.zaaknummer] == 1, f"{case.zaaknummer}: {counts[case.zaaknummer]} remote zaken"
        entry = entries[case.zaaknummer]
        assert entry.state == "delivered", (entry.state, entry.last_error)
        zaak = zgw.zaak(case.zaaknummer)
        assert store.get(case.zaaknummer).remote_url == zaak["url"]
        assert len(zgw.statussen_of(zaak["url"])) == 1
        assert len(zgw.rollen_of(zaak["url"])) == 1
    assert sum(counts.values()) == len(filed)


# -- backoff ------------------------------------------------------------------------------


def test_backoff_grows_with_jitter_and_a_ceiling():
    settings = OutboxSettings(backoff_base=30, backoff_max=3600)
    rng = random.Random(1)
    delays = [backoff_delay(n, settings, rng) for n in range(1, 12)]
    for n, delay in enumerate(delays, start=1):
        ceiling = min(3600, 30 * 2 ** (n - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert delays[-1] <= 3600 and delays[5] > delays[0]
    assert len({round(backoff_delay(3, settings, rng), 6) for _ in range(20)}) > 1  # jittered


def test_settings_come_from_gemeente_yml_keys():
    settings = OutboxSettings.from_config({"max_pogingen": 3, "eerste_wachttijd_seconden": 1,
                                           "max_wachttijd_seconden": 8, "lease_seconden": 20})
    assert (settings.max_attempts, settings.backoff_base, settings.backoff_max, settings.lease_seconds) == (3, 1, 8, 20)
    with pytest.raises(ValueError, match="outbox.max_poging"):
        OutboxSettings.from_config({"max_poging": 3})


# -- remote errors --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_then_recovery(zgw, zaaktypen, store, status):
    plugin = make_plugin(zgw, zaaktypen)
    filed = [cases.file(store, MELDING) for _ in range(3)]
    zgw.fail(status, times=4, method="POST", path="^zaken$")
    worker = make_worker(store, plugin)
    deliver_all(worker, store)
    assert_exactly_once(zgw, store, filed)
    assert worker.stats["retried"] == 4
    assert sum(e.attempts for e in store.outbox_entries()) == len(filed) + 4


def test_connection_refused_for_a_while(zgw, zaaktypen, store):
    plugin = make_plugin(zgw, zaaktypen)
    filed = [cases.file(store, MELDING) for _ in range(5)]
    zgw.stop()
    worker = make_worker(store, plugin)
    for _ in range(3):
        worker.drain()
        time.sleep(0.06)
    pending = store.outbox_entries(state="pending")
    assert len(pending) == 5 and all(e.attempts >= 1 for e in pending)
    assert all("niet bereikbaar" in e.last_error for e in pending)
    zgw.start()
    deliver_all(worker, store)
    assert_exactly_once(zgw, store, filed)


def test_timeout_after_the_remote_stored_the_zaak(zgw, zaaktypen, store):
    """The duplicate trap: the zaak is created, the answer comes after our timeout."""
    plugin = make_plugin(zgw, zaaktypen, timeout_seconden=0.5)
    filed = [cases.file(store, MELDING) for _ in range(2)]
    zgw.delay_after_store(1.5, times=2)
    worker = make_worker(store, plugin)
    deliver_all(worker, store)
    assert_exactly_once(zgw, store, filed)
    assert zgw.count("POST", "^zaken$") == 2  # never created again: looked up and resumed
    assert worker.stats["retried"] == 2


@pytest.mark.parametrize("how", ["wrong secret", "401"])
def test_refused_credentials_are_parked_with_a_readable_error(zgw, zaaktypen, store, how):
    if how == "wrong secret":
        plugin = make_plugin(zgw, zaaktypen, env=zgw_env(secret="een-verkeerd-geheim-van-ruim-32-tekens"))
    else:
        plugin = make_plugin(zgw, zaaktypen)
        zgw.fail(401, times=100, method="POST", path="^zaken$")
    filed = [cases.file(store, MELDING) for _ in range(2)]
    worker = make_worker(store, plugin)
    worker.drain()
    parked = store.outbox_entries(state="parked")
    assert [e.zaaknummer for e in parked] == [c.zaaknummer for c in filed]  # nothing lost
    for entry in parked:
        assert entry.attempts == 1  # parked at once, not retried
        assert "weigert de toegang" in entry.last_error and "ZGW_SECRET" in entry.last_error
    assert sum(zgw.zaken_by_identificatie().values()) == 0
    # Staff fixed the credentials and requeue: delivered, once.
    zgw.clear_faults()
    for entry in parked:
        store.requeue(entry.id)
    deliver_all(make_worker(store, make_plugin(zgw, zaaktypen)), store)
    assert_exactly_once(zgw, store, filed)


def test_max_attempts_parks_with_the_last_error(zgw, zaaktypen, store):
    plugin = make_plugin(zgw, zaaktypen)
    (case,) = [cases.file(store, MELDING)]
    zgw.fail(503, times=100, method="POST", path="^zaken$")
    settings = OutboxSettings(max_attempts=3, backoff_base=0.01, backoff_max=0.02, lease_seconds=30,
                              delivery_budget=10)
    worker = make_worker(store, plugin, settings)
    deadline = time.monotonic() + 20
    while store.outbox_entries(state="pending"):
        assert time.monotonic() < deadline
        worker.run_once()
        time.sleep(0.02)
    (entry,) = store.outbox_entries(state="parked")
    assert entry.zaaknummer == case.zaaknummer and entry.attempts == 3
    assert entry.last_error.startswith("Niet afgeleverd na 3 pogingen.")
    assert "HTTP 503" in entry.last_error


def test_two_hundred_cases_filed_while_down_then_delivered(zgw, zaaktypen, store):
    plugin = make_plugin(zgw, zaaktypen)
    zgw.stop()
    filed = [cases.file(store, MELDING) for _ in range(200)]
    # Every citizen got a case number at once, while the remote system was down.
    assert len({c.zaaknummer for c in filed}) == 200
    settings = OutboxSettings(max_attempts=10, backoff_base=0.2, backoff_max=0.5, batch_size=50,
                              lease_seconds=60, delivery_budget=20)
    worker = make_worker(store, plugin, settings)
    worker.drain()
    assert len(store.outbox_entries(state="pending")) == 200
    zgw.start()
    deliver_all(worker, store, timeout=90)
    assert_exactly_once(zgw, store, filed)


# -- concurrency: PostgreSQL, SKIP LOCKED -----------------------------------------------------


def test_two_workers_never_deliver_the_same_entry(zgw, zaaktypen, pg_url):
    setup = CaseStore(pg_url)
    setup.migrate()
    filed = [cases.file(setup, MELDING) for _ in range(40)]
    settings = OutboxSettings(max_attempts=5, backoff_base=0.05, backoff_max=0.1, batch_size=3,
                              lease_seconds=60, delivery_budget=20)
    workers = [DeliveryWorker(CaseStore(pg_url), settings, worker_id=f"w{i}",
                              backends={"zgw": make_plugin(zgw, zaaktypen)}) for i in range(3)]
    barrier = threading.Barrier(len(workers))
    errors: List[BaseException] = []

    def run(worker: DeliveryWorker) -> None:
        try:
            barrier.wait(10)
            worker.drain()
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert sum(w.stats["delivered"] for w in workers) == len(filed)
    assert all(w.stats["delivered"] > 0 for w in workers)  # they really worked side by side
    # Each entry went through register_submission exactly once: one lookup, one create.
    for case in filed:
        assert zgw.count("GET", "^zaken$", identificatie=case.zaaknummer) == 1
    assert zgw.count("POST", "^zaken$") == len(filed)
    assert_exactly_once(zgw, setup, filed)
    for w in workers:
        w.store.dispose()
    setup.dispose()


# -- the worker process: killed mid-batch, restarted, stopped gracefully ----------------------


def _worker_env(tmp_path: Path, zgw, zaaktypen, db_url: str, outbox: Dict) -> Dict[str, str]:
    gemeente = gemeente_with_zgw(zgw, {MELDING: zaaktypen[MELDING]})
    gemeente["zaaktypen"][MELDING]["backend"] = "zgw"
    gemeente["outbox"] = outbox
    path = tmp_path / "gemeente.yml"
    path.write_text(yaml.safe_dump(gemeente, allow_unicode=True), encoding="utf-8")
    env = dict(os.environ)
    env.update(zgw_env())
    env.update({"GEMEENTE_FILE": str(path), "CASES_DB_URL": db_url, "PYTHONPATH": str(REPO_ROOT),
                "SQLALCHEMY_SILENCE_UBER_WARNING": "1", "PYTHONUNBUFFERED": "1"})
    return env


def _start_worker(env: Dict[str, str], log: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bot.outbox", *args], cwd=REPO_ROOT, env=env,
        stdout=open(log, "ab"), stderr=subprocess.STDOUT,
    )


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_killed_worker_is_resumed_by_a_restarted_worker(zgw, zaaktypen, store, sqlite_url, tmp_path):
    filed = [cases.file(store, MELDING) for _ in range(12)]
    outbox = {"batch": 6, "lease_seconden": 3, "leverings_budget_seconden": 2, "wacht_seconden": 0.1,
              "eerste_wachttijd_seconden": 0.1, "max_wachttijd_seconden": 0.5, "max_pogingen": 10}
    env = _worker_env(tmp_path, zgw, zaaktypen, sqlite_url, outbox)
    log = tmp_path / "worker.log"
    # Slow answers to "POST rollen", so the worker is surely in the middle of its batch.
    zgw.delay_after_store(0.4, times=1000, method="POST", path="^rollen$")

    first = _start_worker(env, log, "--worker-id", "first")
    _wait(lambda: sum(zgw.zaken_by_identificatie().values()) >= 2, 30, "the first zaken")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert first.returncode == -signal.SIGKILL
    unfinished = [e for e in store.outbox_entries() if e.state == "pending"]
    assert unfinished and any(e.leased_by == "first" for e in unfinished)  # it died holding leases

    second = _start_worker(env, log, "--worker-id", "second")
    try:
        _wait(lambda: not store.outbox_entries(state="pending"), 60, "all entries delivered")
    finally:
        second.send_signal(signal.SIGTERM)  # graceful stop
        second.wait(20)
    assert second.returncode == 0, log.read_text()
    assert_exactly_once(zgw, store, filed)


def test_once_option_and_config_error_exit(zgw, zaaktypen, store, sqlite_url, tmp_path):
    filed = [cases.file(store, MELDING) for _ in range(3)]
    env = _worker_env(tmp_path, zgw, zaaktypen, sqlite_url, {"wacht_seconden": 0.1})
    done = subprocess.run([sys.executable, "-m", "bot.outbox", "--once"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert_exactly_once(zgw, store, filed)

    concept = zgw.add_zaaktype("ZT-CONCEPT-2", "Concept", concept=True)
    gemeente = yaml.safe_load(Path(env["GEMEENTE_FILE"]).read_text(encoding="utf-8"))
    gemeente["zgw"]["zaaktypen"][MELDING]["zaaktype"] = concept.zaaktype
    Path(env["GEMEENTE_FILE"]).write_text(yaml.safe_dump(gemeente, allow_unicode=True), encoding="utf-8")
    failed = subprocess.run([sys.executable, "-m", "bot.outbox", "--once"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert failed.returncode == 2
    assert "zgw.zaaktypen.melding_openbare_ruimte.zaaktype" in failed.stderr and "concept" in failed.stderr


def test_graceful_stop_releases_claimed_entries(zgw, zaaktypen, store):
    """SIGTERM (stop_event) halfway a batch: the current delivery finishes, the rest is given back."""
    plugin = make_plugin(zgw, zaaktypen)
    filed = [cases.file(store, MELDING) for _ in range(4)]
    worker = make_worker(store, plugin)
    original = plugin.register_submission

    def register_then_stop(case):
        reference = original(case)
        worker.stop()  # as the SIGTERM handler does
        return reference

    plugin.register_submission = register_then_stop
    assert worker.run_once() == 4
    entries = store.outbox_entries()
    assert [e.state for e in entries] == ["delivered", "pending", "pending", "pending"]
    assert all(e.leased_by is None and e.attempts == 0 for e in entries[1:])  # free for any worker now
    plugin.register_submission = original
    deliver_all(make_worker(store, plugin, name="w2"), store)
    assert_exactly_once(zgw, store, filed)
