"""Find and mask personal data in text: BSN, e-mail, phone, IBAN, postcode with
house number, identity tokens, and known personal values such as names.

Pattern-based masking is used for logs and for everything the tracker store
writes. Names cannot be recognised by a pattern; the tracker store passes the
names it knows from the conversation as ``values`` (see :mod:`bot.privacy.store`).

The replacement words are Dutch because a citizen may see them when the chat
history is restored ("[e-mailadres]").
"""
from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Collection, Dict, Iterable, List, Mapping, Optional

from stdnum import iban as stdnum_iban
from stdnum.nl import bsn as stdnum_bsn

MASKS: Dict[str, str] = {
    "token": "[token]",
    "email": "[e-mailadres]",
    "iban": "[iban]",
    "phone": "[telefoonnummer]",
    "address": "[adres]",
    "bsn": "[bsn]",
    "name": "[naam]",
    "personal": "[persoonsgegeven]",
}

# A signed JWT (header.payload.signature); the identity token carries the BSN.
_TOKEN = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}(?![\w-])")
# IBAN: two letters, two check digits, 11-30 characters, single spaces allowed.
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}")
_IBAN_BODY = re.compile(r"(?:[ ]?[A-Za-z0-9]){11,30}")
_NL_IBAN_SHAPE = re.compile(r"^NL\d{2}[A-Z]{4}\d{10}$")
_PHONE = re.compile(
    r"(?<![\w+])(?:"
    r"(?:\+|00)\s?31[\s-]?(?:\(0\)[\s-]?)?[1-9](?:[\s-]?\d){8}"  # +31 6 12345678, 0031...
    r"|\+[1-9](?:[\s-]?\d){7,14}"  # other international numbers
    r"|\(0\d{1,3}\)[\s-]?\d(?:[\s-]?\d){5,7}"  # (013) 123 45 67
    r"|0[1-9](?:[\s-]?\d){8}"  # 06 12345678, 013-1234567, 0612345678
    r")(?!\w)")
_POSTCODE = r"[1-9]\d{3}\s?(?!sa|sd|ss|SA|SD|SS)[A-Za-z]{2}(?![A-Za-z])"
_HUISNUMMER = r"\d{1,5}(?:\s?-?\s?[A-Za-z](?![A-Za-z])|\s?-\s?\d{1,4})?"
_ADDRESS = re.compile(
    rf"(?<![\w])(?:{_POSTCODE}[\s,]*(?:(?:nr|nummer|huisnummer)\.?\s*)?{_HUISNUMMER}"
    rf"|{_HUISNUMMER}(?:\s*,\s*|\s+){_POSTCODE})(?!\w)")
# Nine digits, also written as 1234.56.789 or 123 456 789; checked with the 11-test.
_BSN = re.compile(r"(?<![\w.])(?:\d{9}|\d{4}\.\d{2}\.\d{3}|\d{3}[ .]\d{3}[ .]\d{3})(?![\w])")


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int
    text: str


_DUTCH_NUMBER = re.compile(r"^(?:\+|00)?31(?:\(0\)|0)?(\d{9})$")


def normalise(value: str) -> str:
    """Compare form of a finding: lower case, without spaces, dots, dashes and brackets;
    Dutch phone numbers in national form (+31 6 1234 5678 -> 0612345678)."""
    compact = re.sub(r"[\s.\-]", "", value).lower()
    number = _DUTCH_NUMBER.match(compact)
    if number:
        return "0" + number.group(1)
    return compact.replace("(", "").replace(")", "")


def _valid_iban(candidate: str) -> bool:
    compact = candidate.replace(" ", "").upper()
    return stdnum_iban.is_valid(compact) or bool(_NL_IBAN_SHAPE.match(compact))


class _IbanPattern:
    """Finds IBANs; the longest prefix that passes the check wins ("NL91 ABNA ... 00 en")."""

    def finditer(self, text: str):
        position = 0
        while True:
            start = _IBAN_START.search(text, position)
            if not start:
                return
            body = _IBAN_BODY.match(text, start.end())
            found = None
            if body:
                chars = body.group(0)
                # Candidate ends: after every character, longest first.
                ends = [i + 1 for i, ch in enumerate(chars) if ch != " "]
                for end in reversed(ends):
                    stop = start.end() + end
                    if stop < len(text) and text[stop].isalnum():
                        continue
                    if _valid_iban(text[start.start():stop]):
                        found = _Match(start.start(), stop, text[start.start():stop])
                        break
            if found:
                yield found
                position = found.end()
            else:
                position = start.start() + 1


@dataclass(frozen=True)
class _Match:
    s: int
    e: int
    value: str

    def span(self):
        return self.s, self.e

    def group(self, _index: int = 0) -> str:
        return self.value

    def end(self) -> int:
        return self.e


