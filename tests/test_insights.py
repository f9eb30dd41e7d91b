"""Insights figures from a fixture set of known conversations (issue 9).

The conversations are written into a tracker DB by Rasa's own
``SQLTrackerStore.save`` (the events are Rasa event objects, parsed from the
rows of :mod:`bot.insights.synthetic`), and their cases into a real case store.
Every figure below is known by construction: who filed, who was handed off,
who stopped or left at which step.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from typing import Dict, List, Tuple

import pytest
import yaml
from sqlalchemy import create_engine, text

from bot import config
from bot.cases.models import LOCAL_TZ
from bot.cases.store import make_engine
from bot.insights import cache, export, extract, grouping, report, review, synthetic
from bot.insights.synthetic import Script

ROOT = config.REPO_ROOT
EMAIL = "jan.jansen@voorbeeld.nl"
# Three days ago at 10.00 local time: every open flow there is abandoned (> 60 min idle).
DAY = dt.datetime.now(LOCAL_TZ).date() - dt.timedelta(days=3)
START = dt.datetime.combine(DAY, dt.time(10, 0), tzinfo=LOCAL_TZ).timestamp()
PERIOD = report.Period("aangepast", DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=1))


def known_conversations() -> Tuple[List[Script], List[Tuple[str, str, str, float]]]:
    """The fixture set: scripts and the cases they filed (key, zaaktype, channel, time)."""
    scripts: List[Script] = []
    cases = []

    def new(sender: str, channel: str = "website", minutes: float = 0) -> Script:
        script = Script(sender, START + minutes * 60, channel=channel)
        scripts.append(script)
        return script.session_start()

    # A: a question answered -> fully digital.
    new("a-faq").greet().faq("paspoort_idkaart", "wat kost een paspoort").goodbye()
    # B: melding filed on the Hulpplein -> fully digital, case filed.
    b = new("b-filed", "hulpplein", 5)
    run = b.flow("melding_openbare_ruimte")
    cases.append((f"b-filed:{run}", "melding_openbare_ruimte", "hulpplein", b.at))
    # C: melding abandoned at the third question (melding_omschrijving) -> not digital.
    new("c-left", minutes=10).flow("melding_openbare_ruimte", until=2, end="leave")
    # D: an answer, then a handoff to the KCC -> not digital.
    new("d-handoff", minutes=15).faq("rijbewijs").handoff(kcc_action="action_kcc_handoff")
    # E: two unrecognised questions, the first with an e-mail address -> not digital.
    e = new("e-fallback", minutes=20)
    e.fallback(f"mijn mail is {EMAIL}, mag ik een boom kappen?", guess="afval_informatie")
    e.fallback("mag ik een boom kappen in mijn tuin", kind="opnieuw_niet_begrepen", guess="afval_informatie")
    # F: afspraak stopped at its second question (afspraak_product) -> not digital.
    new("f-stopped", minutes=25).flow("afspraak_maken", until=1, end="stop")
    # G: Hulpplein: handoff, then a call-back request (terugbelverzoek filed) -> not digital.
    g = new("g-callback", "hulpplein", 30)
    g.handoff(kcc_action="action_kcc_handoff")
    run = g.flow("terugbelverzoek")
    cases.append((f"g-callback:{run}", "terugbelverzoek", "hulpplein", g.at))
    # H: an answer, goodbye, satisfaction 👍 for afval_informatie -> fully digital.
    new("h-happy", minutes=35).faq("afval_informatie").goodbye(topic="afval_informatie", rating=1)
    # L: an answer, then "bel mij terug" typed directly (no handoff): a call-back request,
    # so not fully digital although a question was answered.
    l_ = new("l-callback", minutes=38).faq("parkeervergunning")
    run = l_.flow("terugbelverzoek")
    cases.append((f"l-callback:{run}", "terugbelverzoek", "website", l_.at))
    # I: a session without any message of the citizen -> no conversation.
    new("i-silent", minutes=40)
    # J: outside the period (40 days earlier) -> not counted.
    j = Script("j-old", START - 40 * 86400)
    scripts.append(j)
    j.session_start().faq("belastingen")
    # K: one sender, two sessions: an answer (digital), later a fallback only (not digital).
    k = new("k-twice", minutes=45)
    k.faq("digid_hulp")
    k.at += 3 * 3600
    k.session_start().fallback("hoe laat is het", guess="openingstijden_contact")
    return scripts, cases


def write_with_rasa(tracker_url: str, scripts: List[Script]) -> None:
    """Save every conversation through Rasa's SQLTrackerStore (its own rows and schema)."""
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import Event
    from rasa.shared.core.trackers import DialogueStateTracker

    domain = Domain.load(str(ROOT / "domain.yml"))
    from sqlalchemy.engine import make_url

    url = make_url(tracker_url)
    if url.get_backend_name() == "sqlite":
        store = SQLTrackerStore(domain=domain, dialect="sqlite", db=url.database)
    else:
        store = SQLTrackerStore(domain=domain, dialect="postgresql", host=url.host, port=url.port,
                                db=url.database, username=url.username, password=url.password,
                                query=dict(url.query))
    by_sender: Dict[str, list] = {}
    for script in scripts:
        by_sender.setdefault(script.sender, []).extend(script.rows)
    for sender, rows in by_sender.items():
        events = [Event.from_parameters(json.loads(r[5])) for r in rows]
        tracker = DialogueStateTracker.from_events(sender, events, slots=domain.slots)
        asyncio.run(store.save(tracker))
    store.engine.dispose()


