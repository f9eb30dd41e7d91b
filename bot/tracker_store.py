"""Rasa's SQL tracker store with its profiled costs removed (docs/benchmarks.md).

Same ``events`` table, same rows, same answers as ``rasa.core.tracker_store.
SQLTrackerStore``: the privacy command line, the insights page and Rasa's own
store read what this one writes, and the other way round. What changes is how
the rows are read and written, because Rasa runs these calls inside its event
loop and every millisecond here delays every other conversation:

* **No ORM on the hot path.** Rasa rebuilds its query with the ORM and turns
  every row into an ORM object, on every turn, twice (read, then count before
  writing). Here the statements are built once with SQLAlchemy Core and only
  ``id`` and ``data`` are fetched; new events go in with one multi-row insert.
  Under load the ORM work was a quarter of the Rasa server's CPU time.
* **SQLite (embedded profile):** Rasa opens a new connection for every read
  and write and SQLite's default journal syncs the disk several times per
  commit. Here a small pool of connections uses the WAL journal with
  ``synchronous = NORMAL``: a commit no longer waits for the disk. After a
  power cut the last turns may be lost, never the database.
* **PostgreSQL with POSTGRESQL_SCHEMA:** Rasa checks that the schema exists
  before every read and write; here once, at start.

``endpoints.yml`` (embedded) uses this store; ``bot.privacy.store.
MaskingSQLTrackerStore`` (production) builds on it.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Dict, Iterable, List, Optional, Sequence, Text, Tuple

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import Event, SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 5000
SQLITE_POOL_SIZE = 4


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


class _Statements:
    """The read, count and insert statements of one events table, built once."""

    def __init__(self, table: sa.Table) -> None:
        sender = sa.bindparam("sender_id")
        session_start = (sa.select(sa.func.max(table.c.timestamp))
                         .where(table.c.sender_id == sender, table.c.type_name == SessionStarted.type_name)
                         .scalar_subquery())
        # Rasa's rule: the events from the latest session start on, or all when there is none.
        latest = sa.and_(table.c.sender_id == sender,
                         sa.or_(table.c.timestamp >= session_start, session_start.is_(None)))
        self.latest_session = sa.select(table.c.id, table.c.data).where(latest).order_by(table.c.id)
        self.all_sessions = (sa.select(table.c.id, table.c.data).where(table.c.sender_id == sender)
                             .order_by(table.c.id))
        self.count_latest = sa.select(sa.func.count()).select_from(table).where(latest)
        self.insert = table.insert()


class FastSQLTrackerStore(SQLTrackerStore):
    """Rasa's SQL tracker store, same table and rows, faster reads and writes (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        url = self.engine.url
        if self.engine.dialect.name == "sqlite" and url.database not in (None, "", ":memory:"):
            engine = sa.create_engine(url, poolclass=sa.pool.QueuePool, pool_size=SQLITE_POOL_SIZE,
                                      max_overflow=SQLITE_POOL_SIZE, connect_args={"check_same_thread": False})
            sa.event.listen(engine, "connect", _sqlite_pragmas)
            self.engine.dispose()
            self.engine = engine
            self.sessionmaker = sa.orm.session.sessionmaker(bind=engine)
        # Rasa checks the PostgreSQL schema before every read and write; once is enough.
        with self.session_scope():
            pass
        self._statements = _Statements(self.SQLEvent.__table__)

    # -- the primitives the stores here build on ------------------------------
    def event_rows(self, conn: Any, sender_id: Text, all_sessions: bool = False) -> List[Tuple[int, str]]:
        """(id, data) of the conversation's stored events, in order."""
        statement = self._statements.all_sessions if all_sessions else self._statements.latest_session
        return [(row[0], row[1]) for row in conn.execute(statement, {"sender_id": sender_id})]

    def stored_count(self, conn: Any, sender_id: Text) -> int:
        """How many events of the latest session are stored (Rasa's rule for what is new)."""
        return int(conn.execute(self._statements.count_latest, {"sender_id": sender_id}).scalar() or 0)

    def insert_events(self, conn: Any, sender_id: Text, events: Sequence[Event],
                      dicts: Sequence[Dict[str, Any]]) -> None:
        """Insert events as rows the way Rasa does (dicts: what to store for each event)."""
        rows = []
        for event, data in zip(events, dicts):
            intent = ((data.get("parse_data") or {}).get("intent") or {}).get("name")
            rows.append({"sender_id": sender_id, "type_name": event.type_name, "timestamp": data.get("timestamp"),
                         "intent_name": intent, "action_name": data.get("name"), "data": json.dumps(data)})
        if rows:
            conn.execute(self._statements.insert, rows)

    def _tracker(self, sender_id: Text, events: Iterable[Dict[str, Any]]) -> Optional[DialogueStateTracker]:
        events = list(events)
        if self.domain and events:
            return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        return None

    # -- what the stores here may change: how one event is stored and read ----
    def event_from_row(self, data: str) -> Dict[str, Any]:
        """The event dict of one stored ``data`` value."""
        return json.loads(data)

    def write_new_events(self, conn: Any, sender_id: Text, events: Sequence[Event], stored: int) -> None:
        """Store ``events[stored:]`` (``events``: the whole tracker, ``stored``: already in the table)."""
        new = events[stored:]
        self.insert_events(conn, sender_id, new, [event.as_dict() for event in new])

    # -- Rasa's interface ------------------------------------------------------
    async def _retrieve(self, sender_id: Text,
                        fetch_events_from_all_sessions: bool) -> Optional[DialogueStateTracker]:
        with self.engine.connect() as conn:
            rows = self.event_rows(conn, sender_id, fetch_events_from_all_sessions)
        return self._tracker(sender_id, (self.event_from_row(data) for _, data in rows))

    async def save(self, tracker: DialogueStateTracker) -> None:
        await self.stream_events(tracker)
        with self.engine.begin() as conn:
            stored = self.stored_count(conn, tracker.sender_id)
            events = list(tracker.events)
            if stored < len(events):
                self.write_new_events(conn, tracker.sender_id, events, stored)
