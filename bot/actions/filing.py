"""After a flow's form ends: file the case (or look up a status), then tell the
citizen the case number, what happens next and how long it takes."""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot import config, identity, validators
from bot.actions import common
from bot.actions import flows as engine
from bot.cases.backends import get_backend
from bot.cases.store import SlotTaken
from integrations.hulpplein.summary import CONSENT_KEY, print_summary, volunteer_consent

logger = logging.getLogger(__name__)

STATUS_ATTEMPTS_SLOT = "status_pogingen"
BOOKING_TYPES = ("tijdslot",)


def _reset(flow: engine.Flow) -> List[EventType]:
    """Forget the answers once a flow is finished or stopped (privacy)."""
    slots = [*flow.slot_names(), *engine.VIRTUAL_SLOTS, engine.RUN_SLOT, engine.OUTCOME_SLOT,
             engine.ERRORS_SLOT, engine.DATE_FILTER_SLOT, engine.FLOW_SLOT, engine.RESUME_SLOT]
    return [SlotSet(slot, None) for slot in slots]


def case_payload(flow: engine.Flow, slots: Dict[Text, Any]) -> Dict[Text, Any]:
    """The answers as stored on the case: short keys, plus the address fields
    at the top level so that status lookup by postcode works."""
    data: Dict[Text, Any] = {}
    contact: Dict[Text, Any] = {}
    for step in flow.answered_steps(slots):
        value = slots[step.slot]
        key = step.slot.split("_", 1)[1] if "_" in step.slot else step.slot
        if step.type == "contact":
            contact.update(value or {})
            continue
        if step.type == "naam":
            contact["naam"] = value
        if step.type == "telefoon":
            contact["telefoon"] = value
        data[key] = value
        if isinstance(value, dict) and value.get("postcode") and "postcode" not in data:
            data["postcode"] = value["postcode"]
            data["huisnummer"] = value.get("huisnummer")
    data["samenvatting"] = "\n".join(f"{s.label}: {engine.display(s, slots.get(s.slot))}"
                                     for s in flow.answered_steps(slots))
    return {"data": data, "contact": contact}


def _booking_step(flow: engine.Flow, slots: Dict[Text, Any]) -> Optional[engine.Step]:
    return next((s for s in flow.answered_steps(slots) if s.type in BOOKING_TYPES), None)


def _resume_at(flow: engine.Flow, step: engine.Step) -> List[EventType]:
    """Go back into the form at ``step`` with every other answer kept."""
    return [SlotSet(step.slot, None), SlotSet(engine.CONFIRM_SLOT, None),
            SlotSet(engine.OUTCOME_SLOT, None), SlotSet(engine.RESUME_SLOT, True),
            FollowupAction(flow.form)]


def remote_status(case: Any) -> Optional[tuple]:
    """(status key, since) from the remote zaaksysteem (ZGW/Signalen); None when
    the case is embedded, not delivered yet, or the remote cannot tell."""
    if getattr(case, "backend", "embedded") == "embedded" or not case.remote_url:
        return None
    try:
        backend = get_backend(case.backend)
        details = getattr(backend, "fetch_status_details", None)   # ZGW: key + datumStatusGezet
        if details is not None:
            found = details(case)
            return (found.key, found.since) if found else None
        key = backend.fetch_status(case)                           # Signalen: key only
        return (key, None) if key else None
    except Exception:  # noqa: BLE001 - the local status is the fallback
        logger.warning("remote status lookup failed for %s", case.zaaknummer, exc_info=True)
        return None


