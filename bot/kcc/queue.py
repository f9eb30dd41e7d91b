"""The KCC queue in the case store database, shared by the action server (which
puts conversations in it) and every Rasa process (which serves the console).

One open entry per conversation (unique ``open_key``). Every state change is a
conditional ``UPDATE ... WHERE state IN (...)``, so two employees clicking
"accept" at once, or two Rasa processes expiring the same entry, get exactly
one winner on SQLite and PostgreSQL alike.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.kcc.models import (
    OPEN_STATES,
    STATE_ACTIVE,
    STATE_CALLBACK,
    STATE_CANCELLED,
    STATE_CLOSED,
    STATE_EXPIRED,
    STATE_WAITING,
    kcc_queue,
)

CLOSED_STATES = (STATE_CLOSED, STATE_CALLBACK, STATE_CANCELLED, STATE_EXPIRED)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass(frozen=True)
class QueueEntry:
    id: int
    sender_id: str
    state: str
    channel: str
    input_channel: Optional[str]
    topic: Optional[str]
    employee: Optional[str]
    close_reason: Optional[str]
    created_at: dt.datetime
    accepted_at: Optional[dt.datetime]
    closed_at: Optional[dt.datetime]
    citizen_left_at: Optional[dt.datetime]
    offer_at: Optional[dt.datetime]
    callback_offered_at: Optional[dt.datetime]

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def waiting_seconds(self, now: dt.datetime) -> int:
        end = self.accepted_at or self.closed_at or now
        return max(int((end - self.created_at).total_seconds()), 0)

    def as_dict(self, now: Optional[dt.datetime] = None) -> dict:
        now = now or _utcnow()
        iso = lambda v: v.isoformat() if v else None  # noqa: E731
        return {
            "id": self.id, "sender_id": self.sender_id, "state": self.state,
            "channel": self.channel, "topic": self.topic, "employee": self.employee,
            "close_reason": self.close_reason, "created_at": iso(self.created_at),
            "accepted_at": iso(self.accepted_at), "closed_at": iso(self.closed_at),
            "citizen_left": self.citizen_left_at is not None,
            "callback_offered": self.callback_offered_at is not None,
            "waiting_seconds": self.waiting_seconds(now),
        }


def _entry(row: Any) -> QueueEntry:
    return QueueEntry(
        id=row.id, sender_id=row.sender_id, state=row.state, channel=row.channel,
        input_channel=row.input_channel, topic=row.topic, employee=row.employee,
        close_reason=row.close_reason, created_at=row.created_at, accepted_at=row.accepted_at,
        closed_at=row.closed_at, citizen_left_at=row.citizen_left_at, offer_at=row.offer_at,
        callback_offered_at=row.callback_offered_at,
    )


class KccQueue:
    """Queue operations. ``url``: case store URL (default ``CASES_DB_URL``)."""

    def __init__(self, url: Optional[str] = None, *,
                 clock: Optional[Callable[[], dt.datetime]] = None) -> None:
        from bot.staff.auth import store

        self._store = store(url)
        self._clock = clock or _utcnow

    def now(self) -> dt.datetime:
        return self._clock().astimezone(dt.timezone.utc)

    def _tx(self):
        return self._store._write_engine.begin()

    def _read(self):
        return self._store.engine.connect()

    def _one(self, condition) -> Optional[QueueEntry]:
        with self._read() as conn:
            row = conn.execute(select(kcc_queue).where(condition)
                               .order_by(kcc_queue.c.id.desc()).limit(1)).first()
        return _entry(row) if row else None

    # -- reading -------------------------------------------------------------

    def get(self, entry_id: int) -> Optional[QueueEntry]:
        return self._one(kcc_queue.c.id == int(entry_id))

    def open_entry(self, sender_id: str) -> Optional[QueueEntry]:
        """The waiting or active entry of a conversation."""
        return self._one(kcc_queue.c.open_key == sender_id)

    def latest(self, sender_id: str) -> Optional[QueueEntry]:
        return self._one(kcc_queue.c.sender_id == sender_id)

    def position(self, entry: QueueEntry) -> int:
        """1 = next in line. 0 when the entry is not waiting."""
        if entry.state != STATE_WAITING:
            return 0
        with self._read() as conn:
            ahead = conn.execute(
                select(func.count()).select_from(kcc_queue)
                .where(kcc_queue.c.state == STATE_WAITING, kcc_queue.c.id < entry.id)
            ).scalar_one()
        return int(ahead) + 1

    def list(self, states: Sequence[str] = OPEN_STATES, limit: int = 200) -> List[QueueEntry]:
        with self._read() as conn:
            rows = conn.execute(select(kcc_queue).where(kcc_queue.c.state.in_(list(states)))
                                .order_by(kcc_queue.c.id).limit(limit)).all()
        return [_entry(r) for r in rows]

    def recently_closed(self, limit: int = 20) -> List[QueueEntry]:
        with self._read() as conn:
            rows = conn.execute(select(kcc_queue).where(kcc_queue.c.state.in_(CLOSED_STATES))
                                .order_by(kcc_queue.c.id.desc()).limit(limit)).all()
        return [_entry(r) for r in rows]

    # -- writing -------------------------------------------------------------

    def enqueue(self, sender_id: str, *, channel: str, input_channel: Optional[str],
                topic: Optional[str], wait_seconds: int = 180) -> Tuple[QueueEntry, bool]:
        """(entry, created). A conversation that is already open keeps its place."""
        existing = self.open_entry(sender_id)
        if existing is not None:
            return existing, False
        now = self.now()
        created = True
        try:
            with self._tx() as conn:
                conn.execute(insert(kcc_queue).values(
                    sender_id=sender_id, open_key=sender_id, state=STATE_WAITING,
                    channel=(channel or "website")[:32], input_channel=(input_channel or None),
                    topic=(topic or None) and topic[:255], employee=None, close_reason=None,
                    created_at=now, accepted_at=None, closed_at=None, citizen_left_at=None,
                    offer_at=now + dt.timedelta(seconds=wait_seconds), callback_offered_at=None,
                ))
        except IntegrityError:
            created = False  # a concurrent enqueue of the same conversation won
        entry = self.open_entry(sender_id)
        assert entry is not None
        return entry, created

    def _transition(self, entry_id: int, from_states: Sequence[str], **values: Any) -> Optional[QueueEntry]:
        with self._tx() as conn:
            done = conn.execute(
                update(kcc_queue)
                .where(kcc_queue.c.id == int(entry_id), kcc_queue.c.state.in_(list(from_states)))
                .values(**values)
            ).rowcount
        return self.get(entry_id) if done == 1 else None

    def accept(self, entry_id: int, employee: str) -> Optional[QueueEntry]:
        """The employee takes a waiting conversation. None when someone else was first."""
        return self._transition(entry_id, (STATE_WAITING,), state=STATE_ACTIVE,
                                employee=employee, accepted_at=self.now())

    def close(self, entry_id: int, state: str = STATE_CLOSED,
              reason: Optional[str] = None, *, employee: Optional[str] = None) -> Optional[QueueEntry]:
        """Close an open entry (None when it was no longer open, or belongs to another employee)."""
        if state not in CLOSED_STATES:
            raise ValueError(f"not a closed state: {state}")
        conditions = [kcc_queue.c.id == int(entry_id), kcc_queue.c.state.in_(list(OPEN_STATES))]
        if employee is not None:
            conditions.append(or_(kcc_queue.c.employee == employee, kcc_queue.c.employee.is_(None)))
        with self._tx() as conn:
            done = conn.execute(update(kcc_queue).where(and_(*conditions)).values(
                state=state, open_key=None, close_reason=reason, closed_at=self.now())).rowcount
        return self.get(entry_id) if done == 1 else None

    def close_open(self, sender_id: str, state: str, reason: Optional[str] = None) -> Optional[QueueEntry]:
        entry = self.open_entry(sender_id)
        return self.close(entry.id, state, reason) if entry else None

    def citizen_left(self, sender_id: str) -> bool:
        with self._tx() as conn:
            return conn.execute(update(kcc_queue).where(
                kcc_queue.c.open_key == sender_id, kcc_queue.c.citizen_left_at.is_(None)
            ).values(citizen_left_at=self.now())).rowcount == 1

    def citizen_back(self, sender_id: str) -> bool:
        with self._tx() as conn:
            return conn.execute(update(kcc_queue).where(
                kcc_queue.c.open_key == sender_id, kcc_queue.c.citizen_left_at.is_not(None)
            ).values(citizen_left_at=None)).rowcount == 1

    def mark_callback_offered(self, entry_id: int) -> Optional[QueueEntry]:
        """Claim the "nobody free, call-back?" message for one waiting entry (one winner)."""
        with self._tx() as conn:
            done = conn.execute(update(kcc_queue).where(
                kcc_queue.c.id == int(entry_id), kcc_queue.c.state == STATE_WAITING,
                kcc_queue.c.callback_offered_at.is_(None),
            ).values(callback_offered_at=self.now())).rowcount
        return self.get(entry_id) if done == 1 else None

    def keep_waiting(self, sender_id: str, wait_seconds: int) -> Optional[QueueEntry]:
        """The citizen chose to wait longer: a new wait window, same place in the queue."""
        entry = self.open_entry(sender_id)
        if entry is None:
            return None
        with self._tx() as conn:
            conn.execute(update(kcc_queue).where(kcc_queue.c.id == entry.id).values(
                callback_offered_at=None, offer_at=self.now() + dt.timedelta(seconds=wait_seconds)))
        return self.get(entry.id)

    # -- timers --------------------------------------------------------------

    def due_for_callback_offer(self) -> List[QueueEntry]:
        """Waiting entries whose wait is over and that did not get the offer yet."""
        with self._read() as conn:
            rows = conn.execute(select(kcc_queue).where(
                kcc_queue.c.state == STATE_WAITING, kcc_queue.c.callback_offered_at.is_(None),
                kcc_queue.c.offer_at <= self.now(), kcc_queue.c.citizen_left_at.is_(None),
            ).order_by(kcc_queue.c.id)).all()
        return [_entry(r) for r in rows]

    def due_for_expiry(self, left_timeout_seconds: int, max_wait_minutes: int) -> List[QueueEntry]:
        """Open entries whose citizen left longer ago than the timeout, and
        waiting entries older than the maximum wait."""
        now = self.now()
        left_cutoff = now - dt.timedelta(seconds=left_timeout_seconds)
        max_cutoff = now - dt.timedelta(minutes=max_wait_minutes)
        with self._read() as conn:
            rows = conn.execute(select(kcc_queue).where(
                kcc_queue.c.state.in_(list(OPEN_STATES)),
                or_(kcc_queue.c.citizen_left_at <= left_cutoff,
                    and_(kcc_queue.c.state == STATE_WAITING, kcc_queue.c.created_at <= max_cutoff)),
            ).order_by(kcc_queue.c.id)).all()
        return [_entry(r) for r in rows]
