"""The profiled speed fixes of bot/speedups.py keep Rasa's behaviour.

1. Action server replies: the short way (``quick_valid``, one event type per
   event) says "valid" exactly when Rasa's full schema does, for generated
   replies (right and wrong field types, missing fields, unknown event names)
   and for real Rasa events; invalid replies raise the same ValidationError
   message as Rasa's own ``RemoteAction._validate_action_result``.
2. ``Event.resolve_by_type`` with a memory: same classes as Rasa, same errors,
   ``default`` never remembered, a new Event subclass empties the memory.
3. Slot copies (``Slot.__copy__``): the same shallow copy as ``copy.copy``
   without it, for every slot of domain.yml; trackers do not share slots.
4. The SQLite fix, which lives in bot/tracker_store.py (FastSQLTrackerStore;
   more in tests/test_tracker_store.py) instead of a patch: pooled WAL engine
   for a file on every connection, events round-trip (also with Rasa's own
   store on the same file), connections usable from other threads; in-memory
   SQLite and Rasa's own SQLTrackerStore untouched.
5. ``BOT_SPEEDUPS=0``: nothing patched (checked in a separate, stock process,
   which also gives the reference answers of Rasa's original code).

No servers; the only subprocess is the stock Rasa process of section 5.
"""
from __future__ import annotations

import asyncio
import copy
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import jsonschema
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.constants import DOCS_BASE_URL
from rasa.shared.core import events as ev
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.utils.common import all_subclasses
from rasa.shared.utils.schemas.events import EVENT_SCHEMA
from sqlalchemy.pool import QueuePool

from bot import speedups

ROOT = Path(__file__).resolve().parent.parent

# The fixes are active in this process (idempotent; the channel modules that
# other test modules import call it as well).
assert speedups.apply() is True

SPEC = RemoteAction.action_response_format_spec()
FULL = validator_for(SPEC)(SPEC)  # our own validator of Rasa's full schema, independent of bot/speedups.py
EVENT_NAMES = [variant["properties"]["event"]["const"] for variant in EVENT_SCHEMA["oneOf"]]
SUFFIX = (". Failed to validate Action server response from API, "
          "make sure your response from the Action endpoint is valid. "
          f"For more information about the format visit {DOCS_BASE_URL}/custom-actions")


# Hypothesis: no deadline, no example database, and no "explain" phase (on a failure it reruns the
# test hundreds of times to annotate the example: a minute per failing test with these strategies).
QUICK = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow],
             phases=[phase for phase in Phase if phase != Phase.explain])


def full_valid(reply) -> bool:
    return FULL.is_valid(reply)


def rasa_message(reply) -> str:
    """The message Rasa's own _validate_action_result raises: jsonschema.validate + suffix."""
    with pytest.raises(jsonschema.ValidationError) as caught:
        jsonschema.validate(reply, SPEC)
    return caught.value.message + SUFFIX


# Invalid replies, answered by stock Rasa in a separate process (end of this module).
BAD_REPLIES = [
    [],
    "tekst",
    None,
    5,
    {"events": "slot"},
    {"events": None},
    {"events": [{"event": "slot", "name": "a"}]},
    {"events": [{"event": "slot", "name": 3, "value": 1}]},
    {"events": [{"name": "a", "value": 1}]},
    {"events": [{"event": "onbekend"}]},
    {"events": [{"event": 7}]},
    {"events": [{"event": "bot", "timestamp": "nu"}]},
    {"events": [{"event": "bot", "metadata": []}]},
    {"events": [{"event": "action", "name": "a", "confidence": "hoog"}]},
    {"events": [{"event": "action", "hide_rule_turn": 1}]},
    {"events": [{"event": "entities"}]},
    {"events": [{"event": "entities", "entities": [{"entity": "x"}]}]},
    {"events": [{"event": "user", "parse_data": {"intent": {"name": 1}}}]},
    {"events": [{"event": "user", "parse_data": {"entities": [{"entity": "x", "value": 1, "start": "0"}]}}]},
    {"events": [{"event": "user", "parse_data": {"response_selector": {"all_retrieval_intents": "faq"}}}]},
    {"events": [{"event": "slot", "name": "a", "value": 1}, "geen dict"]},
    {"events": [{"event": "slot", "name": "a", "value": 1}], "responses": {"text": "x"}},
    {"events": [], "responses": ["x"]},
    {"responses": [{"text": "x"}, 5]},
]

