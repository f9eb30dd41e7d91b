"""Digitaal Hulpplein without a browser: the volunteer's tips in flows.yml, the tip and
print payloads of the actions, consent on the case, masking for paper, the page's idle
settings, session revocation and deleting a conversation from real Rasa tracker stores."""
from __future__ import annotations

import asyncio
import json
import re
from types import SimpleNamespace
from typing import Any, Dict, List, Optional

import pytest
from rasa.core.lock_store import InMemoryLockStore
from rasa.core.tracker_store import InMemoryTrackerStore, SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot import config
from bot.actions import common, filing, flows
from integrations.hulpplein.channel import HulppleinPage, fixed_tips, idle_settings, page_values
from integrations.hulpplein.summary import (BSN_REMOVED, mask_digits, print_summary, safe_for_paper,
                                            volunteer_consent)
from integrations.webchat.channel import SessionTokens, clean_metadata, forget_conversation

SENTENCE_RE = re.compile(r"[.!?]+")
INFORMAL_RE = re.compile(r"\b(je|jij|jou|jouw|jullie)\b", re.IGNORECASE)


@pytest.fixture(autouse=True)
def case_store(tmp_path, monkeypatch):
    """A fresh SQLite case store for every test."""
    monkeypatch.setenv("CASES_DB_URL", f"sqlite:///{tmp_path / 'cases.db'}")
    monkeypatch.setattr(common, "_STORE", None)
    yield
    if common._STORE is not None:
        common._STORE.dispose()


def tracker(slots: Dict[str, Any], metadata: Optional[Dict[str, Any]] = None, active_loop: Optional[str] = None,
            earlier: Optional[List[Dict[str, Any]]] = None) -> Tracker:
    message = {"event": "user", "text": "ja", "metadata": metadata or {},
               "parse_data": {"text": "ja", "intent": {"name": "affirm", "confidence": 0.99}}}
    events = list(earlier or []) + [message]
    return Tracker("visitor-1", slots, message["parse_data"], events, False, None,
                   {"name": active_loop} if active_loop else {}, "action_listen")


def run(action: Any, state: Tracker) -> CollectingDispatcher:
    dispatcher = CollectingDispatcher()
    asyncio.run(action.run(dispatcher, state, {"slots": {}}))
    return dispatcher


def customs(dispatcher: CollectingDispatcher) -> List[Dict[str, Any]]:
    return [m["custom"] for m in dispatcher.messages if m.get("custom")]


def melding_slots() -> Dict[str, Any]:
    return {"flow_naam": "melding_openbare_ruimte", "flow_run_id": "run-hp", "flow_uitkomst": "bevestigd",
            "flow_bevestiging": "ja", "melding_categorie": "bestrating",
            "melding_locatie": {"omschrijving": "Kerkstraat bij de speeltuin"},
            "melding_omschrijving": "De tegel ligt los. Mijn BSN is 111222333.",
            "melding_foto": "", "melding_contact": {"telefoon": "+31612345678", "email": "jan@example.nl"}}


# ----------------------------------------------------------------------------- tips in flows.yml


def all_steps():
    for flow in flows.all_flows().values():
        for step in flow.steps:
            yield flow, step


@pytest.mark.parametrize("flow,step", list(all_steps()), ids=lambda v: getattr(v, "slot", getattr(v, "name", "")))
def test_every_step_has_a_short_tip_for_the_volunteer(flow, step):
    tip = step.raw.get("tip")
    assert isinstance(tip, str) and tip.strip(), f"{step.slot} has no tip"
    filled = common.fill(tip)
    assert "{" not in filled, f"{step.slot}: unknown placeholder in {tip!r}"
    sentences = [s for s in SENTENCE_RE.split(filled) if s.strip()]
    assert 1 <= len(sentences) <= 3, f"{step.slot}: {len(sentences)} sentences"
    assert all(len(s.split()) <= 20 for s in sentences), f"{step.slot}: sentence over 20 words"
    assert not INFORMAL_RE.search(filled), f"{step.slot}: addresses the volunteer informally"


