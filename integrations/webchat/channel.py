"""The chat on the municipal website: a Rasa input channel speaking socket.io.

Configured in ``credentials.yml`` as ``integrations.webchat.channel.WebchatInput``.
It serves, next to Rasa's own routes:

* ``/webchat/socket.io/`` the socket.io endpoint (Rasa's socket.io protocol:
  ``session_request``/``session_confirm``, ``user_uttered``, ``bot_uttered``
  with ``text``, ``quick_replies`` and ``custom``), so the standard
  rasa-webchat widget also works against it;
* ``/webchat/static/widget.js`` and ``widget.css``: the widget a municipality
  embeds with one ``<script>`` tag;
* ``/webchat/config.json``: title, assistant name and colours from the
  municipality file;
* ``/demo``: a demo municipal page with the widget (``demo_page: false`` or
  ``WEBCHAT_DEMO_PAGE=false`` switches it off).

Sessions. A session id is 128 random bits and is the Rasa sender id. The server
hands the browser a token ``v1.<issued>.<HMAC-SHA256(secret, id, issued)>`` with
it (event ``session_token``, sent just before ``session_confirm``). A
``session_request`` that names an existing session id resumes it only with a
valid, unexpired token; otherwise the socket gets a fresh session. After that
the socket is bound to its session: messages and the history request
(``history_request``, answered with a socket.io acknowledgement) always use the
bound session, never an id sent by the client. The secret comes from
``WEBCHAT_SECRET`` or is generated once into ``var/webchat_secret``.

Extra events for this project's widget (other clients may ignore them):
``session_token`` {session_id, token, resumed}, ``typing`` {typing: bool},
``user_echo`` {text} (a message sent from another tab of the same session),
``history_request`` -> {session_id, messages: [...]}, ``session_closed`` {} (another tab ended it).

Ending a session (``POST /webchat/session/close`` with ``{"session_id", "token"}``,
used by ``GemeenteChat.endConversation()`` and the Digitaal Hulpplein page): the
session id is revoked (its tokens no longer verify, so it can never be resumed),
the sockets bound to it are told and unbound, and its events are deleted from the
tracker store, so nothing of the conversation can be read back with the old id.
The revocation list lives in this process (see :meth:`SessionTokens.revoke`).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import time
from collections import deque
from pathlib import Path
from typing import (Any, Awaitable, Callable, Deque, Dict, Iterable, List, Mapping, Optional,
                    Sequence, Text, Tuple)

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOOutput
from sanic import Blueprint, Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from bot import config, speedups
from bot.kcc.transcript import shown_user_text
from integrations.webchat import pages

logger = logging.getLogger(__name__)

# Rasa imports this module from credentials.yml in every profile: our hook to
# install the profiled speed fixes in the Rasa server process.
speedups.apply()

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
TEMPLATE_DIR = HERE / "templates"

CHANNEL_NAME = "webchat"
SOCKETIO_PATH = "/webchat/socket.io"
STATIC_PREFIX = "/webchat/static"
CONFIG_PATH = "/webchat/config.json"
CLOSE_PATH = "/webchat/session/close"
DEMO_PATH = "/demo"

DEFAULT_ALLOWED_ORIGINS: Tuple[str, ...] = (
    "http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*")
WEBSITE_CHANNELS = ("website", "hulpplein")

SESSION_ID_BYTES = 16  # 128 bits
SESSION_ID_RE = re.compile(r"^[0-9a-f]{32}$")
TOKEN_VERSION = "v1"
MAX_TOKEN_CHARS = 200
DEFAULT_SESSION_MAX_AGE = 24 * 3600
CLOCK_SKEW_SECONDS = 300
MIN_SECRET_BYTES = 32
SECRET_FILE_NAME = "webchat_secret"

DEFAULT_RATE_LIMIT = 30          # user messages per session per minute
RATE_WINDOW_SECONDS = 60.0
SESSION_REQUESTS_PER_MINUTE = 20  # per socket connection
MAX_MESSAGE_CHARS = 4000         # the bot itself answers long texts politely up to here
MAX_HISTORY_MESSAGES = 300
MAX_PAGE_URL_CHARS = 2048
MAX_IDENTITY_TOKEN_CHARS = 8192
MAX_BUTTON_TITLE_CHARS = 200
MAX_SOCKET_BUFFER_BYTES = 64 * 1024
MAX_REVOKED_SESSIONS = 100_000
CONSENT_KEY = "toestemming_vrijwilliger"  # Digitaal Hulpplein: may the volunteer help?

# Texts the channel itself says (Dutch, B1, "u").
TEXTS = {
    "rate_limited": "U stuurt veel berichten snel na elkaar. Wacht een minuut. Daarna kunt u verder.",
    "too_long": "Uw bericht is te lang. Typt u een korter bericht?",
    "error": "Er ging iets mis. Probeert u het over een paar minuten opnieuw?",
}

DEFAULT_COLOURS = ("#005A9C", "#FFFFFF")
_HEX_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")
_ORIGIN_RE = re.compile(r"^https?://[^/\s*?#]+(?::\*)?$")


# --------------------------------------------------------------------------- secrets and tokens


def load_secret(var_dir: Optional[Path] = None) -> bytes:
    """The HMAC secret for session tokens.

    ``WEBCHAT_SECRET`` (at least 32 bytes) when set; otherwise a random secret
    that is generated once into ``<var>/webchat_secret`` (mode 0600) and reused.
    """
    value = os.environ.get("WEBCHAT_SECRET")
    if value:
        secret = value.encode("utf-8")
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"WEBCHAT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
        return secret
    directory = Path(var_dir) if var_dir is not None else config.VAR_DIR
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / SECRET_FILE_NAME
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        stored = path.read_text(encoding="ascii").strip()
        if len(stored) < 2 * MIN_SECRET_BYTES:
            raise ValueError(f"{path} does not hold a usable secret; delete it to make a new one")
        return stored.encode("ascii")
    generated = secrets.token_hex(MIN_SECRET_BYTES)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(generated + "\n")
    return generated.encode("ascii")


class SessionTokens:
    """Issues and checks the token that binds a browser to its session id."""

    def __init__(self, secret: bytes, max_age: int = DEFAULT_SESSION_MAX_AGE,
                 clock: Callable[[], float] = time.time) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the session secret must be at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret
        self.max_age = int(max_age)
        self._clock = clock
        self._revoked: Dict[str, float] = {}  # session id -> when its last token expires

    @staticmethod
    def new_session_id() -> str:
        """A fresh session id: 128 random bits as 32 hex characters."""
        return secrets.token_hex(SESSION_ID_BYTES)

    def _mac(self, session_id: str, issued: int) -> str:
        message = f"webchat-session|{session_id}|{issued}".encode("ascii")
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def issue(self, session_id: str) -> str:
        if not SESSION_ID_RE.match(session_id):
            raise ValueError("not a session id")
        issued = int(self._clock())
        return f"{TOKEN_VERSION}.{issued}.{self._mac(session_id, issued)}"

    def revoke(self, session_id: str) -> None:
        """No token of ``session_id`` verifies any more (until they would have expired anyway).

        Kept in memory: with several Rasa processes each one revokes on its own,
        but the conversation itself is deleted from the shared tracker store.
        """
        now = self._clock()
        if len(self._revoked) >= MAX_REVOKED_SESSIONS:
            self._revoked = {sid: until for sid, until in self._revoked.items() if until > now}
        self._revoked[session_id] = now + self.max_age + CLOCK_SKEW_SECONDS

    def is_revoked(self, session_id: str) -> bool:
        until = self._revoked.get(session_id)
        return until is not None and until > self._clock()

    def verify(self, session_id: Any, token: Any) -> bool:
        """True when ``token`` was issued by us for ``session_id``, has not expired
        and the session was not closed."""
        if not isinstance(session_id, str) or not SESSION_ID_RE.match(session_id):
            return False
        if self.is_revoked(session_id):
            return False
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
            return False
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != TOKEN_VERSION or not parts[1].isdigit():
            return False
        issued = int(parts[1])
        now = self._clock()
        if issued > now + CLOCK_SKEW_SECONDS or now - issued > self.max_age:
            return False
        return hmac.compare_digest(parts[2].encode("ascii", "replace"),
                                   self._mac(session_id, issued).encode("ascii"))


class RateLimiter:
    """At most ``limit`` hits per key in a sliding window (in memory, one process)."""

    MAX_KEYS = 50_000

    def __init__(self, limit: int, window: float = RATE_WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = int(limit)
        self.window = float(window)
        self._clock = clock
        self._hits: Dict[str, Deque[float]] = {}

    def allow(self, key: str) -> bool:
        if self.limit <= 0:
            return True
        now = self._clock()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return False
        hits.append(now)
        if len(self._hits) > self.MAX_KEYS:
            self._prune(now)
        return True

    def forget(self, key: str) -> None:
        self._hits.pop(key, None)

    def _prune(self, now: float) -> None:
        stale = [key for key, hits in self._hits.items() if not hits or hits[-1] <= now - self.window]
        for key in stale:
            del self._hits[key]


# --------------------------------------------------------------------------- origins and metadata


def parse_origins(value: Any) -> Tuple[str, ...]:
    """Allowed origins from a list or a comma/space separated string.

    An entry is ``scheme://host[:port]``; ``scheme://host:*`` allows any port.
    ``*`` (any site) is refused: a municipality lists its own sites.
    """
    if value is None:
        return DEFAULT_ALLOWED_ORIGINS
    items = value.replace(",", " ").split() if isinstance(value, str) else [str(v) for v in value]
    origins = []
    for item in items:
        item = item.strip().rstrip("/").lower()
        if not item:
            continue
        if not _ORIGIN_RE.match(item):
            logger.error("webchat: ignoring allowed origin %r (use scheme://host[:port], never *)", item)
            continue
        origins.append(item)
    return tuple(origins)


def origin_allowed(origin: Optional[str], allowed: Iterable[str]) -> bool:
    """True when ``origin`` matches one of ``allowed`` (see :func:`parse_origins`)."""
    if not origin:
        return False
    origin = origin.strip().rstrip("/").lower()
    for entry in allowed:
        if entry.endswith(":*"):
            base = entry[:-2]
            if origin == base:
                return True
            if origin.startswith(base + ":") and origin[len(base) + 1:].isdigit():
                return True
        elif origin == entry:
            return True
    return False


def clean_metadata(raw: Any) -> Dict[str, str]:
    """The message metadata the bot may read; everything else from the browser is dropped.

    ``channel`` is "website" unless the page says "hulpplein"; ``page_url`` only
    http(s); ``identity_token`` and ``button_title`` only as short strings;
    ``toestemming_vrijwilliger`` (true/false) only from the Hulpplein page.
    """
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raw = {}
    if not isinstance(raw, dict):
        raw = {}
    channel = raw.get("channel")
    metadata = {"channel": channel if channel in WEBSITE_CHANNELS else "website"}
    page_url = raw.get("page_url")
    if (isinstance(page_url, str) and len(page_url) <= MAX_PAGE_URL_CHARS
            and re.match(r"^https?://", page_url)):
        metadata["page_url"] = page_url
    token = raw.get("identity_token")
    if isinstance(token, str) and 0 < len(token) <= MAX_IDENTITY_TOKEN_CHARS:
        metadata["identity_token"] = token
    title = raw.get("button_title")
    if isinstance(title, str) and 0 < len(title.strip()) <= MAX_BUTTON_TITLE_CHARS:
        metadata["button_title"] = title.strip()
    consent = raw.get(CONSENT_KEY)
    if metadata["channel"] == "hulpplein" and isinstance(consent, bool):
        metadata[CONSENT_KEY] = consent
    return metadata


# --------------------------------------------------------------------------- widget configuration


def _luminance(colour: str) -> float:
    channels = []
    for i in (1, 3, 5):
        value = int(colour[i:i + 2], 16) / 255
        channels.append(value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4)
    red, green, blue = channels
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast_ratio(first: str, second: str) -> float:
    """WCAG 2.1 contrast ratio of two ``#RRGGBB`` colours."""
    light, dark = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def widget_colours(kleuren: Mapping[str, Any]) -> Tuple[str, str]:
    """(primary, text on primary) from the municipality file, if they are readable.

    The primary colour is used for text on white and as a background behind the
    second colour, so both pairs need a contrast of at least 4.5:1.
    """
    primary, on_primary = kleuren.get("primair"), kleuren.get("tekst_op_primair")
    if (isinstance(primary, str) and isinstance(on_primary, str)
            and _HEX_COLOUR.match(primary) and _HEX_COLOUR.match(on_primary)
            and contrast_ratio(primary, on_primary) >= 4.5
            and contrast_ratio(primary, "#FFFFFF") >= 4.5):
        return primary.upper(), on_primary.upper()
    logger.warning("webchat: colours %r/%r are missing or below 4.5:1; using the defaults",
                   primary, on_primary)
    return DEFAULT_COLOURS


