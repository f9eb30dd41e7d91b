"""Conversation-level actions: session start, product answers, fallback."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, FollowupAction, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot import validators
from bot.actions import common
from bot.actions.flows import all_flows



class ActionSessionStart(Action):
    """Start a session and put the municipality's values into slots, so every
    response can use ``{kcc_telefoon}``, ``{kcc_openingstijden}`` and friends."""

    def name(self) -> Text:
        return "action_session_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[EventType]:
        events: List[EventType] = [SessionStarted()]
        events += [SlotSet(key, value) for key, value in common.template_vars().items()
                   if key in (domain.get("slots") or {})]
        return events + [ActionExecuted("action_listen")]


class ActionStartFlow(Action):
    """"Ja" after ``utter_offer_flow`` starts the guided flow of the product the
    citizen asked about; without such a product it is a plain "ja"."""

    def name(self) -> Text:
        return "action_start_flow"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[EventType]:
        flows = all_flows()
        for event in reversed(common.user_events(tracker)):
            intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
            if intent in flows:
                return [FollowupAction(flows[intent].form)]
        dispatcher.utter_message(response="utter_affirm")
        return []


def input_problem_response(text: Text) -> Text | None:
    """The response for input that cannot be a question at all, or None."""
    if not text.strip():
        return "utter_input_empty"
    if len(text) > 1000:
        return "utter_input_too_long"
    if validators.looks_like_markup(text):
        return "utter_input_markup"
    if not validators.has_letters(text):
        return "utter_input_no_letters"
    return None


def previous_turn_was_fallback(tracker: Tracker) -> bool:
    """Did the bot also fail to understand the citizen's previous message?"""
    seen_latest_user = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            if seen_latest_user:
                return False
            seen_latest_user = True
        elif seen_latest_user and event.get("event") == "action":
            if event.get("name") == "action_fallback":
                return True
            if event.get("name") not in ("action_listen", None):
                return False
    return False


FALLBACK_SLOT = "fallback_soort"
_PROBLEM_KIND = {"utter_input_empty": "leeg", "utter_input_too_long": "te_lang",
                 "utter_input_markup": "opmaak", "utter_input_no_letters": "geen_letters"}


class ActionFallback(Action):
    """Not understood. Sets ``fallback_soort``; the rules pick the answer:
    a reason for unusable input, else ask again with topic buttons, and the
    second time in a row click-call-face (website, 14 0164 with hours, counter)."""

    def name(self) -> Text:
        return "action_fallback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[EventType]:
        if previous_turn_was_fallback(tracker):
            kind = "opnieuw_niet_begrepen"
        else:
            problem = input_problem_response(common.latest_text(tracker))
            kind = _PROBLEM_KIND[problem] if problem else "niet_begrepen"
        return [SlotSet(FALLBACK_SLOT, kind)]