STOCK_SCRIPT = textwrap.dedent("""
    import json, sys
    from rasa.core.actions.action import RemoteAction
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.events import Event
    from rasa.shared.core.slots import Slot
    from rasa.shared.utils.schemas.events import EVENT_SCHEMA
    import jsonschema

    originals = (RemoteAction.__dict__["_validate_action_result"], Event.__dict__["resolve_by_type"],
                 SQLTrackerStore.__dict__["__init__"])
    import integrations.rest.channel, integrations.webchat.channel  # each calls speedups.apply()
    from bot import speedups
    out = {"apply": speedups.apply(), "applied": speedups._applied,
           "unchanged": [RemoteAction.__dict__["_validate_action_result"] is originals[0],
                         Event.__dict__["resolve_by_type"] is originals[1],
                         SQLTrackerStore.__dict__["__init__"] is originals[2]],
           "slot_copy": "__copy__" in vars(Slot),
           "validate_module": RemoteAction._validate_action_result.__module__,
           "messages": [], "resolved": {}}
    action = RemoteAction("action_x", None)
    for reply in json.loads(sys.argv[1]):
        try:
            out["messages"].append(["ok", action._validate_action_result(reply)])
        except jsonschema.ValidationError as error:
            out["messages"].append(["error", error.message])
    names = [v["properties"]["event"]["const"] for v in EVENT_SCHEMA["oneOf"]]
    for name in names + ["topic", "event", "onbekend", ""]:
        try:
            found = Event.resolve_by_type(name)
            out["resolved"][name] = found and found.__module__ + "." + found.__qualname__
        except ValueError as error:
            out["resolved"][name] = "ValueError: " + str(error)
    print("RESULT" + json.dumps(out))
""")


@pytest.fixture(scope="module", autouse=True)
def stock_process():
    """Stock Rasa in a separate process with BOT_SPEEDUPS=0. It imports our channel modules (which
    call apply()) and answers with Rasa's original code. Started with the first test of this module
    so that its Rasa import runs alongside the tests; read by the tests at the end."""
    env = {**os.environ, "BOT_SPEEDUPS": "0", "PYTHONPATH": str(ROOT)}
    replies_json = json.dumps(BAD_REPLIES + [{"events": []}, {}])
    process = subprocess.Popen([sys.executable, "-c", STOCK_SCRIPT, replies_json], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield process
    if process.poll() is None:
        process.kill()
        process.communicate()


@pytest.fixture(scope="module")
def stock_rasa(stock_process):
    stdout, stderr = stock_process.communicate(timeout=120)
    assert stock_process.returncode == 0, stderr[-3000:]
    line = [line for line in stdout.splitlines() if line.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT"):])


def test_the_schema_has_the_23_event_types():
    assert len(EVENT_NAMES) == 23 == len(set(EVENT_NAMES))


# --------------------------------------------------------------------------- generated action replies
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=4))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)
wrong = st.one_of(st.integers(), st.lists(scalars, max_size=2), st.dictionaries(st.text(max_size=3), scalars, max_size=2),
                  st.booleans())
text_or_null = st.one_of(st.text(max_size=6), st.none())
number_or_null = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(0, 10**10), st.none())


def weighted(right, wrong_values, rights: int):
    """``right`` in ``rights`` of ``rights + 1`` draws. (st.one_of(right, right, wrong) would not do:
    one_of merges equal branches and flattens nested ones.)"""
    return st.integers(0, rights).flatmap(lambda i: right if i else wrong_values)


def right_or_wrong(right, wrong_values=wrong):
    return weighted(right, wrong_values, 3)


