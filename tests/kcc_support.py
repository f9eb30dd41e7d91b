"""Helpers for the KCC tests: staff accounts, a console client (HTTP, like the
console's JS) and a citizen on the website chat (socket.io)."""
from __future__ import annotations

import re
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

import requests

from tests.servers import ROOT
from tests.test_webchat_channel import ChatClient

PASSWORD = "een-lang-test-wachtwoord"


def add_staff(bot: Any, username: str, role: str = "kcc", password: str = PASSWORD) -> None:
    done = subprocess.run([sys.executable, "-m", "bot.kcc", "add-user", username, "--role", role,
                           "--password-stdin"], input=password + "\n", cwd=ROOT, env=bot.env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


class Console:
    """An employee's browser session on /kcc, speaking the console's JSON API."""

    def __init__(self, bot: Any, username: str, password: str = PASSWORD) -> None:
        self.base = bot.rasa_url
        self.http = requests.Session()
        form = self.http.get(f"{self.base}/staff/login", params={"next": "/kcc"}, timeout=10)
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        done = self.http.post(f"{self.base}/staff/login", allow_redirects=False, timeout=20, data={
            "username": username, "password": password, "csrf_token": token, "next": "/kcc"})
        assert done.status_code == 303, done.text
        page = self.http.get(f"{self.base}/kcc", timeout=10)
        self.csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.http.get(self.base + path, params=params, timeout=30,
                             headers={"X-Requested-With": "fetch"})

    def post(self, path: str, body: Optional[Dict[str, Any]] = None, csrf: bool = True) -> requests.Response:
        headers = {"X-Requested-With": "fetch"}
        if csrf:
            headers["X-CSRF-Token"] = self.csrf
        return self.http.post(self.base + path, json=body or {}, headers=headers, timeout=30)

    def snapshot(self, conversation: Optional[int] = None) -> Dict[str, Any]:
        params: Dict[str, Any] = {"wait": 0}
        if conversation:
            params["conversation"] = conversation
        response = self.get("/kcc/api/poll", **params)
        assert response.status_code == 200, response.text
        return response.json()

    def entry_for(self, predicate, timeout: float = 20) -> Dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.snapshot()["queue"] if predicate(e)]
            if found:
                return found[-1]
            assert time.monotonic() < deadline, "no such queue entry"
            time.sleep(0.3)

    def conversation(self, entry_id: int) -> Dict[str, Any]:
        return self.snapshot(entry_id)["conversation"]

    def accept(self, entry_id: int) -> requests.Response:
        return self.post(f"/kcc/api/conversations/{entry_id}/accept")

    def send(self, entry_id: int, text: str) -> requests.Response:
        return self.post(f"/kcc/api/conversations/{entry_id}/messages", {"text": text})

    def hand_back(self, entry_id: int) -> requests.Response:
        return self.post(f"/kcc/api/conversations/{entry_id}/handback")


class Citizen(ChatClient):
    """A citizen on the website chat who also hears the KCC state."""

    EVENTS = ChatClient.EVENTS + ("kcc_state",)

    def __init__(self, bot: Any) -> None:
        super().__init__(bot)
        self.seen: List[Any] = []

    def wait_for(self, event: str, predicate=lambda data: True, timeout: float = 30) -> Any:
        """The first ``event`` whose data matches (earlier events are kept in ``seen``)."""
        deadline = time.monotonic() + timeout
        while True:
            name, data = self.next(*self.EVENTS, timeout=max(0.1, deadline - time.monotonic()))
            self.seen.append((name, data))
            if name == event and predicate(data):
                return data

    def wait_text(self, part: str, timeout: float = 30) -> Dict[str, Any]:
        return self.wait_for("bot_uttered", lambda d: part in (d or {}).get("text", ""), timeout)