def test_tips_say_what_is_needed_and_where_the_boundary_is():
    flow_tips = {f.name: " ".join(s.raw["tip"] for s in f.steps) for f in flows.all_flows().values()}
    # The first tip of the citizen's own flows tells whether DigiD is needed.
    for name in ("melding_openbare_ruimte", "grofvuil_ophalen", "verhuizing_doorgeven",
                 "huwelijk_partnerschap", "afspraak_maken"):
        assert "DigiD" in flows.all_flows()[name].steps[0].raw["tip"], name
    assert "machtiging" in flow_tips["verhuizing_doorgeven"]
    assert "foto" in flow_tips["melding_openbare_ruimte"].lower()
    assert "bankpas" in flow_tips["afspraak_maken"] and "ID-bewijs" in flow_tips["afspraak_maken"]
    always = " ".join(fixed_tips(config.flows()))
    assert "nooit in met uw eigen DigiD" in always and "machtiging" in always
    virtual = config.flows()["algemeen"]["hulpplein"]["tips"]
    assert set(virtual) == set(flows.VIRTUAL_SLOTS)


def test_tip_payload_is_separate_from_the_citizen_text():
    melding = flows.all_flows()["melding_openbare_ruimte"]
    tip = flows.hulpplein_tip(melding, "melding_foto")
    assert tip == {"type": "hulpplein_tip", "flow": "melding_openbare_ruimte", "stap": "melding_foto",
                   "label": "Foto", "tip": melding.step("melding_foto").raw["tip"]}
    grofvuil = flows.all_flows()["grofvuil_ophalen"]
    assert "2 kuub" in flows.hulpplein_tip(grofvuil, "grofvuil_spullen")["tip"]
    assert flows.hulpplein_tip(melding, flows.CONFIRM_SLOT)["label"] == "Samenvatting"

    ask = flows.ACTIONS["action_ask_melding_locatie"]()
    slots = {"flow_naam": "melding_openbare_ruimte", "melding_categorie": "bestrating"}
    on_hulpplein = run(ask, tracker(slots, {"channel": "hulpplein"}, "melding_form"))
    assert customs(on_hulpplein) == [flows.hulpplein_tip(melding, "melding_locatie")]
    texts = [m.get("text") or "" for m in on_hulpplein.messages]
    assert texts[0].startswith("Waar is het probleem?")
    assert all(melding.step("melding_locatie").raw["tip"] not in text for text in texts)
    on_website = run(ask, tracker(slots, {"channel": "website"}, "melding_form"))
    assert customs(on_website) == []
    assert [m.get("text") for m in on_website.messages] == [m.get("text") for m in on_hulpplein.messages if "custom" not in m or not m["custom"]]


# ----------------------------------------------------------------------------- filing


def test_filing_on_the_hulpplein_records_consent_and_sends_the_print_summary():
    earlier = [{"event": "user", "text": "/greet", "parse_data": {},
                "metadata": {"channel": "hulpplein", "toestemming_vrijwilliger": True}}]
    dispatcher = run(filing.ActionFlowSubmit(), tracker(melding_slots(), {"channel": "hulpplein",
                                                                         "toestemming_vrijwilliger": True},
                                                          earlier=earlier))
    case = common.store().list_cases()[0]
    assert case.channel == "hulpplein" and case.data["toestemming_vrijwilliger"] is True
    [summary] = customs(dispatcher)
    assert summary["type"] == "hulpplein_samenvatting" and summary["zaaknummer"] == case.zaaknummer
    assert summary["kcc"]["telefoon"] == "14 0164" and "8.30" in summary["kcc"]["openingstijden"]
    zaaktype = config.gemeente()["zaaktypen"]["melding_openbare_ruimte"]
    assert summary["vervolg"] == [zaaktype["behandeltermijn"], zaaktype["vervolg"]]
    assert "Wat er aan de hand is: De tegel ligt los. Mijn BSN is [BSN weggelaten]." in summary["gevraagd"]
    as_text = json.dumps(summary)
    assert "111222333" not in as_text and "12345678" not in as_text and "jan@" not in as_text
    assert "********78" in as_text
    assert not any("text" in m.get("custom", {}) for m in dispatcher.messages if m.get("custom"))


