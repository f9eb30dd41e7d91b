"""Server-side charts (matplotlib, Agg backend, PNG) with Dutch labels.

Figures are drawn with matplotlib's object API (``Figure`` + ``FigureCanvasAgg``),
without pyplot, so no global state is shared between requests. Every chart has
the same numbers in a table next to it on the page (the chart's text
alternative); colours have at least 3:1 contrast with white and with each other
where they touch.
"""
from __future__ import annotations

import io
import os
import threading
from collections import OrderedDict
from typing import List, Optional, Sequence, Tuple

os.environ.setdefault("MPLBACKEND", "Agg")

from bot.insights import labels  # noqa: E402
from bot.insights.report import FlowFigures, Report, week_label  # noqa: E402

PRIMARY = "#005A9C"     # the municipality's colour (gemeente.yml assistent.kleuren.primair)
SECOND = "#B34700"      # dark orange
THIRD = "#4D4D4D"       # dark grey
GOOD = "#1B7F3B"
BAD = "#B3261E"
CHANNEL_COLOURS = {"website": PRIMARY, "hulpplein": SECOND, "rest": THIRD, "test": "#6B4FA0"}
DPI = 100


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(111)
    axes.spines["top"].set_visible(False)
    axes.spines["right"].set_visible(False)
    return figure, axes


def _png(figure, left: float = 0.08, right: float = 0.82, bottom: float = 0.16, top: float = 0.88) -> bytes:
    """PNG bytes. Margins are set by hand: ``tight_layout`` costs a full extra draw."""
    buffer = io.BytesIO()
    figure.subplots_adjust(left=left, right=right, bottom=bottom, top=top)
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


_CACHE: "OrderedDict[Tuple, bytes]" = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 64


def _cached(key: Tuple, draw) -> bytes:
    """Charts for the same numbers are drawn once (the page is often reloaded)."""
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    png = draw()
    with _CACHE_LOCK:
        _CACHE[key] = png
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return png


def _nl_percent(value: float, _position=None) -> str:
    return f"{value:.0f}%"


def kpi_chart(report: Report) -> Optional[bytes]:
    """Share fully digital per week, one bar per channel."""
    if not report.kpi_weeks:
        return None
    key = ("kpi", tuple(report.kpi_weeks), tuple(report.channels))
    return _cached(key, lambda: _kpi_chart(report))