def rows_of(scripts: List[Script]) -> List[tuple]:
    return [row for s in scripts for row in s.rows]


@pytest.fixture(scope="module")
def fixture_dbs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("insights")
    scripts, cases = known_conversations()
    tracker_url = f"sqlite:///{tmp / 'tracker.db'}"
    case_url = f"sqlite:///{tmp / 'cases.db'}"
    write_with_rasa(tracker_url, scripts)
    synthetic.insert_cases(case_url, cases)
    return {"tmp": tmp, "tracker": tracker_url, "cases": case_url, "scripts": scripts}


def build(fixture_dbs, name: str, batch_size: int = 20000):
    cache_engine = cache.open_cache(f"sqlite:///{fixture_dbs['tmp'] / name}")
    tracker = create_engine(fixture_dbs["tracker"])
    result = extract.Extractor(tracker, cache_engine, batch_size=batch_size).refresh()
    assert result.caught_up and not result.skipped
    return report.build_report(cache_engine, make_engine(fixture_dbs["cases"]), PERIOD), cache_engine


def table(rep: report.Report, name: str) -> List[list]:
    return rep.tables()[name].rows


def test_rasa_reads_and_writes_the_synthetic_events(fixture_dbs):
    """The fixture rows are what Rasa writes: same type/intent/action columns, same JSON."""
    engine = create_engine(fixture_dbs["tracker"])
    with engine.connect() as conn:
        stored = conn.execute(text(
            "SELECT sender_id, type_name, timestamp, intent_name, action_name, data FROM events ORDER BY id")).all()
    expected = rows_of(fixture_dbs["scripts"])
    assert len(stored) == len(expected)
    by_sender_stored: Dict[str, list] = {}
    for row in stored:
        by_sender_stored.setdefault(row[0], []).append(row)
    by_sender_expected: Dict[str, list] = {}
    for row in expected:
        by_sender_expected.setdefault(row[0], []).append(row)
    for sender, rows in by_sender_expected.items():
        for mine, rasa in zip(rows, by_sender_stored[sender]):
            assert mine[1:5] == tuple(rasa[1:5]), (mine[:5], rasa[:5])
            assert json.loads(mine[5]) == json.loads(rasa[5])


