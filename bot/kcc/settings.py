"""Handoff settings from ``gemeente.yml`` (``kcc.live_chat``) and the environment.

Environment:

* ``KCC_ALWAYS_OPEN`` -- FOR TESTS ONLY. ``1``: the KCC counts as open at any
  time; ``0``: always closed. Unset (production): the opening hours decide.
* ``HANDOFF_HUB`` (``inprocess`` | ``redis``), ``REDIS_URL``, ``HANDOFF_HUB_PREFIX``:
  see :mod:`bot.kcc.hub`.
* ``KCC_WAIT_SECONDS`` / ``KCC_LEFT_TIMEOUT_SECONDS`` override the two waits
  below (tests use short ones).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from bot import config

DEFAULTS = {
    "aan": True,
    "wachttijd_terugbellen_seconden": 180,
    "verlaten_timeout_seconden": 120,
    "max_wachttijd_minuten": 30,
    "kanalen": ["webchat"],
}


@dataclass(frozen=True)
class HandoffSettings:
    enabled: bool
    #: waiting longer than this without an employee -> offer a call-back request
    wait_seconds: int
    #: the citizen closed the window: drop the queue entry after this long
    left_timeout_seconds: int
    #: a waiting entry never lives longer than this (also when nobody saw it leave)
    max_wait_minutes: int
    #: Rasa input channels that can show an employee's messages (socket push)
    live_channels: Tuple[str, ...]


def _env_int(name: str) -> Optional[int]:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else None


def handoff(gemeente: Optional[Dict[str, Any]] = None) -> HandoffSettings:
    g = gemeente if gemeente is not None else config.gemeente()
    raw = dict(DEFAULTS)
    raw.update(((g.get("kcc") or {}).get("live_chat") or {}))
    wait = _env_int("KCC_WAIT_SECONDS")
    left = _env_int("KCC_LEFT_TIMEOUT_SECONDS")
    return HandoffSettings(
        enabled=bool(raw["aan"]),
        wait_seconds=wait if wait is not None else int(raw["wachttijd_terugbellen_seconden"]),
        left_timeout_seconds=left if left is not None else int(raw["verlaten_timeout_seconden"]),
        max_wait_minutes=int(raw["max_wachttijd_minuten"]),
        live_channels=tuple(raw["kanalen"] or ()),
    )


def forced_open() -> Optional[bool]:
    """``KCC_ALWAYS_OPEN`` (tests only): True/False, or None when unset."""
    value = os.environ.get("KCC_ALWAYS_OPEN", "").strip().lower()
    if value in ("1", "true", "ja", "yes"):
        return True
    if value in ("0", "false", "nee", "no"):
        return False
    return None
