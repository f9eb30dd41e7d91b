"""Staff command line for personal data in the conversation store.

    python -m bot.privacy purge [--older-than 30d] [--dry-run]
    python -m bot.privacy erase --sender ID [--reference REF]
    python -m bot.privacy erase --zaaknummer BOZ-2026-000123 [--reference REF]
    python -m bot.privacy audit
    python -m bot.privacy genkey

The tracker store comes from ``--endpoints`` (default: ``RASA_ENDPOINTS``, else
``endpoints.yml``), with the same ``${VAR}`` expansion Rasa does.

* ``purge`` deletes conversations whose last message is older than the
  retention period (default ``PRIVACY_RETENTION_DAYS``, 30 days), and older
  sessions of conversations that are still going on.
* ``erase`` removes one person's conversation on request (AVG art. 17): by
  conversation id, or by the zaaknummer the conversation filed. The case itself
  stays: it follows the municipality's own retention rules.
* ``audit`` counts personal data the patterns still find in the events table
  (values are never printed), so the IT department can check the claim.

Every purge and erasure is written to the audit log (``PRIVACY_AUDIT_LOG``,
default ``var/log/privacy_audit.log``) with counts and an erasure id, never with
the conversation id, the zaaknummer or anything that was erased.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import re
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

from bot.privacy import logs

audit_logger = logging.getLogger("bot.privacy.audit")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
CHUNK = 500


def parse_duration(value: str) -> dt.timedelta:
    """``30d``, ``12h``, ``2w``, ``90m``, ``45s`` as a timedelta."""
    match = _DURATION.match(value or "")
    if not match:
        raise argparse.ArgumentTypeError(f"ongeldige duur {value!r}; gebruik bijvoorbeeld 30d, 12h of 2w")
    return dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def default_retention() -> str:
    return f"{int(os.environ.get('PRIVACY_RETENTION_DAYS', '30'))}d"


# --------------------------------------------------------------------------- the events table
class EventsTable:
    """The ``events`` table of Rasa's SQL tracker store named in an endpoints file."""

    def __init__(self, endpoints_file: str) -> None:
        import sqlalchemy as sa
        from rasa.core.tracker_store import SQLTrackerStore, create_engine_kwargs
        from rasa.utils.endpoints import read_endpoint_config

        config = read_endpoint_config(endpoints_file, "tracker_store")
        if config is None:
            raise SystemExit(f"Geen tracker_store in {endpoints_file}.")
        kind = (config.type or "").lower()
        if kind != "sql" and not kind.endswith("sqltrackerstore"):
            raise SystemExit(f"De tracker store in {endpoints_file} is geen SQL-store ({config.type}).")
        kw = dict(config.kwargs)
        url = SQLTrackerStore.get_db_url(
            kw.get("dialect", "sqlite"), config.url or None, kw.get("port") or None, kw.get("db", "rasa.db"),
            kw.get("username") or None, kw.get("password") or None, kw.get("login_db") or None, kw.get("query"))
        self.engine = sa.create_engine(url, **create_engine_kwargs(url))
        SQLTrackerStore.Base.metadata.create_all(self.engine)
        self.table = SQLTrackerStore.SQLEvent.__table__
        self.sa = sa

    def stale_senders(self, cutoff: float) -> List[str]:
        t, sa = self.table, self.sa
        query = sa.select(t.c.sender_id).group_by(t.c.sender_id).having(sa.func.max(t.c.timestamp) < cutoff)
        with self.engine.connect() as conn:
            return [row[0] for row in conn.execute(query)]

    def delete_senders(self, senders: Sequence[str]) -> int:
        deleted = 0
        with self.engine.begin() as conn:
            for start in range(0, len(senders), CHUNK):
                chunk = list(senders[start:start + CHUNK])
                deleted += conn.execute(self.table.delete().where(self.table.c.sender_id.in_(chunk))).rowcount
        return deleted

    def old_sessions_query(self, cutoff: float):
        """Events older than ``cutoff`` from sessions before a conversation's latest session."""
        t, sa = self.table, self.sa
        latest = sa.alias(t, "latest")
        session_start = (sa.select(sa.func.max(latest.c.timestamp))
                         .where(latest.c.sender_id == t.c.sender_id, latest.c.type_name == "session_started")
                         .scalar_subquery())
        return sa.and_(t.c.timestamp < cutoff, t.c.timestamp < session_start)

    def count_old_sessions(self, cutoff: float) -> int:
        sa = self.sa
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(self.table)
                                .where(self.old_sessions_query(cutoff))).scalar() or 0

    def delete_old_sessions(self, cutoff: float) -> int:
        with self.engine.begin() as conn:
            return conn.execute(self.table.delete().where(self.old_sessions_query(cutoff))).rowcount

    def count(self, senders: Sequence[str]) -> int:
        sa = self.sa
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(self.table)
                                .where(self.table.c.sender_id.in_(list(senders)))).scalar() or 0

    def rows(self) -> Iterable[str]:
        with self.engine.connect() as conn:
            for row in conn.execution_options(stream_results=True).execute(self.sa.select(self.table.c.data)):
                yield row[0] or ""