def test_headline_kpi_and_counts(fixture_dbs):
    rep, _ = build(fixture_dbs, "kpi.db")
    # A B C D E F G H K1 K2 L (I has no message, J is outside the period).
    assert rep.conversations == 11
    assert rep.digital == 4                     # A, B, H, K1
    assert rep.digital_share == pytest.approx(4 / 11)
    assert rep.per_channel["website"]["conversations"] == 9
    assert rep.per_channel["website"]["digital"] == 3
    assert rep.per_channel["hulpplein"]["conversations"] == 2
    assert rep.per_channel["hulpplein"]["digital"] == 1
    week = f"{DAY.isocalendar()[0]}-W{DAY.isocalendar()[1]:02d}"
    assert rep.kpi_weeks == [(week, "website", 9, 3), (week, "hulpplein", 2, 1)]
    assert rep.handoffs == 2                    # D, G (intent and KCC action in one turn count once)
    assert rep.conversations_with_handoff == 2
    assert rep.callbacks == 2                   # G's and L's terugbelverzoek
    assert rep.fallback_messages == 3           # E twice, K2 once
    scripts = fixture_dbs["scripts"]
    in_period = [s for s in scripts if s.sender != "j-old"]
    messages = sum(1 for row in rows_of(in_period) if row[1] == "user")
    assert rep.user_messages == messages
    assert rep.fallback_rate == pytest.approx(3 / messages)
    assert rep.cases_total == 3
    assert sorted(rep.cases) == [("melding_openbare_ruimte", "hulpplein", 1), ("terugbelverzoek", "hulpplein", 1),
                                 ("terugbelverzoek", "website", 1)]
    totals = table(rep, "aantallen")[-1]
    assert totals[:4] == ["Totaal", 11, 4, "36%"]


def test_funnel_per_flow(fixture_dbs):
    rep, _ = build(fixture_dbs, "funnel.db")
    flows = {f.flow: f for f in rep.flows}
    assert set(flows) == {"melding_openbare_ruimte", "afspraak_maken", "terugbelverzoek"}
    melding = flows["melding_openbare_ruimte"]
    assert (melding.started, melding.completed, melding.stopped, melding.abandoned, melding.busy,
            melding.filed) == (2, 1, 0, 1, 0, 1)
    steps = {s.step: (s.reached, s.stopped, s.abandoned) for s in melding.steps}
    assert steps == {"melding_categorie": (2, 0, 0), "melding_locatie": (2, 0, 0),
                     "melding_omschrijving": (2, 0, 1), "melding_foto": (1, 0, 0),
                     "melding_contact": (1, 0, 0), "flow_bevestiging": (1, 0, 0)}
    assert melding.worst_step.label == "Wat er aan de hand is"
    afspraak = flows["afspraak_maken"]
    assert (afspraak.started, afspraak.completed, afspraak.stopped, afspraak.abandoned) == (1, 0, 1, 0)
    assert [(s.step, s.stopped) for s in afspraak.steps if s.stopped] == [("afspraak_product", 1)]
    callback = flows["terugbelverzoek"]
    assert (callback.started, callback.completed, callback.filed) == (2, 2, 2)
    rows = {r[0]: r for r in table(rep, "flows")}
    assert rows["Melding openbare ruimte"][1:5] == [2, 1, "50%", 1]
    assert rows["Afspraak maken"][-1] == "Waarvoor"


def test_unrecognised_questions_are_masked_and_grouped(fixture_dbs):
    rep, cache_engine = build(fixture_dbs, "unrecognised.db")
    assert rep.unrecognised_total == 3
    shown = [t for g in rep.unrecognised for t in g.variants]
    assert "mijn mail is [e-mailadres], mag ik een boom kappen?" in shown
    assert all(EMAIL not in t for g in rep.unrecognised for t in g.variants)
    # "mijn mail is [e-mailadres], mag ik een boom kappen?" and "mag ik een boom kappen in
    # mijn tuin" are one group; "hoe laat is het" is another.
    assert sorted(g.count for g in rep.unrecognised) == [1, 2]
    assert rep.unrecognised[0].guess == "afval_informatie"
    # Nothing of the raw text is kept in the cache.
    raw = (fixture_dbs["tmp"] / "unrecognised.db").read_bytes()
    wal = fixture_dbs["tmp"] / "unrecognised.db-wal"
    raw += wal.read_bytes() if wal.exists() else b""
    assert EMAIL.encode() not in raw
    csv = export.to_csv(rep.tables()["niet_herkend"]).decode("utf-8-sig")
    assert "[e-mailadres]" in csv and EMAIL not in csv


