"""Custom actions, tested the way Rasa's financial-demo does: build a Tracker,
run the action with a CollectingDispatcher, assert on events and messages.
The case store is real (SQLite in a temporary folder)."""
from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, Dict, List, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot import config, identity
from bot.actions import common, filing, flows, general

BSN = "111222333"
SECRET = "test-secret-that-is-long-enough-for-hs256!"


@pytest.fixture(autouse=True)
def case_store(tmp_path, monkeypatch):
    """A fresh SQLite case store for every test."""
    monkeypatch.setenv("CASES_DB_URL", f"sqlite:///{tmp_path / 'cases.db'}")
    monkeypatch.setattr(common, "_STORE", None)
    monkeypatch.setattr(flows, "_seeded", set())
    yield
    if common._STORE is not None:
        common._STORE.dispose()


def user(text: str, intent: str = "inform", confidence: float = 0.95,
         metadata: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    return {"event": "user", "text": text, "metadata": metadata or {},
            "parse_data": {"text": text, "intent": {"name": intent, "confidence": confidence}}}


def action(name: str) -> Dict[str, Any]:
    return {"event": "action", "name": name}


def make_tracker(slots: Optional[Dict[str, Any]] = None, text: str = "", intent: str = "inform",
                 confidence: float = 0.95, events: Optional[List[Dict[str, Any]]] = None,
                 active_loop: Optional[str] = None, metadata: Optional[Dict[str, Any]] = None,
                 sender: str = "citizen-1") -> Tracker:
    history = list(events or []) + [user(text, intent, confidence, metadata)]
    return Tracker(sender, slots or {}, history[-1]["parse_data"], history, False, None,
                   {"name": active_loop} if active_loop else {}, "action_listen")


def run(action_obj, tracker: Tracker, domain: Optional[Dict[str, Any]] = None):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action_obj.run(dispatcher, tracker, domain or {"slots": {}}))
    return dispatcher, events


def slot_events(events) -> Dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def validate(form: str):
    return flows.ACTIONS[f"validate_{form}"]()


# ---------------------------------------------------------------- general actions
def test_session_start_sets_municipal_values_as_slots():
    domain = {"slots": {"kcc_telefoon": {}, "link_paspoort_idkaart": {}, "gemeente_naam": {}}}
    _, events = run(general.ActionSessionStart(), make_tracker(), domain)
    assert events[0]["event"] == "session_started"
    values = slot_events(events)
    assert values == {"kcc_telefoon": "14 0164", "gemeente_naam": "Bergen op Zoom",
                      "link_paspoort_idkaart": config.gemeente()["producten"]["paspoort_idkaart"]["link"]}
    assert (events[-1]["event"], events[-1]["name"]) == ("action", "action_listen")


@pytest.mark.parametrize("text,kind", [
    ("", "leeg"), ("   \n ", "leeg"), ("a" * 5000, "te_lang"), ("<script>alert(1)</script>", "opmaak"),
    ("😀😀😀", "geen_letters"), ("!!!???", "geen_letters"), ("asdkjh qwe", "niet_begrepen"),
])
def test_fallback_names_the_problem(text, kind):
    _, events = run(general.ActionFallback(), make_tracker(text=text, intent="nlu_fallback"))
    assert slot_events(events) == {"fallback_soort": kind}


def test_second_fallback_in_a_row_offers_the_kcc():
    history = [user("blabla", "nlu_fallback"), action("action_fallback"), action("utter_default"),
               action("action_listen")]
    tracker = make_tracker(text="nog meer onzin", intent="nlu_fallback", events=history)
    _, events = run(general.ActionFallback(), tracker)
    assert slot_events(events) == {"fallback_soort": "opnieuw_niet_begrepen"}


def test_fallback_after_an_understood_message_asks_again():
    history = [user("blabla", "nlu_fallback"), action("action_fallback"), action("utter_default"),
               action("action_listen"), user("hallo", "greet"), action("utter_greet"), action("action_listen")]
    _, events = run(general.ActionFallback(), make_tracker(text="xyz", intent="nlu_fallback", events=history))
    assert slot_events(events) == {"fallback_soort": "niet_begrepen"}


# ---------------------------------------------------------------- the form engine
def test_activation_takes_the_category_from_the_first_message():
    tracker = make_tracker(text="de lantaarnpaal bij mij voor de deur is kapot", intent="melding_openbare_ruimte")
    _, events = run(validate("melding_form"), tracker)
    values = slot_events(events)
    assert values["melding_categorie"] == "straatverlichting"
    assert values["requested_slot"] == "melding_locatie"
    assert values["flow_naam"] == "melding_openbare_ruimte"
    assert values["flow_run_id"]


