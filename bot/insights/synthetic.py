"""Conversations as Rasa's SQL tracker store writes them, for tests and the benchmark.

:class:`Script` writes the event rows of one conversation the way this
assistant produces them (session start with the municipal slots, FAQ answers,
fallbacks, the flow engine's slot events, handoff, satisfaction), in the exact
``events`` row format of ``rasa.core.tracker_store.SQLTrackerStore.save``
(``type_name``, ``timestamp``, ``intent_name``, ``action_name``, ``data`` = the
event's ``as_dict()`` as JSON). ``tests/test_insights.py`` checks these rows
against Rasa's own event classes, so they cannot drift silently.

Rows are plain tuples; :class:`SqliteSink` / :class:`EngineSink` insert them
in bulk. Nothing here touches a real conversation.
"""
from __future__ import annotations

import json
import random
import sqlite3
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from bot import config

Row = Tuple[str, str, float, Optional[str], Optional[str], str]  # sender, type, ts, intent, action, data

MODEL_META = {"model_id": "0f0e0d0c0b0a09080706050403020100", "assistant_id": "gemeente-assistent"}
_META_JSON = json.dumps(MODEL_META)

FALLBACK_KINDS = ("niet_begrepen", "opnieuw_niet_begrepen")
_SUFFIXES: Dict[Tuple, str] = {}
_TEMPLATE_SLOTS: List[Tuple[str, Any]] = []


def _template_slots() -> List[Tuple[str, Any]]:
    if not _TEMPLATE_SLOTS:
        _TEMPLATE_SLOTS.extend(config.template_vars().items())
    return _TEMPLATE_SLOTS


