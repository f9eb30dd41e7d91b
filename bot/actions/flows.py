"""The shared form engine for every guided flow.

Each flow in ``flows.yml`` is a Rasa form. This module builds, from that data,
one validation action per form (``validate_<form>``) and one ask action per
question (``action_ask_<slot>``). Nothing here is specific to one flow: the
question texts, help texts, choices and validation rules come from the data.

Per user message inside a form the validation action decides, in order:
1. control words: "stop" (asks to confirm), "wat bedoelt u?" (explains the
   current question), "medewerker" (ends the form, answers kept, and hands
   over to the KCC: bot/actions/handoff.py);
2. the answer to the current question, validated by its step type;
3. an FAQ question asked in between: answered, then the question is asked again.
A bad answer re-asks with a clear Dutch reason and never clears other answers.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Text
from urllib.parse import urlparse

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot import config, validators
from bot.actions import common
from bot.nlu.guard import input_problem
from bot.validators import Invalid

logger = logging.getLogger(__name__)

REQUESTED_SLOT = "requested_slot"
STOP_SLOT = "flow_stop"
CONFIRM_SLOT = "flow_bevestiging"
CHANGE_SLOT = "flow_wijzigen"
VIRTUAL_SLOTS = (STOP_SLOT, CONFIRM_SLOT, CHANGE_SLOT)
# Bookkeeping slots of the running flow (reset when a flow ends).
RUN_SLOT = "flow_run_id"
OUTCOME_SLOT = "flow_uitkomst"
ERRORS_SLOT = "flow_fouten"
DATE_FILTER_SLOT = "flow_datumfilter"
FLOW_SLOT = "flow_naam"
RESUME_SLOT = "flow_hervat"
MAX_ERRORS_BEFORE_KCC = 3
AFFIRM_WORDS = {"ja", "jawel", "klopt", "ja klopt", "goed", "prima", "oke", "ok", "okay", "correct", "ja hoor", "jazeker", "zeker", "ja graag"}
DENY_WORDS = {"nee", "neen", "nope", "niet", "klopt niet", "nee klopt niet", "nee dank u", "nee, iets aanpassen"}
SKIP_WORDS = {"geen", "nee", "liever niet", "hoeft niet", "geen foto", "overslaan", "nee dank u", "niet", "-"}


# --------------------------------------------------------------------------
# The data model of flows.yml
# --------------------------------------------------------------------------
@dataclass
class Step:
    slot: Text
    type: Text
    label: Text
    vraag: Text
    uitleg: Text
    raw: Dict[str, Any] = field(default_factory=dict)

    @property
    def optional(self) -> bool:
        return bool(self.raw.get("optioneel"))

    def applies(self, slots: Dict[Text, Any]) -> bool:
        conditions = self.raw.get("alleen_als") or {}
        return all(slots.get(name) in allowed for name, allowed in conditions.items())


@dataclass
class Flow:
    name: Text
    form: Text
    zaaktype: Optional[Text]
    steps: List[Step]
    raw: Dict[str, Any]

    @property
    def confirm(self) -> bool:
        return self.raw.get("bevestigen", True)

    @property
    def needs_identity(self) -> bool:
        return self.raw.get("identiteit") == "verplicht"

    def step(self, slot: Text) -> Optional[Step]:
        return next((s for s in self.steps if s.slot == slot), None)

    def slot_names(self) -> List[Text]:
        return [s.slot for s in self.steps]

    def next_slot(self, slots: Dict[Text, Any]) -> Optional[Text]:
        for step in self.steps:
            if step.applies(slots) and slots.get(step.slot) is None:
                return step.slot
        if self.confirm and slots.get(CONFIRM_SLOT) is None:
            return CONFIRM_SLOT
        return None

    def answered_steps(self, slots: Dict[Text, Any]) -> List[Step]:
        return [s for s in self.steps if s.applies(slots) and slots.get(s.slot) is not None]


def all_flows() -> Dict[Text, Flow]:
    flows: Dict[Text, Flow] = {}
    for name, raw in (config.flows().get("flows") or {}).items():
        steps = [Step(slot=s["slot"], type=s["type"], label=s.get("label", s["slot"]),
                      vraag=s["vraag"], uitleg=s.get("uitleg", s["vraag"]), raw=s)
                 for s in raw["stappen"]]
        flows[name] = Flow(name=name, form=raw["form"], zaaktype=raw.get("zaaktype"),
                           steps=steps, raw=raw)
    return flows


def flow_for_form(form: Optional[Text]) -> Optional[Flow]:
    return next((f for f in all_flows().values() if f.form == form), None)


def flow_for_slot(slot: Text) -> Optional[Flow]:
    return next((f for f in all_flows().values() if slot in f.slot_names()), None)


def text(key: Text, **extra: Any) -> Text:
    return common.fill(config.flows()["algemeen"]["teksten"][key], **extra)


def control_buttons() -> List[Dict[str, Text]]:
    return list(config.flows()["algemeen"]["controle_knoppen"])


def today() -> dt.date:
    return dt.date.today()


# --------------------------------------------------------------------------
# Step types: options (buttons), parsing and display. One entry per type.
# --------------------------------------------------------------------------
@dataclass
class Option:
    value: Any
    label: Text


def _gemeente_path(path: Text) -> Any:
    node: Any = config.gemeente()
    for part in path.split("."):
        node = node[part]
    return node


def _choice_table(step: Step) -> Dict[Text, List[Text]]:
    """key -> [label, synonyms...] for the choice-like types."""
    if step.type == "keuze":
        return {k: [v["label"], k, *v.get("synoniemen", [])] for k, v in step.raw["keuzes"].items()}
    if step.type == "ceremonie":
        ceremonies = config.gemeente()["huwelijk"]["ceremonies"]
        return {k: [v["label"], k] for k, v in ceremonies.items()}
    if step.type == "keuze_uit_lijst":
        return {item: [item] for item in _gemeente_path(step.raw["lijst"])}
    raise KeyError(step.type)


def _choice_label(step: Step, key: Any) -> Text:
    if step.type == "keuze":
        return step.raw["keuzes"][key]["label"]
    if step.type == "ceremonie":
        c = config.gemeente()["huwelijk"]["ceremonies"][key]
        return f"{c['label']}: {c['prijs']}"
    return str(key)


def _store():
    return common.store()


def _collection_options(slots: Dict[Text, Any]) -> List[Option]:
    address = None
    for value in slots.values():
        if isinstance(value, dict) and value.get("postcode"):
            address = value
            break
    postcode = address["postcode"] if address else ""
    days = validators.collection_days(postcode, today=today(), config=config.gemeente()["grofvuil"],
                                      count=config.gemeente()["grofvuil"].get("aantal_keuzes", 4))
    return [Option(d.isoformat(), validators.format_date_nl(d)) for d in days]


def _slot_options(step: Step, slots: Dict[Text, Any]) -> List[Option]:
    kind = step.raw["soort_tijdslot"]
    settings = config.flows()["tijdsloten"][kind]
    ensure_slots(kind)
    after = dt.datetime.combine(today() + dt.timedelta(days=settings.get("minimaal_dagen_vooruit", 1)),
                                dt.time(0, 0), tzinfo=dt.timezone.utc)
    on_date = slots.get(DATE_FILTER_SLOT)
    free = _store().free_slots(kind, after=after, limit=4,
                               on_date=dt.date.fromisoformat(on_date) if on_date else None)
    return [Option({"slot_id": s.id, "start": _local(s.local_start).isoformat(timespec="minutes")},
                   format_moment(_local(s.local_start))) for s in free]


def _local(moment: dt.datetime) -> dt.datetime:
    """Local (Dutch) wall-clock time without tzinfo, as citizens read it."""
    return moment.replace(tzinfo=None)


def format_moment(moment: dt.datetime) -> Text:
    return f"{validators.format_date_nl(moment.date())} om {moment:%H.%M} uur"


_WEEKDAYS = ["maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"]
_seeded: set = set()


def ensure_slots(kind: Text) -> None:
    """Seed the booking calendar from flows.yml once per process (idempotent)."""
    if kind in _seeded:
        return
    settings = config.flows()["tijdsloten"][kind]
    _store().ensure_slots(kind, start_date=today(), days=settings["vooruit_dagen"],
                          times=settings["tijden"],
                          weekdays=[_WEEKDAYS.index(d) for d in settings["weekdagen"]],
                          capacity=1, duration_minutes=settings["duur_minuten"])
    _seeded.add(kind)


def options_for(step: Step, slots: Dict[Text, Any]) -> List[Option]:
    if step.type in ("keuze", "ceremonie", "keuze_uit_lijst"):
        return [Option(k, _choice_label(step, k)) for k in _choice_table(step)]
    if step.type == "ophaaldag":
        return _collection_options(slots)
    if step.type == "tijdslot":
        return _slot_options(step, slots)
    return []


NUMBER_WORDS = {"een": 1, "één": 1, "1": 1, "twee": 2, "2": 2, "drie": 3, "3": 3, "vier": 4, "4": 4,
                "vijf": 5, "5": 5, "zes": 6, "6": 6}


def _parse_items(step: Step, answer: Text) -> Dict[str, Any]:
    """'een bank en twee matrassen' -> {'items': {'bank': 1, 'matras': 2}, 'kuub': 2.0}."""
    catalogue = step.raw["spullen"]
    words = re.findall(r"[\wéë]+", answer.lower())
    items: Dict[str, int] = {}
    for i, word in enumerate(words):
        for key, item in catalogue.items():
            if word in item["synoniemen"]:
                count = NUMBER_WORDS.get(words[i - 1], 1) if i else 1
                items[key] = items.get(key, 0) + count
    if not items:
        names = ", ".join(v["label"].lower() for v in list(catalogue.values())[:4])
        raise Invalid(f"Ik herken geen grofvuil in uw antwoord. Noem bijvoorbeeld: {names}.")
    volume = sum(catalogue[k]["kuub"] * n for k, n in items.items())
    maximum = float(config.gemeente()["grofvuil"]["max_kuub"])
    if volume > maximum:
        raise Invalid(f"Dat is samen meer dan {common.fill('{max_kuub}')} kuub. "
                      "Dat halen wij niet in één keer op. Noemt u minder spullen?")
    return {"items": items, "kuub": volume}


def _pick_option(options: List[Option], answer: Text, step: Step) -> Any:
    """Match a typed or clicked answer against offered options."""
    if not options:
        raise Invalid("Er zijn nu geen vrije momenten. Bel ons, dan zoeken wij samen een moment.")
    table = {str(i): [o.label] for i, o in enumerate(options)}
    try:
        return options[int(validators.match_choice(answer, table))].value
    except Invalid:
        pass
    try:
        day = validators.parse_date(answer, today=today(), closed_weekdays=(), skip_holidays=False)
    except Invalid:
        raise Invalid("Dat begrijp ik niet. Kies een van de knoppen, of typ een datum.")
    for option in options:
        value = option.value if isinstance(option.value, str) else option.value["start"]
        if value.startswith(day.isoformat()):
            return option.value
    raise _DateNotOffered(day)


class _DateNotOffered(Invalid):
    def __init__(self, day: dt.date):
        self.day = day
        super().__init__(f"Op {validators.format_date_nl(day)} kan het niet.")


def _parse_url(answer: Text) -> Text:
    candidate = answer.strip().split()[0] if answer.strip() else ""
    parsed = urlparse(candidate)
    if parsed.scheme in ("http", "https") and parsed.netloc and len(candidate) <= 500:
        return candidate
    raise Invalid("Dit is geen goede link. Een link begint met https://. Geen foto? Kies dan Geen foto.")


def _parse_case_number(answer: Text) -> Text:
    prefix = config.gemeente()["gemeente"]["zaaknummer_prefix"]
    match = re.search(rf"({prefix})\s*-?\s*(\d{{4}})\s*-?\s*(\d{{1,6}})", answer, re.IGNORECASE)
    if not match:
        raise Invalid(f"Dit is geen goed nummer. Het nummer ziet er zo uit: {prefix}-2026-000123.")
    return f"{prefix}-{match.group(2)}-{int(match.group(3)):06d}"


def _parse_booking_code(answer: Text) -> Text:
    match = re.search(r"\b([A-Za-z0-9]{6})\b", answer.replace(" ", "") if len(answer) <= 8 else answer)
    code = match.group(1).upper() if match else ""
    booking = _store().get_booking(code) if code else None
    if booking is None or getattr(booking, "cancelled", False):
        raise Invalid("Deze code ken ik niet. Kijk nog eens in uw bevestiging. De code heeft 6 tekens.")
    return code


def parse_answer(step: Step, answer: Text, slots: Dict[Text, Any]) -> Any:
    """Validate one answer for ``step``; raises Invalid with a Dutch reason."""
    kind = step.type
    if step.optional and _normal(answer) in SKIP_WORDS:
        return ""
    if kind in ("keuze", "ceremonie", "keuze_uit_lijst"):
        try:
            return validators.match_choice(answer, _choice_table(step))
        except Invalid:
            raise Invalid(text("niet_begrepen_keuze"))
    parsers: Dict[Text, Callable[[Text], Any]] = {
        "tekst": validators.parse_free_text,
        "naam": validators.parse_name,
        "locatie": validators.parse_location,
        "adres": validators.parse_address,
        "postcode": validators.parse_postcode,
        "contact": lambda a: validators.parse_contact(a, optional=step.optional),
        "telefoon": validators.parse_phone,
        "url": _parse_url,
        "zaaknummer": _parse_case_number,
        "boekingscode": _parse_booking_code,
        "verhuisdatum": lambda a: validators.parse_move_date(
            a, today=today(), **_move_limits()).isoformat(),
        "spullen": lambda a: _parse_items(step, a),
        "ophaaldag": lambda a: _pick_option(options_for(step, slots), a, step),
        "tijdslot": lambda a: _pick_option(options_for(step, slots), a, step),
    }
    return parsers[kind](answer)


def _move_limits() -> Dict[str, int]:
    settings = config.gemeente().get("verhuizing", {})
    return {"max_ahead": settings.get("max_dagen_vooruit", 28), "max_back": settings.get("max_dagen_terug", 5)}


def display(step: Step, value: Any) -> Text:
    """The answer as the citizen sees it in the summary."""
    if value in ("", None):
        return "niet opgegeven"
    if step.type in ("keuze", "ceremonie", "keuze_uit_lijst"):
        return _choice_label(step, value)
    if step.type in ("adres", "locatie") and isinstance(value, dict):
        if value.get("postcode"):
            return f"{value['postcode']} {value.get('huisnummer') or ''}".strip()
        return value.get("omschrijving") or value.get("straat") or ""
    if step.type == "telefoon" and isinstance(value, str):
        return validators.format_phone(value)
    if step.type == "contact" and isinstance(value, dict):
        parts = [value.get("email"), validators.format_phone(value["telefoon"]) if value.get("telefoon") else None]
        return " en ".join(p for p in parts if p) or "niet opgegeven"
    if step.type == "spullen" and isinstance(value, dict):
        labels = step.raw["spullen"]
        return ", ".join(f"{n} × {labels[k]['label'].lower()}" for k, n in value["items"].items())
    if step.type in ("verhuisdatum", "ophaaldag"):
        return validators.format_date_nl(dt.date.fromisoformat(value))
    if step.type == "tijdslot" and isinstance(value, dict):
        return format_moment(dt.datetime.fromisoformat(value["start"]))
    return str(value)


def _normal(answer: Text) -> Text:
    return re.sub(r"[^\w\s]", "", answer.lower()).strip()


# --------------------------------------------------------------------------
# Asking a question
# --------------------------------------------------------------------------
def ask(dispatcher: CollectingDispatcher, flow: Flow, slot: Text, slots: Dict[Text, Any]) -> None:
    """Send one question with its buttons."""
    if slot == STOP_SLOT:
        dispatcher.utter_message(text=text("stop_vraag"), buttons=[
            {"title": "Ja, stoppen", "payload": "/affirm"},
            {"title": "Nee, verder", "payload": "/deny"}])
        return
    if slot == CONFIRM_SLOT:
        lines = [f"- {s.label}: {display(s, slots.get(s.slot))}" for s in flow.answered_steps(slots)]
        dispatcher.utter_message(text=text("samenvatting_intro") + "\n" + "\n".join(lines))
        dispatcher.utter_message(text=text("klopt_dit"), buttons=[
            {"title": "Ja, het klopt", "payload": "/affirm"},
            {"title": "Nee, iets aanpassen", "payload": "/deny"},
            *control_buttons()[1:]])
        return
    if slot == CHANGE_SLOT:
        buttons = [{"title": s.label, "payload": s.label} for s in flow.answered_steps(slots)]
        dispatcher.utter_message(text=text("wat_wijzigen"), buttons=buttons + control_buttons()[1:])
        return
    step = flow.step(slot)
    buttons = [{"title": o.label, "payload": o.label} for o in options_for(step, slots)]
    buttons += list(step.raw.get("knoppen") or [])
    dispatcher.utter_message(text=common.fill(step.vraag), buttons=buttons + control_buttons())


VIRTUAL_LABELS = {STOP_SLOT: "Stoppen", CONFIRM_SLOT: "Samenvatting", CHANGE_SLOT: "Aanpassen"}


def hulpplein_tip(flow: Flow, slot: Text) -> Optional[Dict[str, Any]]:
    """The volunteer's tip for this question on the Digitaal Hulpplein page (custom payload).

    Steps have a ``tip``; the summary, change and stop questions take theirs from
    ``algemeen.hulpplein.tips``. No ``text`` key: the widget must not show it in the chat.
    """
    step = flow.step(slot)
    settings = config.flows()["algemeen"].get("hulpplein") or {}
    tip = step.raw.get("tip") if step else (settings.get("tips") or {}).get(slot)
    if not tip:
        return None
    return {"type": "hulpplein_tip", "flow": flow.name, "stap": slot,
            "label": step.label if step else VIRTUAL_LABELS.get(slot, ""), "tip": common.fill(tip)}


def explain(flow: Flow, slot: Optional[Text]) -> Text:
    if slot == STOP_SLOT:
        return text("stop_uitleg")
    if slot == CONFIRM_SLOT:
        return text("klopt_dit_uitleg")
    if slot == CHANGE_SLOT:
        return text("wat_wijzigen_uitleg")
    step = flow.step(slot) if slot else None
    return common.fill(step.uitleg) if step else text("klopt_dit_uitleg")


# --------------------------------------------------------------------------
# Validation: one user message inside a form
# --------------------------------------------------------------------------
def _is_control(intent: Optional[Text], confidence: float, answer: Text) -> bool:
    if intent not in common.CONTROL_INTENTS:
        return False
    if answer.startswith("/"):
        return True
    return confidence >= 0.8 and len(answer.split()) <= 8


def _yes_no(intent: Optional[Text], answer: Text) -> Optional[bool]:
    normal = _normal(answer)
    if answer.startswith("/affirm") or normal in AFFIRM_WORDS or (intent == "affirm" and len(normal.split()) <= 4):
        return True
    if answer.startswith("/deny") or normal in DENY_WORDS or normal.startswith("nee"):
        return False
    if intent == "deny":
        return False
    return None


def _step_mentioned(flow: Flow, answer: Text, slots: Dict[Text, Any]) -> Optional[Step]:
    words = set(re.findall(r"[\w-]+", answer.lower()))
    normal = _normal(answer)
    for step in flow.answered_steps(slots):
        keys = [step.label.lower(), *step.raw.get("wijzig_woorden", [])]
        if normal == step.label.lower() or any(k in words or (" " in k and k in normal) for k in keys):
            return step
    return None


def _clear_step(flow: Flow, step: Step) -> List[EventType]:
    events = [SlotSet(step.slot, None)]
    index = flow.steps.index(step)
    for later in flow.steps[index + 1:]:  # answers that depend on this one
        if later.type in ("ophaaldag",) or later.raw.get("alleen_als", {}).get(step.slot):
            events.append(SlotSet(later.slot, None))
    events += [SlotSet(CONFIRM_SLOT, None), SlotSet(DATE_FILTER_SLOT, None)]
    return events


def _input_problem(answer: Text) -> Optional[Text]:
    """A reason the message cannot be an answer at all, or None. Letter-less
    answers (a house number, a menu number) are left to the step's parser."""
    kind = input_problem(answer)
    return text(f"invoer_{kind}") if kind in ("leeg", "te_lang", "opmaak") else None


