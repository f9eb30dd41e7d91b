"""Tests for bot.validators: real libraries, fixed dates, Dutch messages."""
from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import validators as v
from bot.config import gemeente
from bot.validators import Invalid

TODAY = date(2026, 11, 30)


def invalid(func, *args, **kwargs) -> str:
    """Call func, expect Invalid, return its message after generic message checks."""
    with pytest.raises(Invalid) as info:
        func(*args, **kwargs)
    message = info.value.message
    assert message == str(info.value)
    assert 0 < len(message) <= 220
    assert len(re.findall(r"[.?!](?:\s|$)", message)) <= 3  # short: at most 2–3 sentences
    for sentence in re.split(r"[.?!]\s", message):
        assert len(sentence.split()) <= 20, sentence
    return message


def test_today_is_a_monday():
    assert TODAY.weekday() == 0


# --- postcode, huisnummer, address -----------------------------------------

@pytest.mark.parametrize("text", ["4611ab", "4611 AB", "4611-ab", "4611 - AB", "mijn postcode is 4611ab",
                                  "Postcode: 4611AB.", "NL 4611 ab"])
def test_parse_postcode_accepts(text):
    assert v.parse_postcode(text) == "4611 AB"


@pytest.mark.parametrize("text", ["", "4611", "461 AB", "0611 AB", "4611 SS", "4611 SA", "4611 sd",
                                  "46111 AB", "hallo", "lamp 1234 is kapot", "😀"])
def test_parse_postcode_rejects(text):
    message = invalid(v.parse_postcode, text)
    assert "4611 AB" in message and "postcode" in message


def test_postcode_message_does_not_echo_input():
    message = invalid(v.parse_postcode, "9999 SS geheimtekst")
    assert "geheimtekst" not in message and "9999" not in message


@pytest.mark.parametrize("text,expected", [
    ("12", "12"), ("12a", "12A"), ("12 a", "12A"), ("12A", "12A"), ("nummer 12a", "12A"),
    ("12-2", "12-2"), ("12 - 2", "12-2"), ("12 bis", "12-BIS"), ("12bis", "12-BIS"), ("12 hs", "12-HS"),
    ("12-hs", "12-HS"), ("mijn huisnummer is 7", "7"), ("99999", "99999"), ("1", "1"),
    ("4611 AB 14", "14"),
])
def test_parse_huisnummer_accepts(text, expected):
    assert v.parse_huisnummer(text) == expected


@pytest.mark.parametrize("text", ["0", "00", "abc", "", "123456", "nummer", "huisnummer a"])
def test_parse_huisnummer_rejects(text):
    assert "12A" in invalid(v.parse_huisnummer, text)


@pytest.mark.parametrize("text,expected", [
    ("4611 AB 12a", {"postcode": "4611 AB", "huisnummer": "12A"}),
    ("4611ab, nummer 12", {"postcode": "4611 AB", "huisnummer": "12"}),
    ("Kerkstraat 3-2, 4612 CD", {"postcode": "4612 CD", "huisnummer": "3-2"}),
    ("4611AB12", {"postcode": "4611 AB", "huisnummer": "12"}),
])
def test_parse_address_accepts(text, expected):
    assert v.parse_address(text) == expected


def test_parse_address_says_what_is_missing():
    assert "huisnummer" in invalid(v.parse_address, "4611ab").split(".")[0]
    assert "postcode" in invalid(v.parse_address, "nummer 12").split(".")[0]
    both = invalid(v.parse_address, "hallo")
    assert "postcode en huisnummer" in both
    assert "postcode" in invalid(v.parse_address, "4611 SS 12")


# --- location ---------------------------------------------------------------

def test_parse_location_postcode_and_number():
    assert v.parse_location("4611 AB 12") == {"postcode": "4611 AB", "huisnummer": "12",
                                               "straat": None, "omschrijving": None}


