"""Parsers for what citizens type in the guided flows.

Every parser takes the raw chat text (any case, extra words allowed, such as
"mijn postcode is 4611ab") and returns a normalised value, or raises
:class:`Invalid` with a short Dutch B1 message for the citizen. Messages never
repeat the citizen's own text.

Canonical forms:

* postcode: ``"4611 AB"`` (python-stdnum).
* huisnummer: the number, then a single huisletter directly attached, then any
  other toevoeging after a hyphen, all upper case: ``"12"``, ``"12A"``,
  ``"12-2"``, ``"12-BIS"``, ``"12A-1"``.
* telefoonnummer: E.164, e.g. ``"+31612345678"``; show it to citizens with
  :func:`format_phone` (``"06 12345678"``).
* e-mailadres: as typed, with the domain in lower case (email-validator).
* weekdays in ``closed_weekdays`` use Python numbering: Monday 0 … Sunday 6.
"""
from __future__ import annotations

import datetime as dt
import difflib
import functools
import re
import unicodedata
from typing import Dict, Iterable, List, Optional, Sequence

import dateparser
import holidays
import phonenumbers
from email_validator import EmailNotValidError, validate_email
from stdnum.exceptions import ValidationError
from stdnum.nl import bsn as stdnum_bsn
from stdnum.nl import postcode as stdnum_postcode