@dataclass
class Script:
    """The events of one conversation (one sender, one or more sessions)."""

    sender: str
    at: float
    channel: Optional[str] = "website"
    step_seconds: float = 2.0
    rows: List[Row] = field(default_factory=list)
    intent_ranking: Sequence[str] = ("paspoort_idkaart", "afval_informatie", "openingstijden_contact")

    # -- raw events ------------------------------------------------------------
    def _tick(self) -> float:
        self.at += self.step_seconds
        return self.at

    def _add(self, kind: str, data: Dict[str, Any], intent: Optional[str] = None,
             action: Optional[str] = None) -> None:
        ts = self._tick()
        body = {"event": kind, "timestamp": ts, "metadata": dict(MODEL_META)}
        body.update(data)
        self.rows.append((self.sender, kind, ts, intent, action, json.dumps(body)))

    def _add_cached(self, kind: str, key: Tuple, data: Dict[str, Any], intent: Optional[str] = None,
                    action: Optional[str] = None) -> None:
        """Like _add, with the JSON after the timestamp serialised once (the benchmark writes millions)."""
        suffix = _SUFFIXES.get(key)
        if suffix is None:
            body = {"metadata": dict(MODEL_META)}
            body.update(data)
            suffix = _SUFFIXES[key] = json.dumps(body)[1:]
        ts = self._tick()
        self.rows.append((self.sender, kind, ts, intent, action,
                          f'{{"event": "{kind}", "timestamp": {json.dumps(ts)}, {suffix}'))

    def action(self, name: str, policy: Optional[str] = "RulePolicy") -> None:
        self._add_cached("action", ("action", name, policy),
                         {"name": name, "policy": policy, "confidence": 1.0 if policy else None,
                          "action_text": None, "hide_rule_turn": bool(policy)}, action=name)

    def listen(self) -> None:
        self.action("action_listen")

    def slot(self, name: str, value: Any) -> None:
        self._add("slot", {"name": name, "value": value}, action=name)

    def active_loop(self, name: Optional[str]) -> None:
        self._add("active_loop", {"name": name}, action=name)

    def bot(self, text: str, buttons: Optional[List[Dict[str, str]]] = None, utter: Optional[str] = None) -> None:
        ts = self._tick()
        meta: Dict[str, Any] = {}
        if utter:
            meta["utter_action"] = utter
        meta.update(MODEL_META)
        body = {"event": "bot", "timestamp": ts, "metadata": meta, "text": text,
                "data": {"elements": None, "quick_replies": None, "buttons": buttons, "attachment": None,
                         "image": None, "custom": None}}
        self.rows.append((self.sender, "bot", ts, None, None, json.dumps(body)))

    def user(self, text: str, intent: str, confidence: float = 1.0, ranking: Optional[Sequence[str]] = None,
             input_channel: str = "rest") -> None:
        ts = self._tick()
        message_id = uuid.uuid4().hex
        names = [intent] + [n for n in (ranking or self.intent_ranking) if n != intent]
        rest = max(1.0 - confidence, 0.0)
        ranked = [{"name": intent, "confidence": confidence}] + [
            {"name": n, "confidence": rest / (2 ** (i + 1))} for i, n in enumerate(names[1:])]
        metadata: Dict[str, Any] = {}
        if self.channel:
            metadata["channel"] = self.channel
        metadata.update(MODEL_META)
        body = {"event": "user", "timestamp": ts, "metadata": metadata, "text": text,
                "parse_data": {"intent": {"name": intent, "confidence": confidence}, "entities": [],
                               "text": text, "message_id": message_id, "metadata": {},
                               "text_tokens": [[0, len(text)]], "intent_ranking": ranked},
                "input_channel": input_channel, "message_id": message_id}
        self.rows.append((self.sender, "user", ts, intent, None, json.dumps(body)))
        self._add("user_featurization", {"use_text_for_featurization": False})

    # -- this assistant's patterns ----------------------------------------------
    def session_start(self) -> "Script":
        if self.channel:
            self.slot("session_started_metadata", {"channel": self.channel})
        self.action("action_session_start", policy=None)
        self._add("session_started", {})
        for name, value in _template_slots():
            self._add_cached("slot", ("template slot", name), {"name": name, "value": value}, action=name)
        self.action("action_listen", policy=None)
        return self

    def faq(self, intent: str, text: Optional[str] = None) -> "Script":
        self.user(text or f"vraag over {intent}", intent, 0.93)
        self.action(f"utter_{intent}")
        self.bot(f"Antwoord over {intent}.", utter=f"utter_{intent}")
        self.listen()
        return self

    def greet(self) -> "Script":
        self.user("hallo", "greet", 0.98)
        self.action("utter_greet")
        self.bot("Hallo, ik ben de digitale assistent.", utter="utter_greet")
        self.listen()
        return self

    def fallback(self, text: str, kind: str = "niet_begrepen", guess: str = "afval_informatie",
                 intent: str = "nlu_fallback") -> "Script":
        self.user(text, intent, 0.45 if intent == "nlu_fallback" else 0.5,
                  ranking=[guess, "out_of_scope", "greet"])
        self.action("action_fallback")
        self.slot("fallback_soort", kind)
        response = {"niet_begrepen": "utter_default", "opnieuw_niet_begrepen": "utter_fallback_kcc",
                    "leeg": "utter_input_empty", "te_lang": "utter_input_too_long",
                    "opmaak": "utter_input_markup", "geen_letters": "utter_input_no_letters"}[kind]
        self.action(response)
        self.bot("Sorry, dat begrijp ik niet.", utter=response)
        self.listen()
        return self

    def handoff(self, text: str = "/human_handoff", kcc_action: Optional[str] = None) -> "Script":
        self.user(text, "human_handoff", 1.0 if text.startswith("/") else 0.9)
        if kcc_action:
            self.action(kcc_action)
            self.bot("Ik zoek een medewerker voor u.")
        else:
            self.action("utter_human_handoff")
            self.bot("Een medewerker helpt u graag.", utter="utter_human_handoff")
        self.listen()
        return self

    def goodbye(self, topic: Optional[str] = None, rating: Optional[int] = None) -> "Script":
        """"doei", and when ``topic`` is given the satisfaction question (and ``rating`` ±1)."""
        self.user("doei", "goodbye", 0.97)
        self.action("utter_goodbye")
        self.bot("Bedankt voor uw bezoek. Tot ziens!", utter="utter_goodbye")
        self.action("action_tevredenheid_vragen")
        self.slot("tevredenheid_vragen", bool(topic))
        if topic:
            self.slot("tevredenheid_onderwerp", topic)
            self.action("utter_tevredenheid_vraag")
            self.bot("Mag ik u nog één ding vragen? Heb ik u goed geholpen?", utter="utter_tevredenheid_vraag",
                     buttons=[{"title": "👍 Ja", "payload": "/tevreden"},
                              {"title": "👎 Nee", "payload": "/ontevreden"}])
        self.listen()
        if topic and rating:
            intent = "tevreden" if rating > 0 else "ontevreden"
            self.user(f"/{intent}", intent, 1.0)
            self.action(f"utter_tevredenheid_{'bedankt' if rating > 0 else 'jammer'}")
            self.bot("Dank u wel voor uw reactie.")
            self.listen()
        return self

    def flow(self, name: str, until: Optional[int] = None, end: str = "complete",
             run_id: Optional[str] = None, digid_wait: bool = False) -> Optional[str]:
        """A guided flow. ``end``: "complete" (summary confirmed, filed), "stop" (Stoppen at
        step ``until``, confirmed) or "leave" (no answer to step ``until``). Returns the run id."""
        spec = config.flows()["flows"][name]
        form = spec["form"]
        steps = _applicable_steps(spec)
        slots = [s["slot"] for s in steps]
        # Deterministic, so the same script always files under the same case key.
        run_id = run_id or uuid.uuid5(uuid.NAMESPACE_URL, f"{self.sender}/{len(self.rows)}").hex
        direct = spec.get("start", "direct") == "direct"
        if spec.get("zaaktype") == "terugbelverzoek":
            # "Ja, bel mij terug" after the KCC offer (rule in data/stories/rules.yml).
            self.user("/terugbelverzoek", "terugbelverzoek", 1.0)
            self.action("action_kcc_verlaat_wachtrij")
        else:
            self.user(f"ik wil {name.replace('_', ' ')}", name, 0.95)
            self.action(f"utter_{name}")
            self.bot(f"Informatie over {name}.", utter=f"utter_{name}")
            if not direct:
                self.action("utter_offer_flow")
                self.bot("Zal ik u helpen?", utter="utter_offer_flow")
                self.listen()
                self.user("ja", "affirm", 0.99)
        self.action(form)
        self.active_loop(form)
        for slot_name, value in (("flow_run_id", run_id), ("flow_uitkomst", None), ("flow_naam", name),
                                 ("flow_hervat", False), ("flow_fouten", 0), ("flow_datumfilter", None),
                                 ("flow_stop", None), ("flow_bevestiging", None), ("flow_wijzigen", None)):
            self.slot(slot_name, value)
        for s in slots:
            self.slot(s, None)
        self.slot("requested_slot", slots[0])
        self.bot("Eerste vraag?")
        self.listen()
        stop_at = len(slots) if until is None else until
        for index, slot_name in enumerate(slots):
            if index == stop_at and end in ("stop", "leave"):
                if end == "stop":
                    self.user("/stop", "stop", 1.0)
                    self.action(form)
                    self.slot(slot_name, None)
                    self.slot("requested_slot", "flow_stop")
                    self.bot("Wilt u echt stoppen?")
                    self.listen()
                    self.user("/affirm", "affirm", 1.0)
                    self.slot("flow_stop", "/affirm")
                    self.action(form)
                    self.slot("flow_stop", None)
                    self.slot("flow_uitkomst", "gestopt")
                    self.slot("requested_slot", None)
                    self.slot("requested_slot", None)
                    self.active_loop(None)
                    self.action("action_flow_submit")
                    self.bot("Goed, ik ben gestopt. Er is niets verstuurd.")
                    self._reset(slots)
                    self.listen()
                return run_id
            self.user(f"antwoord {index + 1}", "inform", 0.6)
            self.slot(slot_name, f"antwoord {index + 1}")
            self.action(form)
            self.slot(slot_name, None)
            self.slot(slot_name, f"antwoord {index + 1}")
            self.slot("flow_fouten", 0)
            self.slot("flow_datumfilter", None)
            following = slots[index + 1] if index + 1 < len(slots) else (
                "flow_bevestiging" if spec.get("bevestigen", True) else None)
            if following is None:
                self.slot("flow_uitkomst", "bevestigd")
            self.slot("requested_slot", following)
            if following is not None:
                self.bot("Volgende vraag?")
                self.listen()
        if spec.get("bevestigen", True):
            if end == "leave" and stop_at >= len(slots):
                return run_id
            self.user("/affirm", "affirm", 1.0)
            self.slot("flow_bevestiging", "/affirm")
            self.action(form)
            self.slot("flow_bevestiging", None)
            self.slot("flow_bevestiging", "ja")
            self.slot("flow_uitkomst", "bevestigd")
            self.slot("requested_slot", None)
        self.slot("requested_slot", None)
        self.active_loop(None)
        self.action("action_flow_submit")
        if digid_wait:
            self.bot("Hiervoor moet u eerst inloggen met DigiD.")
            self.slot("flow_uitkomst", "wacht_op_digid")
            self.listen()
            return run_id
        self.bot("Dank u wel. Uw aanvraag is verstuurd.")
        self._reset(slots)
        self.listen()
        return run_id

    def _reset(self, slots: Sequence[str]) -> None:
        for s in [*slots, "flow_stop", "flow_bevestiging", "flow_wijzigen", "flow_run_id", "flow_uitkomst",
                  "flow_fouten", "flow_datumfilter", "flow_naam", "flow_hervat"]:
            self.slot(s, None)