entity = st.fixed_dictionaries({}, optional={
    "entity": right_or_wrong(st.text(max_size=6)),
    "value": json_values,
    "start": right_or_wrong(st.integers(0, 50)),
    "end": right_or_wrong(st.integers(0, 50)),
    "confidence": right_or_wrong(st.floats(0, 1)),
    "extractor": right_or_wrong(text_or_null),
    "role": right_or_wrong(text_or_null),
    "group": right_or_wrong(text_or_null),
})
entities = right_or_wrong(st.lists(right_or_wrong(entity, scalars), max_size=3))
intent = right_or_wrong(st.fixed_dictionaries({}, optional={
    "name": right_or_wrong(st.text(max_size=6)),
    "confidence": right_or_wrong(st.floats(0, 1)),
}))
response_selector = right_or_wrong(st.one_of(
    st.fixed_dictionaries({"all_retrieval_intents": right_or_wrong(st.lists(st.text(max_size=4), max_size=2))}),
    st.dictionaries(st.sampled_from(["faq", "chitchat/ask", "-", "default"]), right_or_wrong(st.fixed_dictionaries({}, optional={
        "response": right_or_wrong(st.fixed_dictionaries({}, optional={
            "responses": right_or_wrong(st.lists(st.fixed_dictionaries({"text": right_or_wrong(st.text(max_size=4))}),
                                                 max_size=2)),
            "confidence": right_or_wrong(st.floats(0, 1)),
            "utter_action": right_or_wrong(st.text(max_size=4)),
        })),
        "ranking": right_or_wrong(st.lists(st.fixed_dictionaries({}, optional={
            "id": right_or_wrong(st.integers()),
            "confidence": right_or_wrong(st.floats(0, 1)),
            "intent_response_key": right_or_wrong(st.text(max_size=4)),
        }), max_size=2)),
    })), max_size=2),
))
parse_data = right_or_wrong(st.fixed_dictionaries({}, optional={
    "text": right_or_wrong(text_or_null),
    "intent": intent,
    "intent_ranking": right_or_wrong(st.lists(intent, max_size=2)),
    "entities": entities,
    "response_selector": response_selector,
    "message_id": json_values,
}))
event_names = weighted(st.sampled_from(EVENT_NAMES), st.one_of(
    st.sampled_from(["topic", "event", "unknown", "", "User", "slot ", "SLOT", "wrong_action"]),
    st.none(), st.integers(), st.booleans(), st.lists(st.sampled_from(EVENT_NAMES), max_size=1),
), 3)
event_fields = {
    "timestamp": right_or_wrong(number_or_null),
    "metadata": right_or_wrong(st.one_of(st.none(), st.dictionaries(st.text(max_size=4), json_values, max_size=2))),
    "name": right_or_wrong(text_or_null),
    "value": json_values,
    "text": right_or_wrong(text_or_null),
    "input_channel": right_or_wrong(text_or_null),
    "message_id": right_or_wrong(text_or_null),
    "parse_data": parse_data,
    "entities": entities,
    "policy": right_or_wrong(text_or_null),
    "confidence": right_or_wrong(number_or_null),
    "hide_rule_turn": right_or_wrong(st.booleans()),
    "action_text": right_or_wrong(text_or_null),
    "data": json_values,
}
event = weighted(st.fixed_dictionaries({"event": event_names}, optional=event_fields),
                 st.fixed_dictionaries({}, optional=event_fields), 5)  # seldom without "event"


def mostly(right):
    return weighted(right, wrong, 7)


TYPE_FIELDS = {
    "user": {"text": text_or_null, "input_channel": text_or_null, "message_id": text_or_null,
             "parse_data": parse_data},
    "action": {"name": text_or_null, "policy": text_or_null, "confidence": number_or_null,
               "hide_rule_turn": st.booleans(), "action_text": text_or_null},
    "entities": {"entities": entities},
}


def typed_event(name):
    """An event of one type with mostly right fields: valid often, so both answers are tested."""
    optional = {"timestamp": mostly(number_or_null), "name": json_values, "data": json_values,
                "metadata": mostly(st.one_of(st.none(), st.dictionaries(st.text(max_size=4), json_values, max_size=2)))}
    optional.update({field: mostly(values) for field, values in TYPE_FIELDS.get(name, {}).items()})
    required = {"event": st.just(name)}
    if name == "slot":
        required.update(name=mostly(st.text(max_size=6)), value=json_values)
    if name == "entities":
        required.update(entities=mostly(st.lists(mostly(entity), max_size=2)))
    for field in required:
        optional.pop(field, None)
    return st.fixed_dictionaries(required, optional=optional)