def test_consent_no_is_recorded_and_the_website_gets_neither():
    run(filing.ActionFlowSubmit(), tracker(melding_slots(), {"channel": "hulpplein",
                                                            "toestemming_vrijwilliger": False}))
    assert common.store().list_cases()[0].data["toestemming_vrijwilliger"] is False
    slots = dict(melding_slots(), flow_run_id="run-web")
    dispatcher = run(filing.ActionFlowSubmit(), tracker(slots, {"channel": "website",
                                                               "toestemming_vrijwilliger": True}))
    web = [c for c in common.store().list_cases() if c.channel == "website"][0]
    assert "toestemming_vrijwilliger" not in web.data
    assert customs(dispatcher) == []


def test_print_summary_never_holds_a_bsn_even_when_the_case_has_one():
    case = SimpleNamespace(zaaknummer="BOZ-2026-000042", zaaktype="verhuizing_doorgeven", bsn="111222333",
                           booking_code=None,
                           data={"postcode": "4611 AB", "samenvatting": "Nieuw adres: 4611 AB 12\nContact: 0612345678"})
    summary = print_summary(case)
    assert "111222333" not in json.dumps(summary)
    assert summary["gevraagd"] == ["Nieuw adres: 4611 AB 12", "Contact: ********78"]
    assert summary["status_uitleg"].startswith("Met dit nummer en uw postcode")
    assert summary["onderwerp"] == "Verhuizing doorgeven"


@pytest.mark.parametrize("text,expected", [
    ("Contact: 06 12345678", "Contact: ********78"),
    ("bel +31 6 1234 5678", "bel *********78"),
    ("vast 0164-277000", "vast ********00"),
    ("Mijn BSN is 111222333", f"Mijn BSN is {BSN_REMOVED}"),
    ("bsn: 123.456.789", f"bsn: {BSN_REMOVED}"),
    ("e-mail jan.jansen@example.nl", "e-mail j***@example.nl"),
    ("Kerkstraat 12, 4611 AB op 15-03-2026", "Kerkstraat 12, 4611 AB op 15-03-2026"),
])
def test_text_for_paper(text, expected):
    assert safe_for_paper(text) == expected


def test_mask_keeps_only_two_digits():
    assert mask_digits("06-12 34 56 78") == "********78"


def test_consent_comes_from_the_newest_message_that_has_it():
    events = [{"event": "user", "metadata": {"toestemming_vrijwilliger": False}},
              {"event": "user", "metadata": {"toestemming_vrijwilliger": True}},
              {"event": "user", "metadata": {"channel": "hulpplein"}},
              {"event": "bot", "metadata": {"toestemming_vrijwilliger": False}}]
    assert volunteer_consent(events) is True
    assert volunteer_consent([{"event": "user", "metadata": {"toestemming_vrijwilliger": "ja"}}]) is None


# ----------------------------------------------------------------------------- page settings


def test_idle_time_comes_from_the_municipality_file_and_can_only_be_shortened_when_allowed():
    g = config.gemeente()
    assert g["hulpplein"]["inactief_minuten"] == 10
    assert idle_settings(g) == (600, 60)
    assert idle_settings(g, "8") == (600, 60)                      # not allowed: ignored
    assert idle_settings(g, "8", allow_override=True) == (8, 4)    # warning at most half
    assert idle_settings(g, "1", allow_override=True) == (4, 2)    # a floor
    assert idle_settings(g, "99999", allow_override=True) == (600, 60)  # never longer
    assert idle_settings(g, "-5", allow_override=True) == (600, 60)
    assert idle_settings({"hulpplein": {"inactief_minuten": 2, "waarschuwing_seconden": 30}}) == (120, 30)


