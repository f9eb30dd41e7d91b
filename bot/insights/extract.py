"""Fold the tracker store's events into the insights cache, incrementally.

Reads Rasa's ``events`` table (SQL tracker store, also the masking store of
:mod:`bot.privacy.store`) in ``id`` order, above a watermark, in batches.
Only the rows the figures need are fetched: user messages, actions other than
``action_listen``, session starts, active loops and the slots listed in
:data:`bot.insights.definitions.TRACKED_SLOTS` (the ~45 slots every session
start sets are skipped in SQL). JSON is parsed only for those slot events, for
the first message of a conversation (its channel) and for messages that turned
out to be unrecognised or a handoff request.

Each batch is written in one transaction together with the new watermark, so
a refresh can stop at any time (time budget, crash) and resume. State that a
conversation still needs when its sender continues later (active flow run,
last turn) is kept as JSON in its row until a new session replaces it.

PostgreSQL can commit a lower ``id`` after a higher one; rows younger than
``settle_seconds`` (default 30 s there, 0 for SQLite, where writes are serial)
are left for the next refresh so none is skipped.

See :mod:`bot.insights.definitions` for what is counted.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from sqlalchemy import and_, select, text
from sqlalchemy.engine import Engine

from bot.actions.common import PRODUCT_INTENTS
from bot.cases.models import LOCAL_TZ
from bot.insights import cache, labels
from bot.insights import definitions as d

logger = logging.getLogger(__name__)

MAX_TEXT = 500
_PRODUCTS = frozenset(PRODUCT_INTENTS)


# --------------------------------------------------------------------------
# Masking and normalising texts for editors
# --------------------------------------------------------------------------
_NAME_AFTER = re.compile(
    r"(?i)\b(mijn naam is|ik heet|naam:|ik ben)\s+((?:[A-Z][a-zà-ÿ'-]+|van|de|der|den|el|ter)"
    r"(?:\s+(?:[A-Z][a-zà-ÿ'-]+|van|de|der|den|el|ter)){0,3})")


def mask_message(text: str) -> str:
    """A citizen's message as editors may see it: e-mail, phone, BSN, IBAN,
    postcode with house number and tokens masked by :func:`bot.privacy.masking.mask_text`,
    plus a name after "mijn naam is" / "ik heet" / "ik ben" with a capital. Max 500 characters."""
    from bot.privacy.masking import mask_text

    masked = mask_text(text or "")

    def _name(match: "re.Match[str]") -> str:
        words = match.group(2).split()
        if not words or not words[0][:1].isupper():
            return match.group(0)
        return f"{match.group(1)} [naam]"

    masked = _NAME_AFTER.sub(_name, masked)
    masked = " ".join(masked.split())
    return masked[:MAX_TEXT]


def normalise(text: str) -> str:
    """Compare form: lower case, no punctuation (placeholders stay), single spaces."""
    lowered = text.lower()
    lowered = re.sub(r"[^\w\s\[\]-]", " ", lowered)
    return " ".join(lowered.split())


# --------------------------------------------------------------------------
# State of one conversation while its events are folded
# --------------------------------------------------------------------------
@dataclass
class Run:
    key: str
    started_at: float
    last_at: float
    flow: Optional[str] = None
    steps: List[str] = field(default_factory=list)
    last_step: Optional[str] = None
    pending: Optional[str] = None
    outcome: str = d.RUN_OPEN
    handoff: bool = False


@dataclass
class Turn:
    event_id: int
    at: float
    intent: Optional[str]
    inside_form: bool
    data: Optional[str] = None          # raw JSON of the user event, in memory only
    masked: Optional[str] = None        # set when the turn is persisted unresolved
    guess: Optional[str] = None
    guess_confidence: Optional[float] = None
    answer: Optional[str] = None
    fallback: bool = False
    handoff: bool = False
    recorded: bool = False
    actions: int = 0


@dataclass
class Conversation:
    key: str
    sender_id: str
    started_at: float
    last_at: float
    channel: Optional[str] = None
    user_messages: int = 0
    fallbacks: int = 0
    answers: int = 0
    handoffs: int = 0
    runs_started: int = 0
    runs_completed: int = 0
    satisfaction_topic: Optional[str] = None
    satisfaction: Optional[int] = None
    awaiting_rating: bool = False
    active_loop: Optional[str] = None
    turn: Optional[Turn] = None
    run: Optional[Run] = None
    closed: bool = False
    runs_touched: Dict[str, Run] = field(default_factory=dict)

    # -- persistence --------------------------------------------------------
    def state_json(self) -> Optional[str]:
        if self.closed:
            return None
        turn = None
        if self.turn is not None:
            turn = dataclasses.asdict(self.turn)
            turn.pop("data", None)
        return json.dumps({
            "awaiting_rating": self.awaiting_rating, "active_loop": self.active_loop,
            "turn": turn, "run": dataclasses.asdict(self.run) if self.run else None,
        })

    @classmethod
    def from_row(cls, row: Any) -> "Conversation":
        conv = cls(key=row.key, sender_id=row.sender_id, started_at=row.started_at, last_at=row.last_at,
                   channel=row.channel, user_messages=row.user_messages, fallbacks=row.fallbacks,
                   answers=row.answers, handoffs=row.handoffs, runs_started=row.runs_started,
                   runs_completed=row.runs_completed, satisfaction_topic=row.satisfaction_topic,
                   satisfaction=row.satisfaction)
        saved = json.loads(row.state or "{}")
        conv.awaiting_rating = bool(saved.get("awaiting_rating"))
        conv.active_loop = saved.get("active_loop")
        if saved.get("turn"):
            conv.turn = Turn(**saved["turn"])
        if saved.get("run"):
            conv.run = Run(**saved["run"])
        return conv

    def row(self) -> Dict[str, Any]:
        return {
            "key": self.key, "sender_id": self.sender_id, "started_at": self.started_at,
            "last_at": self.last_at, "week": iso_week(self.started_at), "channel": self.channel,
            "user_messages": self.user_messages, "fallbacks": self.fallbacks, "answers": self.answers,
            "handoffs": self.handoffs, "runs_started": self.runs_started,
            "runs_completed": self.runs_completed, "satisfaction_topic": self.satisfaction_topic,
            "satisfaction": self.satisfaction, "state": self.state_json(),
        }


def iso_week(timestamp: float) -> str:
    year, week, _ = dt.datetime.fromtimestamp(timestamp, LOCAL_TZ).isocalendar()
    return f"{year}-W{week:02d}"


def run_row(run: Run, conversation_key: str) -> Dict[str, Any]:
    return {"key": run.key, "conversation_key": conversation_key, "flow": run.flow,
            "started_at": run.started_at, "last_at": run.last_at, "outcome": run.outcome,
            "last_step": run.last_step, "steps": ",".join(run.steps), "handoff": int(run.handoff)}


def _json(data: Optional[str]) -> Dict[str, Any]:
    if not data:
        return {}
    try:
        value = json.loads(data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _guess(parsed: Dict[str, Any]) -> Tuple[Optional[str], Optional[float]]:
    ranking = (parsed.get("parse_data") or {}).get("intent_ranking") or []
    for entry in ranking:
        if isinstance(entry, dict) and entry.get("name") not in (None, "nlu_fallback"):
            return entry.get("name"), float(entry.get("confidence") or 0.0)
    return None, None


# --------------------------------------------------------------------------
# The folding itself
# --------------------------------------------------------------------------
class Folder:
    """Applies event rows to conversations. Pure Python, no database."""

    def __init__(self, form_flows: Optional[Dict[str, str]] = None) -> None:
        self.form_flows = form_flows if form_flows is not None else labels.form_to_flow()
        self.conversations: Dict[str, Conversation] = {}   # open conversation per sender
        self.touched: Dict[str, Conversation] = {}         # key -> conversation changed in this batch
        self.unrecognised: List[Dict[str, Any]] = []
        self.session_metadata: Dict[str, Any] = {}

    # -- helpers ------------------------------------------------------------
    def _touch(self, conv: Conversation) -> None:
        self.touched[conv.key] = conv

    def _close(self, conv: Conversation) -> None:
        if conv.run is not None:
            self._end_run(conv, d.RUN_ABANDONED)
        conv.closed = True
        conv.turn = None
        self._touch(conv)

    def _end_run(self, conv: Conversation, outcome: str) -> None:
        run = conv.run
        assert run is not None
        run.outcome = outcome
        run.last_at = conv.last_at
        conv.runs_touched[run.key] = run
        if outcome == d.RUN_COMPLETED:
            conv.runs_completed += 1
        conv.run = None

    def _new(self, sender: str, event_id: int, at: float) -> Conversation:
        old = self.conversations.get(sender)
        if old is not None and not old.closed:
            self._close(old)
        conv = Conversation(key=f"{sender}#{event_id}", sender_id=sender, started_at=at, last_at=at)
        meta = self.session_metadata.pop(sender, None)
        if isinstance(meta, dict) and meta.get("channel"):
            conv.channel = d.normal_channel(meta.get("channel"))
        self.conversations[sender] = conv
        self._touch(conv)
        return conv

    def _record_unrecognised(self, conv: Conversation, turn: Turn, kind: str) -> None:
        if turn.recorded:
            return
        turn.recorded = True
        if turn.masked is None:
            parsed = _json(turn.data)
            turn.masked = mask_message(str(parsed.get("text") or ""))
            turn.guess, turn.guess_confidence = _guess(parsed)
        if not turn.masked:
            return
        self.unrecognised.append({
            "event_id": turn.event_id, "conversation_key": conv.key, "at": turn.at,
            "channel": conv.channel, "kind": kind, "text": turn.masked,
            "normalised": normalise(turn.masked), "guess": turn.guess,
            "guess_confidence": turn.guess_confidence})

    # -- one row ------------------------------------------------------------
    def apply(self, event_id: int, sender: str, kind: str, intent: Optional[str], action: Optional[str],
              at: Optional[float], data: Optional[str]) -> None:
        at = float(at or 0.0)
        if kind == "slot" and action == d.SESSION_METADATA_SLOT:
            self.session_metadata[sender] = _json(data).get("value")
            return
        if kind == "session_started":
            self._new(sender, event_id, at)
            return
        conv = self.conversations.get(sender)
        if kind == "restart":
            if conv is not None and not conv.closed:
                self._close(conv)
            return
        if conv is None or conv.closed:
            if kind != "user":
                return
            conv = self._new(sender, event_id, at)
        if kind == "action" and action in ("action_listen", "action_session_start"):
            return
        conv.last_at = max(conv.last_at, at)
        self._touch(conv)
        if kind == "user":
            self._user(conv, event_id, intent, at, data)
        elif kind == "action":
            self._action(conv, action or "")
        elif kind == "active_loop":
            conv.active_loop = action or None
        elif kind == "slot":
            self._slot(conv, action or "", _json(data).get("value"), at)
        if conv.run is not None:
            conv.run.last_at = conv.last_at
            conv.runs_touched[conv.run.key] = conv.run

    def _user(self, conv: Conversation, event_id: int, intent: Optional[str], at: float,
              data: Optional[str]) -> None:
        conv.user_messages += 1
        turn = Turn(event_id=event_id, at=at, intent=intent, inside_form=conv.active_loop is not None,
                    data=data)
        conv.turn = turn
        parsed: Optional[Dict[str, Any]] = None
        if conv.channel is None:
            parsed = _json(data)
            conv.channel = d.normal_channel((parsed.get("metadata") or {}).get("channel"))
        if intent == d.HANDOFF_INTENT:
            parsed = parsed if parsed is not None else _json(data)
            confidence = float(((parsed.get("parse_data") or {}).get("intent") or {}).get("confidence") or 0.0)
            if not turn.inside_form or d.is_flow_control(str(parsed.get("text") or ""), confidence):
                turn.handoff = True
                conv.handoffs += 1
                if conv.run is not None:
                    conv.run.handoff = True
        if intent in (d.SATISFIED_INTENT, d.UNSATISFIED_INTENT) and conv.awaiting_rating:
            conv.satisfaction = 1 if intent == d.SATISFIED_INTENT else -1
            conv.awaiting_rating = False

    def _action(self, conv: Conversation, name: str) -> None:
        turn = conv.turn
        if turn is not None:
            turn.actions += 1
        if name.startswith("utter_") and name[6:] in _PRODUCTS:
            conv.answers += 1
            if turn is not None:
                turn.answer = name[6:]
        elif name in self.form_flows:
            # The answer that introduces a flow starting in the same turn is no answer by itself.
            if turn is not None and turn.answer and turn.answer == self.form_flows[name]:
                conv.answers -= 1
                turn.answer = None
        elif name == d.FALLBACK_ACTION:
            if turn is not None and not turn.fallback:
                turn.fallback = True
                conv.fallbacks += 1
        elif d.is_handoff_action(name):
            if turn is None:
                conv.handoffs += 1
            elif not turn.handoff:
                turn.handoff = True
                conv.handoffs += 1
            if conv.run is not None:
                conv.run.handoff = True

    def _slot(self, conv: Conversation, name: str, value: Any, at: float) -> None:
        if name == d.RUN_SLOT:
            if value:
                run_key = f"{conv.sender_id}:{value}"
                if conv.run is not None and conv.run.key != run_key:
                    self._end_run(conv, d.RUN_ABANDONED)
                if conv.run is None:
                    conv.run = Run(key=run_key, started_at=at, last_at=at)
                    conv.runs_started += 1
            elif conv.run is not None:
                pending = conv.run.pending
                outcome = {"bevestigd": d.RUN_COMPLETED, "gestopt": d.RUN_STOPPED}.get(pending or "",
                                                                                     d.RUN_ABANDONED)
                self._end_run(conv, outcome)
        elif name == d.FLOW_SLOT:
            if value and conv.run is not None and conv.run.flow is None:
                conv.run.flow = str(value)
        elif name == d.REQUESTED_SLOT:
            if value and conv.run is not None:
                self._step(conv.run, str(value))
        elif name == d.OUTCOME_SLOT:
            if conv.run is not None:
                if value in ("bevestigd", "gestopt"):
                    conv.run.pending = value
                elif value == "wacht_op_digid":
                    conv.run.pending = None
                    self._step(conv.run, d.DIGID_STEP)
        elif name == d.FALLBACK_SLOT:
            turn = conv.turn
            if value in d.QUESTION_FALLBACK_KINDS and turn is not None and turn.fallback:
                self._record_unrecognised(conv, turn, str(value))
        elif name == d.SATISFACTION_SLOT:
            if value and conv.satisfaction_topic is None:
                conv.satisfaction_topic = str(value)
                conv.awaiting_rating = True

    @staticmethod
    def _step(run: Run, step: str) -> None:
        if step not in run.steps:
            run.steps.append(step)
        if step not in (d.STOP_STEP, d.CHANGE_STEP):
            run.last_step = step

    def prepare_to_persist(self) -> None:
        """Unresolved turns keep their masked text (never the raw message)."""
        for conv in self.touched.values():
            turn = conv.turn
            # action_fallback is the first action of its turn, and fallback_soort follows it:
            # only such turns can still become an unrecognised question in a later batch.
            unresolved = turn is not None and (turn.actions == 0 or (turn.fallback and not turn.recorded))
            if unresolved and turn.data is not None and turn.masked is None:
                parsed = _json(turn.data)
                turn.masked = mask_message(str(parsed.get("text") or ""))
                turn.guess, turn.guess_confidence = _guess(parsed)


# --------------------------------------------------------------------------
# Reading the tracker store and writing the cache
# --------------------------------------------------------------------------
@dataclass
class RefreshResult:
    events: int = 0
    batches: int = 0
    seconds: float = 0.0
    caught_up: bool = True
    rebuilt: bool = False
    skipped: bool = False        # another refresh held the lock
    watermark: int = 0
    newest: int = 0

    @property
    def behind(self) -> int:
        return max(self.newest - self.watermark, 0)


def tracker_engine_from_store(store: Any) -> Optional[Engine]:
    """The SQLAlchemy engine of Rasa's (wrapped) SQL tracker store, or None."""
    seen = 0
    while store is not None and seen < 5:
        engine = getattr(store, "engine", None)
        if isinstance(engine, Engine):
            return engine
        store = getattr(store, "_tracker_store", None)
        seen += 1
    return None


