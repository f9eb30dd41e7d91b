"""Conversation-level actions: session start and fallback."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, Restarted, SessionStarted, SlotSet, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher

from bot.nlu.guard import input_problem
from bot.actions import common



class ActionSessionStart(Action):
    """Start a session and put the municipality's values into slots, so every
    response can use ``{kcc_telefoon}``, ``{kcc_openingstijden}`` and friends."""

    def name(self) -> Text:
        return "action_session_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[EventType]:
        events: List[EventType] = [SessionStarted()]
        intent, _ = common.latest_intent(tracker)
        if intent == "session_start":  # typed "/session_start": never leave it unanswered
            dispatcher.utter_message(response="utter_greet")
        events += [SlotSet(key, value) for key, value in common.template_vars().items()
                   if key in (domain.get("slots") or {})]
        return events + [ActionExecuted("action_listen")]


def previous_turn_was_fallback(tracker: Tracker) -> bool:
    """Did the bot also fail to understand the citizen's previous message?"""
    users_seen = 0
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            users_seen += 1
            if users_seen == 2:
                return False
        elif users_seen == 1 and event.get("event") == "action" and event.get("name") == "action_fallback":
            return True
    return False


FALLBACK_SLOT = "fallback_soort"


class ActionFallback(Action):
    """Not understood. Sets ``fallback_soort``; the rules pick the answer:
    the reason for unusable input (empty, too long, HTML, no letters), else ask
    again with topic buttons, and when the previous message was not understood
    either: click-call-face (website, 14 0164 with hours, counter)."""

    def name(self) -> Text:
        return "action_fallback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[EventType]:
        kind = input_problem(common.latest_text(tracker))
        if kind is None:
            kind = "opnieuw_niet_begrepen" if previous_turn_was_fallback(tracker) else "niet_begrepen"
        return [SlotSet(FALLBACK_SLOT, kind)]


class ActionRestart(Action):
    """A citizen who types "/restart" starts over and is told so (Rasa's own
    restart action says nothing)."""

    def name(self) -> Text:
        return "action_restart"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[EventType]:
        dispatcher.utter_message(response="utter_affirm")
        return [Restarted()]


class ActionBack(Action):
    """"/back" undoes the last message and asks what the citizen wants now."""

    def name(self) -> Text:
        return "action_back"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[EventType]:
        dispatcher.utter_message(response="utter_affirm")
        return [UserUtteranceReverted(), UserUtteranceReverted()]