class Invalid(ValueError):
    """The citizen's answer cannot be used; ``message`` tells them why (Dutch, B1)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# --------------------------------------------------------------------------
# Small text helpers

MONTHS = ["januari", "februari", "maart", "april", "mei", "juni", "juli",
          "augustus", "september", "oktober", "november", "december"]
WEEKDAYS = ["maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"]

_MONTH_ALIASES = {name: i + 1 for i, name in enumerate(MONTHS)}
_MONTH_ALIASES.update({"jan": 1, "feb": 2, "febr": 2, "mrt": 3, "apr": 4, "jun": 6,
                       "jul": 7, "aug": 8, "sep": 9, "sept": 9, "okt": 10, "nov": 11, "dec": 12})
# No two-letter weekday abbreviations: "zo" and "ma" are ordinary Dutch words.
_WEEKDAY_ALIASES = {name: i for i, name in enumerate(WEEKDAYS)}

_MARKUP_RE = re.compile(r"<\s*/?\s*[a-z!][^>]*>|javascript\s*:|\bon[a-z]+\s*=", re.I)


def has_letters(text: str) -> bool:
    """True when the text contains at least one letter (emoji and digits are not letters)."""
    return any(ch.isalpha() for ch in text or "")


def looks_like_markup(text: str) -> bool:
    """True when the text contains HTML tags, a javascript: URL or an event handler."""
    return bool(_MARKUP_RE.search(text or ""))


def _fold(text: str) -> str:
    """Lower case, without diacritics, punctuation replaced by spaces."""
    text = unicodedata.normalize("NFKD", text or "")
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = re.sub(r"[^\w\s]|_", " ", text)
    return " ".join(text.split())


def _collapse(text: str) -> str:
    return " ".join((text or "").split())


# --------------------------------------------------------------------------
# Postcode, huisnummer, address, location

_POSTCODE_MSG = "Dit is geen goede postcode. Een postcode heeft 4 cijfers en 2 letters, zoals 4611 AB."
_HUISNUMMER_MSG = "Dit is geen goed huisnummer. Noem het nummer van het huis, zoals 12 of 12A."
# Candidate postcodes: 4 digits, optional space or hyphen, 2 letters.
_POSTCODE_RE = re.compile(r"(?<![\w])(\d{4})(\s*-\s*|\s+)?([a-z]{2})(?![a-z])", re.I)
# Short Dutch words that follow a 4-digit number in a sentence ("lamp 1234 is kapot");
# when written in lower case after a space they are not read as postcode letters.
_NOT_POSTCODE_LETTERS = {"is", "in", "en", "op", "of", "te", "de", "ik", "na", "om", "al",
                         "nu", "zo", "ja", "je", "we", "ze", "er", "la", "bij"}
_TOEVOEGING_WORDS = {"bis", "hs", "bg", "bov", "rd", "zw", "ii", "iii"}
_HUISNUMMER_RE = re.compile(
    r"(?<![\w])(\d{1,6})(?![\d])"           # the number
    r"(?:\s*-\s*([a-z0-9]{1,4})(?![\w])"     # 12-2, 12-hs, 12 - a
    r"|([a-z]{1,4})(?![\w])"                 # 12a, 12bis
    r"|\s+([a-z]|" + "|".join(sorted(_TOEVOEGING_WORDS)) + r")(?![\w]))?",  # 12 a, 12 bis
    re.I,
)


def _find_postcode(text: str) -> Optional[re.Match]:
    candidates = list(_POSTCODE_RE.finditer(text or ""))
    for match in candidates:
        sep, letters = match.group(2), match.group(3)
        if sep and sep.strip() == "" and letters.islower() and letters in _NOT_POSTCODE_LETTERS:
            continue
        return match
    return None


def parse_postcode(text: str) -> str:
    """A Dutch postcode in the text, as ``"4611 AB"``."""
    match = _find_postcode(text)
    if not match:
        raise Invalid(_POSTCODE_MSG)
    try:
        return stdnum_postcode.validate(match.group(1) + match.group(3))
    except ValidationError:
        raise Invalid(_POSTCODE_MSG) from None


def _remove_span(text: str, match: Optional[re.Match]) -> str:
    if not match:
        return text
    return text[: match.start()] + " " + text[match.end():]


def _huisnummer_in(text: str) -> Optional[str]:
    match = _HUISNUMMER_RE.search(text or "")
    if not match:
        return None
    number = int(match.group(1))
    if not 1 <= number <= 99999:
        raise Invalid(_HUISNUMMER_MSG)
    addition = (match.group(2) or match.group(3) or match.group(4) or "").upper()
    if not addition:
        return str(number)
    if len(addition) == 1 and addition.isalpha() and not match.group(2):
        return f"{number}{addition}"
    return f"{number}-{addition}"


def parse_huisnummer(text: str) -> str:
    """A house number 1–99999 with optional addition; see the module doc for the form."""
    found = _huisnummer_in(_remove_span(text or "", _find_postcode(text or "")))
    if found is None:
        raise Invalid(_HUISNUMMER_MSG)
    return found


def parse_address(text: str) -> Dict[str, str]:
    """Postcode and huisnummer from one message: ``{"postcode", "huisnummer"}``."""
    match = _find_postcode(text or "")
    huisnummer = _huisnummer_in(_remove_span(text or "", match))
    if match is None and huisnummer is None:
        raise Invalid("Ik mis uw postcode en huisnummer. Noem ze allebei, zoals 4611 AB 12.")
    if match is None:
        raise Invalid("Ik mis uw postcode. Noem uw postcode en huisnummer, zoals 4611 AB 12.")
    postcode = parse_postcode(match.group(0))
    if huisnummer is None:
        raise Invalid("Ik mis uw huisnummer. Noem uw postcode en huisnummer, zoals 4611 AB 12.")
    return {"postcode": postcode, "huisnummer": huisnummer}


_STREET_SUFFIXES = ("straat", "laan", "weg", "plein", "singel", "gracht", "kade", "dijk",
                    "markt", "park", "hof", "pad", "steeg", "dreef", "baan", "veld",
                    "dam", "wal", "haven", "boulevard", "plantsoen")
_STREET_WORD_RE = re.compile(r"\b([A-Za-zÀ-ÿ'-]{3,}(?:" + "|".join(_STREET_SUFFIXES) + r"))\b", re.I)
_STREET_AFTER_ARTICLE_RE = re.compile(r"\b(?:op|in|aan|bij|langs)\s+(?:de|het)\s+([A-Z][\wÀ-ÿ'-]{2,})")
_LOCATION_FILLER = {"postcode", "huisnummer", "nummer", "adres", "mijn", "het", "is", "de", "op", "nr"}
_LOCATION_MSG = ("Ik begrijp niet waar het is. Noem de straat en iets dat in de buurt is, "
                 "zoals Kerkstraat bij de speeltuin.")


def parse_location(text: str, *, max_len: int = 500) -> Dict[str, Optional[str]]:
    """Where a melding is. Always returns the keys postcode, huisnummer, straat, omschrijving.

    With postcode and huisnummer, omschrijving is None unless the citizen added
    other words. Otherwise straat is the street name found (or None) and
    omschrijving the full text.
    """
    clean = _collapse(text)
    if len(clean) > max_len:
        raise Invalid(f"Uw tekst is te lang. Gebruik maximaal {max_len} tekens.")
    result: Dict[str, Optional[str]] = {"postcode": None, "huisnummer": None,
                                        "straat": None, "omschrijving": None}
    match = _find_postcode(clean)
    if match:
        try:
            result["postcode"] = parse_postcode(match.group(0))
        except Invalid:
            match = None
    rest = _remove_span(clean, match)
    if result["postcode"]:
        try:
            result["huisnummer"] = _huisnummer_in(rest)
        except Invalid:
            result["huisnummer"] = None
    words = re.findall(r"[^\W\d_]{3,}", rest)
    street = _STREET_WORD_RE.search(rest) or _STREET_AFTER_ARTICLE_RE.search(rest)
    if street:
        name = street.group(1)
        result["straat"] = name[0].upper() + name[1:]
    if result["postcode"] and result["huisnummer"]:
        if any(w.lower() not in _LOCATION_FILLER for w in words):
            result["omschrijving"] = clean
        return result
    if not words or looks_like_markup(clean):
        raise Invalid(_LOCATION_MSG)
    result["omschrijving"] = clean
    return result


# --------------------------------------------------------------------------
# Dates

_DATEPARSER_SETTINGS = {"PREFER_DATES_FROM": "future", "DATE_ORDER": "DMY"}
_NUMBER_WORDS = {"een": 1, "één": 1, "twee": 2, "drie": 3, "vier": 4, "vijf": 5, "zes": 6}
_MONTH_NAME_RE = re.compile(
    r"\b(\d{1,2})\s*(?:e|ste|de)?\s+(" + "|".join(sorted(_MONTH_ALIASES, key=len, reverse=True))
    + r")\b\.?(?:\s+(\d{4}))?")
_NUMERIC_DATE_RE = re.compile(r"(?<![\d:])(\d{1,2})[-/.](\d{1,2})(?:[-/.](\d{4}|\d{2}))?(?![\d:])")
_WEEKDAY_RE = re.compile(r"\b(" + "|".join(sorted(_WEEKDAY_ALIASES, key=len, reverse=True)) + r")\b")
_IN_DAYS_RE = re.compile(r"\bover\s+(\d{1,2}|" + "|".join(_NUMBER_WORDS) + r")\s+(dag|dagen|week|weken)\b")
_UNPARSEABLE_MSG = "Ik begrijp deze datum niet. Noem een dag en een maand, zoals 15 maart of volgende week dinsdag."


def format_date_nl(d: dt.date, *, weekday: bool = True) -> str:
    """``"dinsdag 8 december 2026"`` (or ``"8 december 2026"`` with weekday=False)."""
    text = f"{d.day} {MONTHS[d.month - 1]} {d.year}"
    return f"{WEEKDAYS[d.weekday()]} {text}" if weekday else text


def _dateparser(fragment: str, today: dt.date) -> Optional[dt.date]:
    settings = dict(_DATEPARSER_SETTINGS,
                    RELATIVE_BASE=dt.datetime.combine(today, dt.time()))
    parsed = dateparser.parse(fragment, languages=["nl"], settings=settings)
    return parsed.date() if parsed else None


def _explicit_date(norm: str, today: dt.date, nearest: bool = False) -> Optional[dt.date]:
    """A date written with day and month (and maybe year), or None.

    Without a year the date is taken from today onwards, or with ``nearest``
    the occurrence closest to today (so "24 november" can be last week)."""
    m = _MONTH_NAME_RE.search(norm)
    if m:
        day, month, year = int(m.group(1)), _MONTH_ALIASES[m.group(2)], m.group(3)
        fragment = f"{day} {MONTHS[month - 1]}" + (f" {year}" if year else "")
    else:
        m = next((c for c in _NUMERIC_DATE_RE.finditer(norm)
                  if 1 <= int(c.group(1)) <= 31 and 1 <= int(c.group(2)) <= 12), None)
        if not m:
            return None
        day, month, year = int(m.group(1)), int(m.group(2)), m.group(3)
        fragment = f"{day}-{month}" + (f"-{year}" if year else "")
    found = _dateparser(fragment, today)
    if found is None:
        raise Invalid(_UNPARSEABLE_MSG)
    if not year and (found.month, found.day) == (today.month, today.day):
        found = today  # "30 november" said on 30 November means today
    if not year and nearest and found > today:
        try:
            earlier = found.replace(year=found.year - 1)
        except ValueError:  # 29 February
            earlier = None
        if earlier and today - earlier < found - today:
            found = earlier
    return found


def _resolve_date(text: str, today: dt.date, nearest: bool = False) -> dt.date:
    """Turn Dutch date words into a date, without any business rules."""
    norm = " ".join((text or "").lower().split())
    words = set(re.findall(r"[a-z]+", norm))
    for word, offset in (("overmorgen", 2), ("eergisteren", -2), ("gisteren", -1)):
        if word in words:
            return today + dt.timedelta(days=offset)
    explicit = _explicit_date(norm, today, nearest)
    weekday_match = _WEEKDAY_RE.search(norm)
    if explicit:
        said = weekday_match and _WEEKDAY_ALIASES[weekday_match.group(1)]
        if weekday_match and said != explicit.weekday():
            raise Invalid(f"{format_date_nl(explicit, weekday=False)} is een {WEEKDAYS[explicit.weekday()]}, "
                          f"geen {WEEKDAYS[said]}. Noem de datum nog een keer, zoals {format_date_nl(explicit)}.")
        return explicit
    if weekday_match:
        target = _WEEKDAY_ALIASES[weekday_match.group(1)]
        if re.search(r"\bvolgende\s+week\b", norm):
            next_monday = today + dt.timedelta(days=7 - today.weekday())
            return next_monday + dt.timedelta(days=target)
        if re.search(r"\bvorige\s+week\b", norm):
            last_monday = today - dt.timedelta(days=today.weekday() + 7)
            return last_monday + dt.timedelta(days=target)
        if re.search(r"\b(?:afgelopen|vorige|jongstleden|jl)\b", norm):
            return today - dt.timedelta(days=(today.weekday() - target - 1) % 7 + 1)
        return today + dt.timedelta(days=(target - today.weekday() - 1) % 7 + 1)
    if "morgen" in words:
        return today + dt.timedelta(days=1)
    if "vandaag" in words:
        return today
    m = _IN_DAYS_RE.search(norm)
    if m:
        amount = _NUMBER_WORDS.get(m.group(1)) or int(m.group(1))
        found = _dateparser(f"over {amount} {m.group(2)}", today)
        if found:
            return found
    raise Invalid(_UNPARSEABLE_MSG)


@functools.lru_cache(maxsize=16)
def _holidays_nl(year: int) -> holidays.HolidayBase:
    return holidays.NL(years=year, language="nl")


def _holiday_name(d: dt.date) -> Optional[str]:
    """The Dutch name of the NL public holiday on d, or None."""
    return _holidays_nl(d.year).get(d)


def _is_open(d: dt.date, closed_weekdays: Iterable[int], skip_holidays: bool) -> bool:
    return d.weekday() not in closed_weekdays and not (skip_holidays and _holiday_name(d))


def _suggestion(start: dt.date, closed_weekdays, skip_holidays, max_date) -> str:
    """`, zoals <first open day from start>` or "" when there is none in range."""
    for offset in range(0, 15):
        candidate = start + dt.timedelta(days=offset)
        if max_date and candidate > max_date:
            break
        if _is_open(candidate, closed_weekdays, skip_holidays):
            return f", zoals {format_date_nl(candidate)}"
    return ""


def parse_date(text: str, *, today: dt.date, min_date: Optional[dt.date] = None,
               max_date: Optional[dt.date] = None, closed_weekdays: Sequence[int] = (6,),
               skip_holidays: bool = True) -> dt.date:
    """A Dutch date from today onwards (or from min_date), not after max_date,
    not on a closed weekday and (with skip_holidays) not on an NL public holiday."""
    d = _resolve_date(text, today)
    if d < today:
        hint = _suggestion(max(today, min_date or today), closed_weekdays, skip_holidays, max_date)
        raise Invalid(f"Deze datum is al voorbij. Kies een datum in de toekomst{hint}.")
    if min_date and d < min_date:
        raise Invalid(f"Deze datum is te vroeg. De eerste datum die kan is {format_date_nl(min_date)}.")
    if max_date and d > max_date:
        raise Invalid(f"Deze datum is te ver weg. De laatste datum die kan is {format_date_nl(max_date)}.")
    next_day = d + dt.timedelta(days=1)
    if d.weekday() in closed_weekdays:
        hint = _suggestion(next_day, closed_weekdays, skip_holidays, max_date)
        raise Invalid(f"Op {WEEKDAYS[d.weekday()]} kan dit niet. Kies een andere dag{hint}.")
    name = _holiday_name(d) if skip_holidays else None
    if name:
        hint = _suggestion(next_day, closed_weekdays, skip_holidays, max_date)
        raise Invalid(f"{format_date_nl(d, weekday=False)} is het {name}, dan kan dit niet. "
                      f"Kies een andere dag{hint}.")
    return d


def parse_move_date(text: str, *, today: dt.date, max_ahead: int = 28, max_back: int = 5) -> dt.date:
    """The date of a move (BRP): at most max_ahead days ahead and max_back days back.
    Sundays and public holidays are allowed."""
    d = _resolve_date(text, today, nearest=True)
    first, last = today - dt.timedelta(days=max_back), today + dt.timedelta(days=max_ahead)
    if d < first:
        raise Invalid(f"Hier kunt u een verhuizing doorgeven vanaf {format_date_nl(first)}. "
                      "Verhuisde u eerder? Neem dan contact op met de gemeente.")
    if d > last:
        raise Invalid(f"U kunt een verhuizing tot {_period_nl(max_ahead)} van tevoren doorgeven. "
                      f"De laatste datum die kan is {format_date_nl(last)}.")
    return d


def _period_nl(days: int) -> str:
    if days % 7 == 0:
        weeks = days // 7
        return "1 week" if weeks == 1 else f"{weeks} weken"
    return "1 dag" if days == 1 else f"{days} dagen"


def collection_days(postcode: str, *, today: dt.date, config: dict,
                    count: Optional[int] = None) -> List[dt.date]:
    """The next grofvuil collection days after today for the postcode's district.

    ``config`` is the ``grofvuil`` section of gemeente.yml. Districts are the 4
    digits of the postcode (``ophaaldagen.wijken``), else ``ophaaldagen.standaard``.
    Public holidays are skipped; days lie within ``vooruit_dagen``. ``count``
    defaults to ``aantal_keuzes`` from the config, else 4.
    """
    digits = parse_postcode(postcode)[:4]
    ophaaldagen = config.get("ophaaldagen", {})
    wijken = {str(k): v for k, v in (ophaaldagen.get("wijken") or {}).items()}
    names = wijken.get(digits) or ophaaldagen.get("standaard") or []
    weekdays = {_WEEKDAY_ALIASES[str(n).strip().lower()] for n in names}
    if count is None:
        count = int(config.get("aantal_keuzes", 4))
    days: List[dt.date] = []
    for offset in range(1, int(config.get("vooruit_dagen", 42)) + 1):
        d = today + dt.timedelta(days=offset)
        if d.weekday() in weekdays and not _holiday_name(d):
            days.append(d)
            if len(days) == count:
                break
    return days


# --------------------------------------------------------------------------
# Contact details, names, free text

_PHONE_MSG = "Dit is geen goed telefoonnummer. Een telefoonnummer heeft 10 cijfers, zoals 06 12345678."
_EMAIL_MSG = "Dit is geen goed e-mailadres. Een e-mailadres ziet eruit als naam@voorbeeld.nl."


def parse_phone(text: str) -> str:
    """A phone number (Dutch or international) in E.164 form, e.g. ``"+31612345678"``."""
    for match in phonenumbers.PhoneNumberMatcher(text or "", "NL"):
        if phonenumbers.is_valid_number(match.number):
            return phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
    raise Invalid(_PHONE_MSG)


def format_phone(e164: str) -> str:
    """Show a stored number: national form for Dutch numbers ("06 12345678"), else international."""
    number = phonenumbers.parse(e164, "NL")
    fmt = (phonenumbers.PhoneNumberFormat.NATIONAL if number.country_code == 31
           else phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return phonenumbers.format_number(number, fmt)


def parse_email(text: str) -> str:
    """An e-mail address in the text, with the domain in lower case."""
    match = re.search(r"[^\s<>(),;:\"']+@[^\s<>(),;:\"']+", text or "")
    if not match:
        raise Invalid(_EMAIL_MSG)
    candidate = match.group(0).rstrip(".!?")
    try:
        return validate_email(candidate, check_deliverability=False).normalized
    except EmailNotValidError:
        raise Invalid(_EMAIL_MSG) from None


# A refusal starts with one of these (after folding), e.g. "nee dank u", "liever niet".
_REFUSAL_RE = re.compile(r"^(?:geen|nee|neen|liever niet|hoeft niet|dat hoeft niet|niet nodig"
                         r"|wil ik niet|ik wil geen|ik wil niet|ik geef (?:die |dat )?liever niet)\b")


def parse_contact(text: str, *, optional: bool = True) -> Dict[str, str]:
    """``{"email": ...}``, ``{"telefoon": ...}`` (both when both are given) or ``{}``
    when the citizen does not want to give one and ``optional`` is True."""
    result: Dict[str, str] = {}
    if "@" in (text or ""):
        result["email"] = parse_email(text)
    without_email = re.sub(r"\S+@\S+", " ", text or "")
    if re.search(r"\d{3}", without_email):
        try:
            result["telefoon"] = parse_phone(without_email)
        except Invalid:
            if not result:
                raise
    if result:
        return result
    if _REFUSAL_RE.match(_fold(text)):
        if optional:
            return {}
        raise Invalid("Wij hebben een e-mailadres of telefoonnummer nodig. "
                      "Geef er een, zoals naam@voorbeeld.nl of 06 12345678.")
    tail = " Wilt u dat niet? Zeg dan: geen." if optional else ""
    raise Invalid("Geef een e-mailadres of telefoonnummer, zoals naam@voorbeeld.nl of 06 12345678." + tail)


_NAME_PREFIX_RE = re.compile(r"^\s*(?:mijn\s+naam\s+is|ik\s+heet|ik\s+ben|naam\s*:|dit\s+is)\s*", re.I)
_NAME_MSG = "Dit lijkt geen naam. Schrijf uw naam met letters, zoals Jan de Vries."


def parse_name(text: str) -> str:
    """A person's name, 2–100 characters: letters, spaces, hyphens, apostrophes, dots."""
    name = _collapse(_NAME_PREFIX_RE.sub("", text or "")).strip(" ,")
    name = name.replace("’", "'")
    if not 2 <= len(name) <= 100 or sum(ch.isalpha() for ch in name) < 2:
        raise Invalid(_NAME_MSG)
    if not all(ch.isalpha() or ch in " -'." for ch in name):
        raise Invalid(_NAME_MSG)
    return name


