"""Outbox lease ownership: a worker that lost its lease cannot overwrite the new holder.

Worker A claims an entry, its lease expires, worker B claims the entry again.
When A finishes late, its mark_delivered / mark_retry / park must change
nothing (they return False) and B's lease and state stay as they are; B's own
outcome is recorded. Against the real store, on SQLite and on PostgreSQL.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time

import pytest
from sqlalchemy import select, update

from bot.cases import CaseStore
from bot.cases.backends import CaseBackend, RemoteReference
from bot.cases.models import outbox
from bot.cases.store import OutboxEntryNotFound
from bot.outbox import DeliveryError, DeliveryWorker, OutboxSettings, PermanentDeliveryError
from tests.fakes import cases

UTC = dt.timezone.utc
LEASE = 60
SETTINGS = OutboxSettings(max_attempts=5, backoff_base=1, backoff_max=2, batch_size=10,
                          lease_seconds=LEASE, poll_seconds=0.05, delivery_budget=10)


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(db_url, clock):
    s = CaseStore(db_url, clock=clock)
    s.migrate()
    yield s
    s.dispose()


def entry_of(store: CaseStore, entry_id: int):
    (entry,) = [e for e in store.outbox_entries() if e.id == entry_id]
    return entry


def taken_over(store: CaseStore, clock: Clock):
    """File a case; A claims it, A's lease expires, B claims it. Returns (case, B's entry)."""
    case = cases.file(store)
    (a,) = store.claim_outbox("worker-a", lease_seconds=LEASE)
    assert a.leased_by == "worker-a"
    clock.advance(LEASE + 1)
    (b,) = store.claim_outbox("worker-b", lease_seconds=LEASE)
    assert b.id == a.id and b.leased_by == "worker-b"
    return case, b


def assert_untouched(store: CaseStore, case, b) -> None:
    """B's lease and the entry's state are exactly what B's claim left."""
    entry = entry_of(store, b.id)
    assert (entry.state, entry.attempts, entry.last_error) == ("pending", 0, None)
    assert (entry.leased_by, entry.lease_until) == ("worker-b", b.lease_until)
    assert entry.next_attempt_at == b.next_attempt_at
    stored = store.get(case.zaaknummer)
    assert stored.remote_url is None and stored.remote_identificatie is None


# -- the store --------------------------------------------------------------------------------


def test_late_worker_cannot_overwrite_the_new_lease_holder(store, clock):
    case, b = taken_over(store, clock)

    assert store.mark_delivered(b.id, "worker-a", "https://zaken.example.nl/zaken/a", "ZAAK-A") is False
    assert_untouched(store, case, b)
    assert store.mark_retry(b.id, "worker-a", "HTTP 503", clock.now + dt.timedelta(minutes=5)) is False
    assert_untouched(store, case, b)
    assert store.park(b.id, "worker-a", "HTTP 400") is False
    assert_untouched(store, case, b)
    assert store.release_outbox(b.id, "worker-a") is False
    assert_untouched(store, case, b)

    # B, the holder, is recorded.
    assert store.mark_delivered(b.id, "worker-b", "https://zaken.example.nl/zaken/b", "ZAAK-B") is True
    entry = entry_of(store, b.id)
    assert (entry.state, entry.attempts, entry.leased_by, entry.lease_until) == ("delivered", 1, None, None)
    stored = store.get(case.zaaknummer)
    assert (stored.remote_url, stored.remote_identificatie) == ("https://zaken.example.nl/zaken/b", "ZAAK-B")

    # Later still, A cannot undo the delivery either; B cannot record twice.
    assert store.park(b.id, "worker-a", "te laat") is False
    assert store.mark_retry(b.id, "worker-b", "x", clock.now) is False
    entry = entry_of(store, b.id)
    assert (entry.state, entry.attempts, entry.last_error) == ("delivered", 1, None)
    assert store.get(case.zaaknummer).remote_identificatie == "ZAAK-B"


@pytest.mark.parametrize("outcome", ["retry", "park"])
def test_new_holder_records_retry_and_park(store, clock, outcome):
    case, b = taken_over(store, clock)
    assert store.mark_delivered(b.id, "worker-a", "https://zaken.example.nl/zaken/a", "ZAAK-A") is False
    if outcome == "retry":
        due = clock.now + dt.timedelta(minutes=5)
        assert store.mark_retry(b.id, "worker-b", "HTTP 503", due) is True
        expected = ("pending", 1, "HTTP 503")
    else:
        assert store.park(b.id, "worker-b", "HTTP 400") is True
        expected = ("parked", 1, "HTTP 400")
    entry = entry_of(store, b.id)
    assert (entry.state, entry.attempts, entry.last_error) == expected
    assert entry.leased_by is None and entry.lease_until is None
    assert store.get(case.zaaknummer).remote_url is None  # A's delivery was not recorded


def test_expired_lease_nobody_took_still_counts(store, clock):
    """Only a takeover (or staff requeue) ends ownership: a late but uncontested
    result is recorded, so it is not delivered a second time."""
    case = cases.file(store)
    (a,) = store.claim_outbox("worker-a", lease_seconds=LEASE)
    clock.advance(LEASE + 30)
    assert store.mark_delivered(a.id, "worker-a", "https://zaken.example.nl/zaken/a", "ZAAK-A") is True
    assert entry_of(store, a.id).state == "delivered"
    assert store.claim_outbox("worker-b") == []