def test_parse_location_postcode_number_with_description_keeps_text():
    result = v.parse_location("4611 AB 12, voor de deur")
    assert result["postcode"] == "4611 AB" and result["huisnummer"] == "12"
    assert result["omschrijving"] == "4611 AB 12, voor de deur"


@pytest.mark.parametrize("text,street", [
    ("Kerkstraat bij de speeltuin", "Kerkstraat"),
    ("op de Markt bij de kerk", "Markt"),
    ("bij de bushalte aan de zuidsingel", "Zuidsingel"),
    ("de lamp 1234 is kapot op de Wouwsestraatweg", "Wouwsestraatweg"),
    ("achter het zwembad", None),
])
def test_parse_location_street_and_description(text, street):
    result = v.parse_location("  " + text + "  ")
    assert result["straat"] == street
    assert result["omschrijving"] == text
    assert result["postcode"] is None and result["huisnummer"] is None


@pytest.mark.parametrize("text", ["😀😀", "12345", "", "   ", "!!", "ab 12", "<script>alert(1)</script>"])
def test_parse_location_rejects(text):
    assert "Kerkstraat" in invalid(v.parse_location, text)


def test_parse_location_too_long():
    assert "500" in invalid(v.parse_location, "Kerkstraat " * 60)


# --- dates -------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("volgende week dinsdag", date(2026, 12, 8)),
    ("dinsdag volgende week", date(2026, 12, 8)),
    ("dinsdag", date(2026, 12, 1)),
    ("Dinsdag graag", date(2026, 12, 1)),
    ("aanstaande vrijdag", date(2026, 12, 4)),
    ("komende woensdag", date(2026, 12, 2)),
    ("maandag", date(2026, 12, 7)),  # today is Monday: the next one
    ("overmorgen", date(2026, 12, 2)),
    ("morgen", date(2026, 12, 1)),
    ("morgen graag!", date(2026, 12, 1)),
    ("vandaag", TODAY),
    ("15 maart", date(2027, 3, 15)),
    ("15-3", date(2027, 3, 15)),
    ("15/03/2027", date(2027, 3, 15)),
    ("15.3.2027", date(2027, 3, 15)),
    ("3 december", date(2026, 12, 3)),
    ("op 3 december graag", date(2026, 12, 3)),
    ("3 dec.", date(2026, 12, 3)),
    ("dinsdag 8 december", date(2026, 12, 8)),
    ("over twee weken", date(2026, 12, 14)),
    ("over 3 dagen", date(2026, 12, 3)),
    ("30 november", TODAY),
])
def test_parse_date_dutch(text, expected):
    assert v.parse_date(text, today=TODAY) == expected


def test_parse_date_relative_to_another_today():
    friday = date(2027, 1, 8)
    assert v.parse_date("aanstaande vrijdag", today=friday) == date(2027, 1, 15)
    assert v.parse_date("volgende week dinsdag", today=friday) == date(2027, 1, 12)
    assert v.parse_date("15 maart", today=friday) == date(2027, 3, 15)


@pytest.mark.parametrize("text", ["blabla", "", "12", "volgende week", "31 februari", "ergens in de zomer", "😀"])
def test_parse_date_unparseable(text):
    message = invalid(v.parse_date, text, today=TODAY)
    assert message.startswith("Ik begrijp deze datum niet")
    assert "volgende week dinsdag" in message


@pytest.mark.parametrize("text", ["gisteren", "29 november 2026", "15 maart 2025", "1-1-2026"])
def test_parse_date_past(text):
    message = invalid(v.parse_date, text, today=TODAY)
    assert "voorbij" in message
    assert "maandag 30 november 2026" in message  # first open day as example


def test_parse_date_before_min_date():
    message = invalid(v.parse_date, "morgen", today=TODAY, min_date=date(2026, 12, 3))
    assert "te vroeg" in message and "donderdag 3 december 2026" in message
    assert v.parse_date("3 december", today=TODAY, min_date=date(2026, 12, 3)) == date(2026, 12, 3)