# --------------------------------------------------------------------------- audit log
def _configure_logging() -> None:
    logs.install()
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s - %(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    path = Path(os.environ.get("PRIVACY_AUDIT_LOG") or _default_audit_log())
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    audit_logger.addHandler(handler)
    audit_logger.setLevel(logging.INFO)
    audit_logger.propagate = False


def _default_audit_log() -> Path:
    from bot import config

    return config.VAR_DIR / "log" / "privacy_audit.log"


def audit(action: str, **fields: Any) -> Dict[str, Any]:
    """One JSON line in the audit log: what kind of action, when, how much. Never what."""
    entry = {"time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "action": action, **fields}
    audit_logger.info(json.dumps(entry, ensure_ascii=False, sort_keys=True))
    return entry


# --------------------------------------------------------------------------- commands
def cmd_purge(table: EventsTable, args: argparse.Namespace) -> int:
    retention = args.older_than
    cutoff = time.time() - retention.total_seconds()
    stale = table.stale_senders(cutoff)
    if args.dry_run:
        events = table.count(stale) if stale else 0
        old = table.count_old_sessions(cutoff)
        print(f"Proef: {len(stale)} gesprekken ({events} gebeurtenissen) en {old} gebeurtenissen "
              f"uit oudere sessies zouden worden verwijderd.")
        return 0
    deleted = table.delete_senders(stale) if stale else 0
    old = table.delete_old_sessions(cutoff)
    audit("purge", retention_seconds=int(retention.total_seconds()), conversations=len(stale),
          events_deleted=deleted + old)
    print(f"Verwijderd: {len(stale)} gesprekken ({deleted} gebeurtenissen) en {old} gebeurtenissen "
          f"uit oudere sessies. Bewaartermijn: {args.older_than_text}.")
    return 0


def senders_for_case(zaaknummer: str) -> List[str]:
    """Conversation ids that filed (or booked) this case: its idempotency keys are
    ``<sender>:<flow run id>``."""
    from bot.cases.store import CaseStore

    store = CaseStore()
    store.migrate()
    case = store.get(zaaknummer)
    if case is None:
        return []
    key = case.idempotency_key or ""
    return [key.rsplit(":", 1)[0]] if ":" in key else []


def cmd_erase(table: EventsTable, args: argparse.Namespace) -> int:
    erasure_id = uuid.uuid4().hex[:12]
    if args.sender:
        senders, by = [args.sender], "sender"
    else:
        senders, by = senders_for_case(args.zaaknummer), "zaaknummer"
    deleted = table.delete_senders(senders) if senders else 0
    audit("erase", by=by, erasure_id=erasure_id, reference=args.reference or None,
          conversations=len(senders) if deleted else 0, events_deleted=deleted)
    if deleted:
        print(f"Gesprek verwijderd ({deleted} gebeurtenissen). Kenmerk van de verwijdering: {erasure_id}.")
    else:
        print(f"Geen gesprek gevonden; er is niets verwijderd. Kenmerk: {erasure_id}.")
    if args.zaaknummer:
        print("De zaak zelf is niet verwijderd: die volgt de bewaartermijn van de gemeente.")
    return 0


def cmd_audit(table: EventsTable, args: argparse.Namespace) -> int:
    from bot.privacy.masking import find_pii, normalise, public_findings

    public = public_findings()
    counts: Counter = Counter()
    rows = 0
    for data in table.rows():
        rows += 1
        for finding in find_pii(data):
            if normalise(finding.text) not in public:
                counts[finding.kind] += 1
    print(f"{rows} gebeurtenissen gecontroleerd.")
    if not counts:
        print("Geen persoonsgegevens gevonden die een patroon herkent.")
        return 0
    for kind, number in sorted(counts.items()):
        print(f"  {kind}: {number}")
    return 1


def cmd_genkey(_args: argparse.Namespace) -> int:
    from bot.privacy.protect import generate_key

    print(generate_key())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot.privacy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", default=os.environ.get("RASA_ENDPOINTS", "endpoints.yml"),
                        help="endpoints file with the tracker store (default: RASA_ENDPOINTS or endpoints.yml)")
    sub = parser.add_subparsers(dest="command", required=True)
    purge = sub.add_parser("purge", help="delete conversations past the retention period")
    purge.add_argument("--older-than", dest="older_than_text", default=default_retention(),
                       help="retention, e.g. 30d (default: PRIVACY_RETENTION_DAYS or 30d)")
    purge.add_argument("--dry-run", action="store_true", help="only count")
    erase = sub.add_parser("erase", help="remove one person's conversation on request")
    who = erase.add_mutually_exclusive_group(required=True)
    who.add_argument("--sender", help="conversation id (sender id)")
    who.add_argument("--zaaknummer", help="the case number the conversation filed")
    erase.add_argument("--reference", help="your own request number (e.g. AVG-2026-17); logged")
    sub.add_parser("audit", help="count personal data still found in the events table")
    sub.add_parser("genkey", help="print a new key for TRACKER_ENCRYPTION_KEYS")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "genkey":
        return cmd_genkey(args)
    if args.command == "purge":
        try:
            args.older_than = parse_duration(args.older_than_text)
        except argparse.ArgumentTypeError as error:
            print(error, file=sys.stderr)
            return 2
    _configure_logging()
    table = EventsTable(args.endpoints)
    try:
        return {"purge": cmd_purge, "erase": cmd_erase, "audit": cmd_audit}[args.command](table, args)
    finally:
        table.engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
