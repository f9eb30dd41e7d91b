"""The embedded case store, on SQLite and on PostgreSQL."""
from __future__ import annotations

import datetime as dt
import re
import sys
import textwrap

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from bot.cases import BookingNotFound, CaseNotFound, CaseStore, SlotTaken
from bot.cases.backends import CaseBackend, EmbeddedBackend, RemoteReference, get_backend
from bot.cases.models import LOCAL_TZ, metadata
from bot.cases.store import BOOKING_CODE_ALPHABET, new_booking_code

UTC = dt.timezone.utc


class Clock:
    """A settable clock for the store (aware UTC)."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kwargs) -> None:
        self.now += dt.timedelta(**kwargs)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture
def clock() -> Clock:
    return Clock(dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def store(db_url, clock):
    s = CaseStore(db_url, clock=clock)
    s.migrate()
    yield s
    s.dispose()


def file_melding(store: CaseStore, key: str, **kwargs):
    params = dict(
        zaaktype="melding_openbare_ruimte",
        channel="website",
        data={"postcode": "4611ab", "omschrijving": "Lantaarnpaal kapot bij de Grote Markt"},
        contact={"email": "j.jansen@example.nl", "naam": "Jan Jansen"},
        idempotency_key=key,
    )
    params.update(kwargs)
    return store.file_case(**params)


# -- schema -----------------------------------------------------------------------


def test_migrations_match_models_and_are_repeatable(store):
    store.migrate()  # a second upgrade is a no-op
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        tables = set(inspect(conn).get_table_names())
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert diff == []
    assert {"zaak", "zaak_status", "zaaknummer_sequence", "slot", "booking", "outbox"} <= tables
    assert "alembic_version" in tables
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from bot.cases.store import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert version == ScriptDirectory.from_config(cfg).get_current_head()


def test_postgres_tables_live_in_the_test_schema(pg_url):
    s = CaseStore(pg_url)
    try:
        s.migrate()
        with s.engine.connect() as conn:
            schema = conn.execute(text("SELECT current_schema()")).scalar_one()
            where = conn.execute(
                text("SELECT table_schema FROM information_schema.tables WHERE table_name = 'alembic_version'")
            ).scalars().all()
    finally:
        s.dispose()
    assert schema.startswith("test_")
    assert where == [schema]


# -- filing -----------------------------------------------------------------------


def test_file_case_gives_zaaknummer_status_and_stored_answers(store, clock):
    case = file_melding(store, "sender-1:run-1")
    assert re.fullmatch(r"BOZ-2026-\d{6}", case.zaaknummer)
    assert case.zaaknummer == "BOZ-2026-000001"
    assert case.status == "ontvangen"
    assert [(s, at) for s, at, _ in case.status_history] == [("ontvangen", clock.now)]
    assert case.created_at == clock.now and case.created_at.tzinfo is not None
    assert case.data["omschrijving"] == "Lantaarnpaal kapot bij de Grote Markt"
    assert case.contact == {"email": "j.jansen@example.nl", "naam": "Jan Jansen"}
    assert case.channel == "website" and case.backend == "embedded"
    assert case.bsn is None and case.booking_code is None
    assert store.get(case.zaaknummer) == case
    assert store.get(case.zaaknummer.lower()) == case
    assert store.get("BOZ-2026-999999") is None
    assert store.outbox_entries() == []  # embedded backend: nothing to deliver


def test_zaaknummer_sequence_runs_per_year_in_local_time(store, clock):
    numbers = []
    clock.now = dt.datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    numbers.append(file_melding(store, "a").zaaknummer)
    numbers.append(file_melding(store, "b").zaaknummer)
    # 23:30 UTC on New Year's Eve is already 00:30 on 1 January in the Netherlands.
    clock.now = dt.datetime(2025, 12, 31, 23, 30, tzinfo=UTC)
    numbers.append(file_melding(store, "c").zaaknummer)
    clock.now = dt.datetime(2026, 1, 2, 9, 0, tzinfo=UTC)
    numbers.append(file_melding(store, "d").zaaknummer)
    clock.now = dt.datetime(2025, 7, 1, 9, 0, tzinfo=UTC)
    numbers.append(file_melding(store, "e").zaaknummer)
    assert numbers == [
        "BOZ-2025-000001",
        "BOZ-2025-000002",
        "BOZ-2026-000001",
        "BOZ-2026-000002",
        "BOZ-2025-000003",
    ]


def test_prefix_can_be_configured(db_url):
    s = CaseStore(db_url, prefix="HLM")
    try:
        s.migrate()
        assert file_melding(s, "k").zaaknummer.startswith("HLM-")
    finally:
        s.dispose()


def test_status_history_keeps_every_change(store, clock):
    case = file_melding(store, "k")
    clock.advance(hours=2)
    store.set_status(case.zaaknummer, "in_behandeling", "Doorgestuurd naar de buitendienst")
    clock.advance(days=1)
    updated = store.set_status(case.zaaknummer.lower(), "afgehandeld")
    assert updated.status == "afgehandeld"
    assert [(s, t) for s, _, t in updated.status_history] == [
        ("ontvangen", None),
        ("in_behandeling", "Doorgestuurd naar de buitendienst"),
        ("afgehandeld", None),
    ]
    assert [at for _, at, _ in updated.status_history] == [
        dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        dt.datetime(2026, 3, 2, 11, 0, tzinfo=UTC),
        dt.datetime(2026, 3, 3, 11, 0, tzinfo=UTC),
    ]
    assert updated.updated_at == clock.now and updated.created_at < updated.updated_at
    with pytest.raises(CaseNotFound):
        store.set_status("BOZ-2026-424242", "afgehandeld")


def test_find_for_status_needs_the_matching_postcode(store):
    case = file_melding(store, "k", data={"postcode": "4611ab"})
    file_melding(store, "no-address", data={"omschrijving": "zonder adres"})
    assert store.find_for_status(case.zaaknummer, "4611 AB").zaaknummer == case.zaaknummer
    assert store.find_for_status(case.zaaknummer.lower(), " 4611ab ") is not None
    assert store.find_for_status(case.zaaknummer, "4612 AB") is None
    assert store.find_for_status(case.zaaknummer, "4611 AC") is None
    assert store.find_for_status(case.zaaknummer, "geen postcode") is None
    assert store.find_for_status(case.zaaknummer, "") is None
    assert store.find_for_status("BOZ-2026-000999", "4611 AB") is None
    assert store.find_for_status("BOZ-2026-000002", "4611 AB") is None  # case without postcode


def test_set_remote_stores_the_remote_reference(store):
    case = file_melding(store, "k")
    store.set_remote(case.zaaknummer, "https://zaken.example.nl/api/v1/zaken/abc", "ZAAK-2026-0000001")
    again = store.get(case.zaaknummer)
    assert again.remote_url == "https://zaken.example.nl/api/v1/zaken/abc"
    assert again.remote_identificatie == "ZAAK-2026-0000001"
    with pytest.raises(CaseNotFound):
        store.set_remote("BOZ-2026-999999", None, "x")


def test_same_idempotency_key_returns_the_first_case_and_writes_nothing(store):
    first = file_melding(store, "sender-9:run-3", backend="zgw")
    second = file_melding(
        store, "sender-9:run-3", backend="zgw", data={"postcode": "4612 CD", "omschrijving": "anders"}
    )
    assert second == first
    assert len(store.list_cases()) == 1
    assert len(store.outbox_entries()) == 1
    # The sequence was not consumed by the repeated call.
    assert file_melding(store, "other").zaaknummer == "BOZ-2026-000002"


def test_remote_backend_gets_an_outbox_entry_in_the_same_filing(store, clock):
    embedded = file_melding(store, "k1")  # gemeente.yml: backend embedded
    remote = file_melding(store, "k2", backend="zgw")
    entries = store.outbox_entries()
    assert [(e.zaaknummer, e.backend, e.state, e.attempts, e.reference) for e in entries] == [
        (remote.zaaknummer, "zgw", "pending", 0, remote.zaaknummer)
    ]
    assert entries[0].next_attempt_at == clock.now
    assert embedded.backend == "embedded" and remote.backend == "zgw"


def test_file_case_validates_zaaktype_bsn_and_data(store):
    with pytest.raises(ValueError):
        file_melding(store, "k1", zaaktype="bestaat_niet")
    with pytest.raises(ValueError):  # stdnum ValidationError is a ValueError
        file_melding(store, "k2", bsn="123456789")
    with pytest.raises(TypeError):
        file_melding(store, "k3", data={"datum": dt.date(2026, 1, 1)})
    with pytest.raises(ValueError):
        file_melding(store, "")
    assert store.list_cases() == []
    case = file_melding(store, "k4", bsn="111222333")
    assert store.get(case.zaaknummer).bsn == "111222333"


def test_list_cases_newest_first_with_filter(store, clock):
    a = file_melding(store, "a")
    clock.advance(minutes=1)
    b = store.file_case("grofvuil_ophalen", "hulpplein", {"postcode": "4614 AA"}, {}, "b")
    clock.advance(minutes=1)
    c = file_melding(store, "c")
    assert [x.zaaknummer for x in store.list_cases()] == [c.zaaknummer, b.zaaknummer, a.zaaknummer]
    assert [x.zaaknummer for x in store.list_cases(limit=2)] == [c.zaaknummer, b.zaaknummer]
    assert [x.zaaknummer for x in store.list_cases(zaaktype="grofvuil_ophalen")] == [b.zaaknummer]


# -- slots and bookings -----------------------------------------------------------


def test_ensure_slots_is_idempotent_local_time_and_skips_holidays(store):
    monday = dt.date(2030, 12, 23)  # 25 and 26 December are public holidays
    created = store.ensure_slots("afspraak", monday, 7, ["09:00", "13:30"], [0, 1, 2, 3, 4], capacity=2)
    assert created == 6  # Mon 23, Tue 24, Fri 27 x 2 times
    assert store.ensure_slots("afspraak", monday, 7, ["09:00", "13:30"], [0, 1, 2, 3, 4]) == 0
    after = dt.datetime(2030, 12, 1, tzinfo=UTC)
    slots = store.free_slots("afspraak", after, limit=10)
    assert [s.local_start.strftime("%d %H:%M") for s in slots] == [
        "23 09:00", "23 13:30", "24 09:00", "24 13:30", "27 09:00", "27 13:30",
    ]
    assert slots[0].start == dt.datetime(2030, 12, 23, 8, 0, tzinfo=UTC)  # CET = UTC+1
    assert all(s.capacity == 2 and s.booked == 0 for s in slots)
    on_day = store.free_slots("afspraak", after, on_date=dt.date(2030, 12, 24))
    assert [s.local_start.hour for s in on_day] == [9, 13]
    assert store.free_slots("huwelijk", after) == []
    # Summer time: 09:00 in June is 07:00 UTC.
    store.ensure_slots("huwelijk", dt.date(2030, 6, 3), 1, ["09:00"], None)
    june = store.free_slots("huwelijk", dt.datetime(2030, 1, 1, tzinfo=UTC))
    assert [s.start for s in june] == [dt.datetime(2030, 6, 3, 7, 0, tzinfo=UTC)]
    with pytest.raises(ValueError):
        store.free_slots("afspraak", dt.datetime(2030, 12, 1))  # naive datetimes are refused


def _one_slot(store, kind="huwelijk", capacity=1, day=dt.date(2026, 3, 10), time="10:00"):
    store.ensure_slots(kind, day, 1, [time], None, capacity=capacity)
    start = dt.datetime.combine(day, dt.time.fromisoformat(time), tzinfo=LOCAL_TZ)
    (found,) = [
        s for s in store.free_slots(kind, dt.datetime(2026, 1, 1, tzinfo=UTC), limit=50, on_date=day)
        if s.start == start
    ]
    return found


def test_booking_codes_are_short_and_unambiguous():
    codes = {new_booking_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(len(c) == 6 and set(c) <= set(BOOKING_CODE_ALPHABET) for c in codes)
    assert not set("0O1IL") & set("".join(codes))


def test_book_slot_is_idempotent_and_refuses_a_full_slot(store):
    s = _one_slot(store, capacity=2)
    first = store.book_slot("huwelijk", s.id, "key-1")
    assert re.fullmatch(f"[{BOOKING_CODE_ALPHABET}]{{6}}", first.code)
    assert first.slot.id == s.id and first.slot.booked == 1 and first.zaaknummer is None
    assert store.book_slot("huwelijk", s.id, "key-1") == first
    assert store.get_slot(s.id).booked == 1
    store.book_slot("huwelijk", s.id, "key-2")
    with pytest.raises(SlotTaken):
        store.book_slot("huwelijk", s.id, "key-3")
    assert store.get_slot(s.id).booked == 2
    assert store.free_slots("huwelijk", dt.datetime(2026, 1, 1, tzinfo=UTC)) == []
    with pytest.raises(SlotTaken):  # a slot of another kind
        store.book_slot("afspraak", s.id, "key-4")
    with pytest.raises(SlotTaken):  # no such slot
        store.book_slot("huwelijk", 999999, "key-5")


def test_slot_in_the_past_cannot_be_booked(store, clock):
    s = _one_slot(store)
    clock.now = s.start + dt.timedelta(minutes=1)
    with pytest.raises(SlotTaken):
        store.book_slot("huwelijk", s.id, "late")


def test_file_case_with_booking_books_in_the_same_transaction(store):
    s = _one_slot(store)
    case = store.file_case(
        "huwelijk_partnerschap", "website", {"ceremonie": "eenvoudig"}, {}, "wed-1",
        backend="zgw", booking=("huwelijk", s.id),
    )
    assert case.booking_code is not None
    b = store.get_booking(case.booking_code.lower())
    assert b.zaaknummer == case.zaaknummer and b.slot.booked == 1
    with pytest.raises(SlotTaken):
        store.file_case(
            "huwelijk_partnerschap", "website", {}, {}, "wed-2", backend="zgw", booking=("huwelijk", s.id)
        )
    # Nothing of the refused filing was written: no case, no outbox entry, no number used.
    assert [c.zaaknummer for c in store.list_cases()] == [case.zaaknummer]
    assert [e.zaaknummer for e in store.outbox_entries()] == [case.zaaknummer]
    assert file_melding(store, "next").zaaknummer == "BOZ-2026-000002"


def test_cancel_booking_frees_the_slot(store, clock):
    s = _one_slot(store)
    case = store.file_case(
        "huwelijk_partnerschap", "website", {}, {}, "wed-1", booking=("huwelijk", s.id)
    )
    after = dt.datetime(2026, 1, 1, tzinfo=UTC)
    assert store.free_slots("huwelijk", after) == []
    cancelled = store.cancel_booking(case.booking_code)
    assert cancelled.cancelled and cancelled.cancelled_at == clock.now
    assert cancelled.slot.booked == 0
    assert [x.id for x in store.free_slots("huwelijk", after)] == [s.id]
    assert store.get(case.zaaknummer).booking_code is None
    store.cancel_booking(case.booking_code)  # twice: the slot is not freed again
    assert store.get_slot(s.id).booked == 0
    other = store.book_slot("huwelijk", s.id, "someone-else")
    assert other.slot.booked == 1
    with pytest.raises(ValueError):
        store.reschedule_booking(case.booking_code, s.id)  # cancelled bookings stay cancelled
    with pytest.raises(BookingNotFound):
        store.cancel_booking("ZZZZZZ")
    assert store.get_booking("ZZZZZZ") is None


def test_reschedule_moves_the_booking_atomically(store):
    a = _one_slot(store, time="10:00")
    b = _one_slot(store, time="11:00")
    c = _one_slot(store, time="12:00")
    booking = store.book_slot("huwelijk", b.id, "mine")
    store.book_slot("huwelijk", c.id, "theirs")
    moved = store.reschedule_booking(booking.code, a.id)
    assert moved.code == booking.code and moved.slot.id == a.id
    assert (store.get_slot(a.id).booked, store.get_slot(b.id).booked) == (1, 0)
    with pytest.raises(SlotTaken):
        store.reschedule_booking(booking.code, c.id)  # full: nothing changes
    assert store.get_booking(booking.code).slot.id == a.id
    assert [store.get_slot(x.id).booked for x in (a, b, c)] == [1, 0, 1]
    moved = store.reschedule_booking(booking.code, b.id)  # to a higher slot id
    assert moved.slot.id == b.id
    assert [store.get_slot(x.id).booked for x in (a, b, c)] == [0, 1, 1]
    assert store.reschedule_booking(booking.code, b.id).slot.booked == 1  # same slot: no-op
    other_kind = _one_slot(store, kind="afspraak")
    with pytest.raises(SlotTaken):
        store.reschedule_booking(booking.code, other_kind.id)
    with pytest.raises(BookingNotFound):
        store.reschedule_booking("ZZZZZZ", a.id)


# -- outbox -----------------------------------------------------------------------


def test_outbox_claim_lease_retry_park_and_deliver(store, clock):
    c1 = file_melding(store, "k1", backend="zgw")
    clock.advance(seconds=1)
    c2 = file_melding(store, "k2", backend="signalen")
    clock.advance(seconds=1)
    c3 = file_melding(store, "k3", backend="zgw")
    now = clock.now

    claimed = store.claim_outbox("worker-a", limit=2, now=now, lease_seconds=60)
    assert [e.zaaknummer for e in claimed] == [c1.zaaknummer, c2.zaaknummer]
    assert all(e.leased_by == "worker-a" and e.lease_until == now + dt.timedelta(seconds=60) for e in claimed)
    assert [e.zaaknummer for e in store.claim_outbox("worker-b", now=now)] == [c3.zaaknummer]
    assert store.claim_outbox("worker-b", now=now) == []
    # An expired lease (crashed worker) is claimable again.
    again = store.claim_outbox("worker-b", now=now + dt.timedelta(seconds=61))
    assert {e.zaaknummer for e in again} == {c1.zaaknummer, c2.zaaknummer, c3.zaaknummer}
    e1, e2, e3 = sorted(again, key=lambda e: e.id)

    store.mark_retry(e1.id, "worker-b", "HTTP 503 van de ZGW API", now + dt.timedelta(minutes=5))
    store.park(e2.id, "worker-b", "HTTP 400: zaaktype onbekend")
    store.mark_delivered(e3.id, "worker-b", "https://zaken.example.nl/zaken/1", "ZAAK-1")

    by_id = {e.id: e for e in store.outbox_entries()}
    assert (by_id[e1.id].state, by_id[e1.id].attempts, by_id[e1.id].last_error) == (
        "pending", 1, "HTTP 503 van de ZGW API",
    )
    assert by_id[e1.id].leased_by is None and by_id[e1.id].lease_until is None
    assert (by_id[e2.id].state, by_id[e2.id].last_error) == ("parked", "HTTP 400: zaaktype onbekend")
    assert by_id[e3.id].state == "delivered"
    assert [e.id for e in store.outbox_entries(state="parked")] == [e2.id]
    assert store.get(c3.zaaknummer).remote_identificatie == "ZAAK-1"
    assert store.get(c3.zaaknummer).remote_url == "https://zaken.example.nl/zaken/1"

    later = now + dt.timedelta(minutes=2)
    assert store.claim_outbox("w", now=later) == []  # retry not due yet, parked and delivered never
    assert [e.id for e in store.claim_outbox("w", now=now + dt.timedelta(minutes=5), lease_seconds=3600)] == [e1.id]

    clock.now = now + dt.timedelta(minutes=10)
    store.requeue(e2.id)  # staff: try the parked one again
    assert [e.id for e in store.claim_outbox("w", now=clock.now)] == [e2.id]
    with pytest.raises(LookupError):
        store.requeue(e3.id)  # delivered stays delivered
    with pytest.raises(LookupError):
        store.park(424242, "w", "x")
    with pytest.raises(ValueError):
        store.outbox_entries(state="weg")


# -- backends ---------------------------------------------------------------------


def test_embedded_backend_and_plugin_loading(store, tmp_path, monkeypatch):
    case = file_melding(store, "k")
    backend = get_backend("embedded")
    assert isinstance(backend, EmbeddedBackend)
    assert backend.register_submission(case) == RemoteReference(url=None, identificatie=case.zaaknummer)
    assert backend.fetch_status(case) is None
    for bad in ("bestaat_niet_backend", "../etc", ""):
        with pytest.raises(ValueError):
            get_backend(bad)

    # A plugin package next to the real integrations: integrations.<name>.plugin.Plugin
    import integrations

    pkg = tmp_path / "integrations" / "testremote"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "plugin.py").write_text(
        textwrap.dedent(
            """
            from bot.cases.backends import CaseBackend, RemoteReference

            class Plugin(CaseBackend):
                name = "testremote"

                def register_submission(self, case):
                    return RemoteReference(url="https://remote/" + case.zaaknummer, identificatie="R-1")
            """
        )
    )
    monkeypatch.setattr(integrations, "__path__", [*integrations.__path__, str(tmp_path / "integrations")])
    monkeypatch.delitem(sys.modules, "integrations.testremote", raising=False)
    monkeypatch.delitem(sys.modules, "integrations.testremote.plugin", raising=False)
    plugin = get_backend("testremote")
    assert isinstance(plugin, CaseBackend) and plugin.name == "testremote"
    assert plugin.register_submission(case) == RemoteReference(
        url=f"https://remote/{case.zaaknummer}", identificatie="R-1"
    )