typed_events = st.one_of(*[typed_event(name) for name in EVENT_NAMES])
responses = right_or_wrong(st.lists(right_or_wrong(
    st.dictionaries(st.sampled_from(["text", "template", "buttons", "custom"]), json_values, max_size=3), scalars),
    max_size=3))
replies = st.one_of(
    st.fixed_dictionaries({}, optional={
        "events": right_or_wrong(st.lists(st.one_of(event, typed_events, scalars), max_size=4)),
        "responses": responses,
        "other": json_values,
    }),
    st.fixed_dictionaries({"events": st.lists(mostly(typed_events), min_size=1, max_size=3)},
                          optional={"responses": mostly(st.lists(st.dictionaries(st.text(max_size=4), json_values,
                                                                                 max_size=2), max_size=2))}),
    st.fixed_dictionaries({"events": st.lists(typed_events, min_size=1, max_size=3)}),
    json_values,
)


def test_quick_valid_says_valid_exactly_when_rasas_full_schema_does():
    seen = Counter()

    @settings(max_examples=250, **QUICK)
    @given(reply=replies)
    def check(reply):
        valid = full_valid(reply)
        assert speedups.quick_valid(reply) is valid
        seen[valid] += 1

    check()
    # The check only means something when both answers come up often.
    assert seen[True] >= 40 and seen[False] >= 40, seen


@pytest.mark.parametrize("name", EVENT_NAMES)
def test_quick_valid_is_exact_for_each_event_type(name):
    seen = Counter()
    others = st.lists(st.one_of(typed_events, event), max_size=2)

    @settings(max_examples=15, **QUICK)
    @given(events=st.lists(typed_event(name), min_size=1, max_size=2), before=others, after=others)
    def check(events, before, after):
        for reply in ({"events": events}, {"events": before + events + after, "responses": [{"text": "x"}]}):
            valid = full_valid(reply)
            assert speedups.quick_valid(reply) is valid
            seen[valid] += 1
        broken = {"events": events[:-1] + [{**events[-1], "timestamp": "gisteren"}]}
        assert not full_valid(broken)
        assert speedups.quick_valid(broken) is False

    check()
    assert seen[True] >= 1, seen  # valid replies of this type came up (about 10 of 30 on average)


@settings(max_examples=100, **QUICK)
@given(reply=replies)
def test_validate_action_result_raises_rasas_own_error(reply):
    if full_valid(reply):
        assert speedups.validate_action_result(None, reply) is True
        return
    with pytest.raises(jsonschema.ValidationError) as caught:
        speedups.validate_action_result(None, reply)
    assert caught.value.message == rasa_message(reply)


# --------------------------------------------------------------------------- real Rasa events
NOW = 1_767_000_000.25
PARSE_DATA = {
    "text": "ik ben mijn paspoort kwijt",
    "intent": {"name": "paspoort_kwijt", "confidence": 0.93},
    "intent_ranking": [{"name": "paspoort_kwijt", "confidence": 0.93}, {"name": "greet", "confidence": 0.02}],
    "entities": [{"entity": "document", "value": "paspoort", "start": 7, "end": 15, "confidence": 0.9,
                  "extractor": "DIETClassifier", "role": None, "group": None}],
    "response_selector": {"all_retrieval_intents": ["faq"],
                          "faq": {"response": {"responses": [{"text": "Zie de website."}], "confidence": 0.8,
                                               "intent_response_key": "faq/paspoort", "utter_action": "utter_faq/paspoort"},
                                  "ranking": [{"id": 1, "confidence": 0.8, "intent_response_key": "faq/paspoort"}]}},
}
REAL_EVENTS = [
    ev.UserUttered("ik ben mijn paspoort kwijt", intent=PARSE_DATA["intent"], entities=PARSE_DATA["entities"],
                   parse_data=PARSE_DATA, timestamp=NOW, input_channel="webchat", message_id="m1",
                   metadata={"lang": "nl"}),
    ev.UserUttered("hallo"),
    ev.ActionExecuted("action_listen"),
    ev.ActionExecuted("action_paspoort", policy="RulePolicy", confidence=1.0, hide_rule_turn=True, timestamp=NOW),
    ev.SlotSet("document", "paspoort"),
    ev.SlotSet("leeg", None),
    ev.SlotSet("lijst", [1, {"a": "b"}], timestamp=NOW, metadata={"k": 1}),
    ev.EntitiesAdded([{"entity": "document", "value": "rijbewijs"}]),
    ev.DefinePrevUserUtteredFeaturization(False),
    ev.ReminderCancelled(name="herinnering", intent="greet"),
    ev.ReminderScheduled("greet", datetime(2026, 1, 2, 3, 4, 5), name="herinnering"),
    ev.ActionExecutionRejected("action_x", policy="RulePolicy", confidence=0.4),
    ev.LegacyFormValidation(False),
    ev.LoopInterrupted(True),
    ev.LegacyForm("oude_form"),
    ev.ActiveLoop("melding_form"),
    ev.ActiveLoop(None),
    ev.AllSlotsReset(),
    ev.ConversationResumed(),
    ev.ConversationPaused(),
    ev.FollowupAction("action_volgende"),
    ev.StoryExported("story.yml"),
    ev.Restarted(),
    ev.ActionReverted(),
    ev.UserUtteranceReverted(),
    ev.BotUttered("Goedemiddag", {"buttons": [{"title": "Ja", "payload": "/affirm"}], "elements": None},
                  metadata={"utter_action": "utter_greet"}, timestamp=NOW),
    ev.BotUttered(),
    ev.SessionStarted(),
    ev.AgentUttered("medewerker", {"x": 1}),
]