class ActionFlowSubmit(Action):
    def name(self) -> Text:
        return "action_flow_submit"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[EventType]:
        flow = engine.all_flows().get(tracker.get_slot(engine.FLOW_SLOT) or "")
        outcome = tracker.get_slot(engine.OUTCOME_SLOT)
        if flow is None or outcome not in ("gestopt", "bevestigd", "wacht_op_digid"):
            # Nothing waiting to be sent: a plain "ja".
            dispatcher.utter_message(response="utter_affirm")
            return []
        if outcome == "gestopt":
            dispatcher.utter_message(text=engine.text("gestopt"))
            dispatcher.utter_message(response="utter_anything_else")
            return _reset(flow)
        if flow.zaaktype is None:
            return self.lookup_status(dispatcher, tracker, flow)
        slots = dict(tracker.slots)
        code_step = next((s for s in flow.answered_steps(slots) if s.type == "boekingscode"), None)
        if code_step is not None:
            return self.change_booking(dispatcher, flow, slots, slots[code_step.slot])

        bsn = None
        if flow.needs_identity:
            try:
                person = identity.verify_identity_token(common.find_metadata(tracker, "identity_token"))
            except identity.IdentityError as error:
                if error.reason != "missing":
                    dispatcher.utter_message(text=f"{engine.text('digid_fout')} {error.message}")
                dispatcher.utter_message(text=engine.text("digid_nodig"))
                dispatcher.utter_message(text=engine.text("digid_uitleg"))
                dispatcher.utter_message(text=engine.text("digid_terug"), buttons=[
                    {"title": "Verstuur", "payload": "/affirm"},
                    {"title": "Stoppen", "payload": "/stop"}])
                return [SlotSet(engine.OUTCOME_SLOT, "wacht_op_digid")]
            bsn = person.bsn

        payload = case_payload(flow, slots)
        if flow.raw.get("transcript"):  # call-back request: the KCC sees the conversation so far
            from bot.actions.handoff import case_attachment

            payload["data"].update(case_attachment(tracker))
        hulpplein = common.channel_of(tracker) == "hulpplein"
        consent = volunteer_consent(tracker.events) if hulpplein else None
        if consent is not None:  # "Mag de vrijwilliger u helpen met invullen?" on the Hulpplein page
            payload["data"][CONSENT_KEY] = consent
        step = _booking_step(flow, slots)
        booking = (step.raw["soort_tijdslot"], slots[step.slot]["slot_id"]) if step else None
        store = common.store()
        try:
            case = store.file_case(
                zaaktype=flow.zaaktype, channel=common.channel_of(tracker),
                data=payload["data"], contact=payload["contact"],
                idempotency_key=f"{tracker.sender_id}:{slots.get(engine.RUN_SLOT)}",
                bsn=bsn, booking=booking)
        except SlotTaken:
            dispatcher.utter_message(text=engine.text("slot_bezet"))
            return _resume_at(flow, step)
        except Exception:  # noqa: BLE001 - the citizen must always get an answer
            logger.exception("filing failed for flow %s", flow.name)
            dispatcher.utter_message(text=engine.text("fout_bij_opslaan"))
            return [SlotSet(engine.OUTCOME_SLOT, "bevestigd")]
        # On the Hulpplein page the print view gets its data (no BSN, phone masked).
        self.tell_filed(dispatcher, flow, case, summary=print_summary(case) if hulpplein else None)
        return _reset(flow)

    @staticmethod
    def tell_filed(dispatcher: CollectingDispatcher, flow: engine.Flow, case: Any,
                   summary: Optional[Dict[Text, Any]] = None) -> None:
        """``summary``: a custom payload sent along with the case number (not shown as text)."""
        zaaktype = config.gemeente()["zaaktypen"][flow.zaaktype]
        dispatcher.utter_message(text=engine.text("ingediend", zaaknummer=case.zaaknummer), json_message=summary)
        if case.booking_code:
            dispatcher.utter_message(text=engine.text("ingediend_code", code=case.booking_code))
        dispatcher.utter_message(text=f"{zaaktype['behandeltermijn']} {zaaktype['vervolg']}")
        if case.data.get("postcode"):
            dispatcher.utter_message(text=engine.text("bewaar_nummer"))
        dispatcher.utter_message(response="utter_anything_else")

    @staticmethod
    def change_booking(dispatcher: CollectingDispatcher, flow: engine.Flow,
                       slots: Dict[Text, Any], code: Text) -> List[EventType]:
        """Move or cancel an existing booking: with a new moment it moves,
        without one it is cancelled."""
        store = common.store()
        new_moment = _booking_step(flow, slots)
        try:
            if new_moment is None:
                booking = store.cancel_booking(code)
                if booking.zaaknummer:
                    store.set_status(booking.zaaknummer, "geannuleerd", "Afgezegd via de chat")
                dispatcher.utter_message(text="Uw afspraak is afgezegd. U hoeft niets meer te doen.")
            else:
                booking = store.reschedule_booking(code, slots[new_moment.slot]["slot_id"])
                moment = engine.format_moment(engine._local(booking.slot.local_start))
                dispatcher.utter_message(text=f"Uw afspraak is verzet naar {moment}. Uw code blijft {booking.code}.")
        except SlotTaken:
            dispatcher.utter_message(text=engine.text("slot_bezet"))
            return _resume_at(flow, new_moment)
        except Exception:  # noqa: BLE001 - the citizen must always get an answer
            logger.exception("changing booking failed")
            dispatcher.utter_message(text=engine.text("fout_bij_opslaan"))
            return _reset(flow)
        dispatcher.utter_message(response="utter_anything_else")
        return _reset(flow)

    @staticmethod
    def lookup_status(dispatcher: CollectingDispatcher, tracker: Tracker,
                      flow: engine.Flow) -> List[EventType]:
        """Status by case number + postcode. A wrong combination looks exactly
        like an unknown number, and failed attempts are limited per hour."""
        now = dt.datetime.now(dt.timezone.utc)
        hour_ago = (now - dt.timedelta(hours=1)).isoformat()
        attempts = [a for a in (tracker.get_slot(STATUS_ATTEMPTS_SLOT) or []) if a > hour_ago]
        limit = int(config.gemeente().get("status", {}).get("max_pogingen", 5))
        events = _reset(flow)
        if len(attempts) >= limit:
            dispatcher.utter_message(text=(
                "U heeft te vaak een verkeerd nummer of postcode gebruikt. "
                "Probeer het over een uur opnieuw."))
            dispatcher.utter_message(text=common.fill(
                "U kunt ook bellen met {kcc_telefoon}. Dat kan {kcc_openingstijden}."))
            return events + [SlotSet(STATUS_ATTEMPTS_SLOT, attempts)]
        case = common.store().find_for_status(tracker.get_slot("status_zaaknummer"),
                                              tracker.get_slot("status_postcode"))
        if case is None:
            attempts.append(now.isoformat())
            dispatcher.utter_message(text=(
                "Ik kan geen aanvraag vinden met dit nummer en deze postcode. "
                "Kijk het nummer en de postcode nog eens goed na."))
            dispatcher.utter_message(response="utter_anything_else")
            return events + [SlotSet(STATUS_ATTEMPTS_SLOT, attempts)]
        statuses = config.flows().get("statussen", {})
        status, since = case.status, case.updated_at
        if case.status_history:
            status, since = case.status_history[-1][0], case.status_history[-1][1]
        remote = remote_status(case)
        if remote is not None:
            status, since = remote
        words = statuses.get(status, f"De status is: {status}.")
        day = validators.format_date_nl(since.astimezone().date()) if since else ""
        dispatcher.utter_message(text=f"{words} Dit is sinds {day}." if day else words)
        dispatcher.utter_message(response="utter_anything_else")
        return events + [SlotSet(STATUS_ATTEMPTS_SLOT, attempts)]