def test_activation_without_a_clear_category_asks_for_it():
    tracker = make_tracker(text="ik wil iets melden", intent="melding_openbare_ruimte")
    _, events = run(validate("melding_form"), tracker)
    assert slot_events(events)["requested_slot"] == "melding_categorie"


def melding_slots(**extra) -> Dict[str, Any]:
    slots = {"flow_naam": "melding_openbare_ruimte", "flow_run_id": "run-1",
             "melding_categorie": "bestrating"}
    slots.update(extra)
    return slots


def test_valid_answer_is_stored_and_the_next_question_is_requested():
    tracker = make_tracker(melding_slots(requested_slot="melding_locatie"), text="4611ab 12",
                           active_loop="melding_form")
    dispatcher, events = run(validate("melding_form"), tracker)
    values = slot_events(events)
    assert values["melding_locatie"]["postcode"] == "4611 AB"
    assert values["melding_locatie"]["huisnummer"] == "12"
    assert values["requested_slot"] == "melding_omschrijving"
    assert dispatcher.messages == []


@pytest.mark.parametrize("answer", ["😀😀", "<b>hoi</b>", ""])
def test_bad_answer_reasks_and_keeps_earlier_answers(answer):
    tracker = make_tracker(melding_slots(requested_slot="melding_locatie"), text=answer,
                           active_loop="melding_form")
    dispatcher, events = run(validate("melding_form"), tracker)
    values = slot_events(events)
    assert values["melding_locatie"] is None
    assert values["requested_slot"] == "melding_locatie"
    assert "melding_categorie" not in values  # the earlier answer is untouched
    assert dispatcher.messages and dispatcher.messages[0]["text"]
    assert answer == "" or answer not in dispatcher.messages[0]["text"]  # never echoed


def test_three_bad_answers_offer_the_phone_number():
    tracker = make_tracker(melding_slots(requested_slot="melding_locatie", flow_fouten=2), text="🙂",
                           active_loop="melding_form")
    dispatcher, events = run(validate("melding_form"), tracker)
    assert "14 0164" in dispatcher.messages[-1]["text"]
    assert slot_events(events)["flow_fouten"] == 0


def test_explain_gives_the_help_text_of_the_current_question():
    tracker = make_tracker(melding_slots(requested_slot="melding_locatie"), text="wat bedoelt u?",
                           intent="explain", active_loop="melding_form")
    dispatcher, events = run(validate("melding_form"), tracker)
    step = flows.flow_for_form("melding_form").step("melding_locatie")
    assert dispatcher.messages[0]["text"] == step.uitleg
    assert slot_events(events)["requested_slot"] == "melding_locatie"


def test_stop_asks_for_confirmation_then_stops():
    tracker = make_tracker(melding_slots(requested_slot="melding_omschrijving"), text="stop", intent="stop",
                           active_loop="melding_form")
    _, events = run(validate("melding_form"), tracker)
    assert slot_events(events)["requested_slot"] == "flow_stop"

    tracker = make_tracker(melding_slots(requested_slot="flow_stop"), text="ja", intent="affirm",
                           active_loop="melding_form")
    _, events = run(validate("melding_form"), tracker)
    values = slot_events(events)
    assert values["flow_uitkomst"] == "gestopt"
    assert values["requested_slot"] is None


def test_no_after_stop_continues_where_the_citizen_was():
    tracker = make_tracker(melding_slots(requested_slot="flow_stop"), text="nee", intent="deny",
                           active_loop="melding_form")
    dispatcher, events = run(validate("melding_form"), tracker)
    assert slot_events(events)["requested_slot"] == "melding_locatie"
    assert dispatcher.messages[0]["text"] == "Goed, we gaan verder."


def test_faq_in_between_is_answered_and_the_question_stays():
    tracker = make_tracker(melding_slots(requested_slot="melding_locatie"), text="wat kost een paspoort?",
                           intent="paspoort_idkaart", active_loop="melding_form")
    dispatcher, events = run(validate("melding_form"), tracker)
    assert dispatcher.messages[0]["response"] == "utter_paspoort_idkaart"
    assert slot_events(events)["requested_slot"] == "melding_locatie"


def full_melding() -> Dict[str, Any]:
    return melding_slots(melding_locatie={"postcode": "4611 AB", "huisnummer": "12", "straat": None,
                                          "omschrijving": None},
                         melding_omschrijving="De tegel ligt los", melding_foto="",
                         melding_contact={"email": "jan@example.nl"})


