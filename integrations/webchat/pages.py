"""Serve HTML pages and static assets from a Rasa channel blueprint, with security headers.

Every page the assistant serves itself (the demo page here; later the Hulpplein
page, the KCC console and the insights page) uses :func:`html_page`, so they all
get the same headers:

* a Content-Security-Policy without ``'unsafe-inline'`` or ``'unsafe-eval'``:
  scripts, styles and connections only to the assistant itself;
* ``frame-ancestors`` from configuration (default ``'self'``);
* ``X-Content-Type-Options: nosniff`` and a strict referrer policy.

Templates are plain HTML files with ``$name`` placeholders
(:class:`string.Template`). Every value is HTML-escaped, so a template cannot
be made to contain markup by the data put into it.
"""
from __future__ import annotations

import html
import mimetypes
import os
import re
from pathlib import Path
from string import Template
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple

from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

DEFAULT_FRAME_ANCESTORS: Tuple[str, ...] = ("'self'",)
# A CSP source expression: a keyword ('self', 'none') or scheme://host[:port].
_SOURCE_RE = re.compile(r"^(?:'(?:self|none)'|https?://[A-Za-z0-9.\-\[\]:*]+)$")
STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}


def parse_sources(value: Any, default: Sequence[str] = DEFAULT_FRAME_ANCESTORS) -> Tuple[str, ...]:
    """CSP sources from a list or a comma/space separated string; invalid entries are dropped."""
    if value is None or value == "":
        return tuple(default)
    items = value.replace(",", " ").split() if isinstance(value, str) else [str(v) for v in value]
    sources = tuple(item.strip() for item in items if _SOURCE_RE.match(item.strip()))
    return sources or tuple(default)


def frame_ancestors_from_env(configured: Any = None) -> Tuple[str, ...]:
    """``WEBCHAT_FRAME_ANCESTORS`` when set, else the configured value, else ``'self'``."""
    return parse_sources(os.environ.get("WEBCHAT_FRAME_ANCESTORS") or configured)


def content_security_policy(request: Optional[Request] = None,
                            frame_ancestors: Iterable[str] = DEFAULT_FRAME_ANCESTORS,
                            connect_src: Iterable[str] = ()) -> str:
    """The CSP of a page served by the assistant.

    ``connect-src`` allows the assistant's own origin, also over ``ws://``/``wss://``
    (for socket.io), plus ``connect_src``.
    """
    connect = ["'self'"]
    if request is not None and request.host:
        host = request.host
        connect += [f"ws://{host}", f"wss://{host}"]
    connect += list(connect_src)
    ancestors = " ".join(frame_ancestors) or "'none'"
    directives = [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "media-src 'self'",
        f"connect-src {' '.join(connect)}",
        "base-uri 'none'",
        "form-action 'self'",
        "object-src 'none'",
        f"frame-ancestors {ancestors}",
    ]
    return "; ".join(directives)


def security_headers(request: Optional[Request] = None,
                     frame_ancestors: Iterable[str] = DEFAULT_FRAME_ANCESTORS,
                     connect_src: Iterable[str] = ()) -> Dict[str, str]:
    """Headers for an HTML page served by the assistant."""
    return {
        "Content-Security-Policy": content_security_policy(request, frame_ancestors, connect_src),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
        "Cache-Control": "no-store",
    }


def render_template(path: Path, values: Mapping[str, Any]) -> str:
    """Fill ``$name`` placeholders in the HTML file ``path``; every value is HTML-escaped.

    A placeholder without a value raises ``KeyError``, so typos are found at once.
    """
    template = Template(Path(path).read_text(encoding="utf-8"))
    return template.substitute({key: html.escape(str(value), quote=True) for key, value in values.items()})


def html_page(request: Request, template: Path, values: Mapping[str, Any], *,
              frame_ancestors: Iterable[str] = DEFAULT_FRAME_ANCESTORS,
              connect_src: Iterable[str] = (), status: int = 200) -> HTTPResponse:
    """An HTML response from ``template`` with the security headers of :func:`security_headers`."""
    body = render_template(template, values)
    return response.html(body, status=status,
                         headers=security_headers(request, frame_ancestors, connect_src))


def static_file(directory: Path, filename: str, *, max_age: int = 300) -> HTTPResponse:
    """A file from ``directory`` (no sub folders, known types only), or 404.

    The widget is embedded on other sites, so the response allows cross-origin use
    (``Cross-Origin-Resource-Policy: cross-origin``) but never sniffing.
    """
    suffix = Path(filename).suffix.lower()
    if ("/" in filename or "\\" in filename or filename.startswith(".")
            or suffix not in STATIC_TYPES):
        return response.text("Niet gevonden", status=404)
    path = Path(directory) / filename
    if not path.is_file():
        return response.text("Niet gevonden", status=404)
    content_type = STATIC_TYPES.get(suffix) or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return response.raw(path.read_bytes(), content_type=content_type, headers={
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Cache-Control": f"public, max-age={max_age}",
    })
