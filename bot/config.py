"""Runtime configuration: the municipality file and environment settings.

Municipal content lives in ``gemeente.yml`` (path overridable with the
``GEMEENTE_FILE`` environment variable) so that another gemeente adopts the
assistant by editing data, not code.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Dict

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("BOT_VAR_DIR", REPO_ROOT / "var"))


@functools.lru_cache(maxsize=None)
def _load_yaml(path: str) -> Dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def gemeente() -> Dict[str, Any]:
    """The parsed municipality file."""
    return _load_yaml(os.environ.get("GEMEENTE_FILE", str(REPO_ROOT / "gemeente.yml")))


def flows() -> Dict[str, Any]:
    """The parsed guided-flow definitions."""
    return _load_yaml(os.environ.get("FLOWS_FILE", str(REPO_ROOT / "flows.yml")))


def cases_db_url() -> str:
    """SQLAlchemy URL of the case store: SQLite under var/ unless CASES_DB_URL is set."""
    url = os.environ.get("CASES_DB_URL")
    if url:
        return url
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{VAR_DIR / 'cases.db'}"


def template_vars() -> Dict[str, str]:
    """Values every response may use, e.g. ``{kcc_telefoon}``; set as slots at session start."""
    g = gemeente()
    values = {
        "gemeente_naam": g["gemeente"]["naam"],
        "assistent_naam": g["assistent"]["naam"],
        "kcc_telefoon": g["kcc"]["telefoon"],
        "kcc_openingstijden": g["kcc"]["openingstijden_tekst"],
        "website": g["gemeente"]["website"],
        "balie_naam": g["balie"]["naam"],
        "balie_adres": g["balie"]["adres"],
        "afspraak_link": g["balie"]["afspraak_link"],
        "hulpplein_tekst": g["hulpplein"]["tekst"],
    }
    # Per product answer: {link_<intent>} and {kosten_<intent>}.
    for intent, product in (g.get("producten") or {}).items():
        values[f"link_{intent}"] = product.get("link", g["gemeente"]["website"])
        values[f"kosten_{intent}"] = product.get("kosten", "")
    return values