def widget_config(gemeente: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """What the widget shows, from the municipality file."""
    g = gemeente if gemeente is not None else config.gemeente()
    assistent = g.get("assistent") or {}
    primary, on_primary = widget_colours(assistent.get("kleuren") or {})
    return {
        "assistant_name": str(assistent.get("naam") or "de digitale assistent"),
        "title": str(assistent.get("titel") or "Digitale assistent"),
        "gemeente": str((g.get("gemeente") or {}).get("naam") or ""),
        "colours": {"primary": primary, "on_primary": on_primary},
        "socket_path": SOCKETIO_PATH,
        # The widget refuses longer messages itself and keeps the text in the input box:
        # a socket.io frame over MAX_SOCKET_BUFFER_BYTES would drop the connection instead.
        "max_message_chars": MAX_MESSAGE_CHARS,
        "too_long_text": TEXTS["too_long"],
    }


# --------------------------------------------------------------------------- messages and history


def bot_payloads(text: Optional[str], data: Optional[Mapping[str, Any]] = None) -> List[Dict[str, Any]]:
    """The ``bot_uttered`` payloads for one bot response, as Rasa's socket.io output sends them.

    Text is split on blank lines; buttons (``quick_replies``) go with the last part.
    Used for the history, so a restored conversation looks like the live one.
    """
    data = data or {}
    payloads: List[Dict[str, Any]] = []
    buttons = data.get("buttons") or data.get("quick_replies") or []
    if text:
        parts = [part for part in text.strip().split("\n\n") if part] or [text]
        payloads = [{"text": part} for part in parts]
        if buttons:
            payloads[-1]["quick_replies"] = [
                {"content_type": "text", "title": b.get("title", ""), "payload": b.get("payload", "")}
                for b in buttons if isinstance(b, dict)]
    if data.get("image"):
        payloads.append({"attachment": {"type": "image", "payload": {"src": data["image"]}}})
    if data.get("attachment"):
        payloads.append({"attachment": data["attachment"]})
    if data.get("custom"):
        payloads.append({"custom": data["custom"]})
    return payloads


def history_from_events(events: Iterable[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """The visible conversation from serialised tracker events.

    User messages show the button title when a button was clicked; a bare
    ``/intent`` payload without a title (the widget's greeting trigger) is hidden.
    Metadata (identity token, page URL) never leaves the server.
    """
    messages: List[Dict[str, Any]] = []
    for event in events:
        kind = event.get("event")
        if kind == "user":
            shown = shown_user_text(event)
            if shown is not None:
                messages.append({"sender": "user", "text": shown, "timestamp": event.get("timestamp")})
        elif kind == "bot":
            employee = ((event.get("metadata") or {}).get("kcc") or {}).get("medewerker")
            for payload in bot_payloads(event.get("text"), event.get("data")):
                payload.update(sender="bot", timestamp=event.get("timestamp"))
                if employee:  # written by a KCC employee (integrations/kcc)
                    payload.update({"from": "medewerker", "label": "Medewerker"})
                messages.append(payload)
    return messages[-MAX_HISTORY_MESSAGES:]


async def forget_conversation(agent: Any, sender_id: str) -> bool:
    """Delete every stored event of ``sender_id`` from the agent's tracker store.

    SQL (also the privacy-masking subclass), in-memory and Redis stores are
    emptied for that sender; any other store gets a ``Restarted`` event. Runs
    under the conversation lock, so a message being handled cannot write the
    events back. True when the events were deleted.
    """
    from rasa.shared.core.events import Restarted

    store = getattr(agent, "tracker_store", None)
    if store is None:
        return False

    async def forget() -> bool:
        inner = store
        while getattr(inner, "_tracker_store", None) is not None:  # FailSafe/Awaitable wrappers
            inner = inner._tracker_store
        if hasattr(inner, "session_scope") and hasattr(inner, "SQLEvent"):
            with inner.session_scope() as session:
                session.query(inner.SQLEvent).filter(inner.SQLEvent.sender_id == sender_id).delete(
                    synchronize_session=False)
                session.commit()
            return True
        if isinstance(getattr(inner, "store", None), dict):
            inner.store.pop(sender_id, None)
            return True
        if getattr(inner, "red", None) is not None and hasattr(inner, "key_prefix"):
            inner.red.delete(inner.key_prefix + sender_id)
            return True
        tracker = await store.retrieve(sender_id)
        if tracker is not None:
            tracker.update(Restarted())
            await store.save(tracker)
        return False

    lock_store = getattr(agent, "lock_store", None)
    if lock_store is None:
        return await forget()
    async with lock_store.lock(sender_id):
        return await forget()


class WebchatOutput(SocketIOOutput):
    """Sends bot messages to every socket of a session (its room), like Rasa's socket.io output."""

    @classmethod
    def name(cls) -> Text:
        return CHANNEL_NAME

    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any],
                               **kwargs: Any) -> None:
        await self._send_message(recipient_id, {"custom": json_message})


class _WebchatBlueprint(SocketBlueprint):
    """Attaches the socket.io server and remembers the app (for the tracker store)."""

    def __init__(self, channel: "WebchatInput", sio: AsyncServer, socketio_path: Text,
                 *args: Any, **kwargs: Any) -> None:
        super().__init__(sio, socketio_path, *args, **kwargs)
        self.ctx.channel = channel

    def register(self, app: Sanic, options: Dict[Text, Any]) -> None:
        self.ctx.channel.app = app
        super().register(app, options)


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "nee", "off", "")
    return bool(value)


