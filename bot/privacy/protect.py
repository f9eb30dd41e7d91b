"""What the tracker store writes: masked free text, encrypted answers, wiped answers.

:class:`Protector` is the pure part of :class:`bot.privacy.store.MaskingSQLTrackerStore`
(no Rasa, no database), so it can be tested and reused on its own. See the
store's docstring for the rules.
"""
from __future__ import annotations

import functools
import json
import logging
import os
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from bot.privacy.masking import MASKS, find_pii, mask_text, mask_value, normalise

logger = logging.getLogger(__name__)

ENC_KEY = "$enc"
SCRUBBED = "[verwijderd]"
KEYS_ENV = "TRACKER_ENCRYPTION_KEYS"
# Free-text questions whose answers are names (until flows.yml marks them with
# `persoonlijk: true`).
DEFAULT_NAME_SLOTS = ("huwelijk_partners", "huwelijk_getuigen", "verhuizing_personen")
USER_TEXT_MAPPINGS = ("from_text", "from_entity")
_RESET_EVENTS = ("restart", "reset_slots", "session_started")
# Identifiers and intent names: never personal data, never changed.
KEEP_KEYS = ("message_id", "model_id", "assistant_id", "input_channel", "intent", "intent_ranking")


class PrivacyConfigError(RuntimeError):
    """The store cannot run safely (e.g. no encryption key). A RuntimeError on
    purpose: Rasa silently falls back to an in-memory store on ImportError and
    AttributeError."""


# --------------------------------------------------------------------------- keys
def generate_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")


def load_cipher(keys: Optional[str] = None):
    """A MultiFernet from comma separated keys; the first one encrypts (rotation:
    put the new key first, keep the old ones until their rows are gone)."""
    from cryptography.fernet import Fernet, MultiFernet

    raw = keys if keys is not None else os.environ.get(KEYS_ENV, "")
    parts = [k.strip() for k in raw.split(",") if k.strip()]
    if not parts:
        raise PrivacyConfigError(
            f"{KEYS_ENV} is not set. Create a key with `python -m bot.privacy genkey` "
            "and pass it to every Rasa instance (keep it out of the repository).")
    try:
        return MultiFernet([Fernet(k.encode("ascii")) for k in parts])
    except (ValueError, TypeError) as error:
        raise PrivacyConfigError(f"{KEYS_ENV} holds an invalid key: {error}") from None


# --------------------------------------------------------------------------- which slots
def _flow_steps() -> List[Dict[str, Any]]:
    from bot import config

    try:
        flows = config.flows().get("flows") or {}
    except OSError:
        return []
    return [step for flow in flows.values() for step in (flow.get("stappen") or [])]


def flow_slot_names() -> Set[str]:
    return {step["slot"] for step in _flow_steps() if step.get("slot")}


def name_slot_names() -> Set[str]:
    """Slots whose answer is a person's name."""
    extra = {s.strip() for s in os.environ.get("PRIVACY_NAME_SLOTS", "").split(",") if s.strip()}
    marked = {step["slot"] for step in _flow_steps()
              if step.get("type") == "naam" or step.get("persoonlijk")}
    return marked | set(DEFAULT_NAME_SLOTS) | extra


def personal_slot_names() -> Set[str]:
    """Slots whose values are personal data (names, contact details, addresses)."""
    typed = {step["slot"] for step in _flow_steps() if step.get("type") in ("contact", "adres", "naam")}
    return typed | name_slot_names()


@functools.lru_cache(maxsize=256)
def _step_buttons(slot: str) -> frozenset:
    """Button texts of a step ("Alleen ik", "Later doorgeven"): not personal."""
    texts: Set[str] = set()
    for step in _flow_steps():
        if step.get("slot") == slot:
            for button in step.get("knoppen") or []:
                texts.update(str(button.get(k, "")).strip().lower() for k in ("title", "payload"))
    return frozenset(texts)


def conversation_slots(domain: Any) -> Set[str]:
    """Slots filled from what the citizen typed: encrypted at rest, needed by the flow."""
    names = set(flow_slot_names())
    for slot in getattr(domain, "slots", None) or []:
        for mapping in getattr(slot, "mappings", None) or []:
            if isinstance(mapping, dict) and mapping.get("type") in USER_TEXT_MAPPINGS:
                names.add(slot.name)
    return names


# --------------------------------------------------------------------------- the transformation
def _leaves(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item)


