"""Citizen-facing KCC texts and buttons from ``flows.yml`` (``kcc:``), with
``{placeholders}`` filled from ``gemeente.yml`` (see ``bot.config.template_vars``)."""
from __future__ import annotations

import re
from typing import Any, Dict, List

from bot import config

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def _section() -> Dict[str, Any]:
    return config.flows().get("kcc") or {}


def text(key: str, **extra: Any) -> str:
    values = dict(config.template_vars())
    values.update({k: str(v) for k, v in extra.items()})
    raw = _section()["teksten"][key]
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), raw)


def button(key: str) -> Dict[str, str]:
    found = _section()["knoppen"][key]
    return {"title": str(found["title"]), "payload": str(found["payload"])}


def buttons(*keys: str) -> List[Dict[str, str]]:
    return [button(k) for k in keys]


def quick_replies() -> List[str]:
    """The console's quick replies (the employee sends them; the citizen reads them)."""
    return [str(t) for t in ((_section().get("snelle_antwoorden") or {}).get("teksten") or [])]