def test_parse_date_too_far_names_last_date():
    message = invalid(v.parse_date, "15 maart", today=TODAY, max_date=date(2026, 12, 28))
    assert "te ver" in message and "28 december 2026" in message
    assert v.parse_date("28 dec", today=TODAY, max_date=date(2026, 12, 28)) == date(2026, 12, 28)


def test_parse_date_sunday_and_closed_weekdays():
    message = invalid(v.parse_date, "zondag", today=TODAY)
    assert "zondag" in message and "maandag 7 december 2026" in message
    message = invalid(v.parse_date, "zaterdag 5 december", today=TODAY, closed_weekdays=(5, 6))
    assert "zaterdag" in message and "maandag 7 december 2026" in message
    assert v.parse_date("zondag", today=TODAY, closed_weekdays=()) == date(2026, 12, 6)


def test_parse_date_public_holidays_named_in_dutch():
    message = invalid(v.parse_date, "25 december", today=TODAY)
    assert "Eerste Kerstdag" in message
    assert "maandag 28 december 2026" in message  # 26th is Tweede Kerstdag, 27th a Sunday
    message = invalid(v.parse_date, "27 april 2027", today=TODAY)
    assert "Koningsdag" in message
    assert "Nieuwjaarsdag" in invalid(v.parse_date, "1 januari", today=TODAY)
    assert v.parse_date("25 december", today=TODAY, skip_holidays=False) == date(2026, 12, 25)


def test_parse_date_weekday_and_date_disagree():
    message = invalid(v.parse_date, "maandag 8 december", today=TODAY)
    assert "dinsdag 8 december 2026" in message


def test_format_date_nl():
    assert v.format_date_nl(date(2026, 12, 8)) == "dinsdag 8 december 2026"
    assert v.format_date_nl(date(2027, 4, 27), weekday=False) == "27 april 2027"
    assert v.format_date_nl(date(2026, 11, 29)) == "zondag 29 november 2026"


# --- move date ---------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("vandaag", TODAY), ("gisteren", date(2026, 11, 29)), ("afgelopen vrijdag", date(2026, 11, 27)),
    ("25 november", date(2026, 11, 25)), ("zondag", date(2026, 12, 6)), ("28 december", date(2026, 12, 28)),
    ("25 december", date(2026, 12, 25)),
])
def test_parse_move_date_accepts(text, expected):
    assert v.parse_move_date(text, today=TODAY) == expected


def test_parse_move_date_limits():
    early = invalid(v.parse_move_date, "24 november", today=TODAY)
    assert "woensdag 25 november 2026" in early and "contact" in early
    late = invalid(v.parse_move_date, "29 december", today=TODAY)
    assert "4 weken" in late and "maandag 28 december 2026" in late
    assert "3 dagen" in invalid(v.parse_move_date, "5 december", today=TODAY, max_ahead=3)
    assert invalid(v.parse_move_date, "iets", today=TODAY).startswith("Ik begrijp deze datum niet")


# --- grofvuil collection days -------------------------------------------------

def test_collection_days_per_district_from_gemeente_yml():
    config = gemeente()["grofvuil"]
    assert v.collection_days("4611 AB", today=TODAY, config=config) == [
        date(2026, 12, 7), date(2026, 12, 14), date(2026, 12, 21), date(2026, 12, 28)]
    # Fridays: 25 December (Eerste Kerstdag) and 1 January (Nieuwjaarsdag) are skipped.
    assert v.collection_days("4615XY", today=TODAY, config=config) == [
        date(2026, 12, 4), date(2026, 12, 11), date(2026, 12, 18), date(2027, 1, 8)]
    # Unknown district: standaard (dinsdag, donderdag); today itself is never offered.
    assert v.collection_days("4600 AA", today=date(2026, 12, 1), config=config) == [
        date(2026, 12, 3), date(2026, 12, 8), date(2026, 12, 10), date(2026, 12, 15)]