def test_satisfaction_per_topic(fixture_dbs):
    rep, _ = build(fixture_dbs, "satisfaction.db")
    assert rep.satisfaction == [("afval_informatie", 1, 1, 0)]
    assert table(rep, "tevredenheid") == [["Afval", 1, 1, 0, "100%"]]


def test_incremental_refresh_in_small_batches_gives_the_same_figures(fixture_dbs, tmp_path):
    """Batches of 7 rows cut turns and conversations in pieces; a second tracker
    gets its events in two parts with a refresh in between."""
    whole, _ = build(fixture_dbs, "whole.db")
    pieces, _ = build(fixture_dbs, "pieces.db", batch_size=7)
    assert pieces.tables() == whole.tables()

    scripts, _ = known_conversations()
    rows = sorted(rows_of(scripts), key=lambda r: r[2])
    tracker_path = tmp_path / "tracker.db"
    sink = synthetic.SqliteSink(str(tracker_path))
    half = len(rows) // 2
    sink.write(rows[:half])
    sink.flush()
    cache_engine = cache.open_cache(f"sqlite:///{tmp_path / 'cache.db'}")
    extractor = extract.Extractor(create_engine(f"sqlite:///{tracker_path}"), cache_engine, batch_size=50)
    first = extractor.refresh()
    assert first.events > 0 and first.caught_up
    sink.write(rows[half:])
    sink.close()
    second = extractor.refresh()
    assert second.events > 0 and not second.rebuilt
    again = report.build_report(cache_engine, make_engine(fixture_dbs["cases"]), PERIOD)
    # Same numbers (the unrecognised list also has the same groups and counts).
    for name in ("kpi", "aantallen", "aanvragen", "flows", "afhaken", "tevredenheid"):
        assert again.tables()[name] == whole.tables()[name], name
    assert [(g.text, g.count) for g in again.unrecognised] == [(g.text, g.count) for g in whole.unrecognised]


def test_time_budget_stops_and_resumes(fixture_dbs, tmp_path):
    cache_engine = cache.open_cache(f"sqlite:///{tmp_path / 'cache.db'}")
    extractor = extract.Extractor(create_engine(fixture_dbs["tracker"]), cache_engine, batch_size=10)
    partial = extractor.refresh(budget_seconds=0.0)
    assert partial.batches == 1 and not partial.caught_up and partial.behind > 0
    rest = extractor.refresh()
    assert rest.caught_up
    again = report.build_report(cache_engine, make_engine(fixture_dbs["cases"]), PERIOD)
    assert again.conversations == 11 and again.digital == 4


def test_figures_from_a_postgresql_tracker_store(pg_url, fixture_dbs, tmp_path):
    """The production profile keeps events in PostgreSQL: same figures."""
    scripts, _ = known_conversations()
    write_with_rasa(pg_url, scripts)
    tracker = create_engine(pg_url)
    cache_engine = cache.open_cache(f"sqlite:///{tmp_path / 'cache.db'}")
    result = extract.Extractor(tracker, cache_engine, settle_seconds=0).refresh()
    assert result.caught_up
    rep = report.build_report(cache_engine, make_engine(fixture_dbs["cases"]), PERIOD)
    whole, _ = build(fixture_dbs, "whole-pg.db")
    assert rep.tables() == whole.tables()
    tracker.dispose()


def test_rebuild_when_the_tracker_changes(fixture_dbs, tmp_path):
    cache_engine = cache.open_cache(f"sqlite:///{tmp_path / 'cache.db'}")
    extract.Extractor(create_engine(fixture_dbs["tracker"]), cache_engine).refresh()
    empty = tmp_path / "empty.db"
    synthetic.SqliteSink(str(empty)).close()
    result = extract.Extractor(create_engine(f"sqlite:///{empty}"), cache_engine).refresh()
    assert result.rebuilt
    rep = report.build_report(cache_engine, None, PERIOD)
    assert rep.conversations == 0


# --------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------
def test_masking_of_messages_for_editors():
    masked = extract.mask_message(
        f"Mail {EMAIL} of bel 06-12345678, BSN 111222333, IBAN NL91ABNA0417164300, "
        "ik woon op 4611 AB 12. Mijn naam is Jan de Vries.")
    assert masked == ("Mail [e-mailadres] of bel [telefoonnummer], BSN [bsn], IBAN [iban], "
                      "ik woon op [adres]. Mijn naam is [naam].")


