"""Compute and render the insights page (no Sanic here, so the benchmark can time it).

``Insights.page(...)``: refresh the cache from the tracker store (bounded by a
time budget), build the report for the period, draw the charts (PNG as
``data:`` URIs, allowed by the page CSP ``img-src 'self' data:``) and fill the
Jinja2 template (autoescape on: every value is HTML-escaped).
"""
from __future__ import annotations

import base64
import datetime as dt
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional
from urllib.parse import urlencode

import jinja2
from sqlalchemy.engine import Engine

from bot import config
from bot.cases.models import LOCAL_TZ
from bot.insights import cache, charts, export, labels, report as reports
from bot.insights.extract import Extractor, RefreshResult
from bot.insights.review import domain_intents

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
ROLE_LABELS = {"redactie": "redactie", "manager": "manager", "kcc": "KCC"}
DEFAULT_BUDGET = object()   # "use Insights.refresh_budget"

_env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                          trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)


def _data_uri(png: Optional[bytes]) -> Optional[str]:
    if not png:
        return None
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


@dataclass
class Rendered:
    html: str
    report: reports.Report
    refresh: RefreshResult
    timings: Dict[str, float] = field(default_factory=dict)


class Insights:
    """One per process: the cache and case store engines, and an extractor per tracker engine."""

    def __init__(self, cache_engine: Optional[Engine] = None, case_engine: Optional[Engine] = None,
                 refresh_budget: float = 1.0) -> None:
        self.cache_engine = cache_engine or cache.open_cache()
        self._case_engine = case_engine
        self.refresh_budget = refresh_budget
        self._extractors: Dict[int, Extractor] = {}
        self._lock = threading.Lock()

    @property
    def case_engine(self) -> Engine:
        if self._case_engine is None:
            from bot.cases.store import CaseStore

            store = CaseStore()
            store.migrate()  # what every process of the assistant does on first use
            self._case_engine = store.engine
        return self._case_engine

    def extractor(self, tracker: Engine) -> Extractor:
        with self._lock:
            found = self._extractors.get(id(tracker))
            if found is None:
                found = self._extractors[id(tracker)] = Extractor(tracker, self.cache_engine)
            return found

    def refresh(self, tracker: Optional[Engine], budget: Any = DEFAULT_BUDGET) -> RefreshResult:
        """Read new events; ``budget``: seconds, None = until caught up, default = refresh_budget."""
        if tracker is None:
            return RefreshResult()
        return self.extractor(tracker).refresh(self.refresh_budget if budget is DEFAULT_BUDGET else budget)

    def report(self, period: reports.Period) -> reports.Report:
        return reports.build_report(self.cache_engine, self.case_engine, period)

    def export(self, tracker: Optional[Engine], period: reports.Period, table: str) -> Optional[bytes]:
        self.refresh(tracker)
        tables = self.report(period).tables()
        if table not in tables:
            return None
        return export.to_csv(tables[table])

    def page(self, tracker: Optional[Engine], period: reports.Period, *, user: Any, csrf: str,
             period_error: str = "", flash: Optional[Dict[str, str]] = None,
             budget: Any = DEFAULT_BUDGET) -> Rendered:
        started = time.perf_counter()
        timings: Dict[str, float] = {}
        refresh = self.refresh(tracker, budget)
        timings["refresh"] = time.perf_counter() - started
        t = time.perf_counter()
        report = self.report(period)
        timings["figures"] = time.perf_counter() - t
        t = time.perf_counter()
        images = {name: _data_uri(png) for name, png in charts.all_charts(report).items()}
        timings["charts"] = time.perf_counter() - t
        t = time.perf_counter()
        html = render_html(report, refresh, images, user=user, csrf=csrf, period_error=period_error,
                           flash=flash, no_tracker=tracker is None, started=started)
        timings["html"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - started
        return Rendered(html, report, refresh, timings)


def page_url(period: reports.Period, **extra: str) -> str:
    query = dict(period.query())
    query.update(extra)
    return "/inzichten?" + urlencode(query)


def render_html(report: reports.Report, refresh: RefreshResult, images: Dict[str, Optional[str]], *,
                user: Any, csrf: str, period_error: str = "", flash: Optional[Dict[str, str]] = None,
                no_tracker: bool = False, started: Optional[float] = None) -> str:
    period = report.period
    role = getattr(user, "role", "")
    words = {"week": "week", "maand": "maand", "aangepast": "periode"}

    def export_url(name: str) -> str:
        return f"/inzichten/export/{name}.csv?" + urlencode(period.query())

    generated = dt.datetime.fromtimestamp(report.generated_at, LOCAL_TZ)
    seconds = time.perf_counter() - started if started is not None else 0.0
    template = _env.get_template("inzichten.html")
    return template.render(
        gemeente=(config.gemeente().get("gemeente") or {}).get("naam", ""),
        user=user, role_label=ROLE_LABELS.get(role, role), csrf=csrf, period=period,
        period_query=period.query(), period_word=words[period.kind],
        previous_url=page_url(period.shifted(-1)), next_url=page_url(period.shifted(1)),
        period_error=period_error, flash=flash, refresh=refresh, no_tracker=no_tracker,
        report=report, tables=report.tables(), charts=images, pct=reports.pct,
        local_time=reports.local_time, topic_label=labels.topic, export_url=export_url,
        can_assign=role == "redactie", intents=assignable_intents(),
        generated=f"{generated.day} {reports.MONTHS[generated.month - 1]} {generated.year}, {generated:%H.%M} uur",
        seconds=f"{seconds:.1f}".replace(".", ","),
    )


def warm_up() -> None:
    """Import and load what the first page needs (matplotlib, scikit-learn, the template)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    from matplotlib.figure import Figure  # noqa: F401
    from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: F401

    _env.get_template("inzichten.html")
    assignable_intents()


_INTENTS: List[str] = []


def assignable_intents() -> List[str]:
    """Domain intents an example may be assigned to, sorted by their Dutch label."""
    global _INTENTS
    if not _INTENTS:
        _INTENTS = sorted(domain_intents(), key=lambda i: labels.topic(i).lower())
    return list(_INTENTS)
