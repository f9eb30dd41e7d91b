"""Live takeover end to end with the real servers (KCC open via the tests-only
KCC_ALWAYS_OPEN=1): a citizen on the website chat (socket.io), employees on the
console API. Short waits (KCC_WAIT_SECONDS, KCC_LEFT_TIMEOUT_SECONDS) make the
timers observable; no assertion depends on how long anything took."""
from __future__ import annotations

import concurrent.futures
import json
import sqlite3
import time

import pytest

from tests.kcc_support import Citizen, Console, add_staff
from tests.servers import new_sender, start_bot


@pytest.fixture(scope="module")
def bot(tmp_path_factory):
    running = start_bot(tmp_path_factory.mktemp("kcc-dialogue"), extra_env={
        "KCC_ALWAYS_OPEN": "1", "KCC_WAIT_SECONDS": "4", "KCC_LEFT_TIMEOUT_SECONDS": "3"})
    for name in ("anna", "bram"):
        add_staff(running, name)
    yield running
    running.stop()


@pytest.fixture
def citizen(bot):
    client = Citizen(bot)
    client.start()
    client.say("/greet")
    yield client
    client.close()


def events_of(bot, sender_id):
    with sqlite3.connect(bot.workdir / "tracker.db") as db:
        rows = db.execute("SELECT type_name, data FROM events WHERE sender_id = ? ORDER BY id",
                          (sender_id,)).fetchall()
    return [(kind, json.loads(data)) for kind, data in rows]


def test_medewerker_in_a_flow_step_queues_with_the_answers_so_far(bot, citizen):
    citizen.say("er ligt een losse stoeptegel voor mijn deur")
    citizen.say("Kerkstraat bij de speeltuin")
    shown = citizen.say("/human_handoff", metadata={"button_title": "Medewerker"})
    text = "\n".join(m.get("text", "") for m in shown)
    assert "Uw antwoorden blijven bewaard." in text and "in de rij" not in text
    assert "U bent" in text
    assert citizen.wait_for("kcc_state")["state"] == "waiting"

    # Paused: the citizen's message is stored, the bot stays silent.
    assert citizen.say("hallo? ik wacht") == []
    sid = citizen.session["session_id"]
    kinds = [k for k, _ in events_of(bot, sid)]
    assert "pause" in kinds and kinds[-1] == "user"

    anna = Console(bot, "anna")
    entry = anna.entry_for(lambda e: e["topic"] == "Melding openbare ruimte" and e["state"] == "waiting")
    conv = anna.conversation(entry["id"])
    said = [(line["van"], line["tekst"]) for line in conv["transcript"]]
    assert ("inwoner", "Kerkstraat bij de speeltuin") in said
    assert ("inwoner", "Medewerker") in said and ("inwoner", "hallo? ik wacht") in said
    answers = {a["vraag"]: a["antwoord"] for a in conv["answers"]}
    assert answers["Soort probleem"] == "Stoep of straat"
    assert answers["Plek"] == "Kerkstraat bij de speeltuin"
    assert conv["can_accept"] and not conv["can_reply"] and "sender_id" not in conv

    # Accept, talk both ways, hand back.
    assert anna.accept(entry["id"]).status_code == 200
    citizen.wait_text("Een medewerker van de gemeente chat nu met u.")
    assert anna.send(entry["id"], "Goedemiddag, ik kijk even mee.").status_code == 200
    message = citizen.wait_text("ik kijk even mee")
    assert message["from"] == "medewerker" and message["label"] == "Medewerker"
    assert citizen.say("De tegel ligt er al een week.") == []
    conv = anna.conversation(entry["id"])
    last = conv["transcript"][-1]
    assert (last["van"], last["tekst"]) == ("inwoner", "De tegel ligt er al een week.")
    assert any(line["van"] == "medewerker" and line["medewerker"] == "anna" for line in conv["transcript"])
    assert anna.hand_back(entry["id"]).status_code == 200
    citizen.wait_text("De medewerker heeft het gesprek afgesloten.")
    citizen.wait_text("Kan ik u nog ergens anders mee helpen?")
    # The bot answers again.
    answer = "\n".join(m.get("text", "") for m in citizen.say("wat kost een paspoort"))
    assert "paspoort" in answer.lower()
    kinds = [k for k, _ in events_of(bot, sid)]
    assert "resume" in kinds
    closed = anna.conversation(entry["id"])
    assert closed["state"] == "closed"
    assert closed["answers"] == []  # the interrupted flow's answers are forgotten after the employee