def parse_free_text(text: str, *, min_len: int = 3, max_len: int = 1000,
                    example: Optional[str] = None) -> str:
    """Trimmed text with whitespace collapsed, min_len–max_len characters, with letters.
    ``example`` (a good answer) is added to the messages when given."""
    clean = _collapse(text)
    hint = f" Bijvoorbeeld: {example}." if example else ""
    if len(clean) > max_len:
        raise Invalid(f"Uw tekst is te lang. Gebruik maximaal {max_len} tekens.")
    if not has_letters(clean):
        raise Invalid("Ik kan dit niet lezen. Schrijf het in woorden." + hint)
    if len(clean) < min_len:
        raise Invalid("Uw tekst is te kort. Schrijf het in een paar woorden." + hint)
    return clean


# --------------------------------------------------------------------------
# Choices and BSN


def match_choice(text: str, choices: Dict[str, List[str]]) -> str:
    """The key of ``choices`` (key -> [label, synonyms…]) the citizen means.

    Tries in order: a 1-based number, exact key/label/synonym, a term contained
    as whole words (longest wins), then a close typo. Raises Invalid when
    nothing matches or two keys match equally well.
    """
    keys = list(choices)
    first_label = choices[keys[0]][0] if keys and choices[keys[0]] else "1"
    folded = _fold(text)
    number = re.fullmatch(r"(?:nummer |optie |keuze )?(\d{1,2})", folded)
    if number:
        index = int(number.group(1))
        if 1 <= index <= len(keys):
            return keys[index - 1]
    terms = {key: {_fold(key.replace("_", " "))} | {_fold(t) for t in choices[key] if _fold(t)}
             for key in keys}

    def pick(scores: Dict[str, float]) -> Optional[str]:
        if not scores:
            return None
        best = max(scores.values())
        winners = [k for k, s in scores.items() if s == best]
        if len(winners) > 1:
            labels = " of ".join(choices[k][0] if choices[k] else k for k in winners[:3])
            raise Invalid(f"Bedoelt u {labels}? Typ het nummer of de naam van uw keuze.")
        return winners[0]

    exact = [k for k in keys if folded in terms[k]]
    if len(exact) == 1:
        return exact[0]
    # Terms found as whole words; a hit inside a longer hit of another key
    # ("afval" inside "grof afval") does not count.
    padded = f" {folded} "
    spans = {}
    for k in keys:
        hits = [(m.start(), m.end()) for t in terms[k] for m in re.finditer(rf"(?<= ){re.escape(t)}(?= )", padded)]
        if hits:
            spans[k] = max(hits, key=lambda span: span[1] - span[0])
    contained = {k: 1.0 for k, (a, b) in spans.items()
                 if not any(o != k and c <= a and b <= d and (d - c) > (b - a) for o, (c, d) in spans.items())}
    found = pick(contained)
    if found:
        return found
    words = folded.split()
    fuzzy: Dict[str, float] = {}
    for k in keys:
        for term in terms[k]:
            size = len(term.split())
            grams = {" ".join(words[i:i + size]) for i in range(max(len(words) - size + 1, 1))}
            for gram in grams | {folded}:
                ratio = difflib.SequenceMatcher(None, term, gram).ratio()
                if ratio >= 0.8:
                    fuzzy[k] = max(fuzzy.get(k, 0.0), round(ratio, 3))
    found = pick(fuzzy)
    if found:
        return found
    raise Invalid(f"Ik weet niet welke keuze u bedoelt. Typ het nummer of de naam, zoals 1 of {first_label}.")


def parse_bsn(text: str) -> str:
    """A burgerservicenummer (9 digits, 11-check), returned as 9 digits."""
    for match in re.finditer(r"(?<!\d)\d[\d .-]{6,12}\d(?!\d)", text or ""):
        candidate = re.sub(r"[ .-]", "", match.group(0))
        if len(candidate) in (8, 9) and stdnum_bsn.is_valid(candidate):
            return stdnum_bsn.compact(candidate).zfill(9)
    raise Invalid("Dit is geen goed burgerservicenummer (BSN). "
                  "Een BSN heeft 9 cijfers en staat op uw paspoort of ID-kaart.")
