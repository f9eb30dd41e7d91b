"""Races on the case store: threads with the pooled engine and separate processes.

Every test runs on SQLite (one file, WAL, BEGIN IMMEDIATE) and on PostgreSQL
(separate connections, row locks).
"""
from __future__ import annotations

import datetime as dt
import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List

import pytest

from bot.cases import CaseStore, SlotTaken

UTC = dt.timezone.utc
SLOT_DAY = dt.date(2036, 3, 11)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture
def store(db_url):
    s = CaseStore(db_url)
    s.migrate()
    yield s
    s.dispose()


def race(n: int, task: Callable[[int], object]) -> List[object]:
    """Run task(0..n-1) in n threads released at the same moment; results or exceptions."""
    barrier = threading.Barrier(n)

    def run(i: int):
        barrier.wait(timeout=30)
        try:
            return task(i)
        except Exception as exc:  # collected and asserted by the caller
            return exc

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def single_slot(store: CaseStore, capacity: int = 1):
    store.ensure_slots("huwelijk", SLOT_DAY, 1, ["10:00"], None, capacity=capacity)
    (slot,) = store.free_slots("huwelijk", dt.datetime(2036, 1, 1, tzinfo=UTC), on_date=SLOT_DAY)
    return slot


def melding(store: CaseStore, key: str, **kwargs):
    return store.file_case(
        "melding_openbare_ruimte", "website", {"postcode": "4611 AB"}, {}, key, **kwargs
    )


def test_same_idempotency_key_from_20_threads_gives_one_case(store):
    results = race(20, lambda i: melding(store, "sender-1:run-1", backend="zgw"))
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == []
    assert {r.zaaknummer for r in results} == {results[0].zaaknummer}
    assert len(store.list_cases()) == 1
    assert len(store.outbox_entries()) == 1


def test_20_threads_with_different_keys_get_20_distinct_zaaknummers(store):
    results = race(20, lambda i: melding(store, f"sender-{i}:run-1"))
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == []
    numbers = {r.zaaknummer for r in results}
    assert len(numbers) == 20
    assert {c.zaaknummer for c in store.list_cases()} == numbers


def test_10_threads_racing_for_the_last_place_one_wins(store):
    slot = single_slot(store)
    results = race(10, lambda i: store.book_slot("huwelijk", slot.id, f"citizen-{i}"))
    wins = [r for r in results if not isinstance(r, Exception)]
    taken = [r for r in results if isinstance(r, SlotTaken)]
    assert len(wins) == 1 and len(taken) == 9
    assert store.get_slot(slot.id).booked == 1
    assert store.get_booking(wins[0].code).slot.id == slot.id


def test_10_filings_racing_for_one_slot_leave_one_case_and_one_outbox_entry(store):
    slot = single_slot(store)
    results = race(
        10,
        lambda i: store.file_case(
            "huwelijk_partnerschap", "website", {}, {}, f"couple-{i}",
            backend="zgw", booking=("huwelijk", slot.id),
        ),
    )
    wins = [r for r in results if not isinstance(r, Exception)]
    assert len(wins) == 1
    assert sum(isinstance(r, SlotTaken) for r in results) == 9
    assert [c.zaaknummer for c in store.list_cases()] == [wins[0].zaaknummer]
    assert [e.zaaknummer for e in store.outbox_entries()] == [wins[0].zaaknummer]
    assert store.get_slot(slot.id).booked == 1


def test_same_key_with_booking_from_10_threads_books_once(store):
    slot = single_slot(store, capacity=5)
    results = race(
        10,
        lambda i: store.file_case(
            "huwelijk_partnerschap", "website", {}, {}, "couple-1", booking=("huwelijk", slot.id)
        ),
    )
    assert [r for r in results if isinstance(r, Exception)] == []
    assert {(r.zaaknummer, r.booking_code) for r in results} == {
        (results[0].zaaknummer, results[0].booking_code)
    }
    assert store.get_slot(slot.id).booked == 1


def test_two_workers_claiming_the_outbox_get_disjoint_entries(store):
    for i in range(30):
        melding(store, f"k{i}", backend="zgw")
    claimed: List[List[int]] = [[], []]

    def worker(i: int):
        while True:
            batch = store.claim_outbox(f"worker-{i}", limit=3)
            if not batch:
                return None
            assert all(e.leased_by == f"worker-{i}" for e in batch)
            claimed[i].extend(e.id for e in batch)

    assert race(2, worker) == [None, None]
    a, b = set(claimed[0]), set(claimed[1])
    assert len(claimed[0]) == len(a) and len(claimed[1]) == len(b)
    assert not a & b
    assert a | b == {e.id for e in store.outbox_entries()}
    assert {e.leased_by for e in store.outbox_entries()} <= {"worker-0", "worker-1"}


def _book_in_process(url: str, slot_id: int, index: int, barrier, results) -> None:
    store = CaseStore(url)
    try:
        barrier.wait(timeout=60)
        try:
            results.put((index, store.book_slot("huwelijk", slot_id, f"process-{index}").code))
        except SlotTaken:
            results.put((index, "taken"))
    finally:
        store.dispose()


def test_separate_processes_racing_for_one_slot(store, db_url):
    slot = single_slot(store)
    ctx = multiprocessing.get_context("spawn")
    n = 4
    barrier = ctx.Barrier(n)
    results = ctx.Queue()
    processes = [
        ctx.Process(target=_book_in_process, args=(db_url, slot.id, i, barrier, results))
        for i in range(n)
    ]
    for p in processes:
        p.start()
    outcome = dict(results.get(timeout=120) for _ in range(n))
    for p in processes:
        p.join(timeout=60)
    assert all(p.exitcode == 0 for p in processes)
    assert sorted(v == "taken" for v in outcome.values()) == [False, True, True, True]
    assert store.get_slot(slot.id).booked == 1
