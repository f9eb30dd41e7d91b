"""The embedded case store: cases (zaken), slots, bookings and the delivery outbox.

One ``CaseStore`` wraps one SQLAlchemy engine (SQLite or PostgreSQL) and is safe
to share between threads. Every write is one short transaction:

* PostgreSQL: READ COMMITTED plus row locks (``UPDATE ... RETURNING`` for the
  zaaknummer counter, conditional ``UPDATE`` for slot capacity,
  ``SELECT ... FOR UPDATE SKIP LOCKED`` for the outbox).
* SQLite: every write transaction starts with ``BEGIN IMMEDIATE`` (writers are
  serialised, readers are not blocked thanks to WAL).

Idempotency keys are unique in the database; a lost race ends in a unique
violation, after which the winner's row is returned.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import holidays as holidays_lib
from sqlalchemy import and_, create_engine, event, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool
from stdnum.exceptions import ValidationError
from stdnum.nl import bsn as bsn_lib
from stdnum.nl import postcode as postcode_lib

from bot import config
from bot.cases.models import (
    LOCAL_TZ,
    OUTBOX_DELIVERED,
    OUTBOX_PARKED,
    OUTBOX_PENDING,
    OUTBOX_STATES,
    STATUS_ONTVANGEN,
    Booking,
    Case,
    OutboxEntry,
    Slot,
    as_utc,
    booking,
    outbox,
    slot,
    zaak,
    zaak_status,
    zaaknummer_sequence,
)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: Booking codes avoid characters people mix up: no 0/O, 1/I/L.
BOOKING_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
BOOKING_CODE_LENGTH = 6

_SQLITE_BUSY_TIMEOUT_MS = 30_000
_MAX_ATTEMPTS = 3


class CaseStoreError(Exception):
    """Base class of the errors of the case store."""


class SlotTaken(CaseStoreError):
    """The slot is full, in the past or does not exist (for this kind)."""


class CaseNotFound(CaseStoreError, LookupError):
    pass


class BookingNotFound(CaseStoreError, LookupError):
    pass


class OutboxEntryNotFound(CaseStoreError, LookupError):
    pass


def new_booking_code() -> str:
    return "".join(secrets.choice(BOOKING_CODE_ALPHABET) for _ in range(BOOKING_CODE_LENGTH))


def normalise_postcode(value: Any) -> Optional[str]:
    """'4611ab' -> '4611 AB'; None for anything that is not a Dutch postcode."""
    if not isinstance(value, str):
        return None
    try:
        return postcode_lib.validate(value)
    except ValidationError:
        return None


def normalise_zaaknummer(value: str) -> str:
    return re.sub(r"\s+", "", value or "").upper()


def normalise_booking_code(value: str) -> str:
    return re.sub(r"[\s-]+", "", value or "").upper()


def _json_dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def make_engine(url: str) -> Engine:
    """A future-style engine with the settings the store relies on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        memory = parsed.database in (None, "", ":memory:")
        kwargs: Dict[str, Any] = {
            "connect_args": {"check_same_thread": False, "timeout": _SQLITE_BUSY_TIMEOUT_MS / 1000},
        }
        if memory:
            kwargs["poolclass"] = StaticPool
        engine = create_engine(parsed, future=True, json_serializer=_json_dumps, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection, _record):
            # Let SQLAlchemy (not the sqlite3 module) emit BEGIN, see _sqlite_begin.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
            if not memory:
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # Write transactions take the write lock up front: no lock upgrades
            # (and no SQLITE_BUSY without waiting) halfway a transaction.
            immediate = conn.get_execution_options().get("cases_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"unsupported case store database: {parsed.get_backend_name()}")
    return create_engine(
        parsed,
        future=True,
        json_serializer=_json_dumps,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
    )


def _insert_ignore(dialect_name: str, table):
    """INSERT ... ON CONFLICT DO NOTHING for the supported dialects."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table)


def _chunks(items: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class CaseStore:
    """See /tmp/ctx/store_contract.md (the agreed interface) and the module docstring."""

    def __init__(
        self,
        url: Optional[str] = None,
        *,
        prefix: Optional[str] = None,
        clock: Optional[Callable[[], dt.datetime]] = None,
    ) -> None:
        self.url = url or config.cases_db_url()
        self.engine = make_engine(self.url)
        # Same pool and events; marks connections that will write (SQLite: BEGIN IMMEDIATE).
        self._write_engine = self.engine.execution_options(cases_write=True)
        self._prefix = prefix
        self._clock = clock or _utcnow

    # -- infrastructure -------------------------------------------------------------

    @property
    def prefix(self) -> str:
        if self._prefix is None:
            self._prefix = str(config.gemeente()["gemeente"]["zaaknummer_prefix"]).upper()
        return self._prefix

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def now(self) -> dt.datetime:
        return as_utc(self._clock(), "clock()")

    def migrate(self) -> None:
        """``alembic upgrade head`` on this store's database."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self._write_engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def dispose(self) -> None:
        self.engine.dispose()

    close = dispose

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self._write_engine.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    # -- cases --------------------------------------------------------------------

    def file_case(
        self,
        zaaktype: str,
        channel: str,
        data: Dict[str, Any],
        contact: Optional[Dict[str, Any]] = None,
        idempotency_key: str = "",
        bsn: Optional[str] = None,
        backend: Optional[str] = None,
        booking: Optional[Tuple[str, int]] = None,
    ) -> Case:
        """File a case. Same idempotency_key -> the existing case, nothing written."""
        if not idempotency_key or len(idempotency_key) > 255:
            raise ValueError("idempotency_key is required (at most 255 characters)")
        existing = self._case_by_key(idempotency_key)
        if existing is not None:
            return existing
        zaaktypen = config.gemeente().get("zaaktypen") or {}
        if zaaktype not in zaaktypen:
            raise ValueError(f"unknown zaaktype {zaaktype!r} (not in gemeente.yml zaaktypen)")
        backend = backend or (zaaktypen[zaaktype] or {}).get("backend") or "embedded"
        if bsn is not None:
            bsn = bsn_lib.validate(bsn)  # raises stdnum ValidationError for an invalid BSN
        json.dumps(data)  # fail early (TypeError) on data that cannot be stored
        json.dumps(contact or {})

        for attempt in range(_MAX_ATTEMPTS):
            try:
                with self._tx() as conn:
                    zaaknummer = self._insert_case(
                        conn, zaaktype, channel, data, contact or {}, idempotency_key, bsn,
                        backend, booking,
                    )
                case = self.get(zaaknummer)
                assert case is not None
                return case
            except SlotTaken:
                # A concurrent filing with the same key may have taken the last place.
                existing = self._case_by_key(idempotency_key)
                if existing is not None:
                    return existing
                raise
            except IntegrityError:
                # Lost a race on the same idempotency key: the winner's case is the answer.
                existing = self._case_by_key(idempotency_key)
                if existing is not None:
                    return existing
                if attempt == _MAX_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _insert_case(
        self,
        conn: Connection,
        zaaktype: str,
        channel: str,
        data: Dict[str, Any],
        contact: Dict[str, Any],
        idempotency_key: str,
        bsn: Optional[str],
        backend: str,
        booking_request: Optional[Tuple[str, int]],
    ) -> str:
        now = self.now()
        year = now.astimezone(LOCAL_TZ).year
        number = self._next_sequence(conn, year)
        zaaknummer = f"{self.prefix}-{year}-{number:06d}"
        zaak_id = conn.execute(
            insert(zaak)
            .values(
                zaaknummer=zaaknummer,
                zaaktype=zaaktype,
                status=STATUS_ONTVANGEN,
                channel=channel,
                backend=backend,
                data=data,
                contact=contact,
                bsn=bsn,
                idempotency_key=idempotency_key,
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key[0]
        conn.execute(
            insert(zaak_status).values(
                zaak_id=zaak_id, status=STATUS_ONTVANGEN, toelichting=None, created_at=now
            )
        )
        if booking_request is not None:
            kind, slot_id = booking_request
            self._book(conn, kind, slot_id, idempotency_key, zaaknummer, now)
        if backend != "embedded":
            conn.execute(
                insert(outbox).values(
                    zaaknummer=zaaknummer,
                    backend=backend,
                    reference=zaaknummer,
                    state=OUTBOX_PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
        return zaaknummer

    def _next_sequence(self, conn: Connection, year: int) -> int:
        """Next number of the per-prefix, per-year counter (row-locked until commit)."""
        seq = zaaknummer_sequence
        where = and_(seq.c.prefix == self.prefix, seq.c.year == year)
        stmt = update(seq).where(where).values(last_value=seq.c.last_value + 1)
        for _ in range(2):
            if conn.dialect.name == "postgresql":
                value = conn.execute(stmt.returning(seq.c.last_value)).scalar_one_or_none()
                if value is not None:
                    return int(value)
            elif conn.execute(stmt).rowcount == 1:
                return int(conn.execute(select(seq.c.last_value).where(where)).scalar_one())
            conn.execute(
                _insert_ignore(conn.dialect.name, seq)
                .values(prefix=self.prefix, year=year, last_value=0)
                .on_conflict_do_nothing()
            )
        raise RuntimeError("zaaknummer sequence row missing")

    def _case_by_key(self, idempotency_key: str) -> Optional[Case]:
        with self._read() as conn:
            rows = conn.execute(select(zaak).where(zaak.c.idempotency_key == idempotency_key)).all()
            cases = self._load_cases(conn, rows)
        return cases[0] if cases else None

    def _load_cases(self, conn: Connection, rows: Sequence[Any]) -> List[Case]:
        """Rows of `zaak` -> Case objects, with history and booking code in batched queries."""
        if not rows:
            return []
        history: Dict[int, List[Tuple[str, dt.datetime, Optional[str]]]] = {}
        codes: Dict[str, str] = {}
        ids = [r.id for r in rows]
        numbers = [r.zaaknummer for r in rows]
        for chunk in _chunks(ids):
            for h in conn.execute(
                select(zaak_status)
                .where(zaak_status.c.zaak_id.in_(chunk))
                .order_by(zaak_status.c.created_at, zaak_status.c.id)
            ):
                history.setdefault(h.zaak_id, []).append((h.status, h.created_at, h.toelichting))
        for chunk in _chunks(numbers):
            for b in conn.execute(
                select(booking.c.zaaknummer, booking.c.code)
                .where(booking.c.zaaknummer.in_(chunk), booking.c.cancelled_at.is_(None))
                .order_by(booking.c.id)
            ):
                codes[b.zaaknummer] = b.code
        return [
            Case(
                zaaknummer=r.zaaknummer,
                zaaktype=r.zaaktype,
                status=r.status,
                status_history=history.get(r.id, []),
                channel=r.channel,
                data=r.data or {},
                contact=r.contact or {},
                bsn=r.bsn,
                created_at=r.created_at,
                updated_at=r.updated_at,
                remote_url=r.remote_url,
                remote_identificatie=r.remote_identificatie,
                booking_code=codes.get(r.zaaknummer),
                idempotency_key=r.idempotency_key,
                backend=r.backend,
            )
            for r in rows
        ]

    def get(self, zaaknummer: str) -> Optional[Case]:
        with self._read() as conn:
            rows = conn.execute(
                select(zaak).where(zaak.c.zaaknummer == normalise_zaaknummer(zaaknummer))
            ).all()
            cases = self._load_cases(conn, rows)
        return cases[0] if cases else None

    def find_for_status(self, zaaknummer: str, postcode: str) -> Optional[Case]:
        """The case only when its address postcode (data["postcode"]) matches."""
        given = normalise_postcode(postcode)
        if given is None:
            return None
        case = self.get(zaaknummer)
        if case is None:
            return None
        if normalise_postcode(case.data.get("postcode")) != given:
            return None
        return case

    def set_status(self, zaaknummer: str, status: str, toelichting: Optional[str] = None) -> Case:
        number = normalise_zaaknummer(zaaknummer)
        now = self.now()
        with self._tx() as conn:
            zaak_id = conn.execute(
                select(zaak.c.id).where(zaak.c.zaaknummer == number)
            ).scalar_one_or_none()
            if zaak_id is None:
                raise CaseNotFound(number)
            conn.execute(update(zaak).where(zaak.c.id == zaak_id).values(status=status, updated_at=now))
            conn.execute(
                insert(zaak_status).values(
                    zaak_id=zaak_id, status=status, toelichting=toelichting, created_at=now
                )
            )
        case = self.get(number)
        assert case is not None
        return case

    def set_remote(
        self, zaaknummer: str, remote_url: Optional[str], remote_identificatie: Optional[str]
    ) -> None:
        with self._tx() as conn:
            self._set_remote(conn, normalise_zaaknummer(zaaknummer), remote_url, remote_identificatie)

    def _set_remote(self, conn: Connection, number: str, url: Optional[str], ident: Optional[str]) -> None:
        result = conn.execute(
            update(zaak)
            .where(zaak.c.zaaknummer == number)
            .values(remote_url=url, remote_identificatie=ident, updated_at=self.now())
        )
        if result.rowcount != 1:
            raise CaseNotFound(number)

    def list_cases(self, limit: Optional[int] = 100, zaaktype: Optional[str] = None) -> List[Case]:
        """Newest first. ``limit=None`` lists all cases."""
        stmt = select(zaak).order_by(zaak.c.created_at.desc(), zaak.c.id.desc())
        if zaaktype:
            stmt = stmt.where(zaak.c.zaaktype == zaaktype)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._read() as conn:
            return self._load_cases(conn, conn.execute(stmt).all())

    # -- slots and bookings -------------------------------------------------------

    def ensure_slots(
        self,
        kind: str,
        start_date: dt.date,
        days: int,
        times: Iterable[str],
        weekdays: Optional[Iterable[int]],
        capacity: int = 1,
        duration_minutes: int = 30,
        skip_holidays: bool = True,
    ) -> int:
        """Create the missing slots; returns how many were created (idempotent).

        ``times`` are Dutch local wall-clock times "HH:MM"; ``weekdays`` use
        Python numbering (Monday = 0; None = every day). Dutch public holidays
        are skipped unless ``skip_holidays`` is False.
        """
        if capacity < 1 or duration_minutes < 1:
            raise ValueError("capacity and duration_minutes must be positive")
        allowed = set(range(7)) if weekdays is None else set(weekdays)
        parsed_times = [dt.time.fromisoformat(t) for t in times]
        end_date = start_date + dt.timedelta(days=days)
        closed = (
            holidays_lib.NL(years=range(start_date.year, end_date.year + 1)) if skip_holidays else {}
        )
        starts: List[dt.datetime] = []
        for offset in range(days):
            day = start_date + dt.timedelta(days=offset)
            if day.weekday() not in allowed or day in closed:
                continue
            for t in parsed_times:
                local = dt.datetime.combine(day, t, tzinfo=LOCAL_TZ)
                starts.append(local.astimezone(dt.timezone.utc))
        if not starts:
            return 0
        with self._tx() as conn:
            existing = set(
                conn.execute(
                    select(slot.c.start).where(
                        slot.c.kind == kind, slot.c.start >= min(starts), slot.c.start <= max(starts)
                    )
                ).scalars()
            )
            new = [s for s in starts if s not in existing]
            if new:
                conn.execute(
                    _insert_ignore(conn.dialect.name, slot).on_conflict_do_nothing(
                        index_elements=["kind", "start"]
                    ),
                    [
                        {
                            "kind": kind,
                            "start": s,
                            "duration_minutes": duration_minutes,
                            "capacity": capacity,
                            "booked": 0,
                        }
                        for s in new
                    ],
                )
        return len(new)

    @staticmethod
    def _slot(row: Any) -> Slot:
        return Slot(
            id=row.id,
            kind=row.kind,
            start=row.start,
            capacity=row.capacity,
            booked=row.booked,
            duration_minutes=row.duration_minutes,
        )

    def get_slot(self, slot_id: int) -> Optional[Slot]:
        with self._read() as conn:
            row = conn.execute(select(slot).where(slot.c.id == slot_id)).first()
        return self._slot(row) if row is not None else None

    def free_slots(
        self,
        kind: str,
        after: dt.datetime,
        limit: int = 5,
        on_date: Optional[dt.date] = None,
    ) -> List[Slot]:
        """Slots with room left, starting after ``after``; ``on_date`` is a local date."""
        stmt = select(slot).where(
            slot.c.kind == kind,
            slot.c.start > as_utc(after, "after"),
            slot.c.booked < slot.c.capacity,
        )
        if on_date is not None:
            low = dt.datetime.combine(on_date, dt.time(0), tzinfo=LOCAL_TZ)
            high = dt.datetime.combine(on_date + dt.timedelta(days=1), dt.time(0), tzinfo=LOCAL_TZ)
            stmt = stmt.where(slot.c.start >= as_utc(low), slot.c.start < as_utc(high))
        stmt = stmt.order_by(slot.c.start, slot.c.id).limit(limit)
        with self._read() as conn:
            return [self._slot(r) for r in conn.execute(stmt)]

    def _take_slot(self, conn: Connection, kind: str, slot_id: int, now: dt.datetime) -> None:
        result = conn.execute(
            update(slot)
            .where(
                slot.c.id == slot_id,
                slot.c.kind == kind,
                slot.c.start > now,
                slot.c.booked < slot.c.capacity,
            )
            .values(booked=slot.c.booked + 1)
        )
        if result.rowcount != 1:
            raise SlotTaken(f"slot {slot_id} ({kind}) is not available")

    @staticmethod
    def _release_slot(conn: Connection, slot_id: int) -> None:
        conn.execute(
            update(slot)
            .where(slot.c.id == slot_id, slot.c.booked > 0)
            .values(booked=slot.c.booked - 1)
        )

    def _book(
        self,
        conn: Connection,
        kind: str,
        slot_id: int,
        idempotency_key: str,
        zaaknummer: Optional[str],
        now: dt.datetime,
    ) -> str:
        self._take_slot(conn, kind, slot_id, now)
        code = new_booking_code()
        conn.execute(
            insert(booking).values(
                code=code,
                slot_id=slot_id,
                idempotency_key=idempotency_key,
                zaaknummer=zaaknummer,
                created_at=now,
            )
        )
        return code

    def book_slot(
        self, kind: str, slot_id: int, idempotency_key: str, zaaknummer: Optional[str] = None
    ) -> Booking:
        """Book one place in a slot; SlotTaken when full. Same key -> same booking."""
        if not idempotency_key or len(idempotency_key) > 255:
            raise ValueError("idempotency_key is required (at most 255 characters)")
        number = normalise_zaaknummer(zaaknummer) if zaaknummer else None
        for attempt in range(_MAX_ATTEMPTS):
            existing = self._booking_by(booking.c.idempotency_key == idempotency_key)
            if existing is not None:
                return existing
            try:
                with self._tx() as conn:
                    code = self._book(conn, kind, slot_id, idempotency_key, number, self.now())
                result = self.get_booking(code)
                assert result is not None
                return result
            except SlotTaken:
                existing = self._booking_by(booking.c.idempotency_key == idempotency_key)
                if existing is not None:
                    return existing
                raise
            except IntegrityError:
                # Same key booked concurrently (returned above on the next round),
                # an unknown zaaknummer, or (very rarely) a booking code collision.
                if attempt == _MAX_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _booking_by(self, condition) -> Optional[Booking]:
        with self._read() as conn:
            row = conn.execute(
                select(
                    booking.c.code,
                    booking.c.zaaknummer,
                    booking.c.idempotency_key,
                    booking.c.created_at,
                    booking.c.cancelled_at,
                    slot.c.id,
                    slot.c.kind,
                    slot.c.start,
                    slot.c.capacity,
                    slot.c.booked,
                    slot.c.duration_minutes,
                )
                .join(slot, slot.c.id == booking.c.slot_id)
                .where(condition)
            ).first()
        if row is None:
            return None
        return Booking(
            code=row.code,
            slot=self._slot(row),
            zaaknummer=row.zaaknummer,
            idempotency_key=row.idempotency_key,
            created_at=row.created_at,
            cancelled_at=row.cancelled_at,
        )

    def get_booking(self, code: str) -> Optional[Booking]:
        return self._booking_by(booking.c.code == normalise_booking_code(code))

    def cancel_booking(self, code: str) -> Booking:
        """Cancel and free the place in the slot. Cancelling twice is harmless."""
        code = normalise_booking_code(code)
        with self._tx() as conn:
            row = conn.execute(
                select(booking.c.id, booking.c.slot_id).where(booking.c.code == code)
            ).first()
            if row is None:
                raise BookingNotFound(code)
            result = conn.execute(
                update(booking)
                .where(booking.c.id == row.id, booking.c.cancelled_at.is_(None))
                .values(cancelled_at=self.now())
            )
            if result.rowcount == 1:
                self._release_slot(conn, row.slot_id)
        cancelled = self.get_booking(code)
        assert cancelled is not None
        return cancelled

    def reschedule_booking(self, code: str, new_slot_id: int) -> Booking:
        """Move a booking to another slot of the same kind, atomically (SlotTaken if full)."""
        code = normalise_booking_code(code)
        for _ in range(_MAX_ATTEMPTS):
            with self._tx() as conn:
                row = conn.execute(
                    select(booking.c.id, booking.c.slot_id, booking.c.cancelled_at, slot.c.kind)
                    .join(slot, slot.c.id == booking.c.slot_id)
                    .where(booking.c.code == code)
                ).first()
                if row is None:
                    raise BookingNotFound(code)
                if row.cancelled_at is not None:
                    raise ValueError(f"booking {code} is cancelled")
                if row.slot_id == new_slot_id:
                    break
                moved = conn.execute(
                    update(booking)
                    .where(
                        booking.c.id == row.id,
                        booking.c.slot_id == row.slot_id,
                        booking.c.cancelled_at.is_(None),
                    )
                    .values(slot_id=new_slot_id)
                ).rowcount
                if moved != 1:
                    continue  # changed concurrently: roll back and look again
                # Lock slot rows in id order so two opposite reschedules cannot deadlock.
                if new_slot_id < row.slot_id:
                    self._take_slot(conn, row.kind, new_slot_id, self.now())
                    self._release_slot(conn, row.slot_id)
                else:
                    self._release_slot(conn, row.slot_id)
                    self._take_slot(conn, row.kind, new_slot_id, self.now())
                break
        else:
            raise RuntimeError(f"booking {code} kept changing; try again")
        result = self.get_booking(code)
        assert result is not None
        return result

    # -- outbox ---------------------------------------------------------------------

    @staticmethod
    def _entry(row: Any) -> OutboxEntry:
        return OutboxEntry(
            id=row.id,
            zaaknummer=row.zaaknummer,
            backend=row.backend,
            state=row.state,
            attempts=row.attempts,
            last_error=row.last_error,
            next_attempt_at=row.next_attempt_at,
            leased_by=row.leased_by,
            lease_until=row.lease_until,
            created_at=row.created_at,
            reference=row.reference,
        )

    def claim_outbox(
        self,
        worker_id: str,
        limit: int = 10,
        now: Optional[dt.datetime] = None,
        lease_seconds: int = 60,
    ) -> List[OutboxEntry]:
        """Lease due pending entries to ``worker_id``; no entry goes to two workers."""
        now = as_utc(now, "now") if now is not None else self.now()
        lease_until = now + dt.timedelta(seconds=lease_seconds)
        with self._tx() as conn:
            ids = list(
                conn.execute(
                    select(outbox.c.id)
                    .where(
                        outbox.c.state == OUTBOX_PENDING,
                        outbox.c.next_attempt_at <= now,
                        or_(outbox.c.lease_until.is_(None), outbox.c.lease_until <= now),
                    )
                    .order_by(outbox.c.next_attempt_at, outbox.c.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)  # ignored on SQLite (BEGIN IMMEDIATE)
                ).scalars()
            )
            if not ids:
                return []
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(ids))
                .values(leased_by=worker_id, lease_until=lease_until)
            )
            rows = conn.execute(
                select(outbox).where(outbox.c.id.in_(ids)).order_by(outbox.c.next_attempt_at, outbox.c.id)
            ).all()
        return [self._entry(r) for r in rows]

    def _outbox_update(self, conn: Connection, entry_id: int, worker_id: str, **values: Any) -> Any:
        """End the attempt of ``worker_id`` on an entry; the updated row, or None.

        Only the current lease holder may do this: ``leased_by`` must still be
        ``worker_id``. When the lease expired and another worker claimed the
        entry, ``claim_outbox`` wrote that worker's id, so the late result of
        the first worker changes nothing (None). The check is in the UPDATE
        itself, so it holds under concurrency (PostgreSQL re-checks the
        condition after waiting for the row lock; SQLite writes one at a time).
        An expired lease that nobody took over still counts: its result is
        true, and dropping it would only cause a second delivery.
        """
        result = conn.execute(
            update(outbox)
            .where(outbox.c.id == entry_id, outbox.c.leased_by == worker_id)
            .values(attempts=outbox.c.attempts + 1, leased_by=None, lease_until=None, **values)
        )
        if result.rowcount != 1:
            if conn.execute(select(outbox.c.id).where(outbox.c.id == entry_id)).first() is None:
                raise OutboxEntryNotFound(entry_id)
            return None
        return conn.execute(select(outbox).where(outbox.c.id == entry_id)).first()

    def mark_delivered(
        self,
        entry_id: int,
        worker_id: str,
        remote_url: Optional[str],
        remote_identificatie: Optional[str],
    ) -> bool:
        """Delivered: state "delivered", and the remote reference is stored on the case.

        Only while ``worker_id`` holds the lease; returns False (nothing
        changed) when it lost the lease to another worker.
        """
        with self._tx() as conn:
            row = self._outbox_update(conn, entry_id, worker_id, state=OUTBOX_DELIVERED, last_error=None)
            if row is None:
                return False
            self._set_remote(conn, row.zaaknummer, remote_url, remote_identificatie)
        return True

    def mark_retry(self, entry_id: int, worker_id: str, error: str, next_attempt_at: dt.datetime) -> bool:
        """A failed attempt: attempts += 1, lease released, try again at next_attempt_at.

        Only while ``worker_id`` holds the lease; returns False otherwise.
        """
        with self._tx() as conn:
            row = self._outbox_update(
                conn,
                entry_id,
                worker_id,
                state=OUTBOX_PENDING,
                last_error=error,
                next_attempt_at=as_utc(next_attempt_at, "next_attempt_at"),
            )
        return row is not None

    def park(self, entry_id: int, worker_id: str, error: str) -> bool:
        """A final failed attempt: state "parked" (attempts += 1), for staff to look at.

        Only while ``worker_id`` holds the lease; returns False otherwise.
        """
        with self._tx() as conn:
            row = self._outbox_update(conn, entry_id, worker_id, state=OUTBOX_PARKED, last_error=error)
        return row is not None

    def release_outbox(self, entry_id: int, worker_id: str) -> bool:
        """Give back an entry ``worker_id`` claimed but did not start (attempts unchanged).

        Only while ``worker_id`` holds the lease; returns False otherwise.
        """
        with self._tx() as conn:
            result = conn.execute(
                update(outbox)
                .where(
                    outbox.c.id == entry_id,
                    outbox.c.leased_by == worker_id,
                    outbox.c.state == OUTBOX_PENDING,
                )
                .values(leased_by=None, lease_until=None)
            )
        return result.rowcount == 1

    def requeue(self, entry_id: int) -> None:
        """Staff action: a parked (or pending) entry is tried again right away."""
        with self._tx() as conn:
            result = conn.execute(
                update(outbox)
                .where(outbox.c.id == entry_id, outbox.c.state != OUTBOX_DELIVERED)
                .values(state=OUTBOX_PENDING, next_attempt_at=self.now(), leased_by=None, lease_until=None)
            )
            if result.rowcount != 1:
                raise OutboxEntryNotFound(entry_id)

    def outbox_entries(
        self, state: Optional[str] = None, zaaknummer: Optional[str] = None
    ) -> List[OutboxEntry]:
        if state is not None and state not in OUTBOX_STATES:
            raise ValueError(f"unknown outbox state {state!r}")
        stmt = select(outbox).order_by(outbox.c.id)
        if state is not None:
            stmt = stmt.where(outbox.c.state == state)
        if zaaknummer is not None:
            stmt = stmt.where(outbox.c.zaaknummer == normalise_zaaknummer(zaaknummer))
        with self._read() as conn:
            return [self._entry(r) for r in conn.execute(stmt)]