def test_staff_requeue_ends_the_lease(store, clock):
    cases.file(store)
    (a,) = store.claim_outbox("worker-a", lease_seconds=LEASE)
    store.requeue(a.id)
    assert store.mark_retry(a.id, "worker-a", "HTTP 503", clock.now) is False
    entry = entry_of(store, a.id)
    assert (entry.state, entry.attempts, entry.leased_by) == ("pending", 0, None)


def test_release_gives_back_only_own_unstarted_entries(store, clock):
    cases.file(store)
    (a,) = store.claim_outbox("worker-a", lease_seconds=LEASE)
    assert store.release_outbox(a.id, "worker-b") is False
    assert entry_of(store, a.id).leased_by == "worker-a"
    assert store.release_outbox(a.id, "worker-a") is True
    entry = entry_of(store, a.id)
    assert (entry.state, entry.attempts, entry.leased_by, entry.lease_until) == ("pending", 0, None, None)
    assert [e.id for e in store.claim_outbox("worker-b")] == [a.id]  # free for anyone at once


def test_unknown_entry_is_still_an_error(store):
    for call in (lambda: store.mark_delivered(424242, "w", None, "X"),
                 lambda: store.mark_retry(424242, "w", "x", dt.datetime(2026, 3, 2, tzinfo=UTC)),
                 lambda: store.park(424242, "w", "x")):
        with pytest.raises(OutboxEntryNotFound):
            call()


def test_postgresql_takeover_racing_the_late_update(pg_url, clock):
    """B's claim holds the row lock when A's update arrives: A waits, then
    PostgreSQL re-checks ``leased_by`` on B's committed row and A changes nothing."""
    store = CaseStore(pg_url, clock=clock)
    store.migrate()
    try:
        case = cases.file(store)
        (a,) = store.claim_outbox("worker-a", lease_seconds=LEASE)
        clock.advance(LEASE + 1)
        results = []
        with store.engine.connect() as conn:
            tx = conn.begin()
            conn.execute(select(outbox.c.id).where(outbox.c.id == a.id).with_for_update())
            conn.execute(update(outbox).where(outbox.c.id == a.id)
                         .values(leased_by="worker-b", lease_until=clock.now + dt.timedelta(seconds=LEASE)))
            late = threading.Thread(target=lambda: results.append(
                store.mark_delivered(a.id, "worker-a", "https://zaken.example.nl/zaken/a", "ZAAK-A")))
            late.start()
            time.sleep(0.5)
            assert late.is_alive()  # blocked on B's row lock
            tx.commit()
        late.join(10)
        assert results == [False]
        entry = entry_of(store, a.id)
        assert (entry.state, entry.attempts, entry.leased_by) == ("pending", 0, "worker-b")
        assert store.get(case.zaaknummer).remote_url is None
    finally:
        store.dispose()


# -- the worker -------------------------------------------------------------------------------


class TakeoverBackend(CaseBackend):
    """While worker A is busy delivering, its lease runs out and worker B claims the entry."""

    name = "zgw"

    def __init__(self, store: CaseStore, clock: Clock, outcome: str) -> None:
        self.store, self.clock, self.outcome = store, clock, outcome
        self.taken: list = []

    def register_submission(self, case):
        self.clock.advance(LEASE + 1)
        self.taken.extend(self.store.claim_outbox("worker-b", lease_seconds=LEASE))
        if self.outcome == "error":
            raise DeliveryError("HTTP 503 van de ZGW API")
        if self.outcome == "refused":
            raise PermanentDeliveryError("HTTP 403: geen toegang")
        return RemoteReference(url="https://zaken.example.nl/zaken/a", identificatie="ZAAK-A")


@pytest.mark.parametrize("outcome", ["delivered", "error", "refused"])
def test_worker_that_lost_its_lease_logs_and_moves_on(store, clock, caplog, outcome):
    case = cases.file(store)
    backend = TakeoverBackend(store, clock, outcome)
    worker_a = DeliveryWorker(store, SETTINGS, worker_id="worker-a", backends={"zgw": backend})
    with caplog.at_level(logging.INFO, logger="bot.outbox"):
        assert worker_a.run_once() == 1
    (b,) = backend.taken
    assert worker_a.stats == {"delivered": 0, "retried": 0, "parked": 0, "skipped": 0, "lease_lost": 1}
    assert_untouched(store, case, b)
    (record,) = [r for r in caplog.records if "lease lost" in r.getMessage()]
    assert record.levelno == logging.WARNING and str(b.id) in record.getMessage()
    logged = caplog.text
    for personal in ("melder@example.nl", "stoeptegel", "4611 AB", "HTTP 503", "HTTP 403"):
        assert personal not in logged

    # B delivers normally and is recorded.
    class Ok(CaseBackend):
        name = "zgw"

        def register_submission(self, case):
            return RemoteReference(url="https://zaken.example.nl/zaken/b", identificatie="ZAAK-B")

    worker_b = DeliveryWorker(store, SETTINGS, worker_id="worker-b", backends={"zgw": Ok()})
    assert worker_b.handle(b) == "delivered"
    entry = entry_of(store, b.id)
    assert (entry.state, entry.attempts, entry.leased_by) == ("delivered", 1, None)
    assert store.get(case.zaaknummer).remote_identificatie == "ZAAK-B"