def test_real_events_cover_every_event_type():
    assert {e.type_name for e in REAL_EVENTS} == set(EVENT_NAMES)


@pytest.mark.parametrize("event", REAL_EVENTS, ids=lambda e: type(e).__name__)
def test_a_real_event_passes_the_short_way(event):
    reply = {"events": [event.as_dict()], "responses": [{"text": "Hallo"}, {"template": "utter_greet"}]}
    assert full_valid(reply)
    assert speedups.quick_valid(reply) is True
    assert RemoteAction("action_x", None)._validate_action_result(reply) is True


def test_all_real_events_in_one_reply_and_rasa_reads_them_back():
    reply = json.loads(json.dumps({"events": [e.as_dict() for e in REAL_EVENTS]}))
    assert speedups.quick_valid(reply) is True
    rasas_own = [type(rasa_resolve_by_type(d["event"])._from_parameters(d)) for d in reply["events"]]
    assert [type(e) for e in ev.deserialise_events(reply["events"])] == rasas_own
    assert ev.deserialise_events(reply["events"])[:3] == REAL_EVENTS[:3]


def test_the_validator_is_built_once():
    first, second = speedups._action_result_validator(), speedups._action_result_validator()
    assert first is second
    assert speedups._by_event_type() is speedups._by_event_type()


# --------------------------------------------------------------------------- the patch itself, error details
def test_the_patch_is_in_place_here():
    assert RemoteAction._validate_action_result is speedups.validate_action_result
    resolve = ev.Event.__dict__["resolve_by_type"]
    assert resolve.__func__.__module__ == "bot.speedups"
    assert speedups.apply() is True  # idempotent: no second layer
    assert ev.Event.__dict__["resolve_by_type"] is resolve


def test_the_error_keeps_its_path_and_validator():
    reply = {"events": [{"event": "slot", "name": "a", "value": 1}, {"event": "slot", "name": 3, "value": 1}]}
    with pytest.raises(jsonschema.ValidationError) as ours:
        speedups.validate_action_result(None, reply)
    with pytest.raises(jsonschema.ValidationError) as theirs:
        jsonschema.validate(reply, SPEC)
    assert list(ours.value.absolute_path) == list(theirs.value.absolute_path)
    assert ours.value.validator == theirs.value.validator
    assert ours.value.instance == theirs.value.instance


# --------------------------------------------------------------------------- resolve_by_type
def rasa_resolve_by_type(type_name, default=None):
    """Rasa 3.6's Event.resolve_by_type, copied literally (the class attribute is patched here)."""
    for cls in all_subclasses(ev.Event):
        if cls.type_name == type_name:
            return cls
    if type_name == "topic":
        return None
    elif default is not None:
        return default
    else:
        raise ValueError(f"Unknown event name '{type_name}'.")