def test_period_filter():
    today = dt.date(2026, 4, 15)   # a Wednesday
    week = report.parse_period({"periode": "week"}, today)
    assert (week.start, week.end) == (dt.date(2026, 4, 13), dt.date(2026, 4, 19))
    assert week.label.startswith("week 16 van 2026")
    month = report.parse_period({}, today)
    assert (month.kind, month.start, month.end) == ("maand", dt.date(2026, 4, 1), dt.date(2026, 4, 30))
    assert month.shifted(-4).start == dt.date(2025, 12, 1)
    custom = report.parse_period({"periode": "aangepast", "van": "2026-01-05", "tot": "2026-01-11"}, today)
    assert custom.label == "5 januari 2026 tot en met 11 januari 2026"
    start, end = custom.bounds()
    assert end - start == 7 * 86400
    for bad in ({"periode": "jaar"}, {"periode": "aangepast", "van": "2026-02-01", "tot": "2026-01-01"},
                {"periode": "week", "datum": "morgen"}, {"periode": "aangepast", "van": "2026-01-01"}):
        with pytest.raises(report.PeriodError):
            report.parse_period(bad, today)


def test_grouping_by_similarity():
    texts = ["wanneer is de milieustraat open", "wanneer is de milieustraat open?",
             "is de milieustraat open op zaterdag", "hoe laat gaat de milieustraat open",
             "ik zoek werk bij de gemeente", "vacatures gemeente"]
    messages = [grouping.Message(t, extract.normalise(t), float(i)) for i, t in enumerate(texts)]
    groups = grouping.group_messages(messages)
    assert groups[0].count == 4
    assert groups[0].text == "wanneer is de milieustraat open"
    assert {g.text for g in groups[1:]} == {"ik zoek werk bij de gemeente", "vacatures gemeente"}


def test_csv_export_for_dutch_spreadsheets():
    data = export.to_csv(report.Table("t", ["Vraag", "Aantal", "Aandeel"],
                                      [["=HYPERLINK(\"x\")", 3, "40%"], ["a;b", -2, 0.5]]))
    assert data.startswith("\ufeff".encode())
    lines = data.decode("utf-8-sig").split("\r\n")
    assert lines[0] == "Vraag;Aantal;Aandeel"
    assert lines[1] == '"\'=HYPERLINK(""x"")";3;40%'
    assert lines[2] == "\"a;b\";-2;0,5"


# --------------------------------------------------------------------------
# Assign to intent -> data/nlu/review.yml (on a copy of the project data)
# --------------------------------------------------------------------------
@pytest.fixture
def project_copy(tmp_path):
    copy = tmp_path / "project"
    copy.mkdir()
    shutil.copytree(ROOT / "data", copy / "data")
    shutil.copy(ROOT / "domain.yml", copy / "domain.yml")
    shutil.copy(ROOT / "config.yml", copy / "config.yml")
    (copy / "data" / "nlu" / "review.yml").unlink(missing_ok=True)
    return copy


def test_assigned_example_passes_rasa_data_validate(project_copy):
    review_path = project_copy / "data" / "nlu" / "review.yml"
    domain = project_copy / "domain.yml"
    first = review.assign(f"mijn mail is {EMAIL}, mag ik een boom kappen?", "melding_openbare_ruimte",
                          path=review_path, domain_path=domain)
    assert first.added and first.text == "mijn mail is [e-mailadres], mag ik een boom kappen?"
    second = review.assign("wanneer gaat de milieustraat open", "afval_informatie", path=review_path,
                           domain_path=domain)
    assert second.added
    again = review.assign("Wanneer gaat de  milieustraat open", "afval_informatie", path=review_path,
                          domain_path=domain)
    assert not again.added
    content = yaml.safe_load(review_path.read_text(encoding="utf-8"))
    assert content["version"] == "3.1"
    assert {item["intent"]: item["examples"] for item in content["nlu"]} == {
        "afval_informatie": "- wanneer gaat de milieustraat open\n",
        "melding_openbare_ruimte": "- mijn mail is [e-mailadres], mag ik een boom kappen?\n"}
    assert EMAIL not in review_path.read_text(encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "rasa", "data", "validate", "--fail-on-warnings", "--domain", str(domain),
         "--data", str(project_copy / "data"), "--config", str(project_copy / "config.yml")],
        cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # The real data/ was not touched.
    assert not (ROOT / "data" / "nlu" / "review.yml").exists() or \
        "[e-mailadres], mag ik een boom kappen" not in (ROOT / "data" / "nlu" / "review.yml").read_text()