class Protector:
    """Turns serialised events into what may be stored, and back.

    ``protect(events, start)`` gets ALL events of the tracker as dicts (the
    in-memory, unmasked ones) and returns the protected versions of
    ``events[start:]`` (the new ones).
    """

    def __init__(self, cipher: Any, conversation_slots: Set[str], name_slots: Set[str],
                 personal_slots: Set[str], public: frozenset = frozenset()) -> None:
        self.cipher = cipher
        self.conversation_slots = conversation_slots
        self.name_slots = name_slots
        self.personal_slots = personal_slots | name_slots
        self.public = public

    # -- encryption
    def encrypt(self, value: Any) -> Dict[str, str]:
        token = self.cipher.encrypt(json.dumps(value, ensure_ascii=False).encode("utf-8"))
        return {ENC_KEY: token.decode("ascii")}

    def decrypt(self, value: Any) -> Any:
        if not (isinstance(value, dict) and set(value) == {ENC_KEY}):
            return value
        from cryptography.fernet import InvalidToken

        try:
            return json.loads(self.cipher.decrypt(value[ENC_KEY].encode("ascii")))
        except (InvalidToken, ValueError):
            logger.warning("A stored slot value could not be decrypted (wrong or removed key); "
                           "it is treated as not answered.")
            return None

    def reveal(self, event: Dict[str, Any]) -> Dict[str, Any]:
        """A stored event as the conversation needs it (slot values decrypted)."""
        if event.get("event") == "slot" and isinstance(event.get("value"), dict):
            event = dict(event)
            event["value"] = self.decrypt(event["value"])
        return event

    # -- what the conversation told us
    def _context(self, events: Sequence[Dict[str, Any]]) -> Tuple[Dict[str, str], List[Optional[str]]]:
        """Known personal values (value -> kind) and, per event, the requested slot
        at that moment."""
        values: Dict[str, str] = {}
        slots: Dict[str, Any] = {}
        requested: List[Optional[str]] = []

        def remember() -> None:
            for name in self.personal_slots:
                value = slots.get(name)
                if value is None:
                    continue
                skip = _step_buttons(name)
                kind = "name" if name in self.name_slots else "personal"
                for leaf in _leaves(value):
                    leaf = leaf.strip()
                    if len(leaf) >= 2 and leaf.lower() not in skip and not leaf.startswith("["):
                        values.setdefault(leaf, kind)

        for event in events:
            kind = event.get("event")
            if kind == "user":
                remember()
            requested.append(slots.get("requested_slot"))
            if kind == "slot":
                slots[event.get("name")] = event.get("value")
            elif kind in _RESET_EVENTS:
                remember()
                slots = {}
        remember()
        return values, requested

    def _user_findings(self, events: Sequence[Dict[str, Any]], values: Dict[str, str]) -> Set[str]:
        found = {normalise(v) for v in values}
        for event in events:
            if event.get("event") == "user":
                found.update(normalise(f.text) for f in find_pii(event.get("text") or ""))
        return found

    def protect(self, events: Sequence[Dict[str, Any]], start: int) -> List[Dict[str, Any]]:
        values, requested = self._context(events)
        keep: Optional[frozenset] = None

        def keep_set() -> frozenset:
            nonlocal keep
            if keep is None:  # public data, unless the citizen typed it as their own
                keep = self.public - self._user_findings(events, values)
            return keep

        out = []
        for index in range(start, len(events)):
            event = events[index]
            kind = event.get("event")
            if kind == "user":
                out.append(self._protect_user(event, requested[index], values))
            elif kind == "bot":
                protected = dict(event)
                masker = lambda s: mask_text(s, keep=keep_set(), values=values)  # noqa: E731
                for key in ("text", "data", "metadata"):
                    if key in protected:
                        protected[key] = mask_value(protected[key], masker, skip_keys=KEEP_KEYS)
                out.append(protected)
            elif kind == "slot":
                protected = dict(event)
                value = event.get("value")
                if value is not None and event.get("name") in self.conversation_slots:
                    protected["value"] = self.encrypt(value)
                elif value is not None:
                    protected["value"] = mask_value(value, lambda s: mask_text(s, keep=keep_set(), values=values))
                out.append(protected)
            else:
                out.append(dict(event))
        return out

    def _protect_user(self, event: Dict[str, Any], requested: Optional[str],
                      values: Dict[str, str]) -> Dict[str, Any]:
        protected = dict(event)
        text = event.get("text") or ""
        # The answer to "Wat is uw naam?" is a name as a whole; a button payload is not.
        whole_name = requested in self.name_slots and not text.startswith("/")

        def masker(value: str) -> str:
            return mask_text(value, values=values)

        def answer(value: str) -> str:
            return (MASKS["name"] if value.strip() else value) if whole_name else masker(value)

        metadata = dict(event.get("metadata") or {})
        if "identity_token" in metadata:
            metadata["identity_token"] = None  # it carries the BSN; needed only in its own turn
        if metadata:
            protected["metadata"] = mask_value(metadata, masker, skip_keys=KEEP_KEYS)
        if text:
            protected["text"] = answer(text)
        parse_data = event.get("parse_data")
        if isinstance(parse_data, dict):
            masked = mask_value(parse_data, masker, skip_keys=KEEP_KEYS)
            if isinstance(parse_data.get("text"), str):
                masked["text"] = answer(parse_data["text"])
            for entity in masked.get("entities") or []:
                if isinstance(entity, dict) and whole_name and isinstance(entity.get("value"), str):
                    entity["value"] = MASKS["name"]
            protected["parse_data"] = masked
        return protected

    def slots_to_scrub(self, events: Sequence[Dict[str, Any]], start: int) -> Set[str]:
        """Conversation slots that were reset in the new events and are empty now."""
        touched: Set[str] = set()
        final: Dict[str, Any] = {}
        for index, event in enumerate(events):
            kind = event.get("event")
            if kind == "slot":
                final[event.get("name")] = event.get("value")
                if index >= start and event.get("value") is None:
                    touched.add(event.get("name"))
            elif kind in _RESET_EVENTS:
                final = {}
                if index >= start:
                    touched |= self.conversation_slots
        return {name for name in touched & self.conversation_slots if final.get(name) is None}