def test_resolve_by_type_is_patched():
    assert ev.Event.resolve_by_type("slot") is ev.SlotSet
    assert ev.Event.__dict__["resolve_by_type"].__func__.__module__ == "bot.speedups"


def test_resolve_by_type_for_every_known_type_name():
    names = {cls.type_name for cls in all_subclasses(ev.Event)}
    assert set(EVENT_NAMES) <= names
    for name in sorted(names):
        assert ev.Event.resolve_by_type(name) is rasa_resolve_by_type(name)
        assert ev.Event.resolve_by_type(name, default=ev.SlotSet) is rasa_resolve_by_type(name, ev.SlotSet)


def test_resolve_by_type_unknown_default_and_topic():
    resolve = ev.Event.resolve_by_type
    for _ in range(2):
        with pytest.raises(ValueError, match="Unknown event name 'bestaat_niet'"):
            resolve("bestaat_niet")
        assert resolve("bestaat_niet", default=ev.BotUttered) is ev.BotUttered
        assert resolve("bestaat_niet", ev.SlotSet) is ev.SlotSet  # the default is never remembered
        assert resolve("topic") is None
        assert resolve("topic", ev.SlotSet) is None
    with pytest.raises(ValueError):
        resolve("event")  # Event itself and the abstract mixins are no answer


def test_memory_calls_the_original_once_per_name_and_never_keeps_the_default():
    calls = []

    def original(type_name, default=None):
        calls.append(type_name)
        return {"slot": ev.SlotSet, "topic": None}.get(type_name, default)

    resolve = speedups.resolve_event_type(original).__func__
    assert resolve("slot") is ev.SlotSet
    assert resolve("slot") is ev.SlotSet
    assert resolve("slot", ev.BotUttered) is ev.SlotSet
    assert calls == ["slot"]
    assert resolve("x", ev.BotUttered) is ev.BotUttered
    assert resolve("x", ev.ActiveLoop) is ev.ActiveLoop
    assert resolve("x") is None
    assert resolve("topic") is None and resolve("topic") is None
    assert calls == ["slot", "x", "x", "x", "topic", "topic"]


def test_a_new_event_subclass_empties_the_memory():
    resolve = ev.Event.resolve_by_type
    name = "speedups_test_schaduw"

    class Deep(ev.SlotSet):
        type_name = name

    assert resolve(name) is Deep is rasa_resolve_by_type(name)
    assert resolve(name) is Deep  # now remembered

    class Direct(ev.Event):  # Rasa looks at direct subclasses first: this one wins now
        type_name = name

        def __eq__(self, other):
            return isinstance(other, Direct)

        def __hash__(self):
            return 1

        def as_story_string(self):
            return None

    assert rasa_resolve_by_type(name) is Direct
    assert resolve(name) is Direct
    assert ev.Event.from_parameters({"event": name}).__class__ is Direct

    class Brand(ev.Event):
        type_name = "speedups_test_nieuw"

        def __eq__(self, other):
            return isinstance(other, Brand)

        def __hash__(self):
            return 2

        def as_story_string(self):
            return None

    assert resolve("speedups_test_nieuw") is Brand
    assert resolve("slot") is ev.SlotSet


# --------------------------------------------------------------------------- slot copies
@pytest.fixture(scope="module")
def domain():
    return Domain.load(str(ROOT / "domain.yml"))


def stock_copy(obj):
    """What copy.copy makes without a __copy__: the __reduce_ex__(4) route."""
    return copy._reconstruct(obj, None, *obj.__reduce_ex__(4))


def test_slots_copy_like_stock_rasa(domain):
    from rasa.shared.core.slots import Slot

    assert vars(Slot)["__copy__"] is speedups.copy_slot
    assert len(domain.slots) > 10
    kinds = set()
    for original in domain.slots:
        slot = stock_copy(original)
        slot.value = {"lijst": [1, 2]}  # a mutable value: the copy must share it, as copy.copy does
        ours, theirs = copy.copy(slot), stock_copy(slot)
        assert ours is not slot and type(ours) is type(slot) is type(theirs)
        assert vars(ours) == vars(theirs) == vars(slot)
        assert vars(ours) is not vars(slot)
        assert all(vars(ours)[key] is vars(slot)[key] for key in vars(slot))  # shallow, as copy.copy
        kinds.add(type(slot).__name__)
    assert len(kinds) >= 3, kinds


