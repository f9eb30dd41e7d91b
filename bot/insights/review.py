"""Assign an unrecognised message to an intent: a training example in
``data/nlu/review.yml`` (Rasa NLU format, version "3.1"), picked up by the next
training run (``scripts/model.py`` fingerprints everything under ``data/``).

Rules, so the file always passes ``rasa data validate --fail-on-warnings``:

* the text is masked again (:func:`bot.insights.extract.mask_message`), so no
  personal data reaches the training data, whatever an editor typed;
* placeholders stay in brackets ("[e-mailadres]"), but never in a form Rasa
  reads as an entity annotation (``[x](y)``, ``[x]{...}``, ``[x][...]``);
* the intent must be one of the domain's intents;
* an example that already exists (same text, any NLU file, case and spaces
  ignored) is not added again; under another intent it is refused, because
  Rasa warns about one example with two intents.

The file is rewritten whole (sorted by intent), atomically, under a file lock.
Its location: ``INSIGHTS_REVIEW_FILE``, default ``data/nlu/review.yml``.
"""
from __future__ import annotations

import fcntl
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Set

import yaml

from bot import config
from bot.insights.extract import mask_message

MIN_CHARS = 2
MAX_CHARS = 300
HEADER = (
    "# Training examples assigned by editors on the insights page (/inzichten).\n"
    "# Texts are masked: no personal data. Written by bot/insights/review.py;\n"
    "# you may edit or remove examples by hand. Used by the next training run.\n"
)
_ENTITY_LIKE = re.compile(r"\]\s*[\(\{\[]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EXAMPLE_LINE = re.compile(r"^\s*-\s?(.*)$")
_ENTITY_ANNOTATION = re.compile(r"\[([^\]]+?)\](?:\([^)]*\)|\{[^}]*\})")


class AssignError(ValueError):
    """The example cannot be added; the message is Dutch, for the editor.

    ``code``: intent | kort | lang | dubbel; ``intents``: for dubbel, where it already is."""

    MESSAGES = {
        "intent": "Kies een bestaand onderwerp.",
        "kort": "De tekst is te kort of bevat geen woorden.",
        "lang": f"De tekst is te lang. Gebruik hooguit {MAX_CHARS} tekens.",
        "dubbel": "Dit voorbeeld staat al bij een ander onderwerp:",
    }

    def __init__(self, code: str, intents: Iterable[str] = ()) -> None:
        self.code = code
        self.intents = sorted(intents)
        message = self.MESSAGES[code]
        if self.intents:
            message += " " + ", ".join(self.intents) + "."
        super().__init__(message)


@dataclass
class AssignResult:
    text: str
    intent: str
    added: bool          # False: the same example was already there
    path: Path


def review_file() -> Path:
    return Path(os.environ.get("INSIGHTS_REVIEW_FILE") or config.REPO_ROOT / "data" / "nlu" / "review.yml")


def domain_intents(domain_path: Optional[Path] = None) -> List[str]:
    path = domain_path or config.REPO_ROOT / "domain.yml"
    domain = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    intents = []
    for entry in domain.get("intents") or []:
        name = next(iter(entry)) if isinstance(entry, dict) else entry
        if name and name != "nlu_fallback":
            intents.append(str(name))
    return intents


def clean_text(text: str) -> str:
    """The example as it will be written: masked, one line, no entity syntax."""
    masked = mask_message(_CONTROL.sub(" ", text or ""))
    masked = masked.replace("][", "] [")
    masked = _ENTITY_LIKE.sub(lambda m: "] " + m.group(0)[-1], masked)
    masked = " ".join(masked.split())
    return masked


def _compare(text: str) -> str:
    return " ".join(text.lower().split())


def _examples(block: str) -> List[str]:
    found = []
    for line in (block or "").splitlines():
        match = _EXAMPLE_LINE.match(line)
        if match and match.group(1).strip():
            found.append(match.group(1).strip())
    return found


def _plain(example: str) -> str:
    """An NLU example without entity annotations, as Rasa compares them."""
    return _ENTITY_ANNOTATION.sub(lambda m: m.group(1), example)


def existing_examples(data_dir: Path, skip: Optional[Path] = None) -> Dict[str, Set[str]]:
    """Compare form of every example in the NLU files under ``data_dir`` -> intents."""
    found: Dict[str, Set[str]] = {}
    for path in sorted(Path(data_dir).rglob("*.yml")) + sorted(Path(data_dir).rglob("*.yaml")):
        if skip is not None and path.resolve() == skip.resolve():
            continue
        try:
            content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        for item in (content.get("nlu") or []) if isinstance(content, dict) else []:
            if isinstance(item, dict) and item.get("intent"):
                for example in _examples(item.get("examples") or ""):
                    found.setdefault(_compare(_plain(example)), set()).add(str(item["intent"]))
    return found


def read_review(path: Path) -> Dict[str, List[str]]:
    if not path.exists():
        return {}
    content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    result: Dict[str, List[str]] = {}
    for item in content.get("nlu") or []:
        if isinstance(item, dict) and item.get("intent"):
            result.setdefault(str(item["intent"]), []).extend(_examples(item.get("examples") or ""))
    return result


def render_review(examples: Dict[str, List[str]]) -> str:
    lines = [HEADER.rstrip("\n"), 'version: "3.1"', "", "nlu:"]
    for intent in sorted(examples):
        if not examples[intent]:
            continue
        lines.append(f"  - intent: {intent}")
        lines.append("    examples: |")
        lines += [f"      - {example}" for example in examples[intent]]
    if lines[-1] == "nlu:":
        lines[-1] = "nlu: []"
    return "\n".join(lines) + "\n"


def assign(text: str, intent: str, *, path: Optional[Path] = None, data_dir: Optional[Path] = None,
           domain_path: Optional[Path] = None, intents: Optional[Iterable[str]] = None) -> AssignResult:
    """Add ``text`` (masked) as a training example of ``intent`` to the review file."""
    path = Path(path or review_file())
    if data_dir is None:
        data_dir = path.parent.parent if path.parent.name == "nlu" else path.parent
    data_dir = Path(data_dir)
    allowed = list(intents) if intents is not None else domain_intents(domain_path)
    if intent not in allowed:
        raise AssignError("intent")
    example = clean_text(text)
    if len(example) < MIN_CHARS or not re.search(r"[^\W\d_]", example):
        raise AssignError("kort")
    if len(example) > MAX_CHARS:
        raise AssignError("lang")
    path.parent.mkdir(parents=True, exist_ok=True)
    # The lock file lives outside data/: every file there is part of the model fingerprint.
    config.VAR_DIR.mkdir(parents=True, exist_ok=True)
    with open(config.VAR_DIR / "insights-review.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = read_review(path)
        key = _compare(example)
        elsewhere = existing_examples(data_dir, skip=path)
        for name, examples in current.items():
            for existing in examples:
                elsewhere.setdefault(_compare(_plain(existing)), set()).add(name)
        owners = elsewhere.get(key, set())
        if owners - {intent}:
            raise AssignError("dubbel", owners - {intent})
        if intent in owners:
            return AssignResult(example, intent, False, path)
        current.setdefault(intent, []).append(example)
        content = render_review(current)
        handle, temporary = tempfile.mkstemp(dir=str(path.parent), prefix=".review-", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(content)
            os.replace(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
    return AssignResult(example, intent, True, path)
