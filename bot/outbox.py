"""The delivery worker: sends outbox entries to the remote case backends.

Filing a case writes the case and an outbox entry in one transaction
(``CaseStore.file_case``); the citizen gets the local zaaknummer at once. This
worker, a process of its own, delivers the entries:

    python -m bot.outbox [--once] [--db URL] [--worker-id ID]

* It claims due entries with ``CaseStore.claim_outbox`` (a lease; ``SELECT ...
  FOR UPDATE SKIP LOCKED`` on PostgreSQL), so two workers never get the same
  entry. A worker that is killed leaves its leases behind; they expire after
  ``lease_seconden`` and another (or the restarted) worker takes the entries.
  A worker records the outcome (delivered, retry, parked) only while it still
  holds the lease (``leased_by`` is its id); a worker that was too slow and
  lost the entry to another one logs that and moves on.
* Each entry goes to ``get_backend(entry.backend).register_submission(case)``.
  Delivery is at least once: backends make a repeated delivery harmless (the
  ZGW backend looks the zaak up by its identificatie before creating one).
* A failure is retried with exponential backoff and jitter. A
  ``PermanentDeliveryError`` (for example HTTP 401/403, or data the remote
  system refuses) and the last allowed attempt park the entry for staff, with
  a readable error (``python -m bot.cases outbox --state parked``;
  ``python -m bot.cases requeue ID`` tries again).
* SIGTERM/SIGINT: the current delivery is finished, entries not started yet
  are released, then the worker stops.

Settings: ``gemeente.yml`` section ``outbox`` (see ``OutboxSettings``).
"""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
import os
import random
import signal
import socket
import sys
import threading
import uuid
from dataclasses import dataclass, fields
from typing import Any, Callable, Dict, List, Mapping, Optional

from bot import config
from bot.cases.backends import CaseBackend, get_backend
from bot.cases.models import OutboxEntry
from bot.cases.store import CaseStore

logger = logging.getLogger("bot.outbox")

MAX_ERROR_LENGTH = 2000


class DeliveryError(Exception):
    """Delivery failed; trying again later may work (timeouts, HTTP 5xx, ...)."""


class PermanentDeliveryError(DeliveryError):
    """Delivery cannot work without a person fixing something: park at once.

    The message is shown to staff; write it so they know what to do.
    """


