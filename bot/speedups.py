"""Speed fixes for the Rasa server process, found by profiling (docs/benchmarks.md).

Each fix keeps Rasa's behaviour and only removes repeated work. They apply to
Rasa 3.6 only (the pinned version); on another version :func:`apply` does
nothing and logs why, so an upgrade never runs a patch written for older code.

The channel modules that Rasa loads from credentials.yml call :func:`apply` at
import, so every Rasa server of ours (embedded and production profile) has
them. ``BOT_SPEEDUPS=0`` switches them off; ``make bench`` does that to serve
stock Rasa for its comparison.

1. Action server replies. For every custom action Rasa validates the reply
   with ``jsonschema.validate(reply, schema)``. That function first checks the
   schema itself against the JSON Schema meta-schema, and then builds a new
   validator, on every call. The schema is Rasa's own constant, so we check it
   once and keep one validator. Under load this was 45% of the Rasa process's
   CPU time (py-spy, closed-loop run, see docs/benchmarks.md).

   The events schema is a ``oneOf`` over 23 event types, each fixed by a
   different ``"event"`` constant, and ``"event"`` is required. So an event is
   valid exactly when it is valid for the one type its ``"event"`` names: we
   validate it against that type only instead of against all 23. Whenever the
   short way finds a problem (or meets an unknown type), the full schema runs,
   so the error Rasa raises is the same as before.

2. Event types. Rasa turns every stored event back into an object with
   ``Event.resolve_by_type``, which walks all Event subclasses (with
   ``inspect.isabstract`` on each) for every single event. We remember the
   answer per type name; a new Event subclass (a later import) empties the
   memory.

3. Slot copies. Every new tracker object (Rasa makes several per message)
   copies all slots of the domain (90 here) with ``copy.copy``, which goes
   through ``__reduce_ex__``. A ``__copy__`` that copies the attribute dict
   makes the same shallow copy four times faster.

The tracker store's costs (ORM, SQLite journal) are fixed in a tracker store
of our own instead, bot/tracker_store.py, chosen in endpoints.yml.
"""
from __future__ import annotations

import functools
import logging
import os
from typing import Any, Dict, Optional

logger = logging.getLogger(__name__)

SUPPORTED_RASA = "3.6."
_applied = False


def enabled() -> bool:
    return os.environ.get("BOT_SPEEDUPS", "1").strip().lower() not in {"0", "false", "off", "no"}


def _checked_validator(schema: Dict[str, Any]) -> Any:
    """A jsonschema validator for ``schema``, the schema checked against its meta-schema once."""
    from jsonschema.validators import validator_for

    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _reply_schema() -> Dict[str, Any]:
    from rasa.core.actions.action import RemoteAction

    return RemoteAction.action_response_format_spec()


@functools.lru_cache(maxsize=None)
def _action_result_validator() -> Any:
    """One validator for Rasa's whole action reply schema (errors come from this one)."""
    return _checked_validator(_reply_schema())


@functools.lru_cache(maxsize=None)
def _responses_validator() -> Any:
    return _checked_validator(_reply_schema()["properties"]["responses"])


@functools.lru_cache(maxsize=None)
def _by_event_type() -> Dict[str, Any]:
    """One validator per event type: the shared part of the event schema plus that type's own part."""
    from rasa.shared.utils.schemas.events import EVENT_SCHEMA

    shared = {k: v for k, v in EVENT_SCHEMA.items() if k != "oneOf"}
    return {variant["properties"]["event"]["const"]: _checked_validator({**shared, "allOf": [variant]})
            for variant in EVENT_SCHEMA["oneOf"]}


def quick_valid(result: Any) -> bool:
    """True only when ``result`` is valid for Rasa's action reply schema (see the module docstring)."""
    if not isinstance(result, dict):
        return False
    validators = _by_event_type()
    if "responses" in result and not _responses_validator().is_valid(result["responses"]):
        return False
    events = result.get("events", [])
    if not isinstance(events, list):
        return "events" not in result
    for event in events:
        name = event.get("event") if isinstance(event, dict) else None
        validator = validators.get(name) if isinstance(name, str) else None
        if validator is None or not validator.is_valid(event):
            return False
    return True


def validate_action_result(self: Any, result: Dict[str, Any]) -> bool:
    """Drop-in for ``RemoteAction._validate_action_result``: same errors, same message."""
    from jsonschema.exceptions import best_match
    from rasa.shared.constants import DOCS_BASE_URL

    if quick_valid(result):
        return True
    error = best_match(_action_result_validator().iter_errors(result))
    if error is None:
        return True
    error.message += (
        ". Failed to validate Action server response from API, "
        "make sure your response from the Action endpoint is valid. "
        f"For more information about the format visit {DOCS_BASE_URL}/custom-actions"
    )
    raise error


def resolve_event_type(original: Any) -> Any:
    """``Event.resolve_by_type`` with a memory per type name (see the module docstring)."""
    from rasa.shared.core.events import Event

    memory: Dict[str, Any] = {}
    known = [len(Event.__subclasses__())]

    def resolve_by_type(type_name: str, default: Optional[Any] = None) -> Optional[Any]:
        direct = len(Event.__subclasses__())
        if direct != known[0]:
            memory.clear()
            known[0] = direct
        if not isinstance(type_name, str):  # not a name (not even hashable): Rasa's own answer
            return original(type_name, default)
        found = memory.get(type_name)
        if found is None:
            found = original(type_name, default)
            if found is not None and found is not default:
                memory[type_name] = found
        return found

    return staticmethod(resolve_by_type)


def copy_slot(self: Any) -> Any:
    """Shallow copy of a Slot: what ``copy.copy`` makes for a plain object, without ``__reduce_ex__``."""
    new = self.__class__.__new__(self.__class__)
    new.__dict__.update(self.__dict__)
    return new


def apply() -> bool:
    """Install the fixes once. Returns whether they are active."""
    global _applied
    if _applied:
        return True
    if not enabled():
        logger.info("speedups: switched off (BOT_SPEEDUPS=0)")
        return False
    import rasa
    from rasa.core.actions.action import RemoteAction

    if not rasa.__version__.startswith(SUPPORTED_RASA):
        logger.warning("speedups: written for Rasa %sx, found %s; not applied", SUPPORTED_RASA, rasa.__version__)
        return False
    from rasa.shared.core.events import Event
    from rasa.shared.core.slots import Slot

    if "__copy__" not in vars(Slot):
        Slot.__copy__ = copy_slot
    RemoteAction._validate_action_result = validate_action_result
    Event.resolve_by_type = resolve_event_type(Event.resolve_by_type)
    _applied = True
    return True
