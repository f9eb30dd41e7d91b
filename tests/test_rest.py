"""The real servers over HTTP: the REST channel, every guided flow typed as a
citizen would, bad input, identity, status lookup and idempotency."""
from __future__ import annotations

import re
import threading

import pytest
import requests

from bot import identity
from bot.cases.store import CaseStore
from tests.conftest import IDENTITY_TEST_SECRET
from tests.servers import new_sender

BSN = "111222333"
CASE_NUMBER = re.compile(r"BOZ-\d{4}-\d{6}")


def flow(bot, sender, messages, metadata=None):
    """Send each message; return the texts of the last turn."""
    out = ""
    for message in messages:
        out = bot.texts(sender, message, metadata=metadata)
    return out


def case_number(text):
    match = CASE_NUMBER.search(text)
    assert match, text
    return match.group(0)


def exported(bot, number):
    return next(c for c in bot.cases() if c["zaaknummer"] == number)


def test_passport_question_gets_a_b1_answer_with_the_link(bot):
    messages = bot.say(new_sender(), "wat kost een paspoort")
    text = messages[0]["text"]
    assert "€" in text and "https://www.bergenopzoom.nl/paspoort" in text
    assert messages[0]["buttons"][0]["payload"] == "/afspraak_maken"


@pytest.mark.parametrize("question,expected", [
    ("pasport kwijt wat nu", "paspoort"),
    ("hoe laat is het stadskantoor open", "14 0164"),
    ("hedde gij info over de afvalkalender", "afval"),
    ("mijn digid werkt nie meer", "DigiD"),
])
def test_typos_and_informal_dutch_are_understood(bot, question, expected):
    assert expected.lower() in bot.texts(new_sender(), question).lower()


def test_not_understood_twice_offers_the_kcc(bot):
    sender = new_sender()
    first = bot.say(sender, "kwak kwak blub")
    assert first[0]["buttons"], "first fallback offers topic buttons"
    second = bot.texts(sender, "plof plaf ploef")
    assert "14 0164" in second and "8.30" in second


BAD_INPUTS = ["", "   \n\t ", "a" * 5000, "😀😀😀", "<script>alert(1)</script>",
              "<img src=x onerror=alert(1)>", "How do I renew my passport?",
              "\x00\x01\x02\ufffd\ufffd", "ÿþ\x7f\x80"]


@pytest.mark.parametrize("text", BAD_INPUTS, ids=["empty", "whitespace", "5000", "emoji", "script", "html",
                                                   "english", "bytes", "latin1"])
def test_bad_input_gets_a_dutch_reply(bot, text):
    response = requests.post(f"{bot.rasa_url}/webhooks/rest/webhook",
                             json={"sender": new_sender(), "message": text}, timeout=30)
    assert response.status_code == 200
    replies = [m["text"] for m in response.json() if m.get("text")]
    assert replies and all(r.strip() for r in replies)
    joined = " ".join(replies)
    assert re.search(r"\b(u|uw|ik)\b", joined, re.IGNORECASE), joined  # Dutch, addressing the citizen
    assert "<script>" not in joined and "onerror" not in joined  # never echoed


def test_bad_input_in_a_flow_loses_nothing(bot):
    sender = new_sender()
    flow(bot, sender, ["de lantaarnpaal in mijn straat is kapot", "Kerkstraat bij de speeltuin"])
    for text in ["", "😀😀", "<b>vet</b>", "a" * 5000]:
        reply = bot.texts(sender, text)
        assert "Wat is er aan de hand?" in reply  # the same question again
    summary = flow(bot, sender, ["De lamp brandt al een week niet", "geen", "geen"])
    assert "Straatverlichting" in summary and "Kerkstraat bij de speeltuin" in summary


def test_melding_with_faq_detour_correction_and_status(bot):
    sender = new_sender()
    assert "Waar is het probleem?" in bot.texts(sender, "er ligt een losse stoeptegel voor mijn deur")
    flow(bot, sender, ["Kerkstraat bij de speeltuin"])
    detour = bot.texts(sender, "wat kost een paspoort?")
    assert "€" in detour and "Wat is er aan de hand?" in detour
    explained = bot.texts(sender, "wat bedoelt u?")
    assert "Vertel kort wat u ziet" in explained
    summary = flow(bot, sender, ["De tegel ligt los, mensen struikelen", "geen", "jan@example.nl"])
    assert "Klopt dit?" in summary and "Stoep of straat" in summary
    assert "Waar is het probleem?" in bot.texts(sender, "nee, het adres klopt niet")
    summary = bot.texts(sender, "4611 AB 12")
    assert "4611 AB 12" in summary and "De tegel ligt los" in summary
    done = bot.texts(sender, "ja")
    number = case_number(done)
    assert "5 werkdagen" in done
    case = exported(bot, number)
    assert case["zaaktype"] == "melding_openbare_ruimte" and case["channel"] == "website"
    assert case["data"]["categorie"] == "bestrating" and case["data"]["postcode"] == "4611 AB"
    # A retried "ja" never files a second case.
    bot.texts(sender, "ja")
    assert sum(c["zaaknummer"] == number for c in bot.cases()) == 1
    assert len([c for c in bot.cases() if c["data"].get("omschrijving", "").startswith("De tegel ligt los")]) == 1

    status = flow(bot, new_sender(), ["hoe staat het met mijn melding", number, "4611ab"])
    assert "Wij hebben uw aanvraag ontvangen" in status
    wrong = flow(bot, new_sender(), ["status van mijn aanvraag", number, "4622 CD"])
    unknown = flow(bot, new_sender(), ["status van mijn aanvraag", "BOZ-2026-999999", "4611 AB"])
    assert "geen aanvraag vinden" in wrong and wrong == unknown


