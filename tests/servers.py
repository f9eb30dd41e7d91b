"""Start the real action server and Rasa server for end-to-end tests.

The processes are the same ones `make run` starts, on free localhost ports,
with their own SQLite tracker store and case store in a temporary folder.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import requests

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def model_path() -> str:
    out = subprocess.run([PY, "scripts/model.py"], cwd=ROOT, check=True, capture_output=True, text=True)
    return str(ROOT / out.stdout.strip())


def wait_for(url: str, procs: List[subprocess.Popen], timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"process exited with {proc.returncode}: {proc.args}")
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise TimeoutError(url)


@dataclass
class Bot:
    """A running assistant: its URLs, environment and processes."""

    workdir: Path
    rasa_url: str
    action_url: str
    env: Dict[str, str]
    procs: List[subprocess.Popen] = field(default_factory=list)

    def say(self, sender: str, text: str, metadata: Optional[Dict[str, Any]] = None,
            timeout: float = 30) -> List[Dict[str, Any]]:
        body: Dict[str, Any] = {"sender": sender, "message": text}
        if metadata is not None:
            body["metadata"] = metadata
        response = requests.post(f"{self.rasa_url}/webhooks/rest/webhook", json=body, timeout=timeout)
        response.raise_for_status()
        return response.json()

    def texts(self, sender: str, text: str, **kwargs: Any) -> str:
        """All bot texts of one turn, joined, for assertions."""
        return "\n".join(m.get("text", "") for m in self.say(sender, text, **kwargs))

    def cases(self) -> List[Dict[str, Any]]:
        import json

        out = subprocess.run([PY, "-m", "bot.cases", "export", "--format", "json"], cwd=ROOT,
                             env=self.env, check=True, capture_output=True, text=True)
        return json.loads(out.stdout)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def start_bot(workdir: Path, extra_env: Optional[Dict[str, str]] = None, model: Optional[str] = None,
              tracker_store: str = "bot.tracker_store.FastSQLTrackerStore") -> Bot:
    """Action server + Rasa server on free ports, with the tracker store of endpoints.yml.

    `model` defaults to the served model; `make bench` passes stock Rasa's model
    and tracker store (`SQL`) for its comparison.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    rasa_port, action_port = free_port(), free_port()
    env = dict(os.environ)
    env.update({
        "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "RASA_TELEMETRY_ENABLED": "false",
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1", "SANIC_HOST": "127.0.0.1",
        "CASES_DB_URL": f"sqlite:///{workdir / 'cases.db'}", "BOT_VAR_DIR": str(workdir),
    })
    env.update(extra_env or {})
    endpoints = workdir / "endpoints.yml"
    endpoints.write_text(
        f'action_endpoint:\n  url: "http://127.0.0.1:{action_port}/webhook"\n'
        f'tracker_store:\n  type: {tracker_store}\n  dialect: "sqlite"\n  db: "{workdir / "tracker.db"}"\n')
    actions = subprocess.Popen(
        [PY, "-m", "rasa_sdk", "--actions", "bot.actions", "-p", str(action_port)], cwd=ROOT, env=env,
        stdout=open(workdir / "actions.log", "w"), stderr=subprocess.STDOUT)
    rasa = subprocess.Popen(
        [PY, "-m", "rasa", "run", "--model", model or model_path(), "-i", "127.0.0.1", "-p", str(rasa_port),
         "--endpoints", str(endpoints), "--credentials", "credentials.yml"], cwd=ROOT, env=env,
        stdout=open(workdir / "rasa.log", "w"), stderr=subprocess.STDOUT)
    bot = Bot(workdir, f"http://127.0.0.1:{rasa_port}", f"http://127.0.0.1:{action_port}", env,
              [actions, rasa])
    try:
        wait_for(f"{bot.action_url}/health", bot.procs)
        wait_for(f"{bot.rasa_url}/", bot.procs)
    except Exception:
        bot.stop()
        raise
    return bot


def new_sender() -> str:
    return f"test-{uuid.uuid4().hex}"
