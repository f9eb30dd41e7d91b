"""Readable Dutch names for what the insights page shows: topics (intents),
flows and their steps, zaaktypen and channels.

Flow and step names come from ``flows.yml`` (the ``label`` of each step),
zaaktypen from ``gemeente.yml`` (``omschrijving``); topic names are listed here
because intents have no label elsewhere. Unknown keys fall back to the key
itself, so a new intent never breaks the page.
"""
from __future__ import annotations

from typing import Dict, List, Optional

from bot import config

TOPICS: Dict[str, str] = {
    "paspoort_idkaart": "Paspoort en ID-kaart",
    "rijbewijs": "Rijbewijs",
    "verhuizing_doorgeven": "Verhuizing doorgeven",
    "huwelijk_partnerschap": "Trouwen en partnerschap",
    "melding_openbare_ruimte": "Melding openbare ruimte",
    "grofvuil_ophalen": "Grofvuil ophalen",
    "afval_informatie": "Afval",
    "parkeervergunning": "Parkeervergunning",
    "uittreksel_brp": "Uittreksel BRP",
    "geboorte_aangifte": "Geboorte aangeven",
    "overlijden_melden": "Overlijden melden",
    "afspraak_maken": "Afspraak maken",
    "openingstijden_contact": "Openingstijden en contact",
    "belastingen": "Belastingen",
    "zorg_ondersteuning": "Zorg en ondersteuning",
    "digid_hulp": "DigiD",
    "zaak_status": "Status van een aanvraag",
    "terugbelverzoek": "Terugbelverzoek",
    "greet": "Begroeting",
    "goodbye": "Afscheid",
    "thank": "Bedankt",
    "affirm": "Ja",
    "deny": "Nee",
    "bot_challenge": "Bent u een robot?",
    "help": "Hulp",
    "stop": "Stoppen",
    "human_handoff": "Medewerker spreken",
    "out_of_scope": "Buiten het onderwerp",
    "explain": "Wat bedoelt u?",
    "inform": "Antwoord (in een flow)",
    "tevreden": "Tevreden",
    "ontevreden": "Niet tevreden",
    "nlu_fallback": "Niet herkend",
}

CHANNELS: Dict[str, str] = {
    "website": "Website",
    "hulpplein": "Digitaal Hulpplein",
    "rest": "REST (koppeling)",
    "test": "Test",
}

# Virtual steps of the flow engine (bot/actions/flows.py) and of filing.
VIRTUAL_STEPS: Dict[str, str] = {
    "flow_bevestiging": "Samenvatting (Klopt dit?)",
    "digid": "Inloggen met DigiD",
}

FALLBACK_KINDS: Dict[str, str] = {
    "niet_begrepen": "niet begrepen",
    "opnieuw_niet_begrepen": "opnieuw niet begrepen",
    "leeg": "leeg bericht",
    "te_lang": "te lang bericht",
    "opmaak": "opmaak of code",
    "geen_letters": "geen letters",
}


def topic(key: Optional[str]) -> str:
    if not key:
        return "Onbekend"
    return TOPICS.get(key) or key.replace("_", " ").capitalize()


def channel(key: Optional[str]) -> str:
    if not key:
        return "Onbekend"
    return CHANNELS.get(key, key)


def flow(key: Optional[str]) -> str:
    if not key:
        return "Onbekende flow"
    return TOPICS.get(key) or key.replace("_", " ").capitalize()


def zaaktype(key: str) -> str:
    entry = (config.gemeente().get("zaaktypen") or {}).get(key) or {}
    return entry.get("omschrijving") or key.replace("_", " ").capitalize()


def flow_steps(flow_name: str) -> List[str]:
    """The steps of a flow in the order of flows.yml, then the summary and DigiD."""
    raw = (config.flows().get("flows") or {}).get(flow_name) or {}
    steps = [s["slot"] for s in raw.get("stappen") or []]
    if raw.get("bevestigen", True):
        steps.append("flow_bevestiging")
    if raw.get("identiteit") == "verplicht":
        steps.append("digid")
    return steps


def step(flow_name: str, slot: Optional[str]) -> str:
    if not slot:
        return "Voor de eerste vraag"
    if slot in VIRTUAL_STEPS:
        return VIRTUAL_STEPS[slot]
    raw = (config.flows().get("flows") or {}).get(flow_name) or {}
    for entry in raw.get("stappen") or []:
        if entry.get("slot") == slot:
            return entry.get("label") or slot
    return slot


def form_to_flow() -> Dict[str, str]:
    """Rasa form name -> flow name (flows.yml)."""
    return {raw["form"]: name for name, raw in (config.flows().get("flows") or {}).items() if raw.get("form")}
