"""Outside office hours (KCC_ALWAYS_OPEN=0, tests only) with the real servers:
the citizen leaves a call-back request, filed as its own case with the
transcript; "Medewerker" inside a flow offers it too, and "Nee" goes back."""
from __future__ import annotations

import re

import pytest

from tests.kcc_support import Console, add_staff
from tests.servers import new_sender, start_bot


@pytest.fixture(scope="module")
def bot(tmp_path_factory):
    running = start_bot(tmp_path_factory.mktemp("kcc-closed"), extra_env={"KCC_ALWAYS_OPEN": "0"})
    add_staff(running, "anna")
    yield running
    running.stop()


def texts(messages):
    return "\n".join(m.get("text", "") for m in messages)


def test_call_back_request_outside_office_hours_is_filed_with_the_transcript(bot):
    sender = new_sender()
    bot.say(sender, "/greet")
    bot.say(sender, "hoe laat is het gemeentehuis open")
    offer = bot.say(sender, "ik wil een medewerker spreken")
    assert "Er zijn nu geen medewerkers aan het werk." in texts(offer)
    assert [b["title"] for b in offer[-1]["buttons"]] == ["Ja, bel mij terug", "Nee, dank u"]

    asked = texts(bot.say(sender, "/terugbelverzoek", metadata={"button_title": "Ja, bel mij terug"}))
    assert "Wat is uw naam?" in asked
    assert "Op welk nummer" in texts(bot.say(sender, "Fatima el Amrani"))
    refused = texts(bot.say(sender, "0164 12"))
    assert "Dit is geen goed telefoonnummer." in refused and "Op welk nummer" in refused
    assert "Waar gaat uw vraag over?" in texts(bot.say(sender, "06 12345678"))
    assert "Wanneer kunnen wij u het beste bellen?" in texts(bot.say(sender, "Een vraag over mijn aanslag"))
    summary = texts(bot.say(sender, "in de ochtend"))
    assert "06 12345678" in summary and "In de ochtend" in summary and "Klopt dit?" in summary
    done = texts(bot.say(sender, "ja"))
    number = re.search(r"Uw nummer is (BOZ-\d{4}-\d{6})", done)
    assert number, done
    assert "Wij bellen u binnen 2 werkdagen terug." in done

    case = {c["zaaknummer"]: c for c in bot.cases()}[number.group(1)]
    assert case["zaaktype"] == "terugbelverzoek" and case["status"] == "ontvangen"
    assert case["contact"] == {"naam": "Fatima el Amrani", "telefoon": "+31612345678"}
    assert case["data"]["vraag"] == "Een vraag over mijn aanslag" and case["data"]["dagdeel"] == "ochtend"
    said = [(line["van"], line["tekst"]) for line in case["data"]["transcript"]]
    assert ("inwoner", "hoe laat is het gemeentehuis open") in said
    assert ("inwoner", "ik wil een medewerker spreken") in said
    assert ("assistent", "Er zijn nu geen medewerkers aan het werk. Wij zijn er maandag tot en met "
                         "vrijdag van 8.30 tot 17.00 uur.") in said
    assert ("inwoner", "Ja, bel mij terug") in said

    # The KCC sees it in the console's list of call-back requests, and can mark it.
    anna = Console(bot, "anna")
    listed = {c["zaaknummer"]: c for c in anna.get("/kcc/api/callbacks").json()["callbacks"]}
    item = listed[number.group(1)]
    assert (item["naam"], item["telefoon"], item["dagdeel"], item["status_label"]) == (
        "Fatima el Amrani", "06 12345678", "ochtend", "Nieuw")
    detail = anna.get(f"/kcc/api/callbacks/{number.group(1)}").json()
    assert ("inwoner", "ik wil een medewerker spreken") in [(l["van"], l["tekst"]) for l in detail["transcript"]]
    assert anna.post(f"/kcc/api/callbacks/{number.group(1)}/status", {"status": "afgerond"}).status_code == 200
    assert {c["zaaknummer"]: c for c in bot.cases()}[number.group(1)]["status"] == "afgerond"
    assert anna.post(f"/kcc/api/callbacks/{number.group(1)}/status", {"status": "weg"}).status_code == 400


def test_medewerker_in_a_flow_offers_a_call_back_and_no_goes_back_to_the_question(bot):
    sender = new_sender()
    bot.say(sender, "/greet")
    assert "Waar is het probleem?" in texts(bot.say(sender, "er ligt een losse stoeptegel voor mijn deur"))
    offer = texts(bot.say(sender, "/human_handoff", metadata={"button_title": "Medewerker"}))
    assert "Er zijn nu geen medewerkers aan het werk." in offer
    back = texts(bot.say(sender, "/deny", metadata={"button_title": "Nee, dank u"}))
    assert "Goed, dan gaan we verder met uw vragen." in back and "Waar is het probleem?" in back
    assert "Wat is er aan de hand?" in texts(bot.say(sender, "Kerkstraat bij de speeltuin"))


def test_a_call_back_from_inside_a_flow_keeps_its_answers_for_the_kcc(bot):
    sender = new_sender()
    bot.say(sender, "/greet")
    bot.say(sender, "er ligt een losse stoeptegel voor mijn deur")
    bot.say(sender, "Kerkstraat bij de speeltuin")
    bot.say(sender, "/human_handoff", metadata={"button_title": "Medewerker"})
    bot.say(sender, "/terugbelverzoek", metadata={"button_title": "Ja, bel mij terug"})
    for answer in ("Jan de Vries", "0612345678", "Wanneer wordt de tegel gemaakt", "maakt niet uit"):
        bot.say(sender, answer)
    number = re.search(r"(BOZ-\d{4}-\d{6})", texts(bot.say(sender, "ja"))).group(1)
    case = {c["zaaknummer"]: c for c in bot.cases()}[number]
    earlier = {(a["vraag"], a["antwoord"]) for a in case["data"]["eerdere_antwoorden"]}
    assert {("Soort probleem", "Stoep of straat"), ("Plek", "Kerkstraat bij de speeltuin")} <= earlier


def test_a_person_asked_by_name_of_the_intent_terugbelverzoek_starts_the_flow(bot):
    sender = new_sender()
    assert "Wat is uw naam?" in texts(bot.say(sender, "kunt u mij terugbellen"))
    assert "Wilt u echt stoppen?" in texts(bot.say(sender, "/stop"))
    assert "Er is niets verstuurd." in texts(bot.say(sender, "ja"))
