"""Start the production profile for tests: one action server and several Rasa
servers, through ``scripts/run_production.sh`` (the same command lines as in
production), on PostgreSQL and Redis.

Isolation: a fresh PostgreSQL schema in the test database (tracker store via
``POSTGRESQL_SCHEMA``, case store via ``search_path``) and a fresh Redis key
prefix in a dedicated database index. :meth:`Cluster.stop` removes both.
"""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import DEFAULT_TEST_PG_URL
from tests.servers import ROOT, free_port, model_path, wait_for

REDIS_TEST_DB = int(os.environ.get("TEST_REDIS_DB", "11"))


@dataclass
class Cluster:
    workdir: Path
    env: Dict[str, str]
    rasa_urls: List[str]
    action_url: str
    schema: str
    pg_url: str  # admin URL of the test database
    procs: Dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def cases_db_url(self) -> str:
        return self.env["CASES_DB_URL"]

    def say(self, instance: int, sender: str, message: str, metadata: Optional[Dict[str, Any]] = None,
            timeout: float = 60) -> List[Dict[str, Any]]:
        body: Dict[str, Any] = {"sender": sender, "message": message}
        if metadata is not None:
            body["metadata"] = metadata
        response = requests.post(f"{self.rasa_urls[instance]}/webhooks/rest/webhook", json=body, timeout=timeout)
        response.raise_for_status()
        return response.json()

    def texts(self, instance: int, sender: str, message: str, **kwargs: Any) -> str:
        return "\n".join(m.get("text", "") for m in self.say(instance, sender, message, **kwargs))

    def kill(self, name: str) -> None:
        """SIGKILL one process, as when a machine or pod disappears."""
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=20)

    def events(self, sender: Optional[str] = None) -> List[Dict[str, Any]]:
        """Rows of the tracker store's events table (raw, as stored)."""
        engine = create_engine(self.pg_url, future=True)
        try:
            with engine.connect() as conn:
                query = f'SELECT id, sender_id, type_name, timestamp, data FROM "{self.schema}".events'
                params = {}
                if sender is not None:
                    query += " WHERE sender_id = :sender"
                    params["sender"] = sender
                rows = conn.execute(text(query + " ORDER BY id"), params).mappings().all()
                return [dict(r) for r in rows]
        finally:
            engine.dispose()

    def logs(self) -> str:
        return "\n".join(p.read_text(encoding="utf-8", errors="replace")
                         for p in sorted(self.workdir.glob("*.log")))

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()

    def cleanup(self) -> None:
        import redis

        engine = create_engine(self.pg_url, future=True, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text("SET lock_timeout = '10s'"))
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
        finally:
            engine.dispose()
        client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_TEST_DB)
        for key in client.scan_iter(f"{self.env['REDIS_KEY_PREFIX']}:*"):
            client.delete(key)


def start_production(workdir: Path, instances: int = 2, extra_env: Optional[Dict[str, str]] = None,
                     instance_env: Optional[List[Dict[str, str]]] = None) -> Cluster:
    """Start ``instances`` Rasa servers and one action server in the production profile."""
    workdir.mkdir(parents=True, exist_ok=True)
    base = make_url(os.environ.get("TEST_PG_URL", DEFAULT_TEST_PG_URL))
    schema = f"prod_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, future=True, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    finally:
        admin.dispose()
    cases_url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    action_port = free_port()
    env = dict(os.environ)
    env.update({
        "PYTHONPATH": str(ROOT), "PRODUCTION_ENV_FILE": str(workdir / "no.env"), "PRODUCTION_LOCAL_KEY": "0",
        "BOT_VAR_DIR": str(workdir), "RASA_MODEL": model_path(),
        "ACTION_HOST": "127.0.0.1", "ACTION_PORT": str(action_port),
        "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{action_port}/webhook",
        "TRACKER_DB_HOST": base.host or "127.0.0.1", "TRACKER_DB_PORT": str(base.port or 5432),
        "TRACKER_DB_NAME": base.database or "test", "TRACKER_DB_USER": base.username or "postgres",
        "TRACKER_DB_PASSWORD": base.password or "", "POSTGRESQL_SCHEMA": schema,
        "SQL_POOL_SIZE": "5", "SQL_MAX_OVERFLOW": "5",
        "REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6379", "REDIS_LOCK_DB": str(REDIS_TEST_DB),
        "REDIS_KEY_PREFIX": f"t{uuid.uuid4().hex[:10]}", "CASES_DB_URL": cases_url,
        "TRACKER_ENCRYPTION_KEYS": _fernet_key(), "WEBCHAT_SECRET": secrets.token_hex(32),
    })
    env.update(extra_env or {})
    ports = [free_port() for _ in range(instances)]
    cluster = Cluster(workdir, env, [f"http://127.0.0.1:{p}" for p in ports], f"http://127.0.0.1:{action_port}",
                      schema, base.render_as_string(hide_password=False))
    script = str(ROOT / "scripts" / "run_production.sh")
    try:
        cluster.procs["actions"] = subprocess.Popen(
            ["bash", script, "actions"], cwd=ROOT, env=env,
            stdout=open(workdir / "actions.log", "w"), stderr=subprocess.STDOUT)
        for index, port in enumerate(ports):
            own = dict(env, RASA_PORT=str(port), **((instance_env or [{}] * instances)[index]))
            name = f"rasa{'AB'[index] if index < 2 else index}"
            cluster.procs[name] = subprocess.Popen(
                ["bash", script, "rasa"], cwd=ROOT, env=own,
                stdout=open(workdir / f"{name}.log", "w"), stderr=subprocess.STDOUT)
        procs = list(cluster.procs.values())
        wait_for(f"{cluster.action_url}/health", procs, timeout=240)
        for url in cluster.rasa_urls:
            wait_for(f"{url}/", procs, timeout=240)
    except Exception:
        cluster.stop()
        cluster.cleanup()
        raise
    return cluster


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")