def handle_message(dispatcher: CollectingDispatcher, tracker: Tracker, flow: Flow) -> List[EventType]:
    """All events for one user message inside ``flow``'s form."""
    slots = dict(tracker.slots)
    requested = slots.get(REQUESTED_SLOT)
    answer = common.latest_text(tracker)
    intent, confidence = common.latest_intent(tracker)
    if requested is None or requested not in (*flow.slot_names(), *VIRTUAL_SLOTS):
        return activate(dispatcher, tracker, flow)

    events: List[EventType] = []
    # The form's own from_text mapping copies the raw text into the slot; we
    # decide what it becomes, so start from "not answered".
    events.append(SlotSet(requested, None))
    slots[requested] = None

    if requested == STOP_SLOT:
        choice = _yes_no(intent, answer)
        if choice is True:
            return events + [SlotSet(OUTCOME_SLOT, "gestopt"), SlotSet(REQUESTED_SLOT, None)]
        if choice is False:
            dispatcher.utter_message(text=text("doorgaan"))
            return events + [SlotSet(REQUESTED_SLOT, flow.next_slot(slots))]
        if _is_control(intent, confidence, answer) and intent in ("explain", "help"):
            dispatcher.utter_message(text=explain(flow, STOP_SLOT))
        else:
            dispatcher.utter_message(text=text("ja_of_nee"))
        return events + [SlotSet(REQUESTED_SLOT, STOP_SLOT)]

    if _is_control(intent, confidence, answer):
        if intent == "stop":
            return events + [SlotSet(REQUESTED_SLOT, STOP_SLOT)]
        if intent == "human_handoff":
            from bot.actions.handoff import handoff_from_flow

            return events + handoff_from_flow()
        else:
            dispatcher.utter_message(text=explain(flow, requested))
        return events + [SlotSet(REQUESTED_SLOT, requested)]

    if requested == CONFIRM_SLOT:
        mentioned = _step_mentioned(flow, answer, slots)
        choice = _yes_no(intent, answer)
        if mentioned is not None and choice is not True:
            events += _clear_step(flow, mentioned)
            return events + [SlotSet(REQUESTED_SLOT, mentioned.slot)]
        if choice is True:
            return events + [SlotSet(CONFIRM_SLOT, "ja"), SlotSet(OUTCOME_SLOT, "bevestigd"),
                             SlotSet(REQUESTED_SLOT, None)]
        if choice is False:
            return events + [SlotSet(REQUESTED_SLOT, CHANGE_SLOT)]
        dispatcher.utter_message(text=text("ja_of_nee"))
        return events + [SlotSet(REQUESTED_SLOT, CONFIRM_SLOT)]

    if requested == CHANGE_SLOT:
        mentioned = _step_mentioned(flow, answer, slots)
        if mentioned is None:
            dispatcher.utter_message(text=text("niet_begrepen_keuze"))
            return events + [SlotSet(REQUESTED_SLOT, CHANGE_SLOT)]
        events += _clear_step(flow, mentioned)
        return events + [SlotSet(REQUESTED_SLOT, mentioned.slot)]

    step = flow.step(requested)
    faq = _is_faq(intent, confidence, answer, step, flow)
    if faq and step.type in FREE_TEXT_TYPES:
        # A question such as "wat kost een paspoort?" is not a description.
        return events + _answer_faq(dispatcher, intent, requested)
    problem = _input_problem(answer)
    if problem is None:
        try:
            value = parse_answer(step, answer, slots)
        except _DateNotOffered as error:
            # Offer the free moments on the nearest possible day instead.
            events.append(SlotSet(DATE_FILTER_SLOT, error.day.isoformat()))
            slots[DATE_FILTER_SLOT] = error.day.isoformat()
            if not options_for(step, slots):
                events.append(SlotSet(DATE_FILTER_SLOT, None))
                problem = error.message + " Die dag is vol of gesloten. Kies een ander moment."
            else:
                dispatcher.utter_message(text=f"Op {validators.format_date_nl(error.day)} zijn deze momenten vrij.")
                return events + [SlotSet(REQUESTED_SLOT, requested)]
        except Invalid as error:
            problem = error.message
        else:
            slots[requested] = value
            events += [SlotSet(requested, value), SlotSet(ERRORS_SLOT, 0), SlotSet(DATE_FILTER_SLOT, None)]
            following = flow.next_slot(slots)
            if following is None:  # a flow without summary is complete now
                events.append(SlotSet(OUTCOME_SLOT, "bevestigd"))
            return events + [SlotSet(REQUESTED_SLOT, following)]

    # Not a valid answer. An FAQ in between gets its answer; else the reason.
    if faq:
        return events + _answer_faq(dispatcher, intent, requested)
    errors = int(slots.get(ERRORS_SLOT) or 0) + 1
    dispatcher.utter_message(text=problem)
    if errors >= MAX_ERRORS_BEFORE_KCC:
        dispatcher.utter_message(text=text("te_veel_fouten"))
        errors = 0
    return events + [SlotSet(ERRORS_SLOT, errors), SlotSet(REQUESTED_SLOT, requested)]


