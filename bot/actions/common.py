"""Helpers shared by the custom actions: template values, intents, metadata."""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Tracker

from bot import config

PRODUCT_INTENTS = (
    "paspoort_idkaart", "rijbewijs", "verhuizing_doorgeven", "huwelijk_partnerschap",
    "melding_openbare_ruimte", "grofvuil_ophalen", "afval_informatie", "parkeervergunning",
    "uittreksel_brp", "geboorte_aangifte", "overlijden_melden", "afspraak_maken",
    "openingstijden_contact", "belastingen", "zorg_ondersteuning", "digid_hulp", "zaak_status",
)

# Intents that steer the conversation in every step of a flow.
CONTROL_INTENTS = ("stop", "explain", "help", "human_handoff")

# Channels we record on cases; anything else is stored as "website".
KNOWN_CHANNELS = ("website", "hulpplein", "rest", "test")

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def template_vars() -> Dict[str, str]:
    """Municipal values for ``{placeholders}`` in flow texts and responses."""
    values = dict(config.template_vars())
    g = config.gemeente()
    values["zaaknummer_prefix"] = g["gemeente"]["zaaknummer_prefix"]
    values["max_kuub"] = str(g.get("grofvuil", {}).get("max_kuub", 2)).replace(".", ",")
    return values


def fill(text: Text, **extra: Any) -> Text:
    """Fill ``{name}`` placeholders; unknown names are left as they are."""
    values = template_vars()
    values.update({k: str(v) for k, v in extra.items()})
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def latest_intent(tracker: Tracker) -> tuple[Optional[Text], float]:
    intent = (tracker.latest_message or {}).get("intent") or {}
    return intent.get("name"), float(intent.get("confidence") or 0.0)


def latest_text(tracker: Tracker) -> Text:
    return (tracker.latest_message or {}).get("text") or ""


def user_events(tracker: Tracker) -> List[Dict[str, Any]]:
    return [e for e in tracker.events if e.get("event") == "user"]


def latest_metadata(tracker: Tracker) -> Dict[str, Any]:
    """Metadata of the newest user message (channel, page URL, identity token)."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return event.get("metadata") or {}
    return {}


def find_metadata(tracker: Tracker, key: Text) -> Any:
    """The newest value of ``key`` in any user message's metadata."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            value = (event.get("metadata") or {}).get(key)
            if value:
                return value
    return None


def channel_of(tracker: Tracker) -> Text:
    channel = find_metadata(tracker, "channel")
    if channel in KNOWN_CHANNELS:
        return channel
    return "website"


_STORE = None


def store():
    """The process-wide case store, migrated on first use."""
    global _STORE
    if _STORE is None:
        from bot.cases.store import CaseStore

        candidate = CaseStore()
        candidate.migrate()
        _STORE = candidate
    return _STORE