def test_trackers_do_not_share_slots(domain):
    name = next(slot.name for slot in domain.slots if type(slot).__name__ == "TextSlot")
    before = domain.slots[[s.name for s in domain.slots].index(name)].value
    one = DialogueStateTracker("een", domain.slots)
    two = DialogueStateTracker("twee", domain.slots)
    one.update(ev.SlotSet(name, "waarde een"))
    assert one.get_slot(name) == "waarde een"
    assert two.get_slot(name) == before
    assert domain.slots[[s.name for s in domain.slots].index(name)].value == before
    three = one.copy()
    three.update(ev.SlotSet(name, "waarde drie"))
    assert one.get_slot(name) == "waarde een" and three.get_slot(name) == "waarde drie"


# --------------------------------------------------------------------------- SQLite tracker store
# The SQLite fix lives in our own tracker store (bot/tracker_store.py, chosen in endpoints.yml), not in a
# patch: apply() leaves Rasa's SQLTrackerStore as it is.
def conversation(sender: str) -> DialogueStateTracker:
    return DialogueStateTracker.from_events(sender, [
        ev.ActionExecuted("action_session_start", timestamp=NOW),
        ev.SessionStarted(timestamp=NOW),
        ev.ActionExecuted("action_listen", timestamp=NOW + 2),
        ev.UserUttered("ik ben mijn paspoort kwijt", intent=PARSE_DATA["intent"], entities=PARSE_DATA["entities"],
                       parse_data=PARSE_DATA, timestamp=NOW + 3),
        ev.ActiveLoop("melding_form", timestamp=NOW + 5),
        ev.BotUttered("Wat jammer.", {"buttons": [{"title": "Ja", "payload": "/affirm"}]}, timestamp=NOW + 6),
        ev.ActionExecuted("action_listen", timestamp=NOW + 7),
    ])


def pragma(engine, name):
    with engine.connect() as connection:
        return connection.exec_driver_sql(f"PRAGMA {name}").scalar()


def fast_store(db: str):
    from bot.tracker_store import FastSQLTrackerStore

    return FastSQLTrackerStore(Domain.empty(), dialect="sqlite", db=db)


@pytest.fixture
def file_store(tmp_path):
    store = fast_store(str(tmp_path / "t.db"))
    yield store
    store.engine.dispose()


def test_apply_leaves_rasas_sql_tracker_store_alone(tmp_path):
    assert not hasattr(SQLTrackerStore.__init__, "__wrapped__")
    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(tmp_path / "rasa.db"))
    try:
        assert not isinstance(store.engine.pool, QueuePool)
        assert pragma(store.engine, "journal_mode") == "delete"
    finally:
        store.engine.dispose()


def test_a_sqlite_file_gets_a_pooled_wal_engine(file_store, tmp_path):
    from bot.tracker_store import SQLITE_BUSY_TIMEOUT_MS

    engine = file_store.engine
    assert isinstance(engine.pool, QueuePool)
    assert file_store.sessionmaker.kw["bind"] is engine
    assert pragma(engine, "journal_mode") == "wal"
    assert pragma(engine, "synchronous") == 1  # NORMAL
    assert pragma(engine, "busy_timeout") == SQLITE_BUSY_TIMEOUT_MS
    with engine.connect() as one, engine.connect() as two:  # every pooled connection, not just the first
        for connection in (one, two):
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS
    with sqlite3.connect(tmp_path / "t.db") as plain:
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # kept in the file


def test_events_round_trip_through_the_pooled_store(file_store):
    tracker = conversation("burger-1")
    asyncio.run(file_store.save(tracker))
    assert list(asyncio.run(file_store.retrieve("burger-1")).events) == list(tracker.events)
    tracker.update(ev.BotUttered("Nog iets?", timestamp=NOW + 8))
    asyncio.run(file_store.save(tracker))
    asyncio.run(file_store.save(tracker))  # nothing new: nothing stored twice
    again = asyncio.run(file_store.retrieve("burger-1"))
    assert list(again.events) == list(tracker.events)
    assert again.events[-1].text == "Nog iets?"
    assert list(asyncio.run(file_store.retrieve_full_tracker("burger-1")).events) == list(tracker.events)
    assert asyncio.run(file_store.retrieve("onbekend")) is None
    assert set(asyncio.run(file_store.keys())) == {"burger-1"}


