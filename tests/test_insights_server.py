"""The insights page on the real Rasa server (issue 9): access, figures, CSV,
assign-to-intent, live conversations with the satisfaction question, and a
browser screenshot (docs/img/inzichten.png).

The tracker DB of the bot is filled before it starts: the known conversations
of tests/test_insights.py (three days ago) and a synthetic month of traffic
(10–38 days ago, for the screenshot). Conversations typed in these tests
happen today.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
import shutil
import time
from urllib.parse import parse_qs, urlparse

import pytest
import requests
import yaml

from bot import config
from bot.cases.models import LOCAL_TZ
from bot.insights import synthetic
from bot.staff import auth
from tests.browser import axe_violations, chromium, describe_violations, new_page  # noqa: F401
from tests.servers import new_sender, start_bot
from tests.test_insights import DAY, EMAIL, known_conversations, write_with_rasa

ROOT = config.REPO_ROOT
PASSWORD = "geheim-wachtwoord-1"
TODAY = dt.datetime.now(LOCAL_TZ).date()
FIXTURE_QUERY = {"periode": "aangepast", "van": (DAY - dt.timedelta(days=1)).isoformat(),
                 "tot": (DAY + dt.timedelta(days=1)).isoformat()}
TODAY_QUERY = {"periode": "aangepast", "van": TODAY.isoformat(), "tot": TODAY.isoformat()}
SCREENSHOT_QUERY = {"periode": "aangepast", "van": (TODAY - dt.timedelta(days=38)).isoformat(),
                    "tot": TODAY.isoformat()}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    work = tmp_path_factory.mktemp("insights-bot")
    case_url = f"sqlite:///{work / 'cases.db'}"
    scripts, cases = known_conversations()
    write_with_rasa(f"sqlite:///{work / 'tracker.db'}", scripts)
    synthetic.insert_cases(case_url, cases)
    # A month of synthetic traffic before the fixture days, for the screenshot.
    sink = synthetic.SqliteSink(str(work / "tracker.db"))
    start = time.time() - 38 * 86400
    month = synthetic.generate(sink, 600, start=start, days=28, seed=9)
    sink.close()
    synthetic.insert_cases(case_url, month.cases, first_number=1000)
    # Training data copy for assign-to-intent, and satisfaction switched on.
    project = work / "project"
    shutil.copytree(ROOT / "data", project / "data")
    (project / "data" / "nlu" / "review.yml").unlink(missing_ok=True)
    gemeente = yaml.safe_load((ROOT / "gemeente.yml").read_text(encoding="utf-8"))
    gemeente["tevredenheid"] = {"aan": True}
    (work / "gemeente.yml").write_text(yaml.safe_dump(gemeente, allow_unicode=True), encoding="utf-8")
    users = {}
    for name, role in (("els", "redactie"), ("piet", "manager"), ("karin", "kcc")):
        user = auth.create_user(case_url, name, PASSWORD, role)
        users[role] = auth.start_session(case_url, user)   # (cookie token, csrf token)
    bot = start_bot(work, extra_env={"GEMEENTE_FILE": str(work / "gemeente.yml"),
                                     "INSIGHTS_REVIEW_FILE": str(project / "data" / "nlu" / "review.yml"),
                                     "INSIGHTS_REFRESH_BUDGET": "30"})
    yield {"bot": bot, "users": users, "project": project, "work": work}
    bot.stop()


def get(site, path, role=None, **kwargs):
    cookies = {auth.SESSION_COOKIE: site["users"][role][0]} if role else {}
    return requests.get(f"{site['bot'].rasa_url}{path}", cookies=cookies, allow_redirects=False,
                        timeout=120, **kwargs)


def post(site, path, data, role=None):
    cookies = {auth.SESSION_COOKIE: site["users"][role][0]} if role else {}
    return requests.post(f"{site['bot'].rasa_url}{path}", data=data, cookies=cookies, allow_redirects=False,
                         timeout=120)


def test_access_needs_the_redactie_or_manager_role(site):
    anonymous = get(site, "/inzichten")
    assert anonymous.status_code == 303
    assert anonymous.headers["Location"].startswith("/staff/login?next=/inzichten")
    assert get(site, "/inzichten/export/kpi.csv", headers={"X-Requested-With": "fetch"}).status_code == 401
    assert get(site, "/inzichten", role="kcc").status_code == 403
    assert get(site, "/inzichten/export/kpi.csv", role="kcc").status_code == 403
    assert post(site, "/inzichten/toewijzen", {"tekst": "x", "intent": "greet"}).status_code in (303, 401)
    for role in ("redactie", "manager"):
        page = get(site, "/inzichten", role=role, params=FIXTURE_QUERY)
        assert page.status_code == 200, page.text[:500]
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        assert "unsafe-inline" not in page.headers["Content-Security-Policy"]


def test_page_shows_the_known_figures_masked(site):
    page = get(site, "/inzichten", role="manager", params=FIXTURE_QUERY).text
    assert re.search(r'<p class="big">36%</p>', page)
    assert "<strong>11</strong> gesprekken" in page
    assert "mijn mail is [e-mailadres], mag ik een boom kappen?" in page
    assert EMAIL not in page
    assert page.count('src="data:image/png;base64,') == 4
    assert "Alleen de redactie kan vragen toewijzen" in page and 'action="/inzichten/toewijzen"' not in page


def test_csv_export_of_every_table(site):
    names = ["kpi", "aantallen", "aanvragen", "flows", "afhaken", "niet_herkend", "tevredenheid"]
    for name in names:
        response = get(site, f"/inzichten/export/{name}.csv", role="manager", params=FIXTURE_QUERY)
        assert response.status_code == 200, name
        assert response.headers["Content-Type"].startswith("text/csv")
        assert "attachment" in response.headers["Content-Disposition"]
    kpi = get(site, "/inzichten/export/kpi.csv", role="manager", params=FIXTURE_QUERY)
    rows = list(csv.reader(io.StringIO(kpi.content.decode("utf-8-sig")), delimiter=";"))
    week = DAY.isocalendar()[1]
    assert rows == [["Week", "Kanaal", "Gesprekken", "Volledig digitaal", "Aandeel"],
                    [f"week {week} ({DAY.isocalendar()[0]})", "Website", "9", "3", "33%"],
                    [f"week {week} ({DAY.isocalendar()[0]})", "Digitaal Hulpplein", "2", "1", "50%"]]
    assert get(site, "/inzichten/export/onbekend.csv", role="manager").status_code == 404


def test_assign_to_intent_writes_a_masked_training_example(site):
    review_file = site["project"] / "data" / "nlu" / "review.yml"
    page = get(site, "/inzichten", role="redactie", params=FIXTURE_QUERY).text
    assert 'action="/inzichten/toewijzen"' in page
    csrf = site["users"]["redactie"][1]
    form = {"tekst": f"mijn mail is {EMAIL}, mag ik een boom kappen?", "intent": "melding_openbare_ruimte",
            "bron": "mag ik een boom kappen in mijn tuin", **FIXTURE_QUERY}
    assert post(site, "/inzichten/toewijzen", form, role="redactie").status_code == 403   # no CSRF token
    assert post(site, "/inzichten/toewijzen", {**form, "csrf_token": site["users"]["manager"][1]},
                role="manager").status_code == 403                                         # wrong role
    done = post(site, "/inzichten/toewijzen", {**form, "csrf_token": csrf}, role="redactie")
    assert done.status_code == 303
    query = parse_qs(urlparse(done.headers["Location"]).query)
    assert query["melding"] == ["toegewezen"] and query["van"] == [FIXTURE_QUERY["van"]]
    content = yaml.safe_load(review_file.read_text(encoding="utf-8"))
    assert content["nlu"] == [{"intent": "melding_openbare_ruimte",
                               "examples": "- mijn mail is [e-mailadres], mag ik een boom kappen?\n"}]
    after = get(site, done.headers["Location"].split("#")[0], role="redactie").text
    assert "Toegewezen. Het voorbeeld staat in data/nlu/review.yml" in after
    assert "Toegewezen aan Melding openbare ruimte" in after
    refused = post(site, "/inzichten/toewijzen", {"tekst": "duim omhoog", "intent": "afval_informatie",
                                                 "csrf_token": csrf, **FIXTURE_QUERY}, role="redactie")
    assert parse_qs(urlparse(refused.headers["Location"]).query)["fout"] == ["dubbel"]
    shown = get(site, refused.headers["Location"].split("#")[0], role="redactie").text
    assert "Dit voorbeeld staat al bij een ander onderwerp: tevreden." in shown


def test_live_conversations_and_the_satisfaction_question(site):
    bot = site["bot"]
    happy = new_sender()
    assert "€" in bot.texts(happy, "wat kost een paspoort")
    goodbye = bot.say(happy, "doei")
    texts = " ".join(m.get("text", "") for m in goodbye)
    assert "Tot ziens" in texts and "Heb ik u goed geholpen?" in texts
    buttons = [b["payload"] for m in goodbye for b in m.get("buttons") or []]
    assert buttons == ["/tevreden", "/ontevreden"]
    assert "Dank u wel voor uw reactie" in bot.texts(happy, "/tevreden")
    # Asked once per conversation only.
    assert "Heb ik u goed geholpen?" not in bot.texts(happy, "doei")

    filer = new_sender()
    for text in ["er ligt een losse stoeptegel", "Kerkstraat bij de speeltuin",
                 "de tegel ligt los en mensen struikelen erover", "geen", "geen"]:
        bot.texts(filer, text)
    assert re.search(r"BOZ-\d{4}-\d{6}", bot.texts(filer, "ja"))

    nobody = new_sender()
    bot.texts(nobody, "hallo")
    assert "Heb ik u goed geholpen?" not in bot.texts(nobody, "doei")   # nothing to rate

    handoff = new_sender()
    bot.texts(handoff, "/human_handoff")

    page = get(site, "/inzichten", role="manager", params=TODAY_QUERY).text
    assert "<strong>4</strong> gesprekken" in page
    assert re.search(r'<p class="big">50%</p>', page)          # paspoort answer and the filed melding
    rows = {r[0]: r for r in _csv(site, "tevredenheid", TODAY_QUERY)[1:]}
    assert rows["Paspoort en ID-kaart"] == ["Paspoort en ID-kaart", "1", "1", "0", "100%"]
    flows = {r[0]: r for r in _csv(site, "flows", TODAY_QUERY)[1:]}
    assert flows["Melding openbare ruimte"][1:5] == ["1", "1", "100%", "1"]
    counts = _csv(site, "aantallen", TODAY_QUERY)[-1]
    assert counts[0] == "Totaal" and counts[7] == "1"           # one handoff


def _csv(site, name, query):
    response = get(site, f"/inzichten/export/{name}.csv", role="manager", params=query)
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))


def test_browser_screenshot(site, chromium):  # noqa: F811
    page = new_page(chromium, viewport={"width": 1280, "height": 900})
    page.context.add_cookies([{"name": auth.SESSION_COOKIE, "value": site["users"]["redactie"][0],
                               "url": site["bot"].rasa_url}])
    query = "&".join(f"{k}={v}" for k, v in SCREENSHOT_QUERY.items())
    page.goto(f"{site['bot'].rasa_url}/inzichten?{query}")
    assert page.locator("h1").inner_text().startswith("Inzichten")
    loaded = page.evaluate("() => Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
    assert loaded and all(loaded)
    assert page.errors == []
    violations = axe_violations(page)
    assert violations == [], describe_violations(violations)
    target = ROOT / "docs" / "img" / "inzichten.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 50_000
    page.context.close()
