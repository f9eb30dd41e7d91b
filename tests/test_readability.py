"""Readability of every text a citizen sees (Dutch, B1 level).

Checks the responses in ``domain.yml`` and, when ``flows.yml`` exists at the
repository root, every citizen-facing string in it. Placeholders are filled
with the real values of ``gemeente.yml`` (``bot.config.template_vars()`` plus
the product's ``link`` and ``kosten``), then URLs, e-mail addresses and phone
numbers are removed, because a reader does not read those as words.

Per message:
- Flesch-Douma reading ease >= 60 (textstat, language "nl");
- no sentence longer than 20 words (sentences end at . ! ? or a line break);
- the citizen is addressed as "u", never "je"/"jij"/"jouw";
- no jargon "zaak"/"zaken" (say "aanvraag").

About textstat 0.7.13 and Dutch (checked in its source,
``textstat/backend/utils/constants.py`` and ``backend/metrics/_flesch_reading_ease.py``):
with ``set_lang("nl")`` ``flesch_reading_ease`` computes
``206.835 - 0.93 * (words / sentences) - 77 * (syllables / words)``, which is
the Flesch-Douma formula (Douma 1960: 206.84 - 0.93 * ASL - 0.77 * syllables
per 100 words). Syllables come from the Dutch pyphen hyphenation dictionary.
``test_textstat_uses_douma_for_dutch`` re-checks this, so an upgrade that
changes the formula fails loudly. Note that textstat splits sentences only on
. ! ? and ignores "sentences" of at most two words; we therefore hand it the
sentences found by our own splitter, each ended with a full stop.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Iterator, List, NamedTuple, Optional

import pytest
import textstat
import yaml

from bot import config

DOMAIN_FILE = config.REPO_ROOT / "domain.yml"
FLOWS_FILE = config.REPO_ROOT / "flows.yml"

MIN_READING_EASE = 60.0
MAX_WORDS_PER_SENTENCE = 20
MAX_SENTENCES_PER_RESPONSE = 3

PRODUCT_INTENTS = (
    "paspoort_idkaart",
    "rijbewijs",
    "verhuizing_doorgeven",
    "huwelijk_partnerschap",
    "melding_openbare_ruimte",
    "grofvuil_ophalen",
    "afval_informatie",
    "parkeervergunning",
    "uittreksel_brp",
    "geboorte_aangifte",
    "overlijden_melden",
    "afspraak_maken",
    "openingstijden_contact",
    "belastingen",
    "zorg_ondersteuning",
    "digid_hulp",
    "zaak_status",
)
# Products for which the bot itself offers a guided flow right after the answer:
# the answer must not ask a question or show buttons of its own.
FLOW_PRODUCT_INTENTS = (
    "melding_openbare_ruimte",
    "grofvuil_ophalen",
    "verhuizing_doorgeven",
    "huwelijk_partnerschap",
    "afspraak_maken",
    "zaak_status",
)
CONVERSATION_INTENTS = (
    "greet", "goodbye", "thank", "affirm", "deny", "help", "stop",
    "human_handoff", "explain", "tevreden", "ontevreden",
)
KNOWN_INTENTS = frozenset(PRODUCT_INTENTS + CONVERSATION_INTENTS)

# Placeholders only the product answer of <intent> may use (gemeente.yml producten.<intent>).
PRODUCT_PLACEHOLDER_PREFIXES = ("link_", "kosten_")

# flows.yml: strings under these keys (at any depth, and everything nested
# below them) are shown to the citizen.
CITIZEN_TEXT_KEYS = frozenset({
    "vraag", "vragen", "uitleg", "fout", "fouten", "tekst", "intro", "klaar",
    "label", "titel", "knop", "opties", "keuzes", "bevestiging", "samenvatting",
    "hulp", "stop", "gestopt", "afgebroken", "annuleren", "opnieuw", "herhaal",
    "bericht", "teksten", "statussen", "knoppen", "controle_knoppen", "title",
})
# Option names (button-like): too short for a reading-ease score, so they get
# every check except reading ease.
LABEL_KEYS = frozenset({
    "label", "titel", "title", "knop", "knoppen", "controle_knoppen", "opties", "keuzes",
})
# Machine values that may sit below a citizen key; never shown as text.
MACHINE_KEYS = frozenset({
    "payload", "intent", "waarde", "value", "id", "slot", "type", "regex",
    "patroon", "actie", "action", "link", "url", "synoniemen", "wijzig_woorden",
})

PLACEHOLDER_RE = re.compile(r"\{([^{}\n]+?)\}")
EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
URL_RE = re.compile(
    r"(?:https?://|www\.)\S+"
    r"|\b[\w-]+(?:\.[\w-]+)*\.(?:nl|com|org|net|eu|info)\b(?:/\S*)?",
    re.IGNORECASE,
)
URL_ONLY_RE = re.compile(r"^\s*(?:https?://|www\.|mailto:|tel:)\S*\s*$", re.IGNORECASE)
# Phone numbers: at least 6 digits, optionally separated by single spaces or dashes,
# e.g. "14 0164", "0164-277000", "+31 164 277 000".
PHONE_RE = re.compile(r"(?:\+|\b)\d(?:[ -]?\d){5,}\b")
# "8.30", "17.00", "84,45": a separator between digits does not end a sentence.
NUMBER_SEPARATOR_RE = re.compile(r"(?<=\d)[.,:](?=\d)")
QUOTED_RE = re.compile(r"\"[^\"\n]*\"|“[^”\n]*”|„[^”“\n]*[”“]|‘[^’\n]*’")
SENTENCE_SPLIT_RE = re.compile(r"[.!?]+|\n")
WORD_RE = re.compile(r"\w[\w'’-]*")
INFORMAL_RE = re.compile(r"\b(je|jij|jou|jouw|jullie)\b", re.IGNORECASE)
JARGON_RE = re.compile(r"\b(zaak\w*|zaken)\b", re.IGNORECASE)
LINK_LINE_RE = re.compile(r"^\s*Meer informatie:\s*\{link_\w+\}\s*$", re.MULTILINE)


class Message(NamedTuple):
    ident: str
    text: str
    product: Optional[str]
    is_label: bool


# ---------------------------------------------------------------- loading

def _domain() -> Dict[str, Any]:
    with open(DOMAIN_FILE, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def _responses() -> Dict[str, List[Dict[str, Any]]]:
    return _domain().get("responses") or {}


def _product_of_response(name: str) -> Optional[str]:
    intent = name[len("utter_"):]
    return intent if intent in PRODUCT_INTENTS else None


def _domain_messages() -> Iterator[Message]:
    for name, variations in _responses().items():
        for index, variation in enumerate(variations or []):
            ident = name if len(variations) == 1 else f"{name}[{index}]"
            yield Message(ident, variation.get("text") or "", _product_of_response(name), False)
            for button in variation.get("buttons") or []:
                yield Message(f"{ident} button {button.get('title')!r}",
                              button.get("title") or "", None, True)


def _flow_strings(node: Any, path: List[str], citizen: bool, label: bool) -> Iterator[Message]:
    if isinstance(node, dict):
        for key, value in node.items():
            key = str(key)
            if key in MACHINE_KEYS:
                continue
            is_citizen_key = key in CITIZEN_TEXT_KEYS
            yield from _flow_strings(
                value, path + [key], citizen or is_citizen_key,
                label or (is_citizen_key and key in LABEL_KEYS),
            )
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _flow_strings(value, path + [str(index)], citizen, label)
    elif isinstance(node, str) and citizen and not URL_ONLY_RE.match(node):
        product = next((part for part in path if part in PRODUCT_INTENTS), None)
        yield Message("flows.yml:" + ".".join(path), node, product, label)


def _flow_messages() -> Iterator[Message]:
    if not FLOWS_FILE.exists():
        return
    with open(FLOWS_FILE, encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    yield from _flow_strings(data, [], False, False)


ALL_MESSAGES = list(_domain_messages()) + list(_flow_messages())
RESPONSE_NAMES = sorted(_responses())


# ---------------------------------------------------------------- text helpers

def fill_placeholders(text: str, product: Optional[str]) -> str:
    """Replace ``{name}`` with the gemeente.yml value, or "voorbeeld" when unknown."""
    values = dict(config.template_vars())

    def replace(match: re.Match) -> str:
        name = re.split(r"[:!]", match.group(1).strip(), maxsplit=1)[0]
        return str(values.get(name, "voorbeeld"))

    return PLACEHOLDER_RE.sub(replace, text)


def strip_non_words(text: str) -> str:
    """Remove what a reader does not read as words: e-mail, URLs, phone numbers."""
    text = EMAIL_RE.sub(" ", text)
    text = URL_RE.sub(" ", text)
    return PHONE_RE.sub(" ", text)


def sentences(text: str) -> List[str]:
    """Split into sentences on . ! ? and line breaks (not inside numbers or quotes)."""
    text = NUMBER_SEPARATOR_RE.sub("", text)
    text = QUOTED_RE.sub(lambda m: re.sub(r"[.!?]", "", m.group(0)), text)
    parts = (part.strip() for part in SENTENCE_SPLIT_RE.split(text))
    return [part for part in parts if WORD_RE.search(part)]


def words(sentence: str) -> List[str]:
    return WORD_RE.findall(sentence)


def reading_ease(text: str) -> float:
    """Flesch-Douma score of ``text`` (already filled and stripped)."""
    joined = " ".join(sentence.rstrip(":;,") + "." for sentence in sentences(text))
    return textstat.flesch_reading_ease(joined)


def prepared(message: Message) -> str:
    return strip_non_words(fill_placeholders(message.text, message.product))


@pytest.fixture(scope="module", autouse=True)
def dutch_textstat() -> Iterator[None]:
    textstat.set_lang("nl")
    yield
    textstat.set_lang("en_US")


# ---------------------------------------------------------------- tests

def test_domain_has_responses() -> None:
    assert len(RESPONSE_NAMES) >= len(PRODUCT_INTENTS)


def test_textstat_uses_douma_for_dutch() -> None:
    text = ("U kunt uw verhuizing online doorgeven met DigiD. "
            "Dat kan tot vijf dagen na de verhuizing. Het is gratis.")
    n_words = textstat.lexicon_count(text)
    n_sentences = textstat.sentence_count(text)
    n_syllables = textstat.syllable_count(text)
    douma = 206.835 - 0.93 * (n_words / n_sentences) - 77 * (n_syllables / n_words)
    assert n_sentences == 3
    assert textstat.flesch_reading_ease(text) == pytest.approx(douma)
    # The English constants (1.015, 84.6) would give a different score.
    english = 206.835 - 1.015 * (n_words / n_sentences) - 84.6 * (n_syllables / n_words)
    assert douma != pytest.approx(english)


def test_helpers_strip_and_split() -> None:
    text = strip_non_words(
        "Bel 14 0164 of mail info@bergenopzoom.nl. Kijk op https://www.bergenopzoom.nl/afval."
    )
    assert "0164" not in text and "@" not in text and "http" not in text
    assert sentences("Open van 8.30 tot 17.00 uur. Typ \"stop?\" om te stoppen!\nKlaar") == [
        "Open van 830 tot 1700 uur", "Typ \"stop\" om te stoppen", "Klaar",
    ]
    assert INFORMAL_RE.search("Heb je een vraag?") and not INFORMAL_RE.search("Jeugdzorg")
    assert JARGON_RE.search("Uw zaaknummer") and not JARGON_RE.search("een vuilniszak")


@pytest.mark.parametrize("intent", PRODUCT_INTENTS)
def test_product_intent_has_response(intent: str) -> None:
    responses = _responses()
    assert f"utter_{intent}" in responses, f"utter_{intent} is missing in domain.yml"
    product = config.gemeente()["producten"].get(intent) or {}
    assert product.get("link") and product.get("kosten"), (
        f"gemeente.yml producten.{intent} needs a link and kosten"
    )


@pytest.mark.parametrize("name", RESPONSE_NAMES)
def test_response_is_not_empty(name: str) -> None:
    variations = _responses()[name]
    assert variations, f"{name} has no variations"
    for variation in variations:
        assert (variation.get("text") or "").strip(), f"{name} has an empty text"
        for button in variation.get("buttons") or []:
            assert (button.get("title") or "").strip(), f"{name} has a button without title"


@pytest.mark.parametrize("name", RESPONSE_NAMES)
def test_response_placeholders_are_known(name: str) -> None:
    allowed = {k for k in config.template_vars() if not k.startswith(PRODUCT_PLACEHOLDER_PREFIXES)}
    product = _product_of_response(name)
    if product:
        allowed |= {f"{prefix}{product}" for prefix in PRODUCT_PLACEHOLDER_PREFIXES}
    for variation in _responses()[name]:
        text = variation.get("text") or ""
        used = set(PLACEHOLDER_RE.findall(text))
        assert used <= allowed, f"{name} uses unknown placeholders {sorted(used - allowed)}"
        leftover = PLACEHOLDER_RE.sub("", text)
        assert "{" not in leftover and "}" not in leftover, f"{name} has a literal curly brace"
        for placeholder in ("kcc_telefoon", "website", "afspraak_link"):
            value = config.template_vars()[placeholder]
            assert value not in text, f"{name} hardcodes {value!r}: use {{{placeholder}}}"


@pytest.mark.parametrize("name", RESPONSE_NAMES)
def test_response_buttons_use_known_intents(name: str) -> None:
    for variation in _responses()[name]:
        for button in variation.get("buttons") or []:
            match = re.fullmatch(r"/(\w+)", str(button.get("payload") or ""))
            assert match, f"{name}: payload {button.get('payload')!r} is not an intent payload"
            assert match.group(1) in KNOWN_INTENTS, f"{name}: unknown intent {match.group(1)}"


@pytest.mark.parametrize("name", RESPONSE_NAMES)
def test_response_has_at_most_three_sentences(name: str) -> None:
    # Counted on the template: {kosten} counts as one sentence, the closing
    # "Meer informatie: {link}" line is a link, not a sentence.
    for variation in _responses()[name]:
        text = LINK_LINE_RE.sub("", variation.get("text") or "")
        found = sentences(PLACEHOLDER_RE.sub("X", text))
        assert len(found) <= MAX_SENTENCES_PER_RESPONSE, f"{name}: {len(found)} sentences {found}"


@pytest.mark.parametrize("intent", FLOW_PRODUCT_INTENTS)
def test_flow_product_answer_leaves_the_next_step_to_the_bot(intent: str) -> None:
    for variation in _responses()[f"utter_{intent}"]:
        assert not variation.get("buttons"), f"utter_{intent} must not have buttons"
        text = fill_placeholders(variation.get("text") or "", intent).rstrip()
        assert not text.endswith("?"), f"utter_{intent} must not end with a question"


@pytest.mark.parametrize("message", ALL_MESSAGES, ids=[m.ident for m in ALL_MESSAGES])
def test_message_is_plain_dutch_b1(message: Message) -> None:
    text = prepared(message)
    problems = []
    for sentence in sentences(text):
        if len(words(sentence)) > MAX_WORDS_PER_SENTENCE:
            problems.append(f"sentence of {len(words(sentence))} words: {sentence!r}")
    informal = INFORMAL_RE.findall(text)
    if informal:
        problems.append(f"addresses the citizen informally: {informal} (use 'u')")
    jargon = JARGON_RE.findall(text)
    if jargon:
        problems.append(f"jargon {jargon} (say 'aanvraag')")
    if not message.is_label and words(text):
        score = reading_ease(text)
        if score < MIN_READING_EASE:
            problems.append(f"Flesch-Douma {score:.1f} < {MIN_READING_EASE}")
    assert not problems, f"{message.ident}: " + "; ".join(problems) + f"\n{text}"
