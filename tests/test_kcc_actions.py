"""Dialogue unit tests of the KCC handoff (bot/actions/handoff.py, the form
engine's "Medewerker" control, the call-back flow and its filing).

Like tests/test_actions.py: a rasa_sdk Tracker, the real action, a real SQLite
case store; the office-hours clock is injected (bot.kcc.hours.clock)."""
from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, Dict, List, Optional
from zoneinfo import ZoneInfo

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions import common, filing, flows, handoff
from bot.kcc import hours
from bot.kcc.models import STATE_CALLBACK, STATE_WAITING
from bot.kcc.queue import KccQueue
from tests.servers import ROOT

NL = ZoneInfo("Europe/Amsterdam")
TUESDAY_10 = dt.datetime(2026, 3, 3, 10, 0, tzinfo=NL)
KINGS_DAY_10 = dt.datetime(2026, 4, 27, 10, 0, tzinfo=NL)   # a Monday, public holiday


@pytest.fixture(autouse=True)
def case_store(tmp_path, monkeypatch):
    monkeypatch.setenv("CASES_DB_URL", f"sqlite:///{tmp_path / 'cases.db'}")
    monkeypatch.delenv("KCC_ALWAYS_OPEN", raising=False)
    monkeypatch.setattr(common, "_STORE", None)
    monkeypatch.setattr(flows, "_seeded", set())
    monkeypatch.setattr(hours, "clock", lambda: TUESDAY_10)
    yield
    if common._STORE is not None:
        common._STORE.dispose()


def user(text: str, intent: str = "inform", channel: str = "webchat",
         metadata: Optional[Dict[str, Any]] = None, confidence: float = 0.95) -> Dict[str, Any]:
    return {"event": "user", "text": text, "input_channel": channel, "timestamp": 1772528400.0,
            "metadata": metadata if metadata is not None else {"channel": "website"},
            "parse_data": {"text": text, "intent": {"name": intent, "confidence": confidence}}}


def bot(text: str) -> Dict[str, Any]:
    return {"event": "bot", "text": text, "data": {}, "metadata": {}, "timestamp": 1772528401.0}


def tracker(events: List[Dict[str, Any]], slots: Optional[Dict[str, Any]] = None,
            sender: str = "citizen-1", active_loop: Optional[str] = None) -> Tracker:
    latest = next(e for e in reversed(events) if e["event"] == "user")
    return Tracker(sender, slots or {}, latest["parse_data"], events, False, None,
                   {"name": active_loop} if active_loop else {}, "action_listen")


def run(action, t: Tracker):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, t, {"slots": {}}))
    return dispatcher, events


def texts(dispatcher) -> str:
    return "\n".join(m.get("text") or "" for m in dispatcher.messages)


def buttons(dispatcher) -> List[str]:
    return [b["payload"] for m in dispatcher.messages for b in (m.get("buttons") or [])]


def kinds(events) -> List[str]:
    return [e["event"] for e in events]


# ------------------------------------------------------------------ triggers


def test_human_handoff_during_office_hours_queues_and_pauses():
    d, events = run(handoff.ActionKccHandoff(), tracker([user("ik wil een medewerker spreken", "human_handoff")]))
    assert "pause" in kinds(events)
    assert "U bent de volgende." in texts(d)
    entry = KccQueue().open_entry("citizen-1")
    assert entry.state == STATE_WAITING and entry.channel == "website" and entry.input_channel == "webchat"
    # A second citizen hears their place in line.
    d2, _ = run(handoff.ActionKccHandoff(),
                tracker([user("mens", "human_handoff", metadata={"channel": "hulpplein"})], sender="citizen-2"))
    assert "U bent nummer 2 in de rij." in texts(d2)
    assert KccQueue().open_entry("citizen-2").channel == "hulpplein"


def test_the_topic_is_the_last_product_question():
    events = [user("wat kost een paspoort", "paspoort_idkaart"), bot("U vraagt een paspoort aan."),
              user("kan ik iemand spreken", "human_handoff")]
    run(handoff.ActionKccHandoff(), tracker(events))
    assert KccQueue().open_entry("citizen-1").topic == "Paspoort of ID-kaart"


def test_on_a_public_holiday_a_call_back_is_offered_instead(monkeypatch):
    monkeypatch.setattr(hours, "clock", lambda: KINGS_DAY_10)
    d, events = run(handoff.ActionKccHandoff(), tracker([user("medewerker", "human_handoff")]))
    assert "pause" not in kinds(events)
    assert "Er zijn nu geen medewerkers aan het werk." in texts(d)
    assert buttons(d) == ["/terugbelverzoek", "/deny"]
    assert KccQueue().open_entry("citizen-1") is None