# Two-letter Dutch words that look like postcode letters in "in 2026 om 10 uur".
_WORD_LETTERS = {"om", "en", "of", "in", "op", "te", "is", "de", "ik", "je", "ze", "we", "na", "al", "er",
                 "nu", "zo", "uw", "ja", "nee", "of", "as", "an", "at", "on", "to", "or", "pm", "am", "uur"}
_POSTCODE_PARTS = re.compile(r"[1-9]\d{3}(\s?)([A-Za-z]{2})")


def _valid_address(candidate: str) -> bool:
    """Reject "2026 om 10": lower-case word letters after a space are not a postcode."""
    match = _POSTCODE_PARTS.search(candidate)
    if not match:
        return False
    space, letters = match.groups()
    return not (space and letters.islower() and letters in _WORD_LETTERS)


def _valid_bsn(candidate: str) -> bool:
    return stdnum_bsn.is_valid(re.sub(r"\D", "", candidate))


_DETECTORS: List[tuple] = [
    ("token", _TOKEN, None),
    ("email", _EMAIL, None),
    ("iban", _IbanPattern(), None),
    ("phone", _PHONE, None),
    ("bsn", _BSN, _valid_bsn),
    ("address", _ADDRESS, _valid_address),
]


def find_pii(text: str) -> List[Finding]:
    """Every piece of personal data a pattern recognises, in order, without overlaps."""
    if not text:
        return []
    findings: List[Finding] = []
    taken: List[tuple] = []
    for kind, pattern, check in _DETECTORS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(start < t_end and end > t_start for t_start, t_end in taken):
                continue
            if check is not None and not check(match.group(0)):
                continue
            findings.append(Finding(kind, start, end, match.group(0)))
            taken.append((start, end))
    return sorted(findings, key=lambda f: f.start)


def contains_pii(text: str) -> bool:
    return bool(find_pii(text))


@functools.lru_cache(maxsize=64)
def _values_pattern(values: tuple) -> Optional[re.Pattern]:
    if not values:
        return None
    ordered = sorted(values, key=len, reverse=True)
    alternatives = "|".join(re.escape(v) for v in ordered)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def mask_text(text: str, *, keep: Collection[str] = (), values: Optional[Mapping[str, str]] = None) -> str:
    """``text`` with personal data replaced by a word in brackets.

    ``keep``: normalised findings that are public (the municipality's own phone
    number and address) and stay as they are. ``values``: known personal values
    (a name from a slot) mapped to their kind; they are masked wherever they occur.
    """
    if not isinstance(text, str) or not text:
        return text
    out: List[str] = []
    last = 0
    for finding in find_pii(text):
        if keep and normalise(finding.text) in keep:
            continue
        out.append(text[last:finding.start])
        out.append(MASKS[finding.kind])
        last = finding.end
    out.append(text[last:])
    masked = "".join(out)
    if values:
        usable = {v.strip(): k for v, k in values.items() if isinstance(v, str) and len(v.strip()) >= 2}
        pattern = _values_pattern(tuple(sorted(usable)))
        if pattern is not None:
            lowered = {v.lower(): k for v, k in usable.items()}
            masked = pattern.sub(lambda m: MASKS.get(lowered.get(m.group(0).lower(), "personal"),
                                                     MASKS["personal"]), masked)
    return masked


def mask_value(value: Any, mask: Optional[Callable[[str], str]] = None, *,
               skip_keys: Collection[str] = ()) -> Any:
    """Mask every string inside dicts and lists (a copy; the input is not changed)."""
    mask = mask or mask_text
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: (v if k in skip_keys else mask_value(v, mask, skip_keys=skip_keys)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_value(v, mask, skip_keys=skip_keys) for v in value]
    return value


def _strings(node: Any) -> Iterable[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _strings(value)


# Content files whose examples and municipal contact data are public.
PUBLIC_CONTENT = ("gemeente.yml", "flows.yml", "domain.yml", "bot/validators.py")


@functools.lru_cache(maxsize=1)
def public_findings() -> frozenset:
    """Normalised findings in the content files: the municipality's own phone number,
    e-mail address and visiting address, and the examples in questions ("4611 AB 12").
    They may stay in bot messages and template slots; they are not a citizen's data."""
    import yaml

    from bot import config

    found = set()
    files = {name: config.REPO_ROOT / name for name in PUBLIC_CONTENT}

    if os.environ.get("GEMEENTE_FILE"):
        files["gemeente.yml"] = Path(os.environ["GEMEENTE_FILE"])
    if os.environ.get("FLOWS_FILE"):
        files["flows.yml"] = Path(os.environ["FLOWS_FILE"])
    for name, path in files.items():
        try:
            raw = path.read_text(encoding="utf-8")
        except OSError:
            continue
        texts: Iterable[str]
        if name.endswith(".yml"):
            try:
                texts = list(_strings(yaml.safe_load(raw)))
            except yaml.YAMLError:
                texts = [raw]
        else:
            texts = [raw]
        for text in texts:
            found.update(normalise(f.text) for f in find_pii(text))
    return frozenset(found)
