"""The embedded case system ("zaaksysteem") of the assistant.

See ``store.CaseStore`` for the API and ``python -m bot.cases --help`` for the
staff command line.
"""
from bot.cases.models import Booking, Case, OutboxEntry, Slot
from bot.cases.store import (
    BookingNotFound,
    CaseNotFound,
    CaseStore,
    CaseStoreError,
    OutboxEntryNotFound,
    SlotTaken,
)

__all__ = [
    "Booking",
    "BookingNotFound",
    "Case",
    "CaseNotFound",
    "CaseStore",
    "CaseStoreError",
    "OutboxEntry",
    "OutboxEntryNotFound",
    "Slot",
    "SlotTaken",
]
