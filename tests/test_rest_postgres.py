"""Two citizens race for the last free wedding moment, through the real
servers, with the case store on PostgreSQL: one wins, the other is offered the
next free moments and nothing is booked twice."""
from __future__ import annotations

import os
import re
import threading
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.cases.store import CaseStore
from tests.conftest import DEFAULT_TEST_PG_URL
from tests.servers import new_sender, start_bot


@pytest.fixture(scope="module")
def pg_bot(tmp_path_factory):
    base = make_url(os.environ.get("TEST_PG_URL", DEFAULT_TEST_PG_URL))
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, future=True, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    running = start_bot(tmp_path_factory.mktemp("pgbot"), extra_env={"CASES_DB_URL": url})
    yield running
    running.stop()
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def to_summary(bot, sender, moment_title=None):
    for message in ["wij willen trouwen", "ja", "trouwen", "eenvoudig"]:
        bot.texts(sender, message)
    buttons = bot.say(sender, "wat bedoelt u?")[-1]["buttons"]
    title = moment_title or buttons[0]["title"]
    for message in [title, "Stadhuis", "Anna Jansen en Piet Bakker", "Later", "anna@example.nl"]:
        reply = bot.texts(sender, message)
    assert "Klopt dit?" in reply
    return title


def test_last_slot_race_has_one_winner_on_postgresql(pg_bot):
    first, second = new_sender(), new_sender()
    moment = to_summary(pg_bot, first)
    to_summary(pg_bot, second, moment)
    replies = {}
    barrier = threading.Barrier(2)

    def confirm(sender):
        barrier.wait()
        replies[sender] = pg_bot.say(sender, "ja")

    threads = [threading.Thread(target=confirm, args=(s,)) for s in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    texts = {s: "\n".join(m.get("text", "") for m in r) for s, r in replies.items()}
    winners = [s for s, t in texts.items() if re.search(r"BOZ-\d{4}-\d{6}", t)]
    assert len(winners) == 1, texts
    loser = first if winners[0] == second else second
    assert "iemand anders" in texts[loser]
    offered = [b["title"] for b in replies[loser][-1]["buttons"]]
    assert moment not in offered and any(" om " in title for title in offered)
    cases = CaseStore(pg_bot.env["CASES_DB_URL"]).list_cases()
    assert len(cases) == 1
