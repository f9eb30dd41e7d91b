"""Escalation to the KCC: live takeover by an employee, or a call-back request.

``action_kcc_handoff`` runs for the ``human_handoff`` intent, for the
"Medewerker" button in a flow step (the form engine sends it here) and for the
"Ja, een medewerker" button after a second misunderstanding.

* KCC open (``bot.kcc.hours``), live chat on, and a channel that can show an
  employee's messages (the website chat): the conversation joins the queue
  (``bot.kcc.queue``), the citizen hears their place in B1 words, and the bot
  pauses (``ConversationPaused``). While paused Rasa stores the citizen's
  messages without answering; the KCC console shows them. The Rasa process
  (``integrations/kcc``) resumes the bot when the employee hands back.
* Otherwise: the citizen can leave a call-back request (flow ``terugbelverzoek``).

A conversation that is already in the queue keeps its place ("Ik wacht nog
even" after the call-back offer comes back here).
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, ConversationPaused, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.actions import common
from bot.kcc import hours, settings, texts
from bot.kcc.models import STATE_ACTIVE, STATE_CALLBACK

logger = logging.getLogger(__name__)

FLOW_SLOT = "flow_naam"
PRODUCT_LABELS = {
    "paspoort_idkaart": "Paspoort of ID-kaart", "rijbewijs": "Rijbewijs",
    "verhuizing_doorgeven": "Verhuizing", "huwelijk_partnerschap": "Huwelijk of partnerschap",
    "melding_openbare_ruimte": "Melding openbare ruimte", "grofvuil_ophalen": "Grofvuil",
    "afval_informatie": "Afval", "parkeervergunning": "Parkeervergunning",
    "uittreksel_brp": "Uittreksel BRP", "geboorte_aangifte": "Geboorteaangifte",
    "overlijden_melden": "Overlijden", "afspraak_maken": "Afspraak", "openingstijden_contact":
    "Openingstijden", "belastingen": "Belastingen", "zorg_ondersteuning": "Zorg en ondersteuning",
    "digid_hulp": "DigiD", "zaak_status": "Status aanvraag",
}


def topic_of(tracker: Tracker) -> str:
    """What the conversation is about, for the queue: the running flow, else the
    newest product question, else a general question."""
    flow = tracker.get_slot(FLOW_SLOT)
    if flow:
        return PRODUCT_LABELS.get(flow, str(flow).replace("_", " ").capitalize())
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
            if intent in PRODUCT_LABELS:
                return PRODUCT_LABELS[intent]
    return "Algemene vraag"


def _queue():
    from bot.kcc.queue import KccQueue

    return KccQueue()


async def _notify_consoles() -> None:
    try:
        from bot.kcc.hub import get_hub

        await get_hub().publish("console", {"type": "queue"})
    except Exception:  # noqa: BLE001 - consoles re-read the queue every second anyway
        logger.warning("kcc: could not notify the consoles", exc_info=True)


def tell_position(dispatcher: CollectingDispatcher, position: int) -> None:
    if position <= 1:
        dispatcher.utter_message(text=texts.text("wachtrij_eerste"))
    else:
        dispatcher.utter_message(text=texts.text("wachtrij", positie=position))
    dispatcher.utter_message(text=texts.text("wachtrij_uitleg"))


def offer_callback(dispatcher: CollectingDispatcher, reason: Text) -> None:
    """No live chat now: say why, then offer a call-back request (or the phone)."""
    dispatcher.utter_message(text=texts.text(reason))
    dispatcher.utter_message(text=texts.text("terugbellen_aanbod"),
                             buttons=texts.buttons("terugbellen", "nee"))


class ActionKccHandoff(Action):
    def name(self) -> Text:
        return "action_kcc_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[EventType]:
        events: List[EventType] = []
        if (tracker.active_loop or {}).get("name"):
            # Leave the flow; its answers stay in their slots for the employee.
            events += [ActiveLoop(None), SlotSet("requested_slot", None)]
        config = settings.handoff()
        input_channel = tracker.get_latest_input_channel()
        try:
            queue = _queue()
            existing = queue.open_entry(tracker.sender_id)
            if existing is not None:
                if existing.state == STATE_ACTIVE:
                    dispatcher.utter_message(text=texts.text("medewerker_komt"))
                else:
                    entry = queue.keep_waiting(tracker.sender_id, config.wait_seconds) or existing
                    tell_position(dispatcher, queue.position(entry))
                    await _notify_consoles()
                return events + [ConversationPaused()]
            if not hours.is_open():
                offer_callback(dispatcher, "gesloten")
                return events
            if not config.enabled or input_channel not in config.live_channels:
                offer_callback(dispatcher, "geen_live_chat")
                return events
            entry, _created = queue.enqueue(
                tracker.sender_id, channel=common.channel_of(tracker), input_channel=input_channel,
                topic=topic_of(tracker), wait_seconds=config.wait_seconds)
            position = queue.position(entry)
        except Exception:  # noqa: BLE001 - the citizen must always get an answer
            logger.exception("kcc: could not put the conversation in the queue")
            offer_callback(dispatcher, "storing")
            return events
        if tracker.get_slot(FLOW_SLOT):
            dispatcher.utter_message(text=texts.text("antwoorden_bewaard"))
        tell_position(dispatcher, position)
        await _notify_consoles()
        return events + [ConversationPaused()]


class ActionKccLeaveQueue(Action):
    """The citizen chose a call-back request: leave the queue (if in it)."""

    def name(self) -> Text:
        return "action_kcc_verlaat_wachtrij"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[EventType]:
        try:
            if _queue().close_open(tracker.sender_id, STATE_CALLBACK, "terugbelverzoek"):
                await _notify_consoles()
        except Exception:  # noqa: BLE001 - the call-back flow must start anyway
            logger.exception("kcc: could not take the conversation out of the queue")
        return []


class ActionKccAfterOffer(Action):
    """"Nee, dank u" to the call-back offer: back into an interrupted flow (all
    answers kept), else "Kan ik u nog ergens anders mee helpen?"."""

    def name(self) -> Text:
        return "action_kcc_na_aanbod"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[EventType]:
        from rasa_sdk.events import FollowupAction

        from bot.actions import flows as engine

        flow = engine.all_flows().get(tracker.get_slot(engine.FLOW_SLOT) or "")
        if flow is not None and tracker.get_slot(engine.RUN_SLOT) and flow.name != "terugbelverzoek":
            dispatcher.utter_message(text=texts.text("verder_met_vragen"))
            return [SlotSet(engine.RESUME_SLOT, True), FollowupAction(flow.form)]
        dispatcher.utter_message(response="utter_anything_else")
        return []


def case_attachment(tracker: Tracker) -> Dict[str, Any]:
    """What a call-back request carries for the KCC: the transcript and the
    answers of a flow that was interrupted."""
    from bot.kcc.transcript import as_text, flow_answers, transcript

    lines = transcript(tracker.events)
    return {
        "transcript": lines,
        "transcript_tekst": as_text(lines),
        "eerdere_antwoorden": flow_answers(dict(tracker.slots), exclude_flows=("terugbelverzoek",)),
    }


def handoff_from_flow() -> List[EventType]:
    """Events for the form engine when the citizen picks "Medewerker" in a step:
    end the form (answers are kept) and run the handoff next."""
    from rasa_sdk.events import FollowupAction

    return [SlotSet("requested_slot", None), FollowupAction("action_kcc_handoff")]