def test_assign_refuses_what_rasa_would_warn_about(project_copy):
    review_path = project_copy / "data" / "nlu" / "review.yml"
    domain = project_copy / "domain.yml"
    existing = yaml.safe_load((project_copy / "data" / "nlu" / "tevredenheid.yml").read_text())
    example = existing["nlu"][0]["examples"].splitlines()[0][2:]
    with pytest.raises(review.AssignError) as error:
        review.assign(example, "afval_informatie", path=review_path, domain_path=domain)
    assert error.value.code == "dubbel" and error.value.intents == ["tevreden"]
    with pytest.raises(review.AssignError) as error:
        review.assign("iets", "bestaat_niet", path=review_path, domain_path=domain)
    assert error.value.code == "intent"
    with pytest.raises(review.AssignError):
        review.assign("12345", "afval_informatie", path=review_path, domain_path=domain)
    # Entity syntax is neutralised: "[adres](x)" would be an entity annotation.
    result = review.assign("ik woon op [adres](locatie) en [naam][x]", "afval_informatie", path=review_path,
                           domain_path=domain)
    assert "](" not in result.text and "][" not in result.text
    assert not review_path.exists() or "bestaat_niet" not in review_path.read_text()


# --------------------------------------------------------------------------
# The satisfaction question (bot/actions/satisfaction.py)
# --------------------------------------------------------------------------
def _ask(events, slots=None):
    from rasa_sdk import Tracker
    from rasa_sdk.executor import CollectingDispatcher

    from bot.actions.satisfaction import ActionTevredenheidVragen

    tracker = Tracker("s", slots or {}, {}, events, False, None, {}, "action_listen")
    return asyncio.run(ActionTevredenheidVragen().run(CollectingDispatcher(), tracker, {}))


ANSWERED = [{"event": "session_started"}, {"event": "user", "text": "wat kost een paspoort"},
            {"event": "action", "name": "utter_paspoort_idkaart"},
            {"event": "user", "text": "doei"}, {"event": "action", "name": "utter_goodbye"}]


def test_satisfaction_question_is_off_by_default():
    assert (yaml.safe_load((ROOT / "gemeente.yml").read_text())["tevredenheid"]) == {"aan": False}
    assert [e["value"] for e in _ask(ANSWERED)] == [False]


def test_satisfaction_question_once_per_conversation_with_a_topic(tmp_path, monkeypatch):
    gemeente = yaml.safe_load((ROOT / "gemeente.yml").read_text(encoding="utf-8"))
    gemeente["tevredenheid"] = {"aan": True}
    path = tmp_path / "gemeente.yml"
    path.write_text(yaml.safe_dump(gemeente, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("GEMEENTE_FILE", str(path))
    asked = _ask(ANSWERED)
    assert [(e["name"], e["value"]) for e in asked] == [("tevredenheid_vragen", True),
                                                        ("tevredenheid_onderwerp", "paspoort_idkaart")]
    # A finished flow is a topic too; the newest topic wins.
    flow = ANSWERED + [{"event": "slot", "name": "flow_naam", "value": "grofvuil_ophalen"}]
    assert _ask(flow)[1]["value"] == "grofvuil_ophalen"
    # Already asked in this conversation, or nothing answered in this session: no question.
    assert [e["value"] for e in _ask(ANSWERED, {"tevredenheid_onderwerp": "paspoort_idkaart"})] == [False]
    new_session = ANSWERED[:3] + [{"event": "session_started"}, {"event": "user", "text": "doei"}]
    assert [e["value"] for e in _ask(new_session)] == [False]
