"""A SQL tracker store that keeps personal data out of the events table.

Rasa's :class:`SQLTrackerStore` writes every event as plaintext JSON and, on
every turn, rebuilds the tracker from those rows. This store builds on it (via
:class:`bot.tracker_store.FastSQLTrackerStore`, the same table and rows):

* **Answers the conversation still needs are encrypted.** Slots filled from the
  citizen's text (``from_text``/``from_entity`` mappings: every question of a
  guided flow) are stored as ``{"$enc": <Fernet token>}`` with a key from
  ``TRACKER_ENCRYPTION_KEYS`` and decrypted when the tracker is loaded, so the
  next turn, on this or another instance, can still file the case.
* **Answers are wiped when they are no longer needed.** When such a slot is
  reset (the flow was filed or stopped, an answer was corrected or refused),
  every stored row with an encrypted value of that slot is rewritten to
  ``"[verwijderd]"`` in the same transaction.
* **Free text is masked for good.** User messages, bot messages and metadata
  are masked with :func:`bot.privacy.masking.mask_text` (BSN, e-mail, phone,
  IBAN, postcode with house number, tokens). The identity token is removed from
  the metadata. A message that answers a question asking for a name (step type
  ``naam``, ``persoonlijk: true`` in flows.yml, or :data:`DEFAULT_NAME_SLOTS`) is
  replaced by ``[naam]``, and names known from those slots are masked wherever
  they appear (for example in the summary "Klopt dit?").
* Other slots (municipal values such as ``{balie_adres}``, bookkeeping) are
  masked too, but the municipality's own public data is kept.

Load it from endpoints.yml (see endpoints.production.yml)::

    tracker_store:
      type: bot.privacy.store.MaskingSQLTrackerStore
      dialect: postgresql
      url: ${TRACKER_DB_HOST}
      ...
"""
from __future__ import annotations

import json
import logging
from typing import Any, Dict, Optional, Sequence, Set, Text, Tuple

import sqlalchemy as sa
from rasa.shared.core.events import Event

from bot.privacy import logs
from bot.privacy.masking import public_findings
from bot.privacy.protect import (ENC_KEY, SCRUBBED, PrivacyConfigError, Protector, conversation_slots,
                                 load_cipher, name_slot_names, personal_slot_names)
from bot.tracker_store import FastSQLTrackerStore

logger = logging.getLogger(__name__)


class MaskingSQLTrackerStore(FastSQLTrackerStore):
    """Rasa's SQL tracker store with personal data masked or encrypted at rest."""

    def __init__(self, domain: Any = None, dialect: Text = "sqlite", host: Optional[Text] = None,
                 port: Any = None, db: Text = "rasa.db", username: Optional[Text] = None,
                 password: Optional[Text] = None, event_broker: Any = None,
                 login_db: Optional[Text] = None, query: Optional[Dict] = None,
                 encryption_keys: Optional[Text] = None, **kwargs: Any) -> None:
        logs.install()
        try:
            self.cipher = load_cipher(encryption_keys)
            super().__init__(domain=domain, dialect=dialect, host=host or None, port=port or None,
                             db=db, username=username or None, password=password or None,
                             event_broker=event_broker, login_db=login_db or None, query=query,
                             **kwargs)
        except (AttributeError, ImportError) as error:  # see PrivacyConfigError
            raise PrivacyConfigError(f"tracker store cannot start: {error!r}") from error
        self._protector_for: Tuple[int, Optional[Protector]] = (0, None)
        logger.info("Tracker store: %s with masking and encrypted answers.", self.engine.dialect.name)

    @property
    def protector(self) -> Protector:
        key = id(self.domain)
        if self._protector_for[0] != key or self._protector_for[1] is None:
            self._protector_for = (key, Protector(
                self.cipher, conversation_slots(self.domain), name_slot_names(),
                personal_slot_names(), public_findings()))
        return self._protector_for[1]

    def event_from_row(self, data: str) -> Dict[str, Any]:
        return self.protector.reveal(json.loads(data))

    def write_new_events(self, conn: Any, sender_id: Text, events: Sequence[Event], stored: int) -> None:
        protector = self.protector
        dicts = [event.as_dict() for event in events]
        self.insert_events(conn, sender_id, events[stored:], protector.protect(dicts, stored))
        scrub = protector.slots_to_scrub(dicts, stored)
        if scrub:
            self._scrub(conn, sender_id, scrub)

    def _scrub(self, conn: Any, sender_id: Text, slots: Set[str]) -> int:
        """Overwrite stored encrypted values of ``slots``: the answers are not needed anymore."""
        table = self.SQLEvent.__table__
        rows = conn.execute(sa.select(table.c.id, table.c.data).where(
            table.c.sender_id == sender_id, table.c.type_name == "slot",
            table.c.data.like(f'%"{ENC_KEY}"%'))).all()
        changed = 0
        for row_id, raw in rows:
            data = json.loads(raw)
            if data.get("name") in slots:
                data["value"] = SCRUBBED
                conn.execute(table.update().where(table.c.id == row_id).values(data=json.dumps(data)))
                changed += 1
        return changed