_PROCESS_LOCK = threading.Lock()
LOCK_SECONDS = 120


class Extractor:
    """Keeps the cache in step with the tracker store."""

    def __init__(self, tracker: Engine, cache_engine: Engine, *, batch_size: int = 20000,
                 settle_seconds: Optional[float] = None, clock: Callable[[], float] = time.time) -> None:
        self.tracker = tracker
        self.cache = cache_engine
        self.batch_size = batch_size
        if settle_seconds is None:
            settle_seconds = 0.0 if tracker.dialect.name == "sqlite" else 30.0
        self.settle_seconds = settle_seconds
        self.clock = clock
        self.identity = tracker.url.render_as_string(hide_password=True)

    # -- locking ------------------------------------------------------------
    def _acquire(self, owner: str) -> bool:
        now = self.clock()
        with self.cache.begin() as conn:
            value = cache.get_state(conn, "lock")
            if value:
                holder, _, until = value.partition("@")
                if holder != owner and float(until or 0) > now:
                    return False
            cache.set_state(conn, "lock", f"{owner}@{now + LOCK_SECONDS}")
        return True

    def _release(self, owner: str) -> None:
        with self.cache.begin() as conn:
            value = cache.get_state(conn, "lock") or ""
            if value.startswith(owner + "@"):
                cache.set_state(conn, "lock", None)

    # -- public -------------------------------------------------------------
    def refresh(self, budget_seconds: Optional[float] = None) -> RefreshResult:
        """Process new events until caught up or ``budget_seconds`` are used."""
        started = time.perf_counter()
        result = RefreshResult()
        if not _PROCESS_LOCK.acquire(blocking=budget_seconds is None):
            result.skipped, result.caught_up = True, False
            return result
        owner = f"{id(self)}-{threading.get_ident()}-{time.time_ns()}"
        try:
            if not self._acquire(owner):
                result.skipped, result.caught_up = True, False
                return result
            try:
                self._refresh(result, started, budget_seconds, owner)
            finally:
                self._release(owner)
        finally:
            _PROCESS_LOCK.release()
        result.seconds = time.perf_counter() - started
        return result

    def _events_table_exists(self) -> bool:
        from sqlalchemy import inspect

        return inspect(self.tracker).has_table("events")

    def _refresh(self, result: RefreshResult, started: float, budget: Optional[float], owner: str) -> None:
        if not self._events_table_exists():
            return
        with self.tracker.connect() as conn:
            newest = conn.execute(text("SELECT max(id) FROM events")).scalar() or 0
        with self.cache.begin() as conn:
            watermark = int(cache.get_state(conn, "watermark") or 0)
            rebuild = (cache.get_state(conn, "version") != cache.LOGIC_VERSION
                       or cache.get_state(conn, "tracker") != self.identity
                       or newest < watermark)
            if rebuild:
                cache.clear_derived(conn)
                cache.set_state(conn, "version", cache.LOGIC_VERSION)
                cache.set_state(conn, "tracker", self.identity)
                cache.set_state(conn, "watermark", "0")
                watermark = 0
                result.rebuilt = True
        upto = self._settled_upto(watermark, newest)
        result.newest, result.watermark = newest, watermark
        folder = Folder()
        while watermark < upto:
            rows = self._fetch(watermark, upto)
            if not rows:
                watermark = upto
            else:
                self._load_open(folder, {r[1] for r in rows})
                for row in rows:
                    folder.apply(*row)
                watermark = rows[-1][0] if len(rows) >= self.batch_size else upto
                result.events += len(rows)
            self._flush(folder, watermark, owner)
            result.batches += 1
            result.watermark = watermark
            folder = Folder(folder.form_flows)
            if budget is not None and time.perf_counter() - started > budget and watermark < upto:
                break
        result.caught_up = watermark >= upto and upto >= newest

    def _settled_upto(self, watermark: int, newest: int) -> int:
        if self.settle_seconds <= 0 or newest <= watermark:
            return newest
        cutoff = self.clock() - self.settle_seconds
        with self.tracker.connect() as conn:
            young = conn.execute(text("SELECT min(id) FROM events WHERE id > :w AND timestamp > :c"),
                                 {"w": watermark, "c": cutoff}).scalar()
        return newest if young is None else max(int(young) - 1, watermark)

    def _fetch(self, after: int, upto: int) -> List[Tuple]:
        slots = ", ".join(f"'{name}'" for name in d.TRACKED_SLOTS)
        query = text(
            "SELECT id, sender_id, type_name, intent_name, action_name, timestamp, "
            "CASE WHEN type_name IN ('user', 'slot') THEN data END AS data "
            "FROM events WHERE id > :after AND id <= :upto AND ("
            "type_name IN ('user', 'session_started', 'active_loop', 'restart') "
            "OR (type_name = 'action' AND action_name NOT IN ('action_listen', 'action_session_start')) "
            f"OR (type_name = 'slot' AND action_name IN ({slots}))) "
            "ORDER BY id LIMIT :limit")
        with self.tracker.connect() as conn:
            return [tuple(r) for r in conn.execute(query, {"after": after, "upto": upto,
                                                          "limit": self.batch_size})]

    def _load_open(self, folder: Folder, senders: Iterable[str]) -> None:
        missing = [s for s in senders if s not in folder.conversations]
        if not missing:
            return
        c = cache.conversation.c
        with self.cache.connect() as conn:
            for i in range(0, len(missing), 500):
                chunk = missing[i:i + 500]
                rows = conn.execute(select(cache.conversation).where(
                    and_(c.sender_id.in_(chunk), c.state.isnot(None))).order_by(c.started_at))
                for row in rows:
                    folder.conversations[row.sender_id] = Conversation.from_row(row)

    def _flush(self, folder: Folder, watermark: int, owner: str) -> None:
        folder.prepare_to_persist()
        conversations = list(folder.touched.values())
        runs: Dict[str, Dict[str, Any]] = {}
        for conv in conversations:
            for run in conv.runs_touched.values():
                runs[run.key] = run_row(run, conv.key)
            conv.runs_touched = {}
        with self.cache.begin() as conn:
            if conversations:
                keys = [c.key for c in conversations]
                for i in range(0, len(keys), 500):
                    conn.execute(cache.conversation.delete().where(cache.conversation.c.key.in_(keys[i:i + 500])))
                conn.execute(cache.conversation.insert(), [c.row() for c in conversations])
            if runs:
                keys = list(runs)
                for i in range(0, len(keys), 500):
                    conn.execute(cache.flow_run.delete().where(cache.flow_run.c.key.in_(keys[i:i + 500])))
                conn.execute(cache.flow_run.insert(), list(runs.values()))
            if folder.unrecognised:
                ids = [u["event_id"] for u in folder.unrecognised]
                for i in range(0, len(ids), 500):
                    conn.execute(cache.unrecognised.delete().where(
                        cache.unrecognised.c.event_id.in_(ids[i:i + 500])))
                conn.execute(cache.unrecognised.insert(), folder.unrecognised)
            cache.set_state(conn, "watermark", str(watermark))
            cache.set_state(conn, "lock", f"{owner}@{self.clock() + LOCK_SECONDS}")