def test_stop_needs_confirmation_and_files_nothing(bot):
    sender = new_sender()
    before = len(bot.cases())
    flow(bot, sender, ["ik wil grofvuil laten ophalen", "ja", "een bank"])
    assert "Wilt u echt stoppen?" in bot.texts(sender, "stop")
    assert "Op welk adres" in bot.texts(sender, "nee")
    flow(bot, sender, ["stop"])
    assert "Er is niets verstuurd" in bot.texts(sender, "ja")
    assert len(bot.cases()) == before


def test_grofvuil_is_filed_with_a_collection_day(bot):
    sender = new_sender()
    ask_day = flow(bot, sender, ["grofvuil ophalen", "ja", "een bank en twee matrassen", "4611ab 12"])
    assert "Op welke dag" in ask_day
    summary = flow(bot, sender, ["1", "06 12345678"])
    assert "1 × bank, 2 × matras" in summary and "06 12345678" in summary
    case = exported(bot, case_number(bot.texts(sender, "ja")))
    assert case["zaaktype"] == "grofvuil_ophalen"
    assert case["data"]["spullen"]["kuub"] == 2.0 and case["data"]["datum"]


def test_verhuizing_waits_for_digid_then_files_with_the_bsn(bot):
    sender = new_sender()
    flow(bot, sender, ["ik ga verhuizen", "ja", "morgen", "4611 AB 12", "Alleen ik", "jan@example.nl"])
    waiting = bot.texts(sender, "ja")
    assert "DigiD" in waiting and not CASE_NUMBER.search(waiting)
    token = identity.issue_token(BSN, "Jan de Vries", secret=IDENTITY_TEST_SECRET)
    done = bot.texts(sender, "/affirm", metadata={"identity_token": token, "channel": "website"})
    number = case_number(done)
    stored = CaseStore(bot.env["CASES_DB_URL"]).get(number)
    assert stored.bsn == BSN and stored.zaaktype == "verhuizing_doorgeven"
    assert "bsn" not in exported(bot, number)


def test_verhuizing_with_a_forged_token_is_refused(bot):
    sender = new_sender()
    flow(bot, sender, ["verhuizing doorgeven", "ja", "morgen", "4611 AB 12", "Alleen ik", "geen@example.nl"])
    forged = identity.issue_token(BSN, "Jan", secret="a-different-secret-of-enough-length-1234")
    reply = bot.texts(sender, "ja", metadata={"identity_token": forged})
    assert "Ik kon uw inlog niet controleren" in reply and not CASE_NUMBER.search(reply)


def test_wedding_slot_is_booked_and_disappears(bot):
    sender = new_sender()
    first = flow(bot, sender, ["wij willen trouwen", "ja", "trouwen", "eenvoudig"])
    moments = bot.say(sender, "wat bedoelt u?")[-1]["buttons"]
    chosen = moments[0]["title"]
    assert " om " in chosen and "Welke datum" in first
    summary = flow(bot, sender, [chosen, "Stadhuis", "Jan de Vries en Fatima el Amrani", "Later",
                                 "jan@example.nl"])
    assert chosen in summary
    done = bot.texts(sender, "ja")
    assert "Uw code is" in done
    case = exported(bot, case_number(done))
    assert case["data"]["ceremonie"] == "eenvoudig"
    other = new_sender()
    flow(bot, other, ["ik wil trouwen", "ja", "partnerschap", "gratis"])
    offered = [b["title"] for b in bot.say(other, "wat bedoelt u?")[-1]["buttons"]]
    assert chosen not in offered


def test_appointment_made_moved_and_cancelled_with_the_code(bot):
    sender = new_sender()
    summary = flow(bot, sender, ["ik wil een afspraak maken", "rijbewijs", "1", "Jan de Vries", "jan@example.nl"])
    assert "Rijbewijs" in summary
    done = bot.texts(sender, "ja")
    code = re.search(r"Uw code is ([A-Z0-9]{6})", done).group(1)
    assert "identiteitsbewijs" in done
    moved = flow(bot, new_sender(), ["ik wil mijn afspraak verzetten", code, "2", "ja"])
    assert "verzet naar" in moved and code in moved
    cancelled = flow(bot, new_sender(), ["ik wil mijn afspraak afzeggen", code, "ja"])
    assert "afgezegd" in cancelled
    case = exported(bot, case_number(done))
    assert case["status"] == "geannuleerd"