def test_two_employees_accepting_at_once_get_one_winner(bot, citizen):
    citizen.say("ik wil een medewerker spreken")
    anna, bram = Console(bot, "anna"), Console(bot, "bram")
    entry = anna.entry_for(lambda e: e["state"] == "waiting")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        codes = sorted(f.result().status_code for f in [pool.submit(anna.accept, entry["id"]),
                                                       pool.submit(bram.accept, entry["id"])])
    assert codes == [200, 409]
    owner = anna if anna.conversation(entry["id"])["mine"] else bram
    other = bram if owner is anna else anna
    # Only the owner may write or hand back.
    assert other.send(entry["id"], "Ik ook!").status_code == 403
    assert other.hand_back(entry["id"]).status_code == 409
    assert owner.hand_back(entry["id"]).status_code == 200


def test_nobody_in_time_offers_a_call_back_and_waiting_keeps_the_place(bot, citizen):
    shown = citizen.say("kan ik met een medewerker praten")
    assert any("U bent" in m.get("text", "") for m in shown)
    offer = citizen.wait_text("Er is nog geen medewerker vrij.")
    assert [r["payload"] for r in offer["quick_replies"]] == ["/terugbelverzoek", "/human_handoff"]
    anna = Console(bot, "anna")
    entry = anna.entry_for(lambda e: e["callback_offered"])
    # "Ik wacht nog even": same entry, the bot pauses again.
    shown = citizen.say("/human_handoff", metadata={"button_title": "Ik wacht nog even"})
    assert any("U bent" in m.get("text", "") for m in shown)
    again = anna.entry_for(lambda e: e["id"] == entry["id"])
    assert again["state"] == "waiting"
    # "Bel mij terug" after the next offer: out of the queue, into the call-back flow.
    citizen.wait_text("Er is nog geen medewerker vrij.")
    shown = citizen.say("/terugbelverzoek", metadata={"button_title": "Bel mij terug"})
    assert any("Wat is uw naam?" in m.get("text", "") for m in shown)
    assert anna.conversation(entry["id"])["state"] == "callback"


def test_a_citizen_who_leaves_is_taken_out_of_the_queue(bot):
    citizen = Citizen(bot)
    info = citizen.start()
    citizen.say("/greet")
    citizen.say("ik wil een mens spreken")
    anna = Console(bot, "anna")
    entry = anna.entry_for(lambda e: e["state"] == "waiting" and not e["citizen_left"])
    citizen.close()  # the window is closed
    left = anna.entry_for(lambda e: e["id"] == entry["id"] and e["citizen_left"])
    assert left["state"] == "waiting"
    # After the timeout the entry is gone and the conversation is no longer paused.
    deadline = time.monotonic() + 30
    while anna.conversation(entry["id"])["state"] != "expired":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    back = Citizen(bot)
    try:
        back.start(info["session_id"], info["token"])
        answer = "\n".join(m.get("text", "") for m in back.say("wat kost een rijbewijs"))
        assert "rijbewijs" in answer.lower()
    finally:
        back.close()


def test_rest_channel_cannot_show_an_employee_so_it_offers_a_call_back(bot):
    sender = new_sender()
    messages = bot.say(sender, "ik wil een medewerker spreken")
    text = "\n".join(m.get("text", "") for m in messages)
    assert "Chatten met een medewerker kan hier niet." in text
    assert [b["payload"] for b in messages[-1]["buttons"]] == ["/terugbelverzoek", "/deny"]


def test_second_misunderstanding_offers_an_employee(bot, citizen):
    citizen.say("asdkjh qwe zzz")
    shown = citizen.say("plof plaf ploef")
    offer = shown[-1]
    assert "Wilt u verder met een medewerker?" in offer["text"]
    assert {"title": "Ja, een medewerker", "payload": "/human_handoff", "content_type": "text"} in offer["quick_replies"]
    shown = citizen.say("/human_handoff", metadata={"button_title": "Ja, een medewerker"})
    assert any("U bent" in m.get("text", "") for m in shown)