def _applicable_steps(spec: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The steps on the path of the first choice of every condition ("nieuw" for afspraak)."""
    chosen: Dict[str, Any] = {}
    steps = []
    for step in spec["stappen"]:
        conditions = step.get("alleen_als") or {}
        if all(chosen.get(k) in v for k, v in conditions.items()):
            steps.append(step)
            if step["type"] == "keuze":
                chosen[step["slot"]] = "nieuw" if "nieuw" in step["keuzes"] else next(iter(step["keuzes"]))
    return steps


# --------------------------------------------------------------------------
# Writing rows
# --------------------------------------------------------------------------
EVENTS_DDL = (
    "CREATE TABLE IF NOT EXISTS events (id INTEGER NOT NULL PRIMARY KEY, sender_id VARCHAR(255) NOT NULL, "
    "type_name VARCHAR(255) NOT NULL, timestamp FLOAT, intent_name VARCHAR(255), action_name VARCHAR(255), "
    "data TEXT)",
    "CREATE INDEX IF NOT EXISTS ix_events_sender_id ON events (sender_id)",
)
INSERT = ("INSERT INTO events (sender_id, type_name, timestamp, intent_name, action_name, data) "
          "VALUES (?, ?, ?, ?, ?, ?)")


class SqliteSink:
    """Bulk insert into a SQLite tracker DB (schema of Rasa's SQLTrackerStore)."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = OFF")
        for statement in EVENTS_DDL:
            self.conn.execute(statement)
        self.buffer: List[Row] = []
        self.count = 0

    def write(self, rows: Iterable[Row]) -> None:
        self.buffer.extend(rows)
        if len(self.buffer) >= 50000:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.conn.executemany(INSERT, self.buffer)
            self.conn.commit()
            self.count += len(self.buffer)
            self.buffer = []

    def close(self) -> None:
        self.flush()
        self.conn.close()


def write_rows(engine: Any, rows: Sequence[Row]) -> None:
    """Insert rows through SQLAlchemy (any dialect; the events table must exist)."""
    from sqlalchemy import text

    statement = text("INSERT INTO events (sender_id, type_name, timestamp, intent_name, action_name, data) "
                     "VALUES (:s, :t, :ts, :i, :a, :d)")
    with engine.begin() as conn:
        conn.execute(statement, [{"s": r[0], "t": r[1], "ts": r[2], "i": r[3], "a": r[4], "d": r[5]}
                                 for r in rows])


# --------------------------------------------------------------------------
# A realistic mix, for the benchmark
# --------------------------------------------------------------------------
UNRECOGNISED = [
    "wanneer is de milieustraat open", "hoe laat gaat de milieustraat open", "is de milieustraat open op zaterdag",
    "mag ik een boom kappen in mijn tuin", "kapvergunning boom", "ik wil een boom omhalen",
    "waar kan ik mijn hond uitlaten", "hondenbelasting opzeggen", "ik heb een hond gekregen",
    "hoe vraag ik een evenementenvergunning aan", "vergunning voor een straatfeest",
    "mijn buren maken veel lawaai", "geluidsoverlast van de buren 's nachts",
    "kan ik trouwen op het strand", "waar vind ik de wmo", "ik zoek werk bij de gemeente",
    "vacatures gemeente", "mijn e-mail is jan.jansen@example.nl, bel mij terug",
    "bel mij op 06 12345678", "mijn bsn is 111222333 klopt dat",
]
FAQ_INTENTS = ["paspoort_idkaart", "rijbewijs", "afval_informatie", "parkeervergunning", "uittreksel_brp",
               "openingstijden_contact", "belastingen", "zorg_ondersteuning", "digid_hulp", "geboorte_aangifte"]
FILING_FLOWS = ["melding_openbare_ruimte", "grofvuil_ophalen", "afspraak_maken", "huwelijk_partnerschap",
                "verhuizing_doorgeven"]


@dataclass
class Generated:
    conversations: int = 0
    events: int = 0
    cases: List[Tuple[str, str, str, float]] = field(default_factory=list)  # key, zaaktype, channel, ts


def generate(sink: Any, n: int, *, start: float, days: int = 56, seed: int = 42) -> Generated:
    """``n`` conversations spread over ``days`` from ``start`` (unix time) into ``sink``."""
    rng = random.Random(seed)
    result = Generated()
    spread = days * 86400
    flows_spec = config.flows()["flows"]
    for i in range(n):
        sender = uuid.UUID(int=rng.getrandbits(128)).hex
        channel = "hulpplein" if rng.random() < 0.15 else "website"
        script = Script(sender, start + spread * i / n, channel=channel, step_seconds=rng.uniform(1, 6))
        script.session_start()
        if rng.random() < 0.4:
            script.greet()
        roll = rng.random()
        topic = None
        if roll < 0.45:
            for _ in range(rng.randint(1, 3)):
                topic = rng.choice(FAQ_INTENTS)
                script.faq(topic)
        elif roll < 0.60:
            script.fallback(rng.choice(UNRECOGNISED), guess=rng.choice(FAQ_INTENTS))
            if rng.random() < 0.5:
                script.fallback(rng.choice(UNRECOGNISED), kind="opnieuw_niet_begrepen")
            else:
                topic = rng.choice(FAQ_INTENTS)
                script.faq(topic)
        elif roll < 0.88:
            name = rng.choice(FILING_FLOWS)
            spec = flows_spec[name]
            n_steps = len(_applicable_steps(spec))
            end = rng.choices(["complete", "stop", "leave"], [0.6, 0.15, 0.25])[0]
            until = rng.randrange(n_steps) if end != "complete" else None
            run_id = script.flow(name, until=until, end=end)
            topic = name
            if end == "complete":
                result.cases.append((f"{sender}:{run_id}", spec["zaaktype"], channel, script.at))
        elif roll < 0.95:
            script.faq(rng.choice(FAQ_INTENTS))
            script.handoff(kcc_action="action_kcc_handoff")
        else:
            script.handoff(kcc_action="action_kcc_handoff")
            run_id = script.flow("terugbelverzoek")
            result.cases.append((f"{sender}:{run_id}", "terugbelverzoek", channel, script.at))
        if rng.random() < 0.3:
            script.goodbye(topic=topic, rating=rng.choice([1, 1, 1, -1]) if topic and rng.random() < 0.6 else None)
        sink.write(script.rows)
        result.conversations += 1
        result.events += len(script.rows)
    if hasattr(sink, "flush"):
        sink.flush()
    return result


def insert_cases(case_url: str, cases: Sequence[Tuple[str, str, str, float]], prefix: str = "SYN",
                 first_number: int = 1) -> None:
    """Put generated cases into a (migrated) case store, in bulk. The prefix keeps their
    zaaknummers apart from the ones the assistant itself hands out."""
    import datetime as dt

    from bot.cases.models import zaak
    from bot.cases.store import CaseStore

    store = CaseStore(case_url)
    store.migrate()
    rows = []
    for number, (key, zaaktype, channel, ts) in enumerate(cases, start=first_number):
        moment = dt.datetime.fromtimestamp(ts, dt.timezone.utc)
        rows.append({"zaaknummer": f"{prefix}-{moment.year}-{number:06d}", "zaaktype": zaaktype,
                     "status": "ontvangen", "channel": channel, "backend": "embedded", "data": {},
                     "contact": {}, "bsn": None, "idempotency_key": key, "remote_url": None,
                     "remote_identificatie": None, "created_at": moment, "updated_at": moment})
    with store.engine.begin() as conn:
        for i in range(0, len(rows), 5000):
            conn.execute(zaak.insert(), rows[i:i + 5000])
    store.dispose()