# Answers in these steps are free text, so only a real question ("...?") about
# another product counts as an FAQ in between.
FREE_TEXT_TYPES = ("tekst", "locatie")


def _is_faq(intent: Optional[Text], confidence: float, answer: Text, step: Step, flow: Flow) -> bool:
    if intent not in common.PRODUCT_INTENTS or intent == flow.name or confidence < 0.7:
        return False
    return step.type not in FREE_TEXT_TYPES or answer.rstrip().endswith("?")


def _answer_faq(dispatcher: CollectingDispatcher, intent: Text, requested: Text) -> List[EventType]:
    dispatcher.utter_message(response=f"utter_{intent}")
    dispatcher.utter_message(text=text("faq_terug"))
    return [SlotSet(REQUESTED_SLOT, requested)]


def activate(dispatcher: CollectingDispatcher, tracker: Tracker, flow: Flow) -> List[EventType]:
    """First run of a form: intro, a fresh run id, answers from the first message."""
    slots = dict(tracker.slots)
    if slots.get(RESUME_SLOT) and slots.get(FLOW_SLOT) == flow.name:
        # Back into a flow that was interrupted after confirmation (for example
        # a time slot that someone else took): keep every answer.
        return [SlotSet(RESUME_SLOT, False), SlotSet(REQUESTED_SLOT, flow.next_slot(slots))]
    events: List[EventType] = [SlotSet(RUN_SLOT, uuid.uuid4().hex), SlotSet(OUTCOME_SLOT, None),
                               SlotSet(FLOW_SLOT, flow.name), SlotSet(RESUME_SLOT, False),
                               SlotSet(ERRORS_SLOT, 0), SlotSet(DATE_FILTER_SLOT, None),
                               *[SlotSet(s, None) for s in VIRTUAL_SLOTS]]
    for slot in flow.slot_names():
        slots[slot] = None
        events.append(SlotSet(slot, None))
    if flow.raw.get("intro"):
        dispatcher.utter_message(text=common.fill(flow.raw["intro"]))
    # A first message such as "de lantaarnpaal is kapot" already answers the
    # first choice question: take it, but only when it is unambiguous.
    first = flow.steps[0]
    if first.type == "keuze":
        try:
            value = validators.match_choice(common.latest_text(tracker), _choice_table(first))
        except Invalid:
            value = None
        if value is not None and value != "overig":
            slots[first.slot] = value
            events.append(SlotSet(first.slot, value))
    return events + [SlotSet(REQUESTED_SLOT, flow.next_slot(slots))]