def _kpi_chart(report: Report) -> bytes:
    from matplotlib.ticker import FuncFormatter

    weeks = sorted({w for w, _, _, _ in report.kpi_weeks})
    channels = [c for c in report.channels if any(ch == c for _, ch, _, _ in report.kpi_weeks)]
    values = {(w, c): (dig / n * 100 if n else 0.0, n) for w, c, n, dig in report.kpi_weeks}
    figure, axes = _figure(8.5, 3.6)
    width = 0.8 / max(len(channels), 1)
    for i, channel in enumerate(channels):
        xs = [k + (i - (len(channels) - 1) / 2) * width for k in range(len(weeks))]
        ys = [values.get((w, channel), (0.0, 0))[0] for w in weeks]
        bars = axes.bar(xs, ys, width * 0.95, label=labels.channel(channel),
                        color=CHANNEL_COLOURS.get(channel, THIRD))
        for bar, y, w in zip(bars, ys, weeks):
            if values.get((w, channel), (0, 0))[1]:
                axes.annotate(f"{y:.0f}%", (bar.get_x() + bar.get_width() / 2, y), ha="center", va="bottom",
                              fontsize=8, xytext=(0, 2), textcoords="offset points")
    axes.set_xticks(range(len(weeks)))
    years = {w.split("-W")[0] for w in weeks}
    names = [week_label(w) if len(years) > 1 else f"week {int(w.split('-W')[1])}" for w in weeks]
    axes.set_xticklabels(names, fontsize=9 if len(weeks) <= 8 else 7,
                         rotation=0 if len(weeks) <= 8 else 45, ha="center" if len(weeks) <= 8 else "right")
    axes.set_ylim(0, 105)
    axes.yaxis.set_major_formatter(FuncFormatter(_nl_percent))
    axes.set_ylabel("Volledig digitaal afgehandeld")
    if len(years) == 1:
        axes.set_xlabel(f"Week van {next(iter(years))}")
    axes.set_title("Aandeel gesprekken volledig digitaal afgehandeld, per week en kanaal", fontsize=11)
    axes.legend(frameon=False, fontsize=9, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes.grid(axis="y", color="#DDDDDD", linewidth=0.8)
    axes.set_axisbelow(True)
    legend = max((len(labels.channel(c)) for c in channels), default=0) * 7.2 + 50
    return _png(figure, left=0.09, right=1 - legend / (8.5 * DPI), bottom=0.12, top=0.88)


def _hbar(rows: Sequence[Tuple[str, Sequence[int]]], series: Sequence[Tuple[str, str]], title: str,
          xlabel: str, stacked: bool) -> bytes:
    key = ("hbar", tuple((name, tuple(values)) for name, values in rows), tuple(series), title, xlabel, stacked)
    return _cached(key, lambda: _draw_hbar(rows, series, title, xlabel, stacked))


def _draw_hbar(rows: Sequence[Tuple[str, Sequence[int]]], series: Sequence[Tuple[str, str]], title: str,
               xlabel: str, stacked: bool) -> bytes:
    height = max(1.8, 0.45 * len(rows) + 1.2)
    figure, axes = _figure(8.5, height)
    names = [r[0] for r in rows][::-1]
    data = [r[1] for r in rows][::-1]
    ys = list(range(len(names)))
    left = [0] * len(names)
    bar_height = 0.7 if stacked else 0.8 / len(series)
    for k, (label, colour) in enumerate(series):
        values = [row[k] for row in data]
        if stacked:
            bars = axes.barh(ys, values, bar_height, left=left, label=label, color=colour)
            left = [a + b for a, b in zip(left, values)]
        else:
            offset = ((len(series) - 1) / 2 - k) * bar_height   # first series on top
            bars = axes.barh([y + offset for y in ys], values, bar_height * 0.95, label=label, color=colour)
        for bar, value in zip(bars, values):
            if value:
                x = bar.get_x() + bar.get_width()
                axes.annotate(str(value), (x if not stacked else bar.get_x() + bar.get_width() / 2,
                                           bar.get_y() + bar.get_height() / 2),
                              ha="left" if not stacked else "center", va="center", fontsize=8,
                              xytext=(3 if not stacked else 0, 0), textcoords="offset points",
                              color="black" if not stacked else "white")
    axes.set_yticks(ys)
    axes.set_yticklabels(names, fontsize=9)
    axes.set_xlabel(xlabel)
    axes.set_title(title, fontsize=11)
    axes.xaxis.get_major_locator().set_params(integer=True)
    if len(series) > 1:
        axes.legend(frameon=False, fontsize=9, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes.grid(axis="x", color="#DDDDDD", linewidth=0.8)
    axes.set_axisbelow(True)
    width_px = 8.5 * DPI
    longest = max((len(name) for name, _ in rows), default=10)
    left = min(0.45, (longest * 7.2 + 24) / width_px)   # ~7 px per character at 9 pt
    inches = figure.get_figheight()
    legend = max((len(label) for label, _ in series), default=0) * 7.2 + 50
    return _png(figure, left=left, right=1 - legend / width_px if len(series) > 1 else 0.95,
                bottom=0.55 / inches, top=1 - 0.4 / inches)


def cases_chart(report: Report) -> Optional[bytes]:
    if not report.cases:
        return None
    channels = [c for c in report.channels if any(ch == c for _, ch, _ in report.cases)]
    totals = {}
    for zaaktype, channel, n in report.cases:
        totals.setdefault(zaaktype, {})[channel] = n
    order = sorted(totals, key=lambda z: -sum(totals[z].values()))
    rows = [(labels.zaaktype(z), [totals[z].get(c, 0) for c in channels]) for z in order]
    series = [(labels.channel(c), CHANNEL_COLOURS.get(c, THIRD)) for c in channels]
    return _hbar(rows, series, "Aanvragen per soort en kanaal", "Aantal aanvragen", stacked=True)


def flows_chart(flows: List[FlowFigures]) -> Optional[bytes]:
    if not flows:
        return None
    rows = [(f.label, [f.started, f.completed]) for f in flows]
    return _hbar(rows, [("Gestart", THIRD), ("Afgerond", PRIMARY)], "Flows: gestart en afgerond",
                 "Aantal keer", stacked=False)


def satisfaction_chart(report: Report) -> Optional[bytes]:
    rated = sorted((r for r in report.satisfaction if r[2] or r[3]), key=lambda r: (-(r[2] + r[3]), r[0]))
    rows = [(labels.topic(t), [up, down]) for t, _, up, down in rated]
    if not rows:
        return None
    return _hbar(rows, [("Tevreden", GOOD), ("Niet tevreden", BAD)], "Tevredenheid per onderwerp",
                 "Aantal antwoorden", stacked=True)


def all_charts(report: Report) -> dict:
    return {"kpi": kpi_chart(report), "aanvragen": cases_chart(report), "flows": flows_chart(report.flows),
            "tevredenheid": satisfaction_chart(report)}
