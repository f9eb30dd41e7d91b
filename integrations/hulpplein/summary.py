"""What the Digitaal Hulpplein page needs from the action server.

* :func:`volunteer_consent`: the visitor's answer to "Mag de vrijwilliger u
  helpen met invullen?", sent by the page as message metadata
  ``toestemming_vrijwilliger`` (true/false) and recorded on the case.
* :func:`print_summary`: the custom payload for the print view after filing:
  case number, what was asked, what happens next and the KCC number. It never
  holds a BSN, and phone numbers keep only their last 2 digits (the paper may
  be left on the library printer).

Light on purpose (no Rasa imports): the action server imports it.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional

import phonenumbers
from stdnum.nl import bsn as stdnum_bsn

from bot import config

CONSENT_KEY = "toestemming_vrijwilliger"
SUMMARY_TYPE = "hulpplein_samenvatting"
BSN_REMOVED = "[BSN weggelaten]"

# Nine digits, maybe grouped with spaces, dots or dashes (123.456.782).
_NINE_DIGITS = re.compile(r"(?<![\w])\d(?:[ .-]?\d){8}(?![\w])")
# "BSN: 123456789" even when the number fails the 11-test.
_BSN_LABELLED = re.compile(r"(?i)\b(bsn|burgerservicenummer)(\s*(?:nummer)?\s*[:=]?\s*)\d(?:[ .-]?\d){7,8}\b")
# Any other long run of digits (at least 9), e.g. a phone number written oddly.
_LONG_DIGITS = re.compile(r"(?<![\w])\+?\d(?:[ .\-/]?\d){8,}(?![\w])")
_EMAIL = re.compile(r"([\w.+-])([\w.+-]*)(@[\w-]+(?:\.[\w-]+)+)")


def volunteer_consent(events: Iterable[Mapping[str, Any]]) -> Optional[bool]:
    """The newest ``toestemming_vrijwilliger`` (a bool) in the user messages' metadata, or None."""
    for event in reversed(list(events)):
        if event.get("event") == "user":
            value = (event.get("metadata") or {}).get(CONSENT_KEY)
            if isinstance(value, bool):
                return value
    return None


def mask_digits(raw: str, keep: int = 2) -> str:
    """Only the last ``keep`` digits stay: "06 12345678" -> "********78"."""
    digits = re.sub(r"\D", "", raw)
    return "*" * max(0, len(digits) - keep) + digits[-keep:]


def _remove_bsn(text: str) -> str:
    text = _BSN_LABELLED.sub(lambda m: m.group(1) + m.group(2) + BSN_REMOVED, text)

    def replace(match: re.Match) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        return BSN_REMOVED if stdnum_bsn.is_valid(digits) else match.group(0)

    return _NINE_DIGITS.sub(replace, text)


def _mask_phones(text: str) -> str:
    matches = list(phonenumbers.PhoneNumberMatcher(text, "NL", leniency=phonenumbers.Leniency.VALID))
    for match in reversed(matches):
        text = text[:match.start] + mask_digits(match.raw_string) + text[match.end:]
    return _LONG_DIGITS.sub(lambda m: mask_digits(m.group(0)), text)


def _mask_emails(text: str) -> str:
    return _EMAIL.sub(lambda m: m.group(1) + "***" + m.group(3), text)


def safe_for_paper(text: str) -> str:
    """Text for the printed summary: no BSN, phone numbers down to their last 2
    digits, e-mail addresses shortened to the first letter and the domain."""
    return _mask_emails(_mask_phones(_remove_bsn(str(text or ""))))


def print_summary(case: Any, gemeente: Optional[Mapping[str, Any]] = None,
                  today: Optional[dt.date] = None) -> Dict[str, Any]:
    """The ``hulpplein_samenvatting`` payload for the print view of a filed case."""
    from bot.validators import format_date_nl  # the action server has it loaded already

    g = gemeente if gemeente is not None else config.gemeente()
    zaaktype = (g.get("zaaktypen") or {}).get(case.zaaktype) or {}
    kcc = g.get("kcc") or {}
    data = case.data or {}
    asked: List[str] = [safe_for_paper(line) for line in str(data.get("samenvatting") or "").splitlines()
                        if line.strip()]
    next_steps = [str(zaaktype[key]) for key in ("behandeltermijn", "vervolg") if zaaktype.get(key)]
    payload: Dict[str, Any] = {
        "type": SUMMARY_TYPE,
        "zaaknummer": case.zaaknummer,
        "onderwerp": str(zaaktype.get("omschrijving") or case.zaaktype),
        "gevraagd": asked,
        "vervolg": next_steps,
        "datum": format_date_nl(today or dt.date.today()),
        "kcc": {"telefoon": str(kcc.get("telefoon") or ""),
                "openingstijden": str(kcc.get("openingstijden_tekst") or "")},
        "gemeente": str((g.get("gemeente") or {}).get("naam") or ""),
    }
    if getattr(case, "booking_code", None):
        payload["code"] = case.booking_code
    if data.get("postcode"):
        payload["status_uitleg"] = "Met dit nummer en uw postcode kunt u later vragen hoe het ermee staat."
    return payload
