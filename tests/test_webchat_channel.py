"""The website chat channel: tokens, limits, origins, metadata, history and the socket.io protocol.

The first part checks the building blocks directly; the second part talks to the
real Rasa server (started with credentials.yml, so with this channel) through a
python-socketio client that behaves like the standard rasa-webchat widget.
"""
from __future__ import annotations

import asyncio
import json
import queue
import re
import sqlite3
import stat
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

import pytest
import requests
import socketio
import yaml
from rasa.shared.core.events import BotUttered, UserUttered

from integrations.webchat import pages
from integrations.webchat.channel import (DEFAULT_COLOURS, TEXTS, RateLimiter, SessionTokens,
                                          WebchatInput, clean_metadata, contrast_ratio,
                                          history_from_events, load_secret, origin_allowed,
                                          parse_origins, widget_config)
from tests.servers import ROOT, new_sender, start_bot

SECRET = b"s" * 32
CHANNEL_KEY = "integrations.webchat.channel.WebchatInput"


# ----------------------------------------------------------------------------- building blocks


def test_session_ids_are_random_128_bit_hex():
    ids = {SessionTokens.new_session_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_token_belongs_to_one_session_secret_and_time():
    now = [1_800_000_000.0]
    tokens = SessionTokens(SECRET, max_age=3600, clock=lambda: now[0])
    session_id, other_id = SessionTokens.new_session_id(), SessionTokens.new_session_id()
    token = tokens.issue(session_id)
    assert tokens.verify(session_id, token)
    assert not tokens.verify(other_id, token)
    assert not tokens.verify(session_id, None)
    assert not tokens.verify(session_id, "")
    assert not tokens.verify(session_id, token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert not tokens.verify(session_id, token.replace("v1.", "v2.", 1))
    assert not tokens.verify(session_id, token + "x" * 300)
    assert not tokens.verify(session_id.upper(), token)
    assert not SessionTokens(b"t" * 32, clock=lambda: now[0]).verify(session_id, token)
    # Changing the issue time breaks the signature.
    version, issued, mac = token.split(".")
    assert not tokens.verify(session_id, f"{version}.{int(issued) + 1}.{mac}")
    now[0] += 3599
    assert tokens.verify(session_id, token)
    now[0] += 2
    assert not tokens.verify(session_id, token)  # expired
    future = SessionTokens(SECRET, clock=lambda: now[0] + 3600).issue(session_id)
    assert not tokens.verify(session_id, future)  # issued in the future


def test_short_secrets_are_refused(monkeypatch):
    with pytest.raises(ValueError):
        SessionTokens(b"short")
    monkeypatch.setenv("WEBCHAT_SECRET", "too-short")
    with pytest.raises(ValueError):
        load_secret()


def test_secret_is_generated_once_into_the_var_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("WEBCHAT_SECRET", raising=False)
    first = load_secret(tmp_path)
    second = load_secret(tmp_path)
    assert first == second and len(first) >= 64
    path = tmp_path / "webchat_secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(tmp_path / "other") != first
    monkeypatch.setenv("WEBCHAT_SECRET", "x" * 40)
    assert load_secret(tmp_path) == b"x" * 40


def test_rate_limiter_allows_30_a_minute_per_key():
    now = [0.0]
    limiter = RateLimiter(30, 60, clock=lambda: now[0])
    assert all(limiter.allow("a") for _ in range(30))
    assert not limiter.allow("a")
    assert limiter.allow("b")
    now[0] = 59.9
    assert not limiter.allow("a")
    now[0] = 60.1
    assert limiter.allow("a")
    assert RateLimiter(0).allow("x")  # 0 switches the limit off


def test_origins_never_allow_everybody():
    origins = parse_origins(["*", "https://www.bergenopzoom.nl/", "http://localhost:*",
                             "javascript:alert(1)", "https://*.example.org"])
    assert origins == ("https://www.bergenopzoom.nl", "http://localhost:*")
    assert parse_origins("https://a.nl, https://b.nl") == ("https://a.nl", "https://b.nl")
    assert origin_allowed("https://www.bergenopzoom.nl", origins)
    assert origin_allowed("http://localhost:5005", origins)
    assert origin_allowed("http://localhost", origins)
    assert not origin_allowed("https://localhost:5005", origins)
    assert not origin_allowed("http://localhost.evil.example", origins)
    assert not origin_allowed("http://localhost:5005.evil.example", origins)
    assert not origin_allowed("https://evil.example", origins)
    assert not origin_allowed(None, origins)


def test_credentials_file_configures_the_channel_for_localhost_only(monkeypatch):
    for name in ("WEBCHAT_ALLOWED_ORIGINS", "WEBCHAT_RATE_LIMIT", "WEBCHAT_FRAME_ANCESTORS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WEBCHAT_SECRET", "x" * 32)  # no secret file in the repository's var/
    credentials = yaml.safe_load((ROOT / "credentials.yml").read_text())
    settings = credentials[CHANNEL_KEY]
    assert "*" not in json.dumps(settings["allowed_origins"]).replace(":*", "")
    channel = WebchatInput.from_credentials(settings)
    assert channel.allowed_origins == ("http://localhost:*", "http://127.0.0.1:*")
    assert channel.message_limiter.limit == 30
    assert channel.url_prefix() == "/"


def test_metadata_keeps_only_what_the_bot_reads():
    assert clean_metadata(None) == {"channel": "website"}
    assert clean_metadata({"channel": "kcc", "page_url": "javascript:alert(1)", "x": 1}) == {"channel": "website"}
    assert clean_metadata(json.dumps({"channel": "hulpplein", "page_url": "https://a.nl/p",
                                      "identity_token": "abc.def.ghi", "button_title": " Geen foto "})) == {
        "channel": "hulpplein", "page_url": "https://a.nl/p", "identity_token": "abc.def.ghi",
        "button_title": "Geen foto"}
    assert "identity_token" not in clean_metadata({"identity_token": "x" * 9000})


def test_widget_config_comes_from_the_municipality_file():
    config = widget_config()
    assert config["assistant_name"] == "Zoë"
    assert config["gemeente"] == "Bergen op Zoom"
    assert config["colours"] == {"primary": "#005A9C", "on_primary": "#FFFFFF"}
    unreadable = widget_config({"gemeente": {"naam": "Test"},
                                "assistent": {"naam": "Bo", "kleuren": {"primair": "#FFFF00",
                                                                         "tekst_op_primair": "#FFFFFF"}}})
    assert tuple(unreadable["colours"].values()) == DEFAULT_COLOURS
    assert contrast_ratio(*DEFAULT_COLOURS) >= 4.5
    assert round(contrast_ratio("#000000", "#FFFFFF"), 1) == 21.0


def test_history_from_real_rasa_events_hides_payloads_and_metadata():
    events = [
        UserUttered("/greet", metadata={"channel": "website"}),
        BotUttered("Hallo, ik ben Zoë.\n\nWaarmee kan ik u helpen?",
                   {"buttons": [{"title": "Afspraak maken", "payload": "/afspraak_maken"}]}),
        UserUttered("geen", metadata={"button_title": "Geen foto", "identity_token": "SECRET-TOKEN"}),
        UserUttered("Kerkstraat 1", metadata={"page_url": "https://a.nl/"}),
        BotUttered("Klopt dit?", {"custom": {"type": "summary"}}),
    ]
    history = history_from_events(e.as_dict() for e in events)
    assert [(m["sender"], m.get("text")) for m in history] == [
        ("bot", "Hallo, ik ben Zoë."), ("bot", "Waarmee kan ik u helpen?"),
        ("user", "Geen foto"), ("user", "Kerkstraat 1"), ("bot", "Klopt dit?"), ("bot", None)]
    assert history[1]["quick_replies"] == [
        {"content_type": "text", "title": "Afspraak maken", "payload": "/afspraak_maken"}]
    assert history[-1]["custom"] == {"type": "summary"}
    assert "SECRET-TOKEN" not in json.dumps(history) and "page_url" not in json.dumps(history)


def test_page_headers_and_templates(tmp_path):
    csp = pages.content_security_policy(frame_ancestors=("'self'", "https://www.bergenopzoom.nl"))
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'self' https://www.bergenopzoom.nl" in csp
    assert pages.parse_sources("'self' https://a.nl javascript:x *") == ("'self'", "https://a.nl")
    assert pages.parse_sources(None) == ("'self'",)
    template = tmp_path / "page.html"
    template.write_text("<h1>$title</h1><a href=\"$link\">x</a>")
    html = pages.render_template(template, {"title": "<script>alert(1)</script>", "link": '"><b>'})
    assert "<script>" not in html and "&lt;script&gt;" in html and '"><b>' not in html
    with pytest.raises(KeyError):
        pages.render_template(template, {"title": "x"})


# ----------------------------------------------------------------------------- against the real server


@pytest.fixture(scope="module")
def bot(tmp_path_factory):
    running = start_bot(tmp_path_factory.mktemp("webchat-channel"), extra_env={"WEBCHAT_RATE_LIMIT": "5"})
    yield running
    running.stop()


class ChatClient:
    """python-socketio's client, talking like the rasa-webchat widget.

    The AsyncClient runs on its own event loop in a thread, so the tests stay plain
    functions. It uses the polling transport: its websocket transport needs a newer
    aiohttp than Rasa pins (the browser tests cover websockets).
    """

    EVENTS = ("session_confirm", "session_token", "bot_uttered", "typing", "user_echo")

    def __init__(self, bot: Any, origin: Optional[str] = None) -> None:
        self.events: "queue.Queue[Tuple[str, Any]]" = queue.Queue()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.sio = socketio.AsyncClient(reconnection=False)
        for name in self.EVENTS:
            self.sio.on(name, handler=self._recorder(name))
        headers = {"Origin": origin} if origin else {}
        try:
            self._run(self.sio.connect(bot.rasa_url, socketio_path="/webchat/socket.io",
                                       transports=["polling"], headers=headers, wait_timeout=10))
        except Exception:
            self._run(self._disconnect())
            self._stop_loop()
            raise

    def _run(self, coroutine: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def _recorder(self, name: str):
        return lambda data=None: self.events.put((name, data))

    def emit(self, event: str, data: Any) -> None:
        self._run(self.sio.emit(event, data))

    def next(self, *names: str, timeout: float = 30) -> Tuple[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            name, data = self.events.get(timeout=max(0.1, deadline - time.monotonic()))
            if name in names:
                return name, data

    def start(self, session_id: Optional[str] = None, token: Optional[str] = None) -> Dict[str, Any]:
        request: Dict[str, Any] = {"session_id": session_id}
        if token is not None:
            request["token"] = token
        self.emit("session_request", request)
        _, info = self.next("session_token")
        _, confirmed = self.next("session_confirm")
        assert confirmed == info["session_id"]
        self.session = info
        return info

    def say(self, text: str, **data: Any) -> List[Dict[str, Any]]:
        """Send a message; the bot messages of this turn (until typing stops)."""
        self.emit("user_uttered", {"message": text, "session_id": self.session["session_id"], **data})
        messages: List[Dict[str, Any]] = []
        while True:
            name, payload = self.next("bot_uttered", "typing")
            if name == "typing" and not payload["typing"]:
                return messages
            if name == "bot_uttered":
                messages.append(payload)

    def history(self) -> List[Dict[str, Any]]:
        return self._run(self.sio.call("history_request", {}, timeout=20))["messages"]

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    async def _disconnect(self) -> None:
        # Like sio.disconnect(), without waiting for the open long-poll (up to 25 s).
        eio = self.sio.eio
        reader, writer = eio.read_loop_task, eio.write_loop_task
        await eio.disconnect(abort=True)
        if writer:
            await asyncio.wait([writer], timeout=5)
        for task in (reader, writer):
            if task and not task.done():
                task.cancel()
        if eio.http is not None and not eio.http.closed:
            await eio.http.close()

    def close(self) -> None:
        self._run(self._disconnect())
        self._stop_loop()


def user_events(bot: Any, sender_id: str) -> List[Dict[str, Any]]:
    with sqlite3.connect(bot.workdir / "tracker.db") as db:
        rows = db.execute("SELECT data FROM events WHERE sender_id = ? AND type_name = 'user' ORDER BY id",
                          (sender_id,)).fetchall()
    return [json.loads(row[0]) for row in rows]


def test_demo_page_is_served_with_security_headers(bot):
    page = requests.get(f"{bot.rasa_url}/demo", timeout=10)
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'self'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert '<script src="/webchat/static/widget.js" data-channel="website" defer></script>' in page.text
    assert "<script>" not in page.text  # no inline script
    assert "Gemeente Bergen op Zoom" in page.text
    assert requests.get(f"{bot.rasa_url}/", timeout=10).ok  # Rasa's own root route still works
    assert "Zoë" in bot.texts(new_sender(), "hallo")  # and so does the REST channel


def test_widget_assets_and_config(bot):
    js = requests.get(f"{bot.rasa_url}/webchat/static/widget.js", timeout=10)
    assert js.status_code == 200 and js.headers["Content-Type"].startswith("text/javascript")
    assert js.headers["X-Content-Type-Options"] == "nosniff"
    assert "innerHTML" not in js.text and "https://" not in js.text.split("*/", 1)[1]  # no CDN
    css = requests.get(f"{bot.rasa_url}/webchat/static/widget.css", timeout=10)
    assert css.status_code == 200 and "@import" not in css.text and "url(" not in css.text
    for bad in ("channel.py", "..%2Fchannel.py", ".hidden.js", "missing.js"):
        assert requests.get(f"{bot.rasa_url}/webchat/static/{bad}", timeout=10).status_code == 404

    allowed = requests.get(f"{bot.rasa_url}/webchat/config.json", headers={"Origin": "http://localhost:8080"},
                           timeout=10)
    assert allowed.json()["assistant_name"] == "Zoë"
    assert allowed.headers["Access-Control-Allow-Origin"] == "http://localhost:8080"
    other = requests.get(f"{bot.rasa_url}/webchat/config.json", headers={"Origin": "https://evil.example"},
                         timeout=10)
    assert "Access-Control-Allow-Origin" not in other.headers


def test_socket_origins_come_from_config(bot):
    with pytest.raises(socketio.exceptions.ConnectionError):
        ChatClient(bot, origin="https://evil.example")
    client = ChatClient(bot, origin="http://localhost:3000")
    assert re.fullmatch(r"[0-9a-f]{32}", client.start()["session_id"])
    client.close()


def test_rasa_webchat_protocol_with_buttons(bot):
    client = ChatClient(bot)
    client.emit("session_request", {"session_id": None})  # what rasa-webchat sends on a first visit
    _, session_id = client.next("session_confirm")
    assert isinstance(session_id, str) and re.fullmatch(r"[0-9a-f]{32}", session_id)
    client.session = {"session_id": session_id}
    messages = client.say("hallo", customData={"language": "nl"})
    assert "Zoë" in messages[0]["text"]
    replies = messages[-1]["quick_replies"]
    assert {"content_type": "text", "title": "Afspraak maken", "payload": "/afspraak_maken"} in replies
    client.close()


def test_a_session_resumes_only_with_its_token(bot):
    owner = ChatClient(bot)
    info = owner.start()
    owner.say("er ligt een losse stoeptegel voor mijn deur")
    assert not info["resumed"]

    for token in (None, "", "v1.1.abc", info["token"][:-1] + ("A" if info["token"][-1] != "A" else "B")):
        intruder = ChatClient(bot)
        got = intruder.start(info["session_id"], token)
        assert got["session_id"] != info["session_id"] and not got["resumed"]
        assert intruder.history() == []
        # Naming the other session in a message does not reach it either.
        intruder.say("Kerkstraat 1", session_id=info["session_id"])
        intruder.close()
    assert [e["text"] for e in user_events(bot, info["session_id"])] == [
        "er ligt een losse stoeptegel voor mijn deur"]

    again = ChatClient(bot)
    resumed = again.start(info["session_id"], info["token"])
    assert resumed["session_id"] == info["session_id"] and resumed["resumed"]
    history = again.history()
    assert history[0] == {"sender": "user", "text": "er ligt een losse stoeptegel voor mijn deur",
                          "timestamp": pytest.approx(history[0]["timestamp"])}
    assert "Waar is het probleem?" in history[-1]["text"]
    assert [r["title"] for r in history[-1]["quick_replies"]] == ["Wat bedoelt u?", "Stoppen", "Medewerker"]
    owner.close()
    again.close()


def test_metadata_from_the_page_reaches_the_tracker(bot):
    client = ChatClient(bot)
    info = client.start()
    client.say("/greet", metadata={"channel": "hulpplein", "page_url": "https://www.bergenopzoom.nl/hulpplein",
                                    "identity_token": "header.payload.signature", "evil": "<script>"})
    metadata = user_events(bot, info["session_id"])[-1]["metadata"]
    page_keys = {key: metadata.get(key) for key in ("channel", "page_url", "identity_token", "evil")}
    assert page_keys == {"channel": "hulpplein", "page_url": "https://www.bergenopzoom.nl/hulpplein",
                         "identity_token": "header.payload.signature", "evil": None}
    client.say("hallo", metadata=json.dumps({"channel": "elders"}))
    metadata = user_events(bot, info["session_id"])[-1]["metadata"]
    assert metadata["channel"] == "website" and "page_url" not in metadata
    client.close()


def test_rate_limit_per_session_answers_politely_and_does_not_process(bot):
    # This server runs with WEBCHAT_RATE_LIMIT=5 (the default of 30 is checked above).
    client = ChatClient(bot)
    info = client.start()
    for _ in range(5):
        assert client.say("hallo")[0]["text"] != TEXTS["rate_limited"]
    refused = client.say("hallo nummer zes")
    assert refused == [{"text": TEXTS["rate_limited"]}]
    assert len(user_events(bot, info["session_id"])) == 5
    # Another session is not affected.
    other = ChatClient(bot)
    other.start()
    assert "Zoë" in other.say("hallo")[0]["text"]
    other.close()
    client.close()


def test_too_long_messages_are_refused(bot):
    client = ChatClient(bot)
    info = client.start()
    assert client.say("a" * 5000) == [{"text": TEXTS["too_long"]}]
    assert user_events(bot, info["session_id"]) == []
    assert "Zoë" in client.say("hallo")[0]["text"]  # the session goes on normally
    client.close()