@pytest.mark.parametrize("moment", [
    dt.datetime(2026, 3, 3, 18, 0, tzinfo=NL),   # Tuesday evening
    dt.datetime(2026, 3, 7, 11, 0, tzinfo=NL),   # Saturday
])
def test_outside_office_hours_a_call_back_is_offered(monkeypatch, moment):
    monkeypatch.setattr(hours, "clock", lambda: moment)
    d, events = run(handoff.ActionKccHandoff(), tracker([user("medewerker", "human_handoff")]))
    assert "pause" not in kinds(events) and "/terugbelverzoek" in buttons(d)


def test_a_channel_that_cannot_show_employee_messages_gets_the_call_back_offer():
    d, events = run(handoff.ActionKccHandoff(), tracker([user("medewerker", "human_handoff", channel="rest")]))
    assert "pause" not in kinds(events)
    assert "Chatten met een medewerker kan hier niet." in texts(d)
    assert "/terugbelverzoek" in buttons(d)


def test_asking_again_keeps_the_place_in_the_queue():
    run(handoff.ActionKccHandoff(), tracker([user("mens", "human_handoff")], sender="first"))
    run(handoff.ActionKccHandoff(), tracker([user("mens", "human_handoff")], sender="second"))
    entry = KccQueue().open_entry("second")
    d, events = run(handoff.ActionKccHandoff(), tracker([user("/human_handoff", "human_handoff")], sender="second"))
    assert "U bent nummer 2 in de rij." in texts(d) and "pause" in kinds(events)
    assert KccQueue().open_entry("second").id == entry.id


def test_medewerker_in_a_flow_step_ends_the_form_with_answers_kept_and_hands_over():
    slots = {"requested_slot": "melding_omschrijving", "melding_categorie": "bestrating",
             "melding_locatie": {"omschrijving": "Kerkstraat"}, "flow_naam": "melding_openbare_ruimte",
             "flow_run_id": "run-1"}
    t = tracker([user("/human_handoff", "human_handoff", confidence=1.0)], slots, active_loop="melding_form")
    d, events = run(flows.ACTIONS["validate_melding_form"](), t)
    assert events[-1] == {"event": "followup", "name": "action_kcc_handoff", "timestamp": None}
    assert {"event": "slot", "name": "requested_slot", "value": None, "timestamp": None} in events
    cleared = {e["name"] for e in events if e["event"] == "slot" and e["value"] is None}
    assert not cleared & {"melding_categorie", "melding_locatie"}
    # The handoff then tells the citizen the answers are kept, and queues with the flow as topic.
    d, events = run(handoff.ActionKccHandoff(), tracker([user("/human_handoff", "human_handoff")], slots))
    assert "Uw antwoorden blijven bewaard." in texts(d)
    assert KccQueue().open_entry("citizen-1").topic == "Melding openbare ruimte"


def test_second_fallback_offers_the_handoff():
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    payloads = [b["payload"] for b in domain["responses"]["utter_fallback_kcc"][0]["buttons"]]
    assert "/human_handoff" in payloads
    rules = yaml.safe_load((ROOT / "data/stories/rules.yml").read_text(encoding="utf-8"))["rules"]
    steps = {r["rule"]: r["steps"] for r in rules}
    assert any(s == [{"intent": "human_handoff"}, {"action": "action_kcc_handoff"}] for s in steps.values())


# ------------------------------------------------------------------ after the offer


def test_no_thanks_after_the_offer_goes_back_into_the_interrupted_flow():
    slots = {"flow_naam": "melding_openbare_ruimte", "flow_run_id": "run-1", "melding_categorie": "afval"}
    d, events = run(handoff.ActionKccAfterOffer(), tracker([user("nee", "deny")], slots))
    assert {"event": "followup", "name": "melding_form", "timestamp": None} in events
    assert {"event": "slot", "name": "flow_hervat", "value": True, "timestamp": None} in events
    d, events = run(handoff.ActionKccAfterOffer(), tracker([user("nee", "deny")]))
    assert d.messages[0]["response"] == "utter_anything_else" and events == []


def test_choosing_a_call_back_leaves_the_queue():
    run(handoff.ActionKccHandoff(), tracker([user("mens", "human_handoff")]))
    run(handoff.ActionKccLeaveQueue(), tracker([user("/terugbelverzoek", "terugbelverzoek")]))
    assert KccQueue().open_entry("citizen-1") is None
    assert KccQueue().latest("citizen-1").state == STATE_CALLBACK