def test_collection_days_window_count_and_keys():
    config = {"ophaaldagen": {"standaard": ["zaterdag"], "wijken": {4611: ["Maandag", "zaterdag"]}},
              "vooruit_dagen": 14}
    # 26 December is Tweede Kerstdag; the 14-day window ends on 2 January.
    assert v.collection_days("4699 ZZ", today=date(2026, 12, 19), config=config, count=4) == [
        date(2027, 1, 2)]
    assert v.collection_days("4611 AB", today=TODAY, config=config, count=2) == [
        date(2026, 12, 5), date(2026, 12, 7)]
    with pytest.raises(Invalid):
        v.collection_days("4611 SS", today=TODAY, config=config)


# --- phone, e-mail, contact ---------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("06-12345678", "+31612345678"), ("0612345678", "+31612345678"),
    ("mijn nummer is +31 6 1234 5678", "+31612345678"), ("0031612345678", "+31612345678"),
    ("0164 123456", "+31164123456"), ("+32 470 12 34 56", "+32470123456"),
])
def test_parse_phone_accepts(text, expected):
    assert v.parse_phone(text) == expected


@pytest.mark.parametrize("text", ["1234", "06 1234567", "06 123456789", "hallo", "", "112"])
def test_parse_phone_rejects(text):
    assert "06 12345678" in invalid(v.parse_phone, text)


def test_format_phone():
    assert v.format_phone("+31612345678") == "06 12345678"
    assert v.format_phone("+32470123456").startswith("+32")


@pytest.mark.parametrize("text,expected", [
    ("Jan.Jansen@Example.NL", "Jan.Jansen@example.nl"),
    ("mail mij op piet@gemeente.nl.", "piet@gemeente.nl"),
    ("<a@b.nl>", "a@b.nl"),
])
def test_parse_email_accepts(text, expected):
    assert v.parse_email(text) == expected


@pytest.mark.parametrize("text", ["foo@", "@example.nl", "jan@@example.nl", "geen", "jan@example", ""])
def test_parse_email_rejects(text):
    assert "naam@voorbeeld.nl" in invalid(v.parse_email, text)


@pytest.mark.parametrize("text", ["geen", "Nee", "nee, dank u.", "liever niet", "hoeft niet", "Nee dank u",
                                  "geen e-mail", "Nee hoor, dat hoeft niet"])
def test_parse_contact_refusals(text):
    assert v.parse_contact(text) == {}


def test_parse_contact_values_and_errors():
    assert v.parse_contact("jan@example.nl") == {"email": "jan@example.nl"}
    assert v.parse_contact("bel me op 06 12345678") == {"telefoon": "+31612345678"}
    assert v.parse_contact("jan@example.nl of 0612345678") == {"email": "jan@example.nl",
                                                               "telefoon": "+31612345678"}
    assert "geen" in invalid(v.parse_contact, "hallo")
    assert "nodig" in invalid(v.parse_contact, "geen", optional=False)
    assert "naam@voorbeeld.nl" in invalid(v.parse_contact, "jan@")
    assert "06 12345678" in invalid(v.parse_contact, "bel 1234567")


# --- names, free text ---------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("Jan de Vries", "Jan de Vries"), ("A. el Amrani", "A. el Amrani"),
    ("Anne-Marie van 't Hof", "Anne-Marie van 't Hof"), ("mijn naam is Jan de Vries", "Jan de Vries"),
    ("Ik heet  Özlem   Yılmaz", "Özlem Yılmaz"), ("'t Hooft", "'t Hooft"), ("Anne-Marie van ’t Hof", "Anne-Marie van 't Hof"),
])
def test_parse_name_accepts(text, expected):
    assert v.parse_name(text) == expected


@pytest.mark.parametrize("text", ["J", "Jan123", "<b>Jan</b>", "😀😀", "", "mijn naam is", "a" * 101,
                                  "Jan; DROP TABLE", "..."])
