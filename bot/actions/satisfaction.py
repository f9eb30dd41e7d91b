"""One 👍/👎 question per conversation, when the municipality switches it on.

``gemeente.yml``::

    tevredenheid:
      aan: false      # true: ask "Heb ik u goed geholpen?" once per conversation

``action_tevredenheid_vragen`` runs after ``utter_goodbye`` (rule "goodbye";
the "Nee" button of "Kan ik u nog ergens anders mee helpen?" after a finished
flow is ``/goodbye`` too). It sets ``tevredenheid_vragen`` to true only when
the question is switched on, has not been asked in this conversation (slot
``tevredenheid_onderwerp``; slots do not carry over to a new session) and the
conversation had a topic: a product answer (``utter_<product intent>``) or a
guided flow. A rule then sends ``utter_tevredenheid_vraag`` (the text stays in
domain.yml); ``tevredenheid_onderwerp`` holds the topic. The answer is the intent ``tevreden`` or ``ontevreden`` (the buttons);
the insights page reads it from the tracker store (bot/insights). Nothing else
is stored.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot import config
from bot.actions.common import PRODUCT_INTENTS

TOPIC_SLOT = "tevredenheid_onderwerp"
ASK_SLOT = "tevredenheid_vragen"
FLOW_SLOT = "flow_naam"


def enabled() -> bool:
    return bool((config.gemeente().get("tevredenheid") or {}).get("aan", False))


def last_topic(events: List[Dict[Text, Any]]) -> Optional[Text]:
    """The newest product answer or guided flow of the current session."""
    for event in reversed(events):
        kind = event.get("event")
        if kind == "session_started":
            return None
        if kind == "action":
            name = event.get("name") or ""
            if name.startswith("utter_") and name[6:] in PRODUCT_INTENTS:
                return name[6:]
        elif kind == "slot" and event.get("name") == FLOW_SLOT and event.get("value"):
            return str(event["value"])
    return None


class ActionTevredenheidVragen(Action):
    def name(self) -> Text:
        return "action_tevredenheid_vragen"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[EventType]:
        if not enabled() or tracker.get_slot(TOPIC_SLOT):
            return [SlotSet(ASK_SLOT, False)]
        topic = last_topic(tracker.events)
        if topic is None:
            return [SlotSet(ASK_SLOT, False)]
        # The rule "ask the satisfaction question" sends utter_tevredenheid_vraag.
        return [SlotSet(ASK_SLOT, True), SlotSet(TOPIC_SLOT, topic)]
