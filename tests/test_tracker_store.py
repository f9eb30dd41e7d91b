"""bot/tracker_store.py: the same table, rows and trackers as Rasa's SQL tracker store.

Rasa's own store is the reference: what one writes, the other reads back the
same, on SQLite (embedded profile) and on PostgreSQL (production profile).
"""
from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def domain():
    from rasa.shared.core.domain import Domain

    return Domain.load(str(ROOT / "domain.yml"))


def _events(turn: int, session_start: bool = False):
    from rasa.shared.core.events import (ActionExecuted, ActiveLoop, BotUttered, SessionStarted, SlotSet,
                                         UserUttered)

    out = []
    if session_start:
        out += [ActionExecuted("action_session_start", timestamp=(turn + 1) * 10.0),
                SessionStarted(timestamp=(turn + 1) * 10.0 + 0.1),
                ActionExecuted("action_listen", timestamp=(turn + 1) * 10.0 + 0.2)]
    out += [
        UserUttered(f"bericht {turn}", {"name": "melding_openbare_ruimte", "confidence": 0.9},
                    timestamp=(turn + 1) * 10.0 + 1),
        ActionExecuted("melding_form", timestamp=(turn + 1) * 10.0 + 2),
        ActiveLoop("melding_form", timestamp=(turn + 1) * 10.0 + 3),
        SlotSet("requested_slot", "melding_locatie", timestamp=(turn + 1) * 10.0 + 4),
        BotUttered(f"Waar is het probleem? ({turn})", timestamp=(turn + 1) * 10.0 + 5),
        ActionExecuted("action_listen", timestamp=(turn + 1) * 10.0 + 6),
    ]
    return out


def _tracker(sender, domain, events):
    from rasa.shared.core.trackers import DialogueStateTracker

    return DialogueStateTracker.from_events(sender, events, domain.slots)


def _dicts(tracker):
    return [e.as_dict() for e in tracker.events] if tracker else None


def _rows(engine, sender):
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT sender_id, type_name, timestamp, intent_name, action_name, data FROM events "
            "WHERE sender_id = :s ORDER BY id"), {"s": sender})]


def _compare_with_rasa(fast, rasa, domain):
    """Write turn by turn with one store, read with both; then the other way round."""
    for writer, reader in ((fast, rasa), (rasa, fast)):
        sender = f"t-{uuid.uuid4().hex}"
        events = []
        for turn in range(4):
            # As Rasa does per message: read the latest session, add the turn's events, save.
            new = _events(turn, session_start=turn in (0, 2))
            events += new
            tracker = asyncio.run(writer.retrieve(sender)) or _tracker(sender, domain, [])
            for event in new:
                tracker.update(event)
            asyncio.run(writer.save(tracker))
            if turn not in (0, 2):
                # Saving the same tracker twice adds nothing. (Not after a new session
                # started in it: there Rasa's rule counts only the new session's rows
                # and writes the rest again; the same in both stores.)
                asyncio.run(writer.save(tracker))
        latest_fast = asyncio.run(fast.retrieve(sender))
        latest_rasa = asyncio.run(rasa.retrieve(sender))
        assert _dicts(latest_fast) == _dicts(latest_rasa)
        # Only the latest session is read back: from its SessionStarted event on
        # (the action_session_start just before it is not part of it).
        assert [e["event"] for e in _dicts(latest_fast)][:2] == ["session_started", "action"]
        assert len(latest_fast.events) == len(_events(2, True)) - 1 + len(_events(3))
        full_fast = asyncio.run(fast.retrieve_full_tracker(sender))
        full_rasa = asyncio.run(rasa.retrieve_full_tracker(sender))
        assert _dicts(full_fast) == _dicts(full_rasa) == [e.as_dict() for e in events]
        assert asyncio.run(reader.retrieve(f"nobody-{uuid.uuid4().hex}")) is None
    return sender


def test_same_rows_and_trackers_as_rasa_on_sqlite(tmp_path, domain):
    from rasa.core.tracker_store import SQLTrackerStore

    from bot.tracker_store import FastSQLTrackerStore

    db = str(tmp_path / "tracker.db")
    fast = FastSQLTrackerStore(domain=domain, dialect="sqlite", db=db)
    rasa = SQLTrackerStore(domain=domain, dialect="sqlite", db=db)
    _compare_with_rasa(fast, rasa, domain)

    # The same rows as Rasa writes, column by column.
    sender_fast, sender_rasa = "same-fast", "same-rasa"
    events = _events(0, True) + _events(1)
    asyncio.run(fast.save(_tracker(sender_fast, domain, events)))
    asyncio.run(rasa.save(_tracker(sender_rasa, domain, events)))
    strip = lambda rows: [r[1:] for r in rows]  # noqa: E731
    assert strip(_rows(fast.engine, sender_fast)) == strip(_rows(rasa.engine, sender_rasa))
    assert [r[3] for r in _rows(fast.engine, sender_fast) if r[1] == "user"] == ["melding_openbare_ruimte"] * 2


def test_sqlite_uses_a_pool_and_the_wal_journal(tmp_path, domain):
    from sqlalchemy.pool import QueuePool

    from bot.tracker_store import FastSQLTrackerStore

    store = FastSQLTrackerStore(domain=domain, dialect="sqlite", db=str(tmp_path / "t.db"))
    assert isinstance(store.engine.pool, QueuePool)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    # Conversations saved from another thread (the insights page reads from one) work with the pool.
    import threading

    sender = "thread-user"
    thread = threading.Thread(target=lambda: asyncio.run(store.save(_tracker(sender, domain, _events(0, True)))))
    thread.start()
    thread.join()
    assert len(asyncio.run(store.retrieve_full_tracker(sender)).events) == len(_events(0, True))


def test_same_trackers_as_rasa_on_postgresql(pg_schema, domain):
    from rasa.core.tracker_store import SQLTrackerStore

    from bot.tracker_store import FastSQLTrackerStore

    base, _, _ = pg_schema
    kwargs = dict(domain=domain, dialect="postgresql", host=base.host, port=base.port,
                  db=base.database, username=base.username, password=base.password or "")
    fast = FastSQLTrackerStore(**kwargs)
    rasa = SQLTrackerStore(**kwargs)
    try:
        sender = _compare_with_rasa(fast, rasa, domain)
        assert _rows(fast.engine, sender)  # the rows are in the schema POSTGRESQL_SCHEMA names
    finally:
        fast.engine.dispose()
        rasa.engine.dispose()
