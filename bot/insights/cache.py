"""The insights cache: per-conversation facts derived from the tracker store.

Why a cache: the tracker store's ``events`` table holds ~50–150 rows per
conversation (most of them slot events), and Rasa indexes it only on
``sender_id``. Reading 100,000 conversations from it on every page view would
take far longer than the 2 s target. So :mod:`bot.insights.extract` folds the
events, once and incrementally (``events.id`` above a watermark), into one row
per conversation, one per flow run and one per unrecognised message. The page
reads these small tables.

This is not a second logging path: nothing here is written by the dialogue,
only derived from the tracker store, and the whole cache can be deleted at any
moment; it is rebuilt from the events on the next refresh. Only the editors'
assignments (``insights_assignment``) are kept over a rebuild.

Location: ``INSIGHTS_DB_URL``, default SQLite ``<BOT_VAR_DIR>/insights.db``.
Texts stored here are masked (:func:`bot.insights.extract.mask_message`).
"""
from __future__ import annotations

import os
from typing import Optional

from sqlalchemy import (Column, Float, Index, Integer, MetaData, String, Table, Text, UniqueConstraint,
                        select)
from sqlalchemy.engine import Engine

from bot import config

#: Bump when the extraction logic changes: the cache is then rebuilt.
LOGIC_VERSION = "4"

metadata = MetaData()

state = Table(
    "insights_state", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=True),
)

conversation = Table(
    "insights_conversation", metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(300), nullable=False),          # <sender>#<first event id>
    Column("sender_id", String(255), nullable=False),
    Column("started_at", Float, nullable=False),         # unix time of the session start
    Column("last_at", Float, nullable=False),
    Column("week", String(8), nullable=False),           # ISO week, "2026-W14"
    Column("channel", String(32), nullable=True),
    Column("user_messages", Integer, nullable=False),
    Column("fallbacks", Integer, nullable=False),
    Column("answers", Integer, nullable=False),
    Column("handoffs", Integer, nullable=False),
    Column("runs_started", Integer, nullable=False),
    Column("runs_completed", Integer, nullable=False),
    Column("satisfaction_topic", String(64), nullable=True),
    Column("satisfaction", Integer, nullable=True),      # 1 = 👍, -1 = 👎
    Column("state", Text, nullable=True),                # JSON while the sender may continue
    UniqueConstraint("key", name="uq_insights_conversation_key"),
    Index("ix_insights_conversation_started_at", "started_at"),
    Index("ix_insights_conversation_sender_id", "sender_id"),
)

flow_run = Table(
    "insights_flow_run", metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(300), nullable=False),          # <sender>:<flow_run_id> = the case's idempotency key
    Column("conversation_key", String(300), nullable=False),
    Column("flow", String(64), nullable=True),
    Column("started_at", Float, nullable=False),
    Column("last_at", Float, nullable=False),
    Column("outcome", String(16), nullable=False),       # afgerond | gestopt | afgebroken | open
    Column("last_step", String(64), nullable=True),
    Column("steps", Text, nullable=False),               # reached steps, comma separated, in order
    Column("handoff", Integer, nullable=False),          # 1 = a handoff happened during the run
    UniqueConstraint("key", name="uq_insights_flow_run_key"),
    Index("ix_insights_flow_run_started_at", "started_at"),
)

unrecognised = Table(
    "insights_unrecognised", metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", Integer, nullable=False),         # events.id of the user message
    Column("conversation_key", String(300), nullable=False),
    Column("at", Float, nullable=False),
    Column("channel", String(32), nullable=True),
    Column("kind", String(32), nullable=False),
    Column("text", Text, nullable=False),                # masked
    Column("normalised", Text, nullable=False),
    Column("guess", String(64), nullable=True),          # best intent below the threshold
    Column("guess_confidence", Float, nullable=True),
    UniqueConstraint("event_id", name="uq_insights_unrecognised_event_id"),
    Index("ix_insights_unrecognised_at", "at"),
)

# Editors' decisions; survives a rebuild of the derived tables.
assignment = Table(
    "insights_assignment", metadata,
    Column("id", Integer, primary_key=True),
    Column("normalised", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("intent", String(64), nullable=False),
    Column("username", String(64), nullable=False),
    Column("at", Float, nullable=False),
)

DERIVED = (conversation, flow_run, unrecognised)


def cache_db_url() -> str:
    url = os.environ.get("INSIGHTS_DB_URL")
    if url:
        return url
    config.VAR_DIR.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{config.VAR_DIR / 'insights.db'}"


def open_cache(url: Optional[str] = None) -> Engine:
    """Engine of the cache with its tables created (SQLite in WAL mode or PostgreSQL)."""
    from bot.cases.store import make_engine

    engine = make_engine(url or cache_db_url())
    state.create(engine, checkfirst=True)
    with engine.begin() as conn:
        version = get_state(conn, "version")
    if version is not None and version != LOGIC_VERSION:
        # Another layout or logic: the derived tables are rebuilt from the events.
        metadata.drop_all(engine, tables=list(DERIVED))
        with engine.begin() as conn:
            conn.execute(state.delete())
    metadata.create_all(engine)
    return engine


def get_state(conn, key: str) -> Optional[str]:
    return conn.execute(select(state.c.value).where(state.c.key == key)).scalar()


def set_state(conn, key: str, value: Optional[str]) -> None:
    updated = conn.execute(state.update().where(state.c.key == key).values(value=value)).rowcount
    if not updated:
        conn.execute(state.insert().values(key=key, value=value))


def clear_derived(conn) -> None:
    """Empty the derived tables and the watermark (assignments stay)."""
    for table in DERIVED:
        conn.execute(table.delete())
    conn.execute(state.delete().where(state.c.key != "lock"))
