"""The KCC queue table (case store database): conversations waiting for or
talking with an employee.

``open_key`` is the sender id while the entry is open (waiting/active) and NULL
afterwards; its unique constraint guarantees one open entry per conversation
on SQLite and PostgreSQL alike (NULLs never collide).
"""
from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, UniqueConstraint

from bot.cases.models import UTCDateTime, metadata

STATE_WAITING = "waiting"      # in the queue, nobody accepted yet
STATE_ACTIVE = "active"        # an employee is chatting
STATE_CLOSED = "closed"        # employee handed back to the assistant
STATE_CALLBACK = "callback"    # citizen chose a call-back request instead
STATE_CANCELLED = "cancelled"  # citizen stopped waiting
STATE_EXPIRED = "expired"      # citizen left (window closed) and did not come back in time
OPEN_STATES = (STATE_WAITING, STATE_ACTIVE)

kcc_queue = Table(
    "kcc_queue",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sender_id", String(255), nullable=False),
    Column("open_key", String(255), nullable=True),
    Column("state", String(16), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("input_channel", String(64), nullable=True),
    Column("topic", String(255), nullable=True),
    Column("employee", String(64), nullable=True),
    Column("close_reason", String(32), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("accepted_at", UTCDateTime, nullable=True),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("citizen_left_at", UTCDateTime, nullable=True),
    Column("offer_at", UTCDateTime, nullable=True),  # when to offer a call-back if still waiting
    Column("callback_offered_at", UTCDateTime, nullable=True),
    UniqueConstraint("open_key"),
    Index("ix_kcc_queue_state_created_at", "state", "created_at"),
    Index("ix_kcc_queue_sender_id", "sender_id"),
)
