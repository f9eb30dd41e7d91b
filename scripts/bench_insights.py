"""Benchmark of the insights page at 100,000 conversations (issue 9; target: page render <= 2 s).

Generates synthetic conversations (the event rows this assistant writes, see
``bot/insights/synthetic.py``: ~90 events each, 8 weeks, FAQ answers,
fallbacks, guided flows completed/stopped/left, handoffs, call-back requests,
satisfaction answers) into a temporary SQLite tracker DB and case store, then
times, in this process:

1. the first build of the insights cache from all events (once per deployment;
   later page views only read new events);
2. the page for the whole period (all conversations): figures, charts (drawn,
   not from the chart cache) and HTML, with the cache up to date;
3. the same page again (charts for the same numbers come from the chart cache);
4. the page for one month;
5. 1,000 new conversations arrive: the page view that reads them and renders.

Hook for ``scripts/bench.py``: ``SECTIONS["insights_render"] = bench_insights.section_insights``.
Standalone: ``python scripts/bench_insights.py [--conversations N] [--json out.json]``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_RENDER_S = 2.0


def run(conversations: int = 100_000, workdir: Optional[Path] = None, days: int = 56,
        repeats: int = 3) -> Dict[str, Any]:
    """All measurements as a dict (seconds)."""
    from sqlalchemy import create_engine

    from bot.cases.models import LOCAL_TZ
    from bot.cases.store import make_engine
    from bot.insights import cache, charts, report, synthetic
    from bot.staff.auth import StaffUser
    from integrations.insights.render import Insights

    own_tmp = None
    if workdir is None:
        own_tmp = tempfile.TemporaryDirectory(prefix="bench-insights-")
        workdir = Path(own_tmp.name)
    workdir.mkdir(parents=True, exist_ok=True)
    result: Dict[str, Any] = {"conversations": conversations, "days": days,
                              "load_average_start": os.getloadavg()[0]}
    try:
        tracker_path = workdir / "tracker.db"
        case_url = f"sqlite:///{workdir / 'cases.db'}"
        now = time.time()
        start = now - (days + 1) * 86400
        t = time.perf_counter()
        sink = synthetic.SqliteSink(str(tracker_path))
        generated = synthetic.generate(sink, conversations, start=start, days=days)
        sink.close()
        synthetic.insert_cases(case_url, generated.cases)
        result["generate_s"] = time.perf_counter() - t
        result["events"] = generated.events
        result["cases"] = len(generated.cases)
        result["tracker_db_mb"] = tracker_path.stat().st_size / 1e6

        tracker = create_engine(f"sqlite:///{tracker_path}")
        insights = Insights(cache.open_cache(f"sqlite:///{workdir / 'insights.db'}"), make_engine(case_url))
        user = StaffUser("bench", "redactie")

        t = time.perf_counter()
        built = insights.refresh(tracker, budget=None)
        result["cold_build_s"] = time.perf_counter() - t
        result["cold_build_events_read"] = built.events

        first_day = dt.datetime.fromtimestamp(start, LOCAL_TZ).date()
        last_day = dt.datetime.fromtimestamp(now, LOCAL_TZ).date()
        whole = report.Period("aangepast", first_day, last_day)
        month = report.period_for("maand", last_day - dt.timedelta(days=20))

        # Warm-up: imports (matplotlib, scikit-learn, Jinja2) happen once per server process.
        t = time.perf_counter()
        insights.page(tracker, month, user=user, csrf="bench")
        result["first_page_in_process_s"] = time.perf_counter() - t

        renders = []
        for _ in range(repeats):
            charts._CACHE.clear()
            rendered = insights.page(tracker, whole, user=user, csrf="bench")
            renders.append(rendered.timings)
        result["page_all_conversations_s"] = statistics.median(r["total"] for r in renders)
        result["page_all_conversations_parts"] = {k: statistics.median(r[k] for r in renders)
                                                  for k in renders[0]}
        result["conversations_in_page"] = rendered.report.conversations
        rendered = insights.page(tracker, whole, user=user, csrf="bench")
        result["page_repeat_view_s"] = rendered.timings["total"]

        charts._CACHE.clear()
        rendered = insights.page(tracker, month, user=user, csrf="bench")
        result["page_month_s"] = rendered.timings["total"]
        result["conversations_in_month"] = rendered.report.conversations

        sink = synthetic.SqliteSink(str(tracker_path))
        synthetic.generate(sink, 1000, start=now - 3600, days=0, seed=7)
        sink.close()
        charts._CACHE.clear()
        rendered = insights.page(tracker, whole, user=user, csrf="bench")
        result["page_after_1000_new_s"] = rendered.timings["total"]
        result["page_after_1000_new_refresh_s"] = rendered.timings["refresh"]
        result["caught_up_after_1000_new"] = rendered.refresh.caught_up
        tracker.dispose()
        result["load_average_end"] = os.getloadavg()[0]
    finally:
        if own_tmp is not None:
            own_tmp.cleanup()
    return result


def section_insights(bench: Any) -> Any:
    """``scripts/bench.py`` section: 100,000 conversations (1,000 with ``--quick``)."""
    from scripts.bench import Row, Section

    n = 1_000 if getattr(bench, "quick", False) else 100_000
    data = run(n, Path(bench.workdir) / "insights")
    target = f"≤ {TARGET_RENDER_S:.0f} s"

    def ok(value: float) -> str:
        return "ok" if value <= TARGET_RENDER_S else "SHORT"

    section = Section(f"Insights page at {n:,} conversations".replace(",", "."))
    parts = data["page_all_conversations_parts"]
    section.rows = [
        Row("page, all conversations (charts drawn)", f"{data['page_all_conversations_s']:.2f} s", target,
            ok(data["page_all_conversations_s"])),
        Row("page, one month", f"{data['page_month_s']:.2f} s", target, ok(data["page_month_s"])),
        Row("page after 1,000 new conversations (reads them too)", f"{data['page_after_1000_new_s']:.2f} s",
            target, ok(data["page_after_1000_new_s"])),
        Row("page, repeat view (charts from cache)", f"{data['page_repeat_view_s']:.2f} s"),
        Row("first page in a fresh process (imports)", f"{data['first_page_in_process_s']:.2f} s"),
        Row("first build of the cache from all events (once)", f"{data['cold_build_s']:.1f} s"),
        Row("generating the synthetic data", f"{data['generate_s']:.0f} s"),
    ]
    section.notes = [
        f"{data['events']:,} events ({data['tracker_db_mb']:.0f} MB SQLite) for {n:,} conversations over "
        f"{data['days']} days, {data['cases']:,} cases. Parts of the all-conversations page: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in parts.items()) + ".",
        f"Load average {data['load_average_start']:.1f} at the start, {data['load_average_end']:.1f} at the "
        "end (2 cores; other work on the machine makes these times pessimistic).",
        "The page reads the insights cache (bot/insights/cache.py), kept up to date incrementally from the "
        "tracker store; the first build reads every event once. A page view spends at most "
        "refresh_budget_seconds (credentials.yml, default 1 s) on new events and shows a notice when it "
        "could not read them all.",
    ]
    section.data = data
    return section


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    data = run(args.conversations, args.workdir)
    text = json.dumps(data, indent=2, default=str)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0 if data["page_all_conversations_s"] <= TARGET_RENDER_S else 1


if __name__ == "__main__":
    sys.exit(main())
