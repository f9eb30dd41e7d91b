"""Conversation-level actions: session start and fallback."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
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
