"""The KCC queue (bot/kcc/queue.py) on SQLite and PostgreSQL: one open entry per
conversation, places in line, one winner when two employees accept, timers."""
from __future__ import annotations

import datetime as dt
import threading

import pytest

from bot.kcc.models import STATE_ACTIVE, STATE_CALLBACK, STATE_CLOSED, STATE_EXPIRED, STATE_WAITING
from bot.kcc.queue import KccQueue

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cases.db'}"
    else:
        yield request.getfixturevalue("pg_url")


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def queue(db_url, clock):
    return KccQueue(db_url, clock=clock)


def enqueue(queue, sender, **kwargs):
    params = dict(channel="website", input_channel="webchat", topic="Grofvuil", wait_seconds=180)
    params.update(kwargs)
    return queue.enqueue(sender, **params)


def test_enqueue_keeps_one_open_entry_and_the_place_in_line(queue, clock):
    first, created = enqueue(queue, "a")
    assert created and first.state == STATE_WAITING and queue.position(first) == 1
    clock.advance(seconds=5)
    second, _ = enqueue(queue, "b", channel="hulpplein")
    assert queue.position(second) == 2 and second.channel == "hulpplein"
    again, created = enqueue(queue, "a")
    assert not created and again.id == first.id
    assert [e.sender_id for e in queue.list()] == ["a", "b"]
    # When "a" is helped, "b" moves up.
    queue.accept(first.id, "anna")
    assert queue.position(queue.get(second.id)) == 1
    assert queue.position(queue.get(first.id)) == 0
    assert queue.get(second.id).waiting_seconds(clock.now + dt.timedelta(seconds=10)) == 10


def test_two_employees_accept_at_once_one_wins(queue, db_url, clock):
    entry, _ = enqueue(queue, "race")
    results = {}
    barrier = threading.Barrier(2)

    def take(name):
        mine = KccQueue(db_url, clock=clock)
        barrier.wait()
        results[name] = mine.accept(entry.id, name)

    threads = [threading.Thread(target=take, args=(n,)) for n in ("anna", "bram")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winners = [name for name, got in results.items() if got is not None]
    assert len(winners) == 1
    stored = queue.get(entry.id)
    assert stored.state == STATE_ACTIVE and stored.employee == winners[0]


def test_close_only_by_the_own_employee_and_only_once(queue):
    entry, _ = enqueue(queue, "c")
    queue.accept(entry.id, "anna")
    assert queue.close(entry.id, STATE_CLOSED, "teruggegeven", employee="bram") is None
    closed = queue.close(entry.id, STATE_CLOSED, "teruggegeven", employee="anna")
    assert closed.state == STATE_CLOSED and closed.closed_at is not None
    assert queue.close(entry.id, STATE_CLOSED) is None
    # A closed conversation can queue again later, as a new entry.
    again, created = enqueue(queue, "c")
    assert created and again.id != entry.id
    assert queue.close_open("c", STATE_CALLBACK, "terugbelverzoek").state == STATE_CALLBACK
    assert queue.open_entry("c") is None


def test_call_back_offer_is_due_after_the_wait_once(queue, clock):
    entry, _ = enqueue(queue, "d", wait_seconds=180)
    clock.advance(seconds=179)
    assert queue.due_for_callback_offer() == []
    clock.advance(seconds=2)
    assert [e.id for e in queue.due_for_callback_offer()] == [entry.id]
    assert queue.mark_callback_offered(entry.id) is not None
    assert queue.mark_callback_offered(entry.id) is None  # a second process does nothing
    assert queue.due_for_callback_offer() == []
    # "Ik wacht nog even": a new wait, same place.
    kept = queue.keep_waiting("d", 180)
    assert kept.id == entry.id and kept.callback_offered_at is None
    assert queue.due_for_callback_offer() == []
    clock.advance(seconds=181)
    assert [e.id for e in queue.due_for_callback_offer()] == [entry.id]


def test_an_entry_whose_citizen_left_expires_after_the_timeout(queue, clock):
    entry, _ = enqueue(queue, "e")
    assert queue.citizen_left("e")
    clock.advance(seconds=119)
    assert queue.due_for_expiry(120, 30) == []
    assert queue.due_for_callback_offer() == []  # nobody to offer it to
    clock.advance(seconds=2)
    assert [e.id for e in queue.due_for_expiry(120, 30)] == [entry.id]
    # Back in time: not due any more.
    assert queue.citizen_back("e")
    assert queue.due_for_expiry(120, 30) == []
    queue.citizen_left("e")
    clock.advance(seconds=121)
    assert queue.close(entry.id, STATE_EXPIRED, "inwoner_weg").state == STATE_EXPIRED
    assert queue.open_entry("e") is None


def test_no_entry_waits_longer_than_the_maximum(queue, clock):
    entry, _ = enqueue(queue, "f")
    active, _ = enqueue(queue, "g")
    queue.accept(active.id, "anna")
    clock.advance(minutes=31)
    assert [e.id for e in queue.due_for_expiry(120, 30)] == [entry.id]