def test_summary_lists_every_answer_and_asks_klopt_dit():
    dispatcher = CollectingDispatcher()
    flows.ask(dispatcher, flows.flow_for_form("melding_form"), "flow_bevestiging", full_melding())
    summary, question = dispatcher.messages
    assert "Stoep of straat" in summary["text"] and "4611 AB 12" in summary["text"]
    assert "jan@example.nl" in summary["text"]
    assert question["text"] == "Klopt dit?"
    assert [b["payload"] for b in question["buttons"]][:2] == ["/affirm", "/deny"]


def test_correction_names_one_answer_and_only_that_one_is_asked_again():
    tracker = make_tracker(dict(full_melding(), requested_slot="flow_bevestiging"),
                           text="nee, het adres klopt niet", intent="deny", active_loop="melding_form")
    _, events = run(validate("melding_form"), tracker)
    values = slot_events(events)
    assert values["melding_locatie"] is None
    assert values["requested_slot"] == "melding_locatie"
    assert "melding_omschrijving" not in values


def test_plain_no_at_the_summary_asks_what_to_change():
    tracker = make_tracker(dict(full_melding(), requested_slot="flow_bevestiging"), text="nee",
                           intent="deny", active_loop="melding_form")
    _, events = run(validate("melding_form"), tracker)
    assert slot_events(events)["requested_slot"] == "flow_wijzigen"


def test_grofvuil_items_over_the_maximum_volume_are_refused():
    slots = {"flow_naam": "grofvuil_ophalen", "requested_slot": "grofvuil_spullen"}
    tracker = make_tracker(slots, text="drie banken en twee kasten", active_loop="grofvuil_form")
    dispatcher, events = run(validate("grofvuil_form"), tracker)
    assert slot_events(events)["grofvuil_spullen"] is None
    assert "kuub" in dispatcher.messages[0]["text"]


def test_move_date_in_the_past_is_refused_with_a_reason():
    slots = {"flow_naam": "verhuizing_doorgeven", "requested_slot": "verhuizing_datum"}
    tracker = make_tracker(slots, text="1 januari 2020", active_loop="verhuizing_form")
    dispatcher, events = run(validate("verhuizing_form"), tracker)
    assert slot_events(events)["verhuizing_datum"] is None
    assert dispatcher.messages[0]["text"]


# ---------------------------------------------------------------- filing
def test_confirmed_melding_is_filed_once_with_number_and_next_steps():
    slots = dict(full_melding(), flow_uitkomst="bevestigd", flow_bevestiging="ja")
    tracker = make_tracker(slots, text="ja", intent="affirm", metadata={"channel": "hulpplein"})
    dispatcher, events = run(filing.ActionFlowSubmit(), tracker)
    texts = [m.get("text") or m.get("response") for m in dispatcher.messages]
    cases = common.store().list_cases()
    assert len(cases) == 1
    case = cases[0]
    assert case.zaaktype == "melding_openbare_ruimte" and case.channel == "hulpplein"
    assert case.data["categorie"] == "bestrating" and case.data["postcode"] == "4611 AB"
    assert case.contact == {"email": "jan@example.nl"}
    assert case.zaaknummer in texts[0]
    assert config.gemeente()["zaaktypen"]["melding_openbare_ruimte"]["behandeltermijn"] in " ".join(texts)
    assert slot_events(events)["melding_omschrijving"] is None  # answers forgotten after filing
    # Running the submit action again (a retry) never files a second case.
    run(filing.ActionFlowSubmit(), tracker)
    assert len(common.store().list_cases()) == 1


def test_stopped_flow_files_nothing():
    slots = dict(full_melding(), flow_uitkomst="gestopt")
    dispatcher, _ = run(filing.ActionFlowSubmit(), make_tracker(slots, text="ja", intent="affirm"))
    assert common.store().list_cases() == []
    assert dispatcher.messages[0]["text"].startswith("Goed, ik ben gestopt")


def verhuizing_slots() -> Dict[str, Any]:
    return {"flow_naam": "verhuizing_doorgeven", "flow_run_id": "run-v", "flow_uitkomst": "bevestigd",
            "verhuizing_datum": dt.date.today().isoformat(),
            "verhuizing_adres": {"postcode": "4611 AB", "huisnummer": "12"},
            "verhuizing_personen": "Alleen ik", "verhuizing_contact": {"telefoon": "+31612345678"}}


def test_verhuizing_without_identity_is_kept_as_a_draft(monkeypatch):
    monkeypatch.setenv("IDENTITY_JWT_SECRET", SECRET)
    dispatcher, events = run(filing.ActionFlowSubmit(), make_tracker(verhuizing_slots(), text="ja", intent="affirm"))
    assert common.store().list_cases() == []
    assert slot_events(events) == {"flow_uitkomst": "wacht_op_digid"}
    assert any("DigiD" in (m.get("text") or "") for m in dispatcher.messages)


