"""The figures of the insights page for one period, from the cache and the case store.

:func:`build_report` returns a :class:`Report`; :meth:`Report.tables` gives
every table of the page (the same rows go to the CSV export). What is counted
is defined in :mod:`bot.insights.definitions`.
"""
from __future__ import annotations

import bisect
import datetime as dt
import functools
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.engine import Engine

from bot import config
from bot.cases.models import LOCAL_TZ, zaak
from bot.insights import cache, grouping, labels
from bot.insights import definitions as d

MONTHS = ["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september",
          "oktober", "november", "december"]
PERIOD_KINDS = ("week", "maand", "aangepast")
MAX_CUSTOM_DAYS = 366 * 2


def nl_date(day: dt.date) -> str:
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


@dataclass(frozen=True)
class Period:
    kind: str
    start: dt.date
    end: dt.date          # inclusive

    @property
    def label(self) -> str:
        if self.kind == "week":
            year, week, _ = self.start.isocalendar()
            return f"week {week} van {year} ({nl_date(self.start)} tot en met {nl_date(self.end)})"
        if self.kind == "maand":
            return f"{MONTHS[self.start.month - 1]} {self.start.year}"
        return f"{nl_date(self.start)} tot en met {nl_date(self.end)}"

    def bounds(self) -> Tuple[float, float]:
        """Unix times [start, end) of the local (Dutch) days."""
        start = dt.datetime.combine(self.start, dt.time(0), tzinfo=LOCAL_TZ)
        end = dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(0), tzinfo=LOCAL_TZ)
        return start.timestamp(), end.timestamp()

    def query(self) -> Dict[str, str]:
        if self.kind == "aangepast":
            return {"periode": self.kind, "van": self.start.isoformat(), "tot": self.end.isoformat()}
        return {"periode": self.kind, "datum": self.start.isoformat()}

    def shifted(self, steps: int) -> "Period":
        if self.kind == "week":
            return period_for("week", self.start + dt.timedelta(days=7 * steps))
        if self.kind == "maand":
            month = self.start.month - 1 + steps
            return period_for("maand", dt.date(self.start.year + month // 12, month % 12 + 1, 1))
        length = (self.end - self.start).days + 1
        delta = dt.timedelta(days=length * steps)
        return Period("aangepast", self.start + delta, self.end + delta)


def period_for(kind: str, day: dt.date) -> Period:
    if kind == "week":
        start = day - dt.timedelta(days=day.weekday())
        return Period("week", start, start + dt.timedelta(days=6))
    if kind == "maand":
        start = day.replace(day=1)
        following = (start + dt.timedelta(days=32)).replace(day=1)
        return Period("maand", start, following - dt.timedelta(days=1))
    raise ValueError(kind)


class PeriodError(ValueError):
    """A period filter that cannot be used; the message is Dutch, for the page."""


def parse_period(args: Mapping[str, Any], today: Optional[dt.date] = None) -> Period:
    """``periode`` = week | maand (with optional ``datum``) or aangepast (``van``, ``tot``)."""
    today = today or dt.datetime.now(LOCAL_TZ).date()

    def _date(name: str, default: Optional[dt.date]) -> dt.date:
        value = args.get(name)
        if isinstance(value, list):
            value = value[0] if value else None
        if not value:
            if default is None:
                raise PeriodError(f"Vul een datum in bij '{name}'.")
            return default
        try:
            return dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise PeriodError(f"'{value}' is geen datum. Gebruik jjjj-mm-dd.") from None

    kind = args.get("periode") or "maand"
    if isinstance(kind, list):
        kind = kind[0] if kind else "maand"
    if kind not in PERIOD_KINDS:
        raise PeriodError("Kies week, maand of aangepast.")
    if kind in ("week", "maand"):
        return period_for(kind, _date("datum", today))
    start, end = _date("van", None), _date("tot", None)
    if end < start:
        raise PeriodError("De einddatum ligt voor de begindatum.")
    if (end - start).days > MAX_CUSTOM_DAYS:
        raise PeriodError("Kies een periode van hooguit twee jaar.")
    return Period("aangepast", start, end)


# --------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------
@dataclass
class Table:
    title: str
    columns: List[str]
    rows: List[List[Any]]


def share(part: int, whole: int) -> Optional[float]:
    return part / whole if whole else None


def pct(value: Optional[float]) -> str:
    return "–" if value is None else f"{value * 100:.0f}%".replace(".", ",")


@dataclass
class StepFigures:
    step: str
    label: str
    reached: int = 0
    stopped: int = 0
    abandoned: int = 0


@dataclass
class FlowFigures:
    flow: str
    started: int = 0
    completed: int = 0
    stopped: int = 0
    abandoned: int = 0
    busy: int = 0
    filed: int = 0
    to_employee: int = 0      # stopped/abandoned runs with a handoff in them
    steps: List[StepFigures] = field(default_factory=list)

    @property
    def label(self) -> str:
        return labels.flow(self.flow)

    @property
    def worst_step(self) -> Optional[StepFigures]:
        dropped = [s for s in self.steps if s.stopped + s.abandoned > 0]
        return max(dropped, key=lambda s: s.stopped + s.abandoned) if dropped else None


@dataclass
class Report:
    period: Period
    generated_at: float
    conversations: int = 0
    digital: int = 0
    user_messages: int = 0
    fallback_messages: int = 0
    conversations_with_fallback: int = 0
    handoffs: int = 0
    conversations_with_handoff: int = 0
    callbacks: int = 0
    answered: int = 0
    flows_completed: int = 0
    cases_total: int = 0
    per_channel: Dict[str, Dict[str, int]] = field(default_factory=dict)
    kpi_weeks: List[Tuple[str, str, int, int]] = field(default_factory=list)   # week, channel, n, digital
    cases: List[Tuple[str, str, int]] = field(default_factory=list)            # zaaktype, channel, n
    flows: List[FlowFigures] = field(default_factory=list)
    unrecognised: List[grouping.Group] = field(default_factory=list)
    unrecognised_total: int = 0
    assigned: Dict[str, str] = field(default_factory=dict)                     # normalised -> intent
    satisfaction: List[Tuple[str, int, int, int]] = field(default_factory=list)  # topic, asked, up, down
    satisfaction_enabled: bool = False
    timings: Dict[str, float] = field(default_factory=dict)

    @property
    def digital_share(self) -> Optional[float]:
        return share(self.digital, self.conversations)

    @property
    def fallback_rate(self) -> Optional[float]:
        return share(self.fallback_messages, self.user_messages)

    @property
    def channels(self) -> List[str]:
        order = {c: i for i, c in enumerate(d.KNOWN_CHANNELS)}
        return sorted(self.per_channel, key=lambda c: order.get(c, 99))

    def group_assignment(self, group: grouping.Group) -> Optional[str]:
        for key in group.keys:
            if key in self.assigned:
                return self.assigned[key]
        return None

    # -- tables (page and CSV) ----------------------------------------------
    def tables(self) -> Dict[str, Table]:
        return {
            "kpi": self.table_kpi(),
            "aantallen": self.table_counts(),
            "aanvragen": self.table_cases(),
            "flows": self.table_flows(),
            "afhaken": self.table_steps(),
            "niet_herkend": self.table_unrecognised(),
            "tevredenheid": self.table_satisfaction(),
        }

    def table_kpi(self) -> Table:
        rows = [[week_label(w), labels.channel(c), n, dig, pct(share(dig, n))]
                for w, c, n, dig in self.kpi_weeks]
        return Table("Volledig digitaal afgehandeld per week en kanaal",
                     ["Week", "Kanaal", "Gesprekken", "Volledig digitaal", "Aandeel"], rows)

    def table_counts(self) -> Table:
        columns = ["Kanaal", "Gesprekken", "Volledig digitaal", "Aandeel digitaal", "Berichten",
                   "Fallbacks", "Fallback-percentage", "Overdrachten", "Terugbelverzoeken",
                   "Aanvragen ingediend"]
        rows = []
        for c in self.channels:
            f = self.per_channel[c]
            rows.append([labels.channel(c), f["conversations"], f["digital"],
                         pct(share(f["digital"], f["conversations"])), f["messages"], f["fallbacks"],
                         pct(share(f["fallbacks"], f["messages"])), f["handoffs"], f["callbacks"], f["cases"]])
        rows.append(["Totaal", self.conversations, self.digital, pct(self.digital_share), self.user_messages,
                     self.fallback_messages, pct(self.fallback_rate), self.handoffs, self.callbacks,
                     self.cases_total])
        return Table("Aantallen per kanaal", columns, rows)

    def table_cases(self) -> Table:
        rows = [[labels.zaaktype(z), labels.channel(c), n] for z, c, n in self.cases]
        return Table("Aanvragen per soort en kanaal", ["Soort aanvraag", "Kanaal", "Aantal"], rows)

    def table_flows(self) -> Table:
        rows = []
        for f in self.flows:
            worst = f.worst_step
            rows.append([f.label, f.started, f.completed, pct(share(f.completed, f.started)), f.filed,
                         f.stopped, f.abandoned, f.to_employee, f.busy, worst.label if worst else "–"])
        return Table("Flows: gestart en afgerond",
                     ["Flow", "Gestart", "Afgerond", "Aandeel afgerond", "Aanvraag ingediend", "Gestopt",
                      "Afgebroken", "Waarvan naar medewerker", "Nog bezig", "Meeste afhakers bij"], rows)

    def table_steps(self) -> Table:
        rows = []
        for f in self.flows:
            for s in f.steps:
                rows.append([f.label, s.label, s.reached, s.stopped, s.abandoned,
                             pct(share(s.stopped + s.abandoned, s.reached))])
        return Table("Waar haken mensen af?",
                     ["Flow", "Stap", "Bereikt", "Gestopt bij deze stap", "Afgebroken bij deze stap",
                      "Afhakers"], rows)

    def table_unrecognised(self) -> Table:
        rows = []
        for g in self.unrecognised:
            rows.append([g.text, g.count, "; ".join(t for t, _ in g.top_variants()),
                         labels.topic(g.guess) if g.guess else "–", local_time(g.last_at),
                         self.group_assignment(g) or ""])
        return Table("Niet herkende vragen (gemaskeerd)",
                     ["Vraag", "Aantal", "Lijkt op", "Beste gok van de assistent", "Laatst gezien",
                      "Toegewezen aan"], rows)

    def table_satisfaction(self) -> Table:
        rows = [[labels.topic(t), asked, up, down, pct(share(up, up + down))]
                for t, asked, up, down in self.satisfaction]
        return Table("Tevredenheid per onderwerp",
                     ["Onderwerp", "Gevraagd", "Tevreden", "Niet tevreden", "Aandeel tevreden"], rows)


def week_label(week: str) -> str:
    year, _, number = week.partition("-W")
    return f"week {int(number)} ({year})" if number else week


def local_time(timestamp: float) -> str:
    moment = dt.datetime.fromtimestamp(timestamp, LOCAL_TZ)
    return f"{moment.day} {MONTHS[moment.month - 1][:3]} {moment:%H.%M}"


@functools.lru_cache(maxsize=1)
def session_expiry_seconds() -> float:
    try:
        domain = yaml.safe_load((config.REPO_ROOT / "domain.yml").read_text(encoding="utf-8")) or {}
        minutes = float((domain.get("session_config") or {}).get("session_expiration_time") or 60)
    except (OSError, yaml.YAMLError, ValueError):
        minutes = 60.0
    return minutes * 60


def satisfaction_enabled() -> bool:
    return bool((config.gemeente().get("tevredenheid") or {}).get("aan", False))


# --------------------------------------------------------------------------
# Computing
# --------------------------------------------------------------------------
# Cases are matched to runs and conversations a day either side of the period.
_CASE_SLACK = 24 * 3600


def _utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc)


def _sender_of(key: str, senders: Any) -> Optional[str]:
    """The sender in an idempotency key "<sender>:<...>" (a sender may contain ':')."""
    position = key.find(":")
    while position != -1:
        if key[:position] in senders:
            return key[:position]
        position = key.find(":", position + 1)
    return None


def _is_digital(answers: int, runs_completed: int, handoffs: int) -> bool:
    return (answers > 0 or runs_completed > 0) and handoffs == 0


def build_report(cache_engine: Engine, case_engine: Optional[Engine], period: Period, *,
                 now: Optional[float] = None, max_groups: int = 50) -> Report:
    """All figures of ``period``. Sums and counts run in SQL (GROUP BY on the cache),
    so the cost grows little with the number of conversations."""
    now = time.time() if now is None else now
    start, end = period.bounds()
    report = Report(period=period, generated_at=now, satisfaction_enabled=satisfaction_enabled())
    t0 = time.perf_counter()
    c = cache.conversation.c
    in_period = and_(c.started_at >= start, c.started_at < end, c.user_messages > 0)
    handled = or_(c.answers > 0, c.runs_completed > 0)
    digital = case((and_(handled, c.handoffs == 0), 1), else_=0)

    # Conversations per week and channel -------------------------------------
    query = select(c.week, c.channel, func.count(), func.sum(digital), func.sum(c.user_messages),
                   func.sum(c.fallbacks), func.sum(case((c.fallbacks > 0, 1), else_=0)),
                   func.sum(c.handoffs), func.sum(case((c.handoffs > 0, 1), else_=0)),
                   func.sum(case((c.answers > 0, 1), else_=0)), func.sum(c.runs_completed)
                   ).where(in_period).group_by(c.week, c.channel)
    satisfaction = select(c.satisfaction_topic, func.count(), func.sum(case((c.satisfaction == 1, 1), else_=0)),
                          func.sum(case((c.satisfaction == -1, 1), else_=0))).where(
        and_(in_period, c.satisfaction_topic.isnot(None))).group_by(c.satisfaction_topic)
    with cache_engine.connect() as conn:
        groups = conn.execute(query).all()
        rated = conn.execute(satisfaction).all()
    weeks: Dict[Tuple[str, str], List[int]] = defaultdict(lambda: [0, 0])
    per_channel: Dict[str, Dict[str, int]] = {}
    for week, channel, n, dig, messages, fallbacks, with_fallback, handoffs, with_handoff, answered, completed \
            in groups:
        channel = d.normal_channel(channel)
        bucket = weeks[(week, channel)]
        bucket[0] += n
        bucket[1] += dig or 0
        f = per_channel.setdefault(channel, defaultdict(int))
        f["conversations"] += n
        f["digital"] += dig or 0
        f["messages"] += messages or 0
        f["fallbacks"] += fallbacks or 0
        f["handoffs"] += handoffs or 0
        report.conversations += n
        report.digital += dig or 0
        report.user_messages += messages or 0
        report.fallback_messages += fallbacks or 0
        report.conversations_with_fallback += with_fallback or 0
        report.handoffs += handoffs or 0
        report.conversations_with_handoff += with_handoff or 0
        report.answered += answered or 0
        report.flows_completed += completed or 0
    report.satisfaction = sorted(((t, n, up or 0, down or 0) for t, n, up, down in rated),
                                 key=lambda r: (-r[1], labels.topic(r[0])))
    report.timings["conversations"] = time.perf_counter() - t0

    # Cases (case store) -----------------------------------------------------
    t1 = time.perf_counter()
    case_keys: set = set()
    if case_engine is not None:
        z = zaak.c
        with case_engine.connect() as conn:
            counted = conn.execute(select(z.zaaktype, z.channel, func.count()).where(
                and_(z.created_at >= _utc(start), z.created_at < _utc(end))).group_by(z.zaaktype, z.channel)).all()
            case_keys = set(conn.execute(select(z.idempotency_key).where(
                and_(z.created_at >= _utc(start - _CASE_SLACK), z.created_at < _utc(end + _CASE_SLACK)))).scalars())
            callbacks = conn.execute(select(z.idempotency_key, z.created_at).where(and_(
                z.zaaktype == d.CALLBACK_ZAAKTYPE, z.created_at >= _utc(start - _CASE_SLACK),
                z.created_at < _utc(end + _CASE_SLACK)))).all()
    else:
        counted, callbacks = [], []
    case_counts: Counter = Counter()
    for zaaktype, channel, n in counted:
        case_counts[(zaaktype, d.normal_channel(channel))] += n
    report.cases = sorted(((zt, ch, n) for (zt, ch), n in case_counts.items()), key=lambda r: (-r[2], r[0], r[1]))
    report.cases_total = sum(case_counts.values())
    for (zaaktype, channel), n in case_counts.items():
        f = per_channel.setdefault(channel, defaultdict(int))
        f["cases"] += n
        if zaaktype == d.CALLBACK_ZAAKTYPE:
            f["callbacks"] += n
            report.callbacks += n
    _remove_callbacks_from_digital(cache_engine, callbacks, start, end, weeks, per_channel, report)
    report.timings["cases"] = time.perf_counter() - t1

    report.per_channel = {k: dict(v) for k, v in per_channel.items()}
    for v in report.per_channel.values():
        for name in ("conversations", "digital", "messages", "fallbacks", "handoffs", "callbacks", "cases"):
            v.setdefault(name, 0)
    order = {ch: i for i, ch in enumerate(d.KNOWN_CHANNELS)}
    report.kpi_weeks = sorted(((w, ch, v[0], v[1]) for (w, ch), v in weeks.items() if v[0]),
                              key=lambda r: (r[0], order.get(r[1], 99)))

    # Funnel -----------------------------------------------------------------
    t3 = time.perf_counter()
    report.flows = _funnel(cache_engine, start, end, now, case_keys)
    report.timings["funnel"] = time.perf_counter() - t3

    # Unrecognised questions -------------------------------------------------
    t4 = time.perf_counter()
    u = cache.unrecognised.c
    with cache_engine.connect() as conn:
        rows = conn.execute(select(u.text, u.normalised, u.at, u.guess, u.kind).where(
            and_(u.at >= start, u.at < end))).all()
        assigned = conn.execute(select(cache.assignment.c.normalised, cache.assignment.c.intent)
                                .order_by(cache.assignment.c.at)).all()
    report.assigned = {row.normalised: row.intent for row in assigned}
    messages = [grouping.Message(r.text, r.normalised, r.at, r.guess, r.kind) for r in rows]
    report.unrecognised_total = len(messages)
    report.unrecognised = grouping.group_messages(messages)[:max_groups]
    report.timings["unrecognised"] = time.perf_counter() - t4
    report.timings["total"] = time.perf_counter() - t0
    return report


def _remove_callbacks_from_digital(cache_engine: Engine, callbacks: Sequence[Any], start: float, end: float,
                                   weeks: Dict[Tuple[str, str], List[int]], per_channel: Dict[str, Dict[str, int]],
                                   report: Report) -> None:
    """A conversation with a call-back request is not fully digital (usually it also had a
    handoff, which already says so). Each case belongs to the newest conversation of its
    sender that started before the case."""
    if not callbacks:
        return
    c = cache.conversation.c
    candidates = {key.split(":", 1)[0] for key, _ in callbacks}
    for key, _ in callbacks:  # senders that contain ':' themselves
        candidates.update(key[:i] for i in range(len(key)) if key[i] == ":")
    by_sender: Dict[str, List[Any]] = defaultdict(list)
    names = sorted(candidates)
    with cache_engine.connect() as conn:
        for i in range(0, len(names), 500):
            for row in conn.execute(select(c.key, c.sender_id, c.started_at, c.week, c.channel, c.answers,
                                           c.runs_completed, c.handoffs, c.user_messages).where(
                    c.sender_id.in_(names[i:i + 500]))):
                by_sender[row.sender_id].append(row)
    for rows in by_sender.values():
        rows.sort(key=lambda r: r.started_at)
    seen = set()
    for key, created in callbacks:
        sender = _sender_of(key, by_sender)
        if sender is None:
            continue
        rows = by_sender[sender]
        position = bisect.bisect_right([r.started_at for r in rows], created.timestamp()) - 1
        if position < 0:
            continue
        row = rows[position]
        if row.key in seen or not (start <= row.started_at < end) or row.user_messages <= 0:
            continue
        seen.add(row.key)
        if _is_digital(row.answers, row.runs_completed, row.handoffs):
            channel = d.normal_channel(row.channel)
            weeks[(row.week, channel)][1] -= 1
            per_channel[channel]["digital"] -= 1
            report.digital -= 1


def _funnel(cache_engine: Engine, start: float, end: float, now: float, case_keys: set) -> List[FlowFigures]:
    """Runs grouped in SQL by (flow, outcome, reached steps, last step, handoff, idle):
    a few hundred combinations, whatever the number of runs."""
    r = cache.flow_run.c
    expiry = session_expiry_seconds()
    idle = case((r.last_at < now - expiry, 1), else_=0)
    in_period = and_(r.started_at >= start, r.started_at < end)
    with cache_engine.connect() as conn:
        combos = conn.execute(select(r.flow, r.outcome, r.steps, r.last_step, r.handoff, idle, func.count())
                              .where(in_period).group_by(r.flow, r.outcome, r.steps, r.last_step, r.handoff, idle)
                              ).all()
        completed = conn.execute(select(r.flow, r.key).where(and_(in_period, r.outcome == d.RUN_COMPLETED))).all()
    flows: Dict[str, FlowFigures] = {}
    step_figures: Dict[str, Dict[str, StepFigures]] = {}
    known = list((config.flows().get("flows") or {}).keys())
    for name in known:
        flows[name] = FlowFigures(name)
        step_figures[name] = {s: StepFigures(s, labels.step(name, s)) for s in labels.flow_steps(name)}
    for flow, outcome, steps_text, last_step, handoff, stale, n in combos:
        name = flow or "onbekend"
        if name not in flows:
            flows[name] = FlowFigures(name)
            step_figures[name] = {}
        f = flows[name]
        steps = step_figures[name]
        f.started += n
        if outcome == d.RUN_OPEN:
            outcome = d.RUN_ABANDONED if stale else d.RUN_BUSY
        if outcome == d.RUN_COMPLETED:
            f.completed += n
        elif outcome == d.RUN_STOPPED:
            f.stopped += n
        elif outcome == d.RUN_ABANDONED:
            f.abandoned += n
        else:
            f.busy += n
        for step in (steps_text or "").split(","):
            if not step or step in (d.STOP_STEP, d.CHANGE_STEP):
                continue
            if step not in steps:
                steps[step] = StepFigures(step, labels.step(name, step))
            steps[step].reached += n
        if outcome in (d.RUN_STOPPED, d.RUN_ABANDONED):
            f.to_employee += n if handoff else 0
            last = last_step or ""
            if last not in steps:
                steps[last] = StepFigures(last, labels.step(name, last or None))
            if outcome == d.RUN_STOPPED:
                steps[last].stopped += n
            else:
                steps[last].abandoned += n
    for flow, key in completed:
        if key in case_keys:
            flows.setdefault(flow or "onbekend", FlowFigures(flow or "onbekend")).filed += 1
    result = []
    for name, f in flows.items():
        f.steps = [s for s in step_figures.get(name, {}).values() if s.reached or s.stopped or s.abandoned]
        if f.started:
            result.append(f)
    order = {name: i for i, name in enumerate(known)}
    return sorted(result, key=lambda f: (order.get(f.flow, 99), f.flow))
