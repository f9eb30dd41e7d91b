"""The Digitaal Hulpplein page: a volunteer and a visitor at one public computer.

Configured in ``credentials.yml`` as ``integrations.hulpplein.channel.HulppleinPage``.
This "channel" receives no messages itself: the chat on the page is the website
chat (``integrations.webchat``) with ``data-channel="hulpplein"``, mounted
full-screen with large text. It serves:

* ``GET /hulpplein``: the page (start "Nieuwe bezoeker", consent question,
  chat with the volunteer's tip panel beside it, "Bel de gemeente mee",
  print view of the summary, "Gesprek afsluiten", idle wipe);
* ``GET /hulpplein/static/<file>``: its script and style sheet;
* ``POST /hulpplein/wissen``: an empty answer with ``Clear-Site-Data``, so the
  browser also drops cookies, storage and cache of the assistant's origin when
  a conversation ends (the page clears storage itself too).

Idle wipe: ``gemeente.yml`` ``hulpplein.inactief_minuten`` (default 10) with a
warning of ``hulpplein.waarschuwing_seconden`` (default 60) before it. For tests
``?inactief_seconden=N`` shortens it, only when the channel allows it
(``allow_idle_override`` in credentials.yml or ``HULPPLEIN_IDLE_OVERRIDE=true``)
and never to more than the configured time.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Sequence, Text, Tuple

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import config
from integrations.webchat import pages

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
TEMPLATE = HERE / "templates" / "hulpplein.html"

PAGE_PATH = "/hulpplein"
STATIC_PREFIX = "/hulpplein/static"
WIPE_PATH = "/hulpplein/wissen"
WIDGET_SRC = "/webchat/static/widget.js"

DEFAULT_IDLE_MINUTES = 10
DEFAULT_WARNING_SECONDS = 60
MIN_OVERRIDE_SECONDS = 4
TEXT_SIZE_STEP = 3  # of the widget's 5 steps: 1.3 x the normal size


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "ja", "on")
    return bool(value)


def idle_settings(gemeente: Mapping[str, Any], requested: Optional[str] = None,
                  allow_override: bool = False) -> Tuple[int, int]:
    """(idle seconds, warning seconds) for the page.

    From ``gemeente.yml`` ``hulpplein``; ``requested`` (the ``inactief_seconden``
    query parameter) only counts when ``allow_override`` is set, and can only
    make the time shorter. The warning is at most half of the idle time.
    """
    settings = gemeente.get("hulpplein") or {}
    try:
        idle = int(float(settings.get("inactief_minuten", DEFAULT_IDLE_MINUTES)) * 60)
    except (TypeError, ValueError):
        idle = DEFAULT_IDLE_MINUTES * 60
    try:
        warning = int(settings.get("waarschuwing_seconden", DEFAULT_WARNING_SECONDS))
    except (TypeError, ValueError):
        warning = DEFAULT_WARNING_SECONDS
    idle = max(60, idle)
    if allow_override and requested and requested.isdigit():
        idle = min(idle, max(MIN_OVERRIDE_SECONDS, int(requested)))
    warning = max(1, min(warning, idle // 2))
    return idle, warning


def fixed_tips(flows: Mapping[str, Any]) -> List[str]:
    """The tips always shown to the volunteer (flows.yml ``algemeen.hulpplein.vaste_tips``)."""
    settings = ((flows.get("algemeen") or {}).get("hulpplein") or {})
    return [str(tip) for tip in settings.get("vaste_tips") or [] if str(tip).strip()]


def page_values(gemeente: Mapping[str, Any], flows: Mapping[str, Any], idle: int, warning: int) -> Dict[str, Any]:
    """The ``$placeholders`` of the page template (every value is HTML-escaped there)."""
    kcc = gemeente.get("kcc") or {}
    hulpplein = gemeente.get("hulpplein") or {}
    assistent = gemeente.get("assistent") or {}
    return {
        "gemeente": str((gemeente.get("gemeente") or {}).get("naam") or ""),
        "assistent": str(assistent.get("naam") or "de digitale assistent"),
        "hulpplein_naam": str(hulpplein.get("naam") or "Digitaal Hulpplein"),
        "hulpplein_plek": str(hulpplein.get("plek") or ""),
        "telefoon": str(kcc.get("telefoon") or ""),
        "telefoon_link": str(kcc.get("telefoon_link") or ""),
        "openingstijden": str(kcc.get("openingstijden_tekst") or ""),
        "inactief_seconden": idle,
        "waarschuwing_seconden": warning,
        "inactief_minuten": max(1, round(idle / 60)),
        "vaste_tips": json.dumps(fixed_tips(flows), ensure_ascii=False),
        "widget_src": WIDGET_SRC,
        "tekstgrootte": TEXT_SIZE_STEP,
        "script_src": f"{STATIC_PREFIX}/hulpplein.js",
        "style_src": f"{STATIC_PREFIX}/hulpplein.css",
    }


class HulppleinPage(InputChannel):
    """Serves the Digitaal Hulpplein page; the chat itself runs over the website chat channel."""

    @classmethod
    def name(cls) -> Text:
        return "hulpplein_page"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        """``enabled`` (``HULPPLEIN_PAGE``), ``frame_ancestors`` (``WEBCHAT_FRAME_ANCESTORS``),
        ``allow_idle_override`` (``HULPPLEIN_IDLE_OVERRIDE``)."""
        c = credentials or {}
        return cls(
            enabled=_as_bool(os.environ.get("HULPPLEIN_PAGE", c.get("enabled", True))),
            frame_ancestors=pages.frame_ancestors_from_env(c.get("frame_ancestors")),
            allow_idle_override=_as_bool(os.environ.get("HULPPLEIN_IDLE_OVERRIDE",
                                                        c.get("allow_idle_override", False))),
        )

    def __init__(self, enabled: bool = True,
                 frame_ancestors: Sequence[str] = pages.DEFAULT_FRAME_ANCESTORS,
                 allow_idle_override: bool = False) -> None:
        self.enabled = enabled
        self.frame_ancestors = tuple(frame_ancestors)
        self.allow_idle_override = allow_idle_override

    def url_prefix(self) -> Text:
        # "/" (not ""): Rasa joins this onto "/webhooks/", and only "/" gives the site root.
        return "/"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint("hulpplein_page", __name__)
        if not self.enabled:
            return bp

        @bp.route(PAGE_PATH, methods=["GET"])
        async def page(request: Request) -> HTTPResponse:
            g = config.gemeente()
            idle, warning = idle_settings(g, request.args.get("inactief_seconden"), self.allow_idle_override)
            return pages.html_page(request, TEMPLATE, page_values(g, config.flows(), idle, warning),
                                   frame_ancestors=self.frame_ancestors)

        @bp.route(f"{STATIC_PREFIX}/<filename>", methods=["GET"])
        async def static(_: Request, filename: str) -> HTTPResponse:
            return pages.static_file(STATIC_DIR, filename, max_age=60)

        @bp.route(WIPE_PATH, methods=["POST"])
        async def wipe(_: Request) -> HTTPResponse:
            # The browser drops cookies, storage and cache of this origin (a shared computer).
            return response.empty(headers={
                "Clear-Site-Data": '"cache", "cookies", "storage"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            })

        return bp
