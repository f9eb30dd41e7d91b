"""Staff command line of the case store.

    python -m bot.cases [--db URL] list [--limit N] [--zaaktype TYPE]
    python -m bot.cases show ZAAKNUMMER
    python -m bot.cases export --format json|csv [--zaaktype TYPE]
    python -m bot.cases outbox [--state pending|delivered|parked]
    python -m bot.cases requeue OUTBOX_ID
    python -m bot.cases migrate

``--db`` overrides CASES_DB_URL. The database is migrated on first use.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import List, Optional, Sequence

from bot.cases.models import LOCAL_TZ, OUTBOX_STATES, Case
from bot.cases.store import CaseStore, OutboxEntryNotFound


def _local(value) -> str:
    return value.astimezone(LOCAL_TZ).strftime("%d-%m-%Y %H:%M") if value else "-"


def _table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(headers, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    return "\n".join(lines)


def _cmd_list(store: CaseStore, args) -> int:
    cases = store.list_cases(limit=args.limit, zaaktype=args.zaaktype)
    if not cases:
        print("Geen zaken gevonden.")
        return 0
    rows = [
        (c.zaaknummer, c.zaaktype, c.status, c.channel, c.backend, _local(c.created_at))
        for c in cases
    ]
    print(_table(rows, ("Zaaknummer", "Zaaktype", "Status", "Kanaal", "Backend", "Aangemaakt")))
    return 0


def _masked(bsn: Optional[str]) -> str:
    return "-" if not bsn else "*" * (len(bsn) - 3) + bsn[-3:]


def _cmd_show(store: CaseStore, args) -> int:
    case = store.get(args.zaaknummer)
    if case is None:
        print(f"Zaak {args.zaaknummer.strip().upper()} niet gevonden.", file=sys.stderr)
        return 1
    fields = [
        ("Zaaknummer", case.zaaknummer),
        ("Zaaktype", case.zaaktype),
        ("Status", case.status),
        ("Kanaal", case.channel),
        ("Backend", case.backend),
        ("Aangemaakt", _local(case.created_at)),
        ("Gewijzigd", _local(case.updated_at)),
        ("BSN", _masked(case.bsn)),
        ("Afspraakcode", case.booking_code or "-"),
        ("Extern kenmerk", case.remote_identificatie or "-"),
        ("Externe URL", case.remote_url or "-"),
    ]
    for label, value in fields:
        print(f"{label + ':':<16} {value}")
    print("\nGegevens:")
    print(json.dumps(case.data, ensure_ascii=False, indent=2, sort_keys=True))
    print("\nContact:")
    print(json.dumps(case.contact, ensure_ascii=False, indent=2, sort_keys=True))
    print("\nStatusgeschiedenis:")
    for status, at, toelichting in case.status_history:
        print(f"  {_local(at)}  {status}" + (f"  ({toelichting})" if toelichting else ""))
    entries = store.outbox_entries(zaaknummer=case.zaaknummer)
    print("\nAflevering (outbox):")
    if not entries:
        print("  geen (embedded)")
    for e in entries:
        print(
            f"  #{e.id} {e.backend}: {e.state}, pogingen {e.attempts}, "
            f"volgende poging {_local(e.next_attempt_at)}"
        )
        if e.last_error:
            print(f"    laatste fout: {e.last_error}")
    return 0


_CSV_FIELDS = (
    "zaaknummer", "zaaktype", "status", "channel", "backend", "created_at", "updated_at",
    "remote_url", "remote_identificatie", "booking_code", "data", "contact",
)


def _cmd_export(store: CaseStore, args) -> int:
    cases: List[Case] = store.list_cases(limit=args.limit, zaaktype=args.zaaktype)
    records = [c.as_dict() for c in cases]
    if args.format == "json":
        json.dump(records, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return 0
    writer = csv.DictWriter(sys.stdout, fieldnames=_CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for record in records:
        record["data"] = json.dumps(record["data"], ensure_ascii=False, sort_keys=True)
        record["contact"] = json.dumps(record["contact"], ensure_ascii=False, sort_keys=True)
        writer.writerow(record)
    return 0


def _cmd_outbox(store: CaseStore, args) -> int:
    entries = store.outbox_entries(state=args.state)
    if not entries:
        print("Geen outbox-items gevonden.")
        return 0
    rows = [
        (
            str(e.id), e.zaaknummer, e.backend, e.state, str(e.attempts),
            _local(e.next_attempt_at), (e.last_error or "-")[:80],
        )
        for e in entries
    ]
    print(_table(rows, ("Id", "Zaaknummer", "Backend", "Status", "Pogingen", "Volgende", "Laatste fout")))
    return 0


def _cmd_requeue(store: CaseStore, args) -> int:
    try:
        store.requeue(args.entry_id)
    except OutboxEntryNotFound:
        print(f"Outbox-item {args.entry_id} niet gevonden of al afgeleverd.", file=sys.stderr)
        return 1
    print(f"Outbox-item {args.entry_id} wordt opnieuw afgeleverd.")
    return 0


def _cmd_migrate(store: CaseStore, args) -> int:
    print("Database is bijgewerkt.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    db_help = "SQLAlchemy database URL (default: CASES_DB_URL or var/cases.db)"
    parser = argparse.ArgumentParser(prog="python -m bot.cases", description="Zaken van de assistent bekijken.")
    parser.add_argument("--db", default=None, help=db_help)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default=argparse.SUPPRESS, help=db_help)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", parents=[common], help="recent cases")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--zaaktype")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("show", parents=[common], help="one case with status history and delivery")
    p.add_argument("zaaknummer")
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("export", parents=[common], help="all cases as JSON or CSV")
    p.add_argument("--format", choices=("json", "csv"), default="json")
    p.add_argument("--zaaktype")
    p.add_argument("--limit", type=int, default=None)
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("outbox", parents=[common], help="delivery queue to remote backends")
    p.add_argument("--state", choices=OUTBOX_STATES)
    p.set_defaults(func=_cmd_outbox)

    p = sub.add_parser("requeue", parents=[common], help="deliver a parked outbox item again")
    p.add_argument("entry_id", type=int)
    p.set_defaults(func=_cmd_requeue)

    p = sub.add_parser("migrate", parents=[common], help="create or upgrade the database")
    p.set_defaults(func=_cmd_migrate)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    store = CaseStore(args.db)
    try:
        store.migrate()
        return args.func(store, args)
    except BrokenPipeError:  # e.g. piped into `head`
        return 0
    finally:
        store.dispose()


if __name__ == "__main__":
    sys.exit(main())