@dataclass
class OutboxSettings:
    """Worker settings; ``gemeente.yml`` keys in Dutch (see ``from_config``)."""

    max_attempts: int = 10          # max_pogingen: attempts before an entry is parked
    backoff_base: float = 30.0      # eerste_wachttijd_seconden: delay after the first failure
    backoff_max: float = 3600.0     # max_wachttijd_seconden: upper bound of one delay
    batch_size: int = 10            # batch: entries claimed at once
    lease_seconds: int = 300        # lease_seconden: how long a claim stays with this worker
    poll_seconds: float = 2.0       # wacht_seconden: pause when nothing is due
    delivery_budget: float = 0.0    # leverings_budget_seconden: max time one delivery may take
                                    # (0: a fifth of the lease)

    _KEYS = {
        "max_pogingen": "max_attempts",
        "eerste_wachttijd_seconden": "backoff_base",
        "max_wachttijd_seconden": "backoff_max",
        "batch": "batch_size",
        "lease_seconden": "lease_seconds",
        "wacht_seconden": "poll_seconds",
        "leverings_budget_seconden": "delivery_budget",
    }

    @classmethod
    def from_config(cls, section: Optional[Mapping[str, Any]] = None) -> "OutboxSettings":
        """From ``gemeente.yml`` ``outbox:`` (or the given mapping); unknown keys are an error."""
        if section is None:
            section = config.gemeente().get("outbox") or {}
        values: Dict[str, Any] = {}
        types = {f.name: f.type for f in fields(cls)}
        for key, value in section.items():
            if key not in cls._KEYS:
                raise ValueError(
                    f"gemeente.yml outbox.{key}: unknown setting "
                    f"(known: {', '.join(sorted(cls._KEYS))})"
                )
            name = cls._KEYS[key]
            values[name] = int(value) if types[name] in ("int", int) else float(value)
        settings = cls(**values)
        settings.validate()
        return settings

    def __post_init__(self) -> None:
        if self.delivery_budget <= 0:
            self.delivery_budget = self.lease_seconds / 5

    def validate(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("outbox.max_pogingen must be at least 1")
        if self.batch_size < 1 or self.lease_seconds < 1:
            raise ValueError("outbox.batch and outbox.lease_seconden must be positive")
        if self.backoff_base < 0 or self.backoff_max < self.backoff_base:
            raise ValueError("outbox: need 0 <= eerste_wachttijd_seconden <= max_wachttijd_seconden")
        if self.delivery_budget >= self.lease_seconds:
            raise ValueError("outbox.leverings_budget_seconden must be below outbox.lease_seconden")


def backoff_delay(attempt: int, settings: OutboxSettings, rng: Optional[random.Random] = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    Exponential (base * 2^(attempt-1), capped) with "equal jitter": half of the
    delay is fixed, the other half random, so many entries that failed together
    (the remote was down) do not all come back at the same moment.
    """
    rng = rng or random
    ceiling = min(settings.backoff_max, settings.backoff_base * (2 ** max(attempt - 1, 0)))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _short(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    if not isinstance(error, DeliveryError):
        text = f"{type(error).__name__}: {text}"
    return text[:MAX_ERROR_LENGTH]


class DeliveryWorker:
    """Claims outbox entries and delivers them; see the module docstring."""

    def __init__(
        self,
        store: CaseStore,
        settings: Optional[OutboxSettings] = None,
        worker_id: Optional[str] = None,
        backends: Optional[Dict[str, CaseBackend]] = None,
        backend_factory: Callable[[str], CaseBackend] = get_backend,
        rng: Optional[random.Random] = None,
    ) -> None:
        self.store = store
        self.settings = settings or OutboxSettings.from_config()
        self.settings.validate()
        self.worker_id = worker_id or default_worker_id()
        self._backends: Dict[str, CaseBackend] = dict(backends or {})
        self._backend_factory = backend_factory
        self._rng = rng or random.Random()
        self.stop_event = threading.Event()
        self.stats = {"delivered": 0, "retried": 0, "parked": 0, "skipped": 0, "lease_lost": 0}

    # -- backends ---------------------------------------------------------------

    def backend(self, name: str) -> CaseBackend:
        if name not in self._backends:
            self._backends[name] = self._backend_factory(name)
        return self._backends[name]

    def check_backends(self, names: Optional[List[str]] = None) -> None:
        """Run the start-up check of each backend that has one (``check()``).

        Configuration errors are raised (the worker must not run with a wrong
        setting). A remote system that cannot be reached is only logged: the
        backend checks again before its first delivery.
        """
        for name in names if names is not None else configured_backends():
            backend = self.backend(name)
            check = getattr(backend, "check", None)
            if check is None:
                continue
            try:
                check()
            except DeliveryError as error:
                if isinstance(error, PermanentDeliveryError):
                    raise
                logger.warning("backend %s: start-up check postponed: %s", name, error)

    # -- the loop ---------------------------------------------------------------

    def run_once(self, due_before: Optional[dt.datetime] = None) -> int:
        """Claim one batch of due entries and handle it; returns how many were claimed.

        ``due_before``: only entries due at that moment (default: now).
        """
        lease = self.settings.lease_seconds
        if due_before is not None:
            # claim_outbox counts the lease from `now`; keep it `lease` seconds from the real now.
            lease += max(0, math.ceil((self.store.now() - due_before).total_seconds()))
        entries = self.store.claim_outbox(
            self.worker_id, limit=self.settings.batch_size, now=due_before, lease_seconds=lease
        )
        for index, entry in enumerate(entries):
            if self.stop_event.is_set():
                self._release(entries[index:])
                break
            self.handle(entry)
        return len(entries)

    def drain(self) -> int:
        """Deliver everything that is due now, each entry at most once (``--once``);
        entries that fail wait for their backoff. Returns the number handled."""
        cutoff = self.store.now()
        total = 0
        while not self.stop_event.is_set():
            claimed = self.run_once(due_before=cutoff)
            if claimed == 0:
                break
            total += claimed
        return total

    def run(self) -> None:
        """Work until ``stop_event`` is set (SIGTERM/SIGINT in ``main``)."""
        logger.info("delivery worker %s started", self.worker_id)
        while not self.stop_event.is_set():
            try:
                claimed = self.run_once()
            except Exception:  # noqa: BLE001 - the database may be away for a moment
                logger.exception("claiming outbox entries failed; trying again")
                claimed = 0
            if claimed == 0:
                self.stop_event.wait(self.settings.poll_seconds)
        logger.info("delivery worker %s stopped", self.worker_id)

    def stop(self) -> None:
        self.stop_event.set()

    # -- one entry --------------------------------------------------------------

    def handle(self, entry: OutboxEntry) -> str:
        """Deliver one claimed entry: "delivered", "retry", "parked", "skipped" or
        "lease_lost" (another worker holds the entry now; nothing was recorded)."""
        now = self.store.now()
        if entry.lease_until is None or entry.lease_until - dt.timedelta(
            seconds=self.settings.delivery_budget
        ) < now:
            # Not enough lease left to finish safely: another worker may take
            # it over while we are busy. Leave it; the lease expires.
            self.stats["skipped"] += 1
            return "skipped"
        case = self.store.get(entry.zaaknummer)
        if case is None:  # cannot happen (foreign key), but never lose track silently
            return self._park(entry, f"Zaak {entry.zaaknummer} bestaat niet meer in de eigen database.")
        try:
            backend = self.backend(entry.backend)
            reference = backend.register_submission(case)
        except PermanentDeliveryError as error:
            return self._park(entry, _short(error))
        except Exception as error:  # noqa: BLE001 - every other failure is retried
            return self._retry(entry, error)
        if not self.store.mark_delivered(entry.id, self.worker_id, reference.url, reference.identificatie):
            return self._lease_lost(entry, "delivered")
        self.stats["delivered"] += 1
        logger.info("%s delivered to %s as %s", entry.zaaknummer, entry.backend, reference.identificatie)
        return "delivered"

    def _retry(self, entry: OutboxEntry, error: BaseException) -> str:
        attempt = entry.attempts + 1
        message = _short(error)
        if attempt >= self.settings.max_attempts:
            return self._park(
                entry, f"Niet afgeleverd na {attempt} pogingen. Laatste fout: {message}"[:MAX_ERROR_LENGTH]
            )
        delay = backoff_delay(attempt, self.settings, self._rng)
        if not self.store.mark_retry(
            entry.id, self.worker_id, message, self.store.now() + dt.timedelta(seconds=delay)
        ):
            return self._lease_lost(entry, "retry")
        self.stats["retried"] += 1
        logger.warning(
            "%s to %s failed (attempt %d, again in %.0f s): %s",
            entry.zaaknummer, entry.backend, attempt, delay, message,
        )
        return "retry"

    def _park(self, entry: OutboxEntry, message: str) -> str:
        if not self.store.park(entry.id, self.worker_id, message):
            return self._lease_lost(entry, "parked")
        self.stats["parked"] += 1
        logger.error("%s to %s parked: %s", entry.zaaknummer, entry.backend, message)
        return "parked"

    def _lease_lost(self, entry: OutboxEntry, outcome: str) -> str:
        """Our lease ran out and another worker claimed the entry (or staff requeued
        it): the entry is theirs now and our outcome is dropped; the new holder
        makes its own attempt (delivery is at least once, see the module
        docstring). Logged with ids only, no case data."""
        self.stats["lease_lost"] += 1
        logger.warning(
            "outbox entry %s (%s to %s): lease lost before recording %r; left to its new holder",
            entry.id, entry.zaaknummer, entry.backend, outcome,
        )
        return "lease_lost"

    def _release(self, entries: List[OutboxEntry]) -> None:
        """Give back claimed entries that were not started (graceful stop)."""
        now = self.store.now()
        for entry in entries:
            # Only while our lease is still valid: then no other worker has it.
            # release_outbox checks that again in the database (leased_by).
            if entry.lease_until is not None and entry.lease_until > now:
                try:
                    self.store.release_outbox(entry.id, self.worker_id)
                except Exception:  # noqa: BLE001 - the lease will expire anyway
                    logger.exception("releasing outbox entry %s failed", entry.id)


def configured_backends() -> List[str]:
    """Remote backends named in gemeente.yml zaaktypen (the ones to check at start)."""
    names = set()
    for zaaktype in (config.gemeente().get("zaaktypen") or {}).values():
        name = (zaaktype or {}).get("backend") or "embedded"
        if name != "embedded":
            names.add(name)
    return sorted(names)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot.outbox",
        description="Deliver filed cases to the remote case systems (ZGW, Signalen).",
    )
    parser.add_argument("--db", help="SQLAlchemy database URL (default: CASES_DB_URL or var/cases.db)")
    parser.add_argument("--once", action="store_true", help="deliver what is due now, then stop")
    parser.add_argument("--worker-id", help="name of this worker in the leases, unique per running worker "
                        "(default: host:pid:random)")
    parser.add_argument("--no-check", action="store_true", help="skip the start-up check of the backends")
    parser.add_argument("--log-level", default=os.environ.get("OUTBOX_LOG_LEVEL", "INFO"))
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    store = CaseStore(args.db)
    store.migrate()
    try:
        worker = DeliveryWorker(store, worker_id=args.worker_id)
        if not args.no_check:
            worker.check_backends()
    except (ValueError, PermanentDeliveryError) as error:
        logger.error("configuration error: %s", error)
        print(f"Configuration error: {error}", file=sys.stderr)
        return 2

    def _stop(signum, _frame):
        logger.info("signal %s: finishing the current delivery, then stopping", signum)
        worker.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        if args.once:
            worker.drain()
        else:
            worker.run()
    finally:
        store.dispose()
    logger.info("stats: %s", worker.stats)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
