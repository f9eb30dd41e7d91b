"""Live takeover across two Rasa instances (production profile: PostgreSQL
tracker and case store, Redis lock store, HANDOFF_HUB=redis). The citizen's
socket is on instance A, the employee's console on instance B: every message
between them crosses Redis pub/sub."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.kcc_support import Citizen, Console, add_staff
from tests.prod_servers import start_production


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = start_production(tmp_path_factory.mktemp("kcc-redis"), instances=2, extra_env={
        "HANDOFF_HUB": "redis", "KCC_ALWAYS_OPEN": "1", "KCC_WAIT_SECONDS": "600"})
    try:
        add_staff(SimpleNamespace(env=running.env), "anna")
        yield running
    finally:
        running.stop()
        running.cleanup()


def test_citizen_on_one_instance_employee_on_the_other(cluster):
    instance_a = SimpleNamespace(rasa_url=cluster.rasa_urls[0])
    instance_b = SimpleNamespace(rasa_url=cluster.rasa_urls[1])
    citizen = Citizen(instance_a)
    try:
        citizen.start()
        citizen.say("/greet")
        shown = citizen.say("ik wil een medewerker spreken")
        assert any("U bent de volgende." in m.get("text", "") for m in shown)

        anna = Console(instance_b, "anna")
        entry = anna.entry_for(lambda e: e["state"] == "waiting")
        conv = anna.conversation(entry["id"])
        assert ("inwoner", "ik wil een medewerker spreken") in [(l["van"], l["tekst"]) for l in conv["transcript"]]

        assert anna.accept(entry["id"]).status_code == 200
        citizen.wait_text("Een medewerker van de gemeente chat nu met u.")
        assert anna.send(entry["id"], "Goedemiddag, waarmee kan ik u helpen?").status_code == 200
        message = citizen.wait_text("waarmee kan ik u helpen")       # B -> Redis -> A's socket
        assert message["from"] == "medewerker"

        assert citizen.say("Ik heb een vraag over mijn aanslag.") == []   # paused on A too
        conv = anna.conversation(entry["id"])
        assert conv["transcript"][-1]["tekst"] == "Ik heb een vraag over mijn aanslag."

        assert anna.hand_back(entry["id"]).status_code == 200
        citizen.wait_text("Kan ik u nog ergens anders mee helpen?")
        answer = "\n".join(m.get("text", "") for m in citizen.say("wat kost een paspoort"))
        assert "paspoort" in answer.lower()
    finally:
        citizen.close()