def test_concurrent_double_confirmation_files_one_case(bot):
    sender = new_sender()
    flow(bot, sender, ["de vuilnisbak op de markt puilt uit", "Markt bij de kerk",
                       "Er ligt overal afval", "geen", "geen"])
    before = {c["zaaknummer"] for c in bot.cases()}
    replies = []
    threads = [threading.Thread(target=lambda: replies.append(bot.texts(sender, "ja"))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    new = [c for c in bot.cases() if c["zaaknummer"] not in before]
    assert len(new) == 1, new


# -- malformed requests: 400 with a short JSON error, never 500 (integrations/rest) --------------

MALFORMED_BODIES = {
    "array": b'[{"sender": "x", "message": "hallo"}]',
    "string": b'"wat kost een paspoort"',
    "number": b"42",
    "null": b"null",
    "boolean": b"true",
    "empty": b"",
    "not json": b'{"sender": "x", "message": ',
}
WRONG_FIELDS = {
    "sender number": {"sender": 12345, "message": "hallo"},
    "sender list": {"sender": ["a"], "message": "hallo"},
    "sender object": {"sender": {"id": "a"}, "message": "hallo"},
    "sender empty": {"sender": "", "message": "hallo"},
    "sender missing": {"message": "hallo"},
    "sender too long": {"sender": "s" * 256, "message": "hallo"},
    "message number": {"message": 5},
    "message list": {"message": ["hallo"]},
    "message object": {"message": {"text": "hallo"}},
    "message boolean": {"message": False},
    "message null": {"message": None},
    "message missing": {},
    "metadata string": {"message": "hallo", "metadata": "website"},
    "metadata list": {"message": "hallo", "metadata": [1]},
    "input_channel list": {"message": "hallo", "input_channel": ["rest"]},
}


def webhook(bot, query=""):
    return f"{bot.rasa_url}/webhooks/rest/webhook{query}"


def assert_bad_request(response):
    assert response.status_code == 400, (response.status_code, response.text[:200])
    error = response.json()["error"]
    assert isinstance(error, str) and 0 < len(error) < 120


@pytest.mark.parametrize("query", ["", "?stream=true"])
@pytest.mark.parametrize("name", MALFORMED_BODIES)
def test_a_body_that_is_not_an_object_gets_400(bot, name, query):
    response = requests.post(webhook(bot, query), data=MALFORMED_BODIES[name],
                             headers={"Content-Type": "application/json"}, timeout=30)
    assert_bad_request(response)


@pytest.mark.parametrize("name", WRONG_FIELDS)
def test_wrong_typed_fields_get_400(bot, name):
    body = {"sender": new_sender(), **WRONG_FIELDS[name]}
    if name == "sender missing":
        del body["sender"]
    response = requests.post(webhook(bot), json=body, timeout=30)
    assert_bad_request(response)


def test_after_bad_requests_the_same_sender_is_answered_normally(bot):
    sender = new_sender()
    for body in ({"sender": sender, "message": 5}, {"sender": sender, "message": "x", "metadata": "y"}):
        assert_bad_request(requests.post(webhook(bot), json=body, timeout=30))
    assert_bad_request(requests.post(webhook(bot), data=b"[]", timeout=30))
    # The refused requests broke nothing: the same sender is answered as usual.
    messages = bot.say(sender, "wat kost een paspoort")
    assert messages and messages[0]["recipient_id"] == sender
    assert "€" in messages[0]["text"]
    # Optional fields of the right type, and the health route, are as before.
    assert bot.texts(sender, "hoe laat is het stadskantoor open", metadata={"channel": "website"})
    ok = requests.post(webhook(bot), json={"sender": sender, "message": "", "input_channel": None,
                                           "metadata": None}, timeout=30)
    assert ok.status_code == 200 and "niets getypt" in ok.json()[0]["text"]
    assert requests.get(f"{bot.rasa_url}/webhooks/rest/", timeout=10).json() == {"status": "ok"}


def test_a_rest_client_cannot_pose_as_the_website_chat(bot):
    """input_channel decides whether a live KCC chat is offered: the REST channel always says "rest"."""
    import json
    import sqlite3

    sender = new_sender()
    answered = requests.post(webhook(bot), json={"sender": sender, "message": "hallo", "input_channel": "webchat"},
                             timeout=30)
    assert answered.status_code == 200 and answered.json()
    with sqlite3.connect(bot.workdir / "tracker.db") as db:
        rows = db.execute("SELECT data FROM events WHERE sender_id = ? AND type_name = 'user'", (sender,)).fetchall()
    assert rows and {json.loads(data)["input_channel"] for (data,) in rows} == {"rest"}