# ------------------------------------------------------------------ the call-back flow


def validate(slots: Dict[str, Any], text: str, intent: str = "inform"):
    t = tracker([user(text, intent)], dict(slots), active_loop="terugbel_form")
    d, events = run(flows.ACTIONS["validate_terugbel_form"](), t)
    return d, {e["name"]: e["value"] for e in events if e["event"] == "slot"}


@pytest.mark.parametrize("answer", ["12345", "0612", "bel me maar", "+31 6 1234"])
def test_call_back_phone_numbers_are_checked(answer):
    base = {"requested_slot": "terugbel_telefoon", "terugbel_naam": "Jan de Vries",
            "flow_naam": "terugbelverzoek", "flow_run_id": "r"}
    d, slots = validate(base, answer)
    assert slots["requested_slot"] == "terugbel_telefoon" and slots["terugbel_telefoon"] is None
    assert "Dit is geen goed telefoonnummer." in texts(d)


@pytest.mark.parametrize("answer, stored", [
    ("06 12345678", "+31612345678"), ("0164-277000", "+31164277000"),
    ("mijn nummer is +31 6 1234 5678", "+31612345678"), ("+32 470 12 34 56", "+32470123456"),
])
def test_valid_phone_numbers_are_stored_in_e164(answer, stored):
    base = {"requested_slot": "terugbel_telefoon", "terugbel_naam": "Jan de Vries",
            "flow_naam": "terugbelverzoek", "flow_run_id": "r"}
    _, slots = validate(base, answer)
    assert slots["terugbel_telefoon"] == stored and slots["requested_slot"] == "terugbel_vraag"


def test_part_of_day_is_a_choice():
    base = {"requested_slot": "terugbel_dagdeel", "terugbel_naam": "Jan", "terugbel_telefoon": "+31612345678",
            "terugbel_vraag": "vraag over mijn aanslag", "flow_naam": "terugbelverzoek", "flow_run_id": "r"}
    _, slots = validate(base, "liefst in de middag")
    assert slots["terugbel_dagdeel"] == "middag" and slots["requested_slot"] == "flow_bevestiging"


def test_filed_call_back_request_carries_the_transcript_and_earlier_answers():
    events = [
        user("er ligt een losse stoeptegel", "melding_openbare_ruimte"),
        bot("Waar is het probleem?"),
        user("Kerkstraat bij de speeltuin"),
        user("ik wil een medewerker spreken", "human_handoff"),
        bot("Er zijn nu geen medewerkers aan het werk."),
        user("/terugbelverzoek", "terugbelverzoek", metadata={"channel": "website", "button_title": "Ja, bel mij terug"}),
        user("ja", "affirm"),
    ]
    slots = {"flow_naam": "terugbelverzoek", "flow_uitkomst": "bevestigd", "flow_run_id": "run-9",
             "terugbel_naam": "Jan de Vries", "terugbel_telefoon": "+31612345678",
             "terugbel_vraag": "Wanneer wordt de tegel gemaakt?", "terugbel_dagdeel": "ochtend",
             "flow_bevestiging": "ja",
             # answers of the melding flow that was interrupted by the handoff
             "melding_categorie": "bestrating", "melding_locatie": {"omschrijving": "Kerkstraat bij de speeltuin"}}
    d, _ = run(filing.ActionFlowSubmit(), tracker(events, slots))
    assert "Uw nummer is BOZ-" in texts(d)
    [case] = common.store().list_cases(zaaktype="terugbelverzoek")
    assert case.contact == {"naam": "Jan de Vries", "telefoon": "+31612345678"}
    assert case.data["dagdeel"] == "ochtend" and case.data["vraag"] == "Wanneer wordt de tegel gemaakt?"
    said = [(line["van"], line["tekst"]) for line in case.data["transcript"]]
    assert ("inwoner", "er ligt een losse stoeptegel") in said
    assert ("assistent", "Waar is het probleem?") in said
    assert ("inwoner", "Ja, bel mij terug") in said            # the button title, not the payload
    assert "Inwoner: Kerkstraat bij de speeltuin" in case.data["transcript_tekst"]
    earlier = {(a["vraag"], a["antwoord"]) for a in case.data["eerdere_antwoorden"]}
    assert ("Soort probleem", "Stoep of straat") in earlier
    assert ("Plek", "Kerkstraat bij de speeltuin") in earlier
    assert not any(a["flow"] == "terugbelverzoek" for a in case.data["eerdere_antwoorden"])
