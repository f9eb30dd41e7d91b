"""Tables and value objects of the embedded case system ("zaaksysteem").

The table definitions here are the target of the Alembic migrations in
``bot/cases/migrations``; ``tests/test_case_store.py`` checks that both agree.

All datetimes in the API are timezone-aware UTC. The database stores naive UTC
(``UTCDateTime``) so SQLite and PostgreSQL behave the same.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

#: Wall-clock time zone of Dutch municipalities: slot times and the year in a
#: zaaknummer are local; everything stored is UTC.
LOCAL_TZ = ZoneInfo("Europe/Amsterdam")

STATUS_ONTVANGEN = "ontvangen"
OUTBOX_PENDING = "pending"
OUTBOX_DELIVERED = "delivered"
OUTBOX_PARKED = "parked"
OUTBOX_STATES = (OUTBOX_PENDING, OUTBOX_DELIVERED, OUTBOX_PARKED)


def as_utc(value: dt.datetime, name: str = "datetime") -> dt.datetime:
    """Aware datetime -> aware UTC. Naive datetimes are refused: they are ambiguous."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (got naive {value!r})")
    return value.astimezone(dt.timezone.utc)


class UTCDateTime(TypeDecorator):
    """Aware UTC in Python, naive UTC in the database (same on every dialect)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return as_utc(value).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.timezone.utc)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

zaak = Table(
    "zaak",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("zaaknummer", String(32), nullable=False),
    Column("zaaktype", String(64), nullable=False),
    Column("status", String(64), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("backend", String(32), nullable=False),
    Column("data", JSON, nullable=False),
    Column("contact", JSON, nullable=False),
    Column("bsn", String(9), nullable=True),
    Column("idempotency_key", String(255), nullable=False),
    Column("remote_url", Text, nullable=True),
    Column("remote_identificatie", String(255), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("zaaknummer"),
    UniqueConstraint("idempotency_key"),
    Index("ix_zaak_zaaktype_created_at", "zaaktype", "created_at"),
)

zaak_status = Table(
    "zaak_status",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("zaak_id", Integer, ForeignKey("zaak.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(64), nullable=False),
    Column("toelichting", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_zaak_status_zaak_id", "zaak_id"),
)

zaaknummer_sequence = Table(
    "zaaknummer_sequence",
    metadata,
    Column("prefix", String(16), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("last_value", Integer, nullable=False),
)

slot = Table(
    "slot",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("start", UTCDateTime, nullable=False),
    Column("duration_minutes", Integer, nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("booked", Integer, nullable=False),
    UniqueConstraint("kind", "start"),
)

booking = Table(
    "booking",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(6), nullable=False),
    Column("slot_id", Integer, ForeignKey("slot.id"), nullable=False),
    Column("idempotency_key", String(255), nullable=False),
    Column("zaaknummer", String(32), ForeignKey("zaak.zaaknummer"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("cancelled_at", UTCDateTime, nullable=True),
    UniqueConstraint("code"),
    UniqueConstraint("idempotency_key"),
    Index("ix_booking_zaaknummer", "zaaknummer"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("zaaknummer", String(32), ForeignKey("zaak.zaaknummer"), nullable=False),
    Column("backend", String(32), nullable=False),
    Column("reference", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("leased_by", String(128), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("backend", "reference"),
    Index("ix_outbox_state_next_attempt_at", "state", "next_attempt_at"),
)


def _iso(value: Optional[dt.datetime]) -> Optional[str]:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class Case:
    """One filed case (zaak). Citizens call it an "aanvraag" or "melding"."""

    zaaknummer: str
    zaaktype: str
    status: str
    status_history: List[Tuple[str, dt.datetime, Optional[str]]]
    channel: str
    data: Dict[str, Any]
    contact: Dict[str, Any]
    bsn: Optional[str]
    created_at: dt.datetime
    updated_at: dt.datetime
    remote_url: Optional[str]
    remote_identificatie: Optional[str]
    booking_code: Optional[str]
    idempotency_key: str
    backend: str = "embedded"

    def as_dict(self, include_bsn: bool = False) -> Dict[str, Any]:
        """JSON-friendly representation (ISO 8601 datetimes). BSN only on request."""
        result: Dict[str, Any] = {
            "zaaknummer": self.zaaknummer,
            "zaaktype": self.zaaktype,
            "status": self.status,
            "channel": self.channel,
            "backend": self.backend,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "data": self.data,
            "contact": self.contact,
            "remote_url": self.remote_url,
            "remote_identificatie": self.remote_identificatie,
            "booking_code": self.booking_code,
            "status_history": [
                {"status": s, "at": _iso(at), "toelichting": t} for s, at, t in self.status_history
            ],
        }
        if include_bsn:
            result["bsn"] = self.bsn
        return result


@dataclass(frozen=True)
class Slot:
    """A bookable time slot (wedding ceremony, counter appointment)."""

    id: int
    kind: str
    start: dt.datetime  # aware UTC
    capacity: int
    booked: int
    duration_minutes: int = 30

    @property
    def local_start(self) -> dt.datetime:
        """Start in Dutch local time, for showing to citizens."""
        return self.start.astimezone(LOCAL_TZ)

    @property
    def end(self) -> dt.datetime:
        return self.start + dt.timedelta(minutes=self.duration_minutes)

    @property
    def free(self) -> int:
        return max(self.capacity - self.booked, 0)


@dataclass(frozen=True)
class Booking:
    code: str
    slot: Slot
    zaaknummer: Optional[str]
    idempotency_key: str = ""
    created_at: Optional[dt.datetime] = None
    cancelled_at: Optional[dt.datetime] = None

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    zaaknummer: str
    backend: str
    state: str
    attempts: int
    last_error: Optional[str]
    next_attempt_at: dt.datetime
    leased_by: Optional[str]
    lease_until: Optional[dt.datetime]
    created_at: dt.datetime
    reference: str = field(default="")


# Tables of other features that live in the case store database (migration
# 0002_staff_and_kcc). Imported last: those modules add tables to `metadata`.
from bot.staff import models as _staff_models  # noqa: E402,F401
from bot.kcc import models as _kcc_models  # noqa: E402,F401