def test_rasas_own_store_reads_the_same_rows(file_store, tmp_path):
    tracker = conversation("burger-2")
    asyncio.run(file_store.save(tracker))
    rasa_store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(tmp_path / "t.db"))
    try:
        assert list(asyncio.run(rasa_store.retrieve("burger-2")).events) == list(tracker.events)
        tracker.update(ev.SlotSet("document", "rijbewijs", timestamp=NOW + 8))
        asyncio.run(rasa_store.save(tracker))
    finally:
        rasa_store.engine.dispose()
    assert list(asyncio.run(file_store.retrieve("burger-2")).events) == list(tracker.events)


def test_pooled_connections_work_from_other_threads(file_store):
    """check_same_thread=False: a connection opened in one thread is handed to another by the pool."""
    senders = [f"burger-{i}" for i in range(12)]

    def save_and_read(sender):
        tracker = conversation(sender)
        asyncio.run(file_store.save(tracker))
        return list(asyncio.run(file_store.retrieve(sender)).events) == list(tracker.events)

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(save_and_read, senders))
    with ThreadPoolExecutor(max_workers=3) as pool:  # new threads, same pooled connections
        assert all(pool.map(lambda s: asyncio.run(file_store.retrieve(s)) is not None, senders))
    assert set(asyncio.run(file_store.keys())) == set(senders)


@pytest.mark.parametrize("db", ["", ":memory:"])
def test_in_memory_sqlite_is_left_as_rasa_makes_it(db):
    url = SQLTrackerStore.get_db_url("sqlite", db=db)
    reference = sa.create_engine(url)
    store = fast_store(db)
    try:
        assert store.engine.url.database in ("", None, ":memory:")
        assert type(store.engine.pool) is type(reference.pool)
        assert not isinstance(store.engine.pool, QueuePool)
        assert pragma(store.engine, "journal_mode") == "memory"
        assert pragma(store.engine, "synchronous") == 2  # SQLite's default FULL: no PRAGMAs of ours
        tracker = conversation("geheugen")
        asyncio.run(store.save(tracker))
        assert list(asyncio.run(store.retrieve("geheugen")).events) == list(tracker.events)
    finally:
        store.engine.dispose()
        reference.dispose()


# --------------------------------------------------------------------------- stock Rasa (BOT_SPEEDUPS=0)
def test_bot_speedups_0_patches_nothing(stock_rasa):
    assert stock_rasa["apply"] is False
    assert stock_rasa["applied"] is False
    assert stock_rasa["unchanged"] == [True, True, True]
    assert stock_rasa["slot_copy"] is False
    assert stock_rasa["validate_module"] == "rasa.core.actions.action"


def test_invalid_replies_raise_the_message_of_stock_rasa(stock_rasa):
    expected = stock_rasa["messages"]
    assert len(expected) == len(BAD_REPLIES) + 2
    for reply, (kind, message) in zip(BAD_REPLIES, expected):
        assert kind == "error", reply
        with pytest.raises(jsonschema.ValidationError) as caught:
            RemoteAction("action_x", None)._validate_action_result(reply)
        assert caught.value.message == message, reply
        assert message == rasa_message(reply)
        assert message.endswith("/custom-actions")
    assert expected[-2:] == [["ok", True], ["ok", True]]
    assert speedups.validate_action_result(None, {"events": []}) is True
    assert speedups.validate_action_result(None, {}) is True


def test_resolve_by_type_gives_the_classes_of_stock_rasa(stock_rasa):
    for name, expected in stock_rasa["resolved"].items():
        for _ in range(2):  # the second answer comes from the memory
            try:
                found = ev.Event.resolve_by_type(name)
                got = found and found.__module__ + "." + found.__qualname__
            except ValueError as error:
                got = "ValueError: " + str(error)
            assert got == expected, name