def test_parse_name_rejects(text):
    assert "Jan de Vries" in invalid(v.parse_name, text)


def test_parse_free_text():
    assert v.parse_free_text("  de   lamp\n is kapot ") == "de lamp is kapot"
    assert "te kort" in invalid(v.parse_free_text, "ab")
    assert "1000" in invalid(v.parse_free_text, "a" * 1001)
    assert "50" in invalid(v.parse_free_text, "woord " * 20, max_len=50)
    assert "woorden" in invalid(v.parse_free_text, "😀😀😀😀")
    assert "woorden" in invalid(v.parse_free_text, "12345")
    assert "Bijvoorbeeld: een bank." in invalid(v.parse_free_text, "!!", example="een bank")


@given(st.text(max_size=60))
@settings(max_examples=200, deadline=None)
def test_parse_free_text_never_crashes(text):
    try:
        result = v.parse_free_text(text)
    except Invalid as exc:
        assert exc.message
    else:
        assert v.has_letters(result) and 3 <= len(result) <= 1000 and result == result.strip()


# --- choices, BSN, markup -------------------------------------------------------

CHOICES = {
    "straatverlichting": ["Straatverlichting", "lantaarnpaal", "lamp", "licht"],
    "afval": ["Afval", "vuilnis", "zwerfafval"],
    "grofvuil": ["Grof afval", "grofvuil"],
    "groen": ["Groen", "boom", "gras"],
    "verkeer": ["Verkeersbord", "bord", "stoplicht"],
}


@pytest.mark.parametrize("text,expected", [
    ("de lantaarnpaal is kapot", "straatverlichting"), ("2", "afval"), ("nummer 4", "groen"),
    ("STRAATVERLICHTING", "straatverlichting"), ("straatverlichting.", "straatverlichting"),
    ("straatverlichtin", "straatverlichting"), ("lantarnpaal", "straatverlichting"),
    ("grof afval", "grofvuil"), ("er staat grof afval op de stoep", "grofvuil"),
    ("er ligt zwerfafval op straat", "afval"), ("er ligt afval", "afval"), ("Gròen", "groen"),
    ("het stoplicht doet het niet", "verkeer"), ("verkeer", "verkeer"),
])
def test_match_choice_accepts(text, expected):
    assert v.match_choice(text, CHOICES) == expected


def test_match_choice_rejects_unknown_and_ambiguous():
    assert "Straatverlichting" in invalid(v.match_choice, "iets heel anders", CHOICES)
    assert "1 of Straatverlichting" in invalid(v.match_choice, "9", CHOICES)
    message = invalid(v.match_choice, "boom met vuilnis", CHOICES)
    assert "Afval" in message and "Groen" in message
    message = invalid(v.match_choice, "de lamp bij de boom", CHOICES)
    assert "Straatverlichting" in message and "Groen" in message


@pytest.mark.parametrize("text", ["123456782", "bsn 1234.56.782", "mijn bsn is 123 456 782", "111222333"])
def test_parse_bsn_accepts(text):
    assert re.fullmatch(r"\d{9}", v.parse_bsn(text))


@pytest.mark.parametrize("text", ["123456789", "12345678", "abc", "", "1234567890"])
def test_parse_bsn_rejects(text):
    assert "9 cijfers" in invalid(v.parse_bsn, text)


def test_markup_and_letters():
    assert v.looks_like_markup("<script>alert(1)</script>")
    assert v.looks_like_markup('<img src=x onerror="alert(1)">')
    assert v.looks_like_markup("klik javascript:alert(1)")
    assert not v.looks_like_markup("3 < 4 en 5 > 2")
    assert not v.looks_like_markup("De lamp bij nummer 12 is kapot.")
    assert v.has_letters("é 😀")
    assert not v.has_letters("😀 12 !!")
    assert not v.has_letters("")