def test_page_values_and_credentials(monkeypatch):
    values = page_values(config.gemeente(), config.flows(), 600, 60)
    assert values["telefoon"] == "14 0164" and values["telefoon_link"] == "tel:140164"
    assert values["inactief_minuten"] == 10
    assert json.loads(values["vaste_tips"])[0] == "Log nooit in met uw eigen DigiD voor de bezoeker."
    monkeypatch.delenv("HULPPLEIN_IDLE_OVERRIDE", raising=False)
    monkeypatch.delenv("HULPPLEIN_PAGE", raising=False)
    import yaml
    credentials = yaml.safe_load((config.REPO_ROOT / "credentials.yml").read_text())
    page = HulppleinPage.from_credentials(credentials["integrations.hulpplein.channel.HulppleinPage"])
    assert page.enabled and not page.allow_idle_override and page.url_prefix() == "/"
    monkeypatch.setenv("HULPPLEIN_IDLE_OVERRIDE", "true")
    assert HulppleinPage.from_credentials({}).allow_idle_override


# ----------------------------------------------------------------------------- closing a session


def test_a_revoked_session_never_verifies_again():
    now = [1_800_000_000.0]
    tokens = SessionTokens(b"s" * 32, max_age=3600, clock=lambda: now[0])
    closed, other = SessionTokens.new_session_id(), SessionTokens.new_session_id()
    token, other_token = tokens.issue(closed), tokens.issue(other)
    tokens.revoke(closed)
    assert not tokens.verify(closed, token)
    assert not tokens.verify(closed, tokens.issue(closed))
    assert tokens.verify(other, other_token)
    now[0] += 3600 + 400  # the entry may go once every token of it has expired anyway
    assert not tokens.is_revoked(closed)


def test_consent_metadata_only_from_the_hulpplein_and_only_as_true_or_false():
    assert clean_metadata({"channel": "hulpplein", "toestemming_vrijwilliger": True})["toestemming_vrijwilliger"] is True
    assert clean_metadata({"channel": "hulpplein", "toestemming_vrijwilliger": False})["toestemming_vrijwilliger"] is False
    assert "toestemming_vrijwilliger" not in clean_metadata({"channel": "hulpplein", "toestemming_vrijwilliger": "ja"})
    assert "toestemming_vrijwilliger" not in clean_metadata({"channel": "website", "toestemming_vrijwilliger": True})


def conversation(sender: str) -> DialogueStateTracker:
    state = DialogueStateTracker(sender, slots=[])
    state.update(ActionExecuted("action_listen"))
    state.update(UserUttered("Kerkstraat 12, 0612345678", {"name": "inform", "confidence": 1.0}))
    return state


@pytest.mark.parametrize("kind", ["sql", "memory"])
def test_forget_conversation_deletes_only_that_sender(kind, tmp_path):
    domain = Domain.empty()
    if kind == "sql":
        store = SQLTrackerStore(domain, dialect="sqlite", db=str(tmp_path / "tracker.db"))
    else:
        store = InMemoryTrackerStore(domain)
    agent = SimpleNamespace(tracker_store=store, lock_store=InMemoryLockStore())

    async def scenario():
        await store.save(conversation("leaving"))
        await store.save(conversation("staying"))
        assert await forget_conversation(agent, "leaving") is True
        gone = await store.retrieve("leaving")
        kept = await store.retrieve("staying")
        return gone, kept

    gone, kept = asyncio.run(scenario())
    assert gone is None or len(gone.events) == 0
    assert kept is not None and any(isinstance(e, UserUttered) for e in kept.events)