# --------------------------------------------------------------------------- the channel


class WebchatInput(InputChannel):
    """The website chat channel (socket.io), its widget assets and the demo page."""

    @classmethod
    def name(cls) -> Text:
        return CHANNEL_NAME

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        """Settings from ``credentials.yml``; environment variables win.

        ``allowed_origins`` (``WEBCHAT_ALLOWED_ORIGINS``), ``frame_ancestors``
        (``WEBCHAT_FRAME_ANCESTORS``), ``rate_limit_per_minute``
        (``WEBCHAT_RATE_LIMIT``), ``session_max_age_hours``, ``demo_page``
        (``WEBCHAT_DEMO_PAGE``), ``user_message_evt``, ``bot_message_evt``.
        """
        c = credentials or {}
        return cls(
            allowed_origins=os.environ.get("WEBCHAT_ALLOWED_ORIGINS") or c.get("allowed_origins"),
            frame_ancestors=pages.frame_ancestors_from_env(c.get("frame_ancestors")),
            rate_limit_per_minute=int(os.environ.get("WEBCHAT_RATE_LIMIT")
                                      or c.get("rate_limit_per_minute", DEFAULT_RATE_LIMIT)),
            session_max_age=int(float(c.get("session_max_age_hours", DEFAULT_SESSION_MAX_AGE / 3600))
                                * 3600),
            demo_page=_as_bool(os.environ.get("WEBCHAT_DEMO_PAGE", c.get("demo_page", True))),
            user_message_evt=c.get("user_message_evt", "user_uttered"),
            bot_message_evt=c.get("bot_message_evt", "bot_uttered"),
        )

    def __init__(self, allowed_origins: Any = None,
                 frame_ancestors: Sequence[str] = pages.DEFAULT_FRAME_ANCESTORS,
                 rate_limit_per_minute: int = DEFAULT_RATE_LIMIT,
                 session_max_age: int = DEFAULT_SESSION_MAX_AGE,
                 demo_page: bool = True,
                 user_message_evt: Text = "user_uttered",
                 bot_message_evt: Text = "bot_uttered",
                 secret: Optional[bytes] = None) -> None:
        self.allowed_origins = parse_origins(allowed_origins)
        self.frame_ancestors = tuple(frame_ancestors)
        self.demo_page = demo_page
        self.user_message_evt = user_message_evt
        self.bot_message_evt = bot_message_evt
        self.tokens = SessionTokens(secret or load_secret(), session_max_age)
        self.message_limiter = RateLimiter(rate_limit_per_minute)
        self.session_request_limiter = RateLimiter(SESSION_REQUESTS_PER_MINUTE)
        self.sio: Optional[AsyncServer] = None
        self.app: Optional[Sanic] = None
        self._sessions: Dict[str, str] = {}  # socket id -> bound session id

    def url_prefix(self) -> Text:
        # Root, so the blueprint can serve /demo and /webchat/... next to Rasa's routes.
        return "/"

    def get_output_channel(self) -> Optional[OutputChannel]:
        """Output for messages not triggered by the user (e.g. an employee's reply)."""
        if self.sio is None:
            return None
        return WebchatOutput(self.sio, self.bot_message_evt)

    # ----------------------------------------------------------------- helpers

    def socket_origin_allowed(self, origin: Optional[str], environ: Optional[Dict] = None) -> bool:
        """Socket.io origin check: the assistant's own host, or a configured origin."""
        if origin_allowed(origin, self.allowed_origins):
            return True
        host = (environ or {}).get("HTTP_HOST")
        if origin and host:
            origin_host = origin.split("://", 1)[-1].rstrip("/").lower()
            return origin_host == host.lower()
        return False

    def cors_headers(self, request: Request) -> Dict[str, str]:
        origin = request.headers.get("origin")
        headers = {"Vary": "Origin"}
        if origin and origin_allowed(origin, self.allowed_origins):
            headers["Access-Control-Allow-Origin"] = origin
        return headers

    def session_of(self, socket_id: str) -> Optional[str]:
        """The session a socket is bound to."""
        return self._sessions.get(socket_id)

    async def history(self, session_id: str) -> List[Dict[str, Any]]:
        """The visible conversation of a session, read from the tracker store."""
        agent = getattr(getattr(self.app, "ctx", None), "agent", None)
        store = getattr(agent, "tracker_store", None)
        if store is None:
            return []
        tracker = await store.retrieve(session_id)
        if tracker is None:
            return []
        return history_from_events(event.as_dict() for event in tracker.events)

    async def close_session(self, session_id: str) -> None:
        """End ``session_id`` for good: revoke it, unbind and tell its sockets, delete its events."""
        self.tokens.revoke(session_id)
        self.message_limiter.forget(session_id)
        if self.sio is not None:
            await self.sio.emit("session_closed", {}, room=session_id)
            for sid in [sid for sid, bound in self._sessions.items() if bound == session_id]:
                self._sessions.pop(sid, None)
                await self.sio.leave_room(sid, session_id)
        kcc = self.kcc_bridge()
        if kcc is not None:
            await kcc.citizen_closed(session_id)
        agent = getattr(getattr(self.app, "ctx", None), "agent", None)
        if agent is not None:
            await forget_conversation(agent, session_id)

    def kcc_bridge(self) -> Any:
        """The KCC handoff bridge of this app (integrations/kcc), or None."""
        if self.app is None:
            return None
        from integrations.kcc.bridge import KccBridge

        return KccBridge.of(self.app)

    def demo_values(self, request: Request) -> Dict[str, str]:
        g = config.gemeente()
        widget = widget_config(g)
        origin = f"{request.scheme}://{request.host}"
        return {
            "gemeente": widget["gemeente"],
            "assistent": widget["assistant_name"],
            "telefoon": str(g.get("kcc", {}).get("telefoon", "")),
            "openingstijden": str(g.get("kcc", {}).get("openingstijden_tekst", "")),
            "website": str(g.get("gemeente", {}).get("website", "")),
            "hulpplein": str(g.get("hulpplein", {}).get("tekst", "")),
            "widget_src": f"{STATIC_PREFIX}/widget.js",
            "embed_code": (f'<script src="{origin}{STATIC_PREFIX}/widget.js" '
                           'data-channel="website" defer></script>'),
        }

    # ----------------------------------------------------------------- blueprint

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        sio = AsyncServer(async_mode="sanic", cors_allowed_origins=self.socket_origin_allowed,
                          max_http_buffer_size=MAX_SOCKET_BUFFER_BYTES)
        self.sio = sio
        bp = _WebchatBlueprint(self, sio, SOCKETIO_PATH, "webchat_webhook", __name__)

        @bp.route("/webchat/health", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @bp.route(CONFIG_PATH, methods=["GET"])
        async def widget_settings(request: Request) -> HTTPResponse:
            headers = self.cors_headers(request)
            headers.update({"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})
            return response.json(widget_config(), headers=headers)

        @bp.route(CLOSE_PATH, methods=["POST"])
        async def close(request: Request) -> HTTPResponse:
            # A text/plain JSON body, so a widget on another site needs no CORS preflight;
            # the token proves that the caller owns the session.
            headers = self.cors_headers(request)
            headers.update({"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
            try:
                body = json.loads(request.body or b"{}")
            except ValueError:
                body = {}
            body = body if isinstance(body, dict) else {}
            session_id = body.get("session_id")
            if not self.tokens.verify(session_id, body.get("token")):
                return response.json({"closed": False}, status=403, headers=headers)
            await self.close_session(session_id)
            logger.info("webchat: a session was closed by its owner")
            return response.json({"closed": True}, headers=headers)

        @bp.route(f"{STATIC_PREFIX}/<filename>", methods=["GET"])
        async def static(_: Request, filename: str) -> HTTPResponse:
            return pages.static_file(STATIC_DIR, filename)

        if self.demo_page:
            @bp.route(DEMO_PATH, methods=["GET"])
            async def demo(request: Request) -> HTTPResponse:
                return pages.html_page(request, TEMPLATE_DIR / "demo.html", self.demo_values(request),
                                       frame_ancestors=self.frame_ancestors)

        @bp.listener("after_server_start")
        async def start_kcc_bridge(app: Sanic, _loop: Any) -> None:
            # KCC live chat: messages for a citizen (from any Rasa process) reach its sockets here.
            async def deliver(session_id: str, event: str, payload: Dict[str, Any]) -> None:
                await sio.emit(event, payload, room=session_id)

            bridge = self.kcc_bridge()
            if bridge is not None:
                bridge.add_citizen_sink(deliver)
                await bridge.start()

        async def start_session(sid: str, requested: Any = None, token: Any = None) -> str:
            resumed = self.tokens.verify(requested, token)
            session_id = requested if resumed else self.tokens.new_session_id()
            if requested and not resumed:
                logger.info("webchat: session resume refused (missing or invalid token)")
            previous = self._sessions.get(sid)
            if previous and previous != session_id:
                await sio.leave_room(sid, previous)
            self._sessions[sid] = session_id
            await sio.enter_room(sid, session_id)
            await sio.emit("session_token", {"session_id": session_id,
                                             "token": self.tokens.issue(session_id),
                                             "resumed": resumed}, to=sid)
            # A plain string, as Rasa's socket.io channel sends it (rasa-webchat reads both forms).
            await sio.emit("session_confirm", session_id, to=sid)
            kcc = self.kcc_bridge()
            kcc_state = await kcc.citizen_connected(session_id) if kcc is not None else None
            if kcc_state:  # waiting for / chatting with a KCC employee
                await sio.emit("kcc_state", {"state": kcc_state}, to=sid)
            return session_id

        @sio.on("connect")
        async def connect(sid: Text, environ: Dict, auth: Any = None) -> bool:
            return True

        @sio.on("disconnect")
        async def disconnect(sid: Text, *args: Any) -> None:
            session_id = self._sessions.pop(sid, None)
            self.session_request_limiter.forget(sid)
            kcc = self.kcc_bridge()
            if session_id and kcc is not None and session_id not in self._sessions.values():
                await kcc.citizen_disconnected(session_id)  # KCC queue: gone after a timeout

        @sio.on("session_request")
        async def session_request(sid: Text, data: Any = None) -> None:
            if not self.session_request_limiter.allow(sid):
                return
            data = data if isinstance(data, dict) else {}
            await start_session(sid, data.get("session_id"), data.get("token"))

        @sio.on("history_request")
        async def history_request(sid: Text, data: Any = None) -> Dict[str, Any]:
            session_id = self._sessions.get(sid)
            if session_id is None:
                return {"session_id": None, "messages": []}
            return {"session_id": session_id, "messages": await self.history(session_id)}

        @sio.on(self.user_message_evt)
        async def handle_message(sid: Text, data: Any = None) -> None:
            data = data if isinstance(data, dict) else {}
            session_id = self._sessions.get(sid)
            if session_id is None:
                # A client that skipped session_request gets a fresh session of its own.
                session_id = await start_session(sid)
            text = data.get("message")
            if not isinstance(text, str) or not text.strip():
                return
            text = text.strip()
            refusal = None
            if len(text) > MAX_MESSAGE_CHARS:
                refusal = TEXTS["too_long"]
            elif not self.message_limiter.allow(session_id):
                logger.info("webchat: rate limit reached for a session")
                refusal = TEXTS["rate_limited"]
            if refusal:
                # Not processed: only this socket hears why.
                await sio.emit(self.bot_message_evt, {"text": refusal}, to=sid)
                await sio.emit("typing", {"typing": False}, to=sid)
                return
            metadata = clean_metadata(data.get("metadata", data.get("customData")))
            shown = metadata.get("button_title") or text
            if not (text.startswith("/") and "button_title" not in metadata):
                await sio.emit("user_echo", {"text": shown}, room=session_id, skip_sid=sid)
            await sio.emit("typing", {"typing": True}, room=session_id)
            output = WebchatOutput(sio, self.bot_message_evt)
            try:
                await on_new_message(UserMessage(text, output, session_id,
                                                 input_channel=self.name(), metadata=metadata))
            except Exception:  # noqa: BLE001 - the citizen gets a message, the log the details
                logger.exception("webchat: handling a message failed")
                await sio.emit(self.bot_message_evt, {"text": TEXTS["error"]}, room=session_id)
            finally:
                await sio.emit("typing", {"typing": False}, room=session_id)
            kcc = self.kcc_bridge()
            kcc_state = await kcc.citizen_message(session_id) if kcc is not None else None
            if kcc_state:  # in the KCC queue or with an employee: consoles woken, status shown
                await sio.emit("kcc_state", {"state": kcc_state}, room=session_id)

        return bp