# --------------------------------------------------------------------------
# Rasa actions, built from the data
# --------------------------------------------------------------------------
class FlowValidationAction(Action):
    """``validate_<form>``: runs the engine for one form."""

    form: Text = ""

    def name(self) -> Text:
        return f"validate_{self.form}"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[EventType]:
        return handle_message(dispatcher, tracker, flow_for_form(self.form))


class FlowAskAction(Action):
    """``action_ask_<slot>``: asks one question of the active flow."""

    slot: Text = ""

    def name(self) -> Text:
        return f"action_ask_{self.slot}"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[EventType]:
        active = (tracker.active_loop or {}).get("name")
        flow = flow_for_form(active) or flow_for_slot(self.slot)
        ask(dispatcher, flow, self.slot, dict(tracker.slots))
        if common.channel_of(tracker) == "hulpplein":
            tip = hulpplein_tip(flow, self.slot)
            if tip:  # a custom payload for the tip panel, never part of the chat text
                dispatcher.utter_message(json_message=tip)
        return []


def _build_actions() -> Dict[Text, type]:
    built: Dict[Text, type] = {}
    for flow in all_flows().values():
        built[f"validate_{flow.form}"] = type(f"Validate_{flow.form}", (FlowValidationAction,),
                                             {"form": flow.form, "__module__": __name__})
        for slot in flow.slot_names():
            built[f"action_ask_{slot}"] = type(f"Ask_{slot}", (FlowAskAction,),
                                               {"slot": slot, "__module__": __name__})
    for slot in VIRTUAL_SLOTS:
        built[f"action_ask_{slot}"] = type(f"Ask_{slot}", (FlowAskAction,), {"slot": slot, "__module__": __name__})
    return built


ACTIONS = _build_actions()