@pytest.mark.parametrize("token_kind", ["forged", "expired", "malformed"])
def test_bad_identity_tokens_are_refused(monkeypatch, token_kind):
    monkeypatch.setenv("IDENTITY_JWT_SECRET", SECRET)
    now = dt.datetime.now(dt.timezone.utc)
    token = {"forged": identity.issue_token(BSN, "Jan", secret="another-secret-that-is-long-enough-123"),
             "expired": identity.issue_token(BSN, "Jan", secret=SECRET, now=now - dt.timedelta(hours=2)),
             "malformed": "not.a.token"}[token_kind]
    tracker = make_tracker(verhuizing_slots(), text="ja", intent="affirm", metadata={"identity_token": token})
    dispatcher, events = run(filing.ActionFlowSubmit(), tracker)
    assert common.store().list_cases() == []
    assert slot_events(events) == {"flow_uitkomst": "wacht_op_digid"}
    assert "inlog" in dispatcher.messages[0]["text"].lower()


def test_verhuizing_with_valid_identity_is_filed_with_the_bsn(monkeypatch):
    monkeypatch.setenv("IDENTITY_JWT_SECRET", SECRET)
    token = identity.issue_token(BSN, "Jan de Vries", secret=SECRET)
    tracker = make_tracker(dict(verhuizing_slots(), flow_uitkomst="wacht_op_digid"), text="ja",
                           intent="affirm", metadata={"identity_token": token})
    run(filing.ActionFlowSubmit(), tracker)
    (case,) = common.store().list_cases()
    assert case.bsn == BSN and case.zaaktype == "verhuizing_doorgeven"


def test_status_lookup_wrong_postcode_looks_like_unknown_number():
    case = common.store().file_case(zaaktype="melding_openbare_ruimte", channel="website",
                                    data={"postcode": "4611 AB"}, contact={}, idempotency_key="k1")
    texts = {}
    for postcode, number in [("4611 AB", case.zaaknummer), ("4622 CD", case.zaaknummer),
                             ("4611 AB", "BOZ-2026-999999")]:
        slots = {"flow_naam": "zaak_status", "flow_uitkomst": "bevestigd",
                 "status_zaaknummer": number, "status_postcode": postcode}
        dispatcher, _ = run(filing.ActionFlowSubmit(), make_tracker(slots))
        texts[(postcode, number)] = dispatcher.messages[0]["text"]
    assert texts[("4611 AB", case.zaaknummer)].startswith("Wij hebben uw aanvraag ontvangen")
    assert texts[("4622 CD", case.zaaknummer)] == texts[("4611 AB", "BOZ-2026-999999")]


def test_status_lookup_pauses_after_too_many_failures():
    recent = [dt.datetime.now(dt.timezone.utc).isoformat()] * 5
    slots = {"flow_naam": "zaak_status", "flow_uitkomst": "bevestigd", "status_pogingen": recent,
             "status_zaaknummer": "BOZ-2026-000001", "status_postcode": "4611 AB"}
    dispatcher, _ = run(filing.ActionFlowSubmit(), make_tracker(slots))
    assert "over een uur" in dispatcher.messages[0]["text"]
    assert "14 0164" in dispatcher.messages[1]["text"]


def test_taken_slot_sends_the_citizen_back_to_choose_another():
    flows.ensure_slots("huwelijk")
    store = common.store()
    first = store.free_slots("huwelijk", after=dt.datetime.now(dt.timezone.utc), limit=1)[0]
    store.book_slot("huwelijk", first.id, "someone-else")
    slots = {"flow_naam": "huwelijk_partnerschap", "flow_run_id": "run-h", "flow_uitkomst": "bevestigd",
             "huwelijk_soort": "huwelijk", "huwelijk_ceremonie": "eenvoudig",
             "huwelijk_moment": {"slot_id": first.id, "start": "2027-01-04T10:00"},
             "huwelijk_locatie": "Stadhuis", "huwelijk_partners": "Jan en Piet",
             "huwelijk_getuigen": "Later doorgeven", "huwelijk_contact": {"email": "a@b.nl"}}
    dispatcher, events = run(filing.ActionFlowSubmit(), make_tracker(slots))
    assert store.list_cases() == []
    assert "iemand anders" in dispatcher.messages[0]["text"]
    assert FollowupAction("huwelijk_form") in events
    assert SlotSet("huwelijk_moment", None) in events and SlotSet("flow_hervat", True) in events
