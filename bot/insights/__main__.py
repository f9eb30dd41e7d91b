"""Command line for the insights cache and figures.

    python -m bot.insights refresh [--tracker-url URL]     # read new events into the cache
    python -m bot.insights report [--periode week|maand|aangepast] [--datum D] [--van D --tot D]
                                  [--table kpi|aantallen|...] [--tracker-url URL]

Without ``--tracker-url`` the tracker store of ``endpoints.yml`` is used (a SQL
tracker store; ``${ENV}`` values are filled in by Rasa's own endpoint reader).
The case store is ``CASES_DB_URL``, the cache ``INSIGHTS_DB_URL``.
Useful after a deployment on an existing tracker DB: the first refresh reads
every event once, so run it before the first page view.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Optional, Sequence

from sqlalchemy import create_engine


def tracker_url_from_endpoints(path: str = "endpoints.yml") -> str:
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.core.utils import read_endpoints_from_path

    endpoint = read_endpoints_from_path(path).tracker_store
    if endpoint is None or str(endpoint.type).lower() not in ("sql",) and "SQLTrackerStore" not in str(endpoint.type):
        raise SystemExit(f"{path}: the tracker store is not a SQL tracker store; pass --tracker-url")
    kwargs = endpoint.kwargs
    url = SQLTrackerStore.get_db_url(kwargs.get("dialect", "sqlite"), endpoint.url or kwargs.get("host"),
                                     kwargs.get("port"), kwargs.get("db", "rasa.db"), kwargs.get("username"),
                                     kwargs.get("password"), kwargs.get("login_db"), kwargs.get("query"))
    return str(url) if not hasattr(url, "render_as_string") else url.render_as_string(hide_password=False)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.insights", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["refresh", "report"])
    parser.add_argument("--tracker-url")
    parser.add_argument("--endpoints", default="endpoints.yml")
    parser.add_argument("--periode", default="maand")
    parser.add_argument("--datum")
    parser.add_argument("--van")
    parser.add_argument("--tot")
    parser.add_argument("--table", help="print one table as CSV (default: all, as text)")
    args = parser.parse_args(argv)

    from bot.cases.store import CaseStore
    from bot.insights import cache, export, extract, report

    tracker = create_engine(args.tracker_url or tracker_url_from_endpoints(args.endpoints))
    cache_engine = cache.open_cache()
    started = time.perf_counter()
    result = extract.Extractor(tracker, cache_engine).refresh()
    print(f"{result.events} events read in {result.seconds:.1f} s"
          f"{' (cache rebuilt)' if result.rebuilt else ''}; up to date: {'ja' if result.caught_up else 'nee'}",
          file=sys.stderr)
    if args.command == "refresh":
        return 0
    store = CaseStore()
    store.migrate()
    try:
        period = report.parse_period({"periode": args.periode, "datum": args.datum, "van": args.van,
                                      "tot": args.tot})
    except report.PeriodError as error:
        parser.error(str(error))
    rep = report.build_report(cache_engine, store.engine, period)
    tables = rep.tables()
    if args.table:
        if args.table not in tables:
            parser.error(f"unknown table; choose from {', '.join(tables)}")
        sys.stdout.buffer.write(export.to_csv(tables[args.table]))
        return 0
    print(f"Inzichten {period.label}: {rep.conversations} gesprekken, {report.pct(rep.digital_share)} "
          f"volledig digitaal ({time.perf_counter() - started:.1f} s)")
    for name, table in tables.items():
        print(f"\n{table.title} [{name}]")
        print(" | ".join(table.columns))
        for row in table.rows:
            print(" | ".join(str(v) for v in row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
