"""Tables of staff accounts and their login sessions (case store database).

Registered on the case store's ``metadata`` so the Alembic migrations and the
schema comparison in ``tests/test_case_store.py`` see them.
"""
from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from bot.cases.models import UTCDateTime, metadata

ROLES = ("kcc", "redactie", "manager")

staff_user = Table(
    "staff_user",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(64), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("failed_logins", Integer, nullable=False),
    Column("locked_until", UTCDateTime, nullable=True),
    Column("disabled_at", UTCDateTime, nullable=True),
    Column("last_login_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("username"),
)

# Server-side sessions: the cookie holds a random token, the table only its
# SHA-256, so a leaked database does not hand out sessions. Logout deletes the row.
staff_session = Table(
    "staff_session",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False),
    Column("username", String(64), ForeignKey("staff_user.username", ondelete="CASCADE"),
           nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    UniqueConstraint("token_hash"),
    Index("ix_staff_session_username", "username"),
)
