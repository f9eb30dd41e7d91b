"""Shared pytest fixtures."""
from __future__ import annotations

import os
import uuid
from typing import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

DEFAULT_TEST_PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """URL of a fresh SQLite database file."""
    return f"sqlite:///{tmp_path / 'cases.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL schema (dropped afterwards).

    Base URL from TEST_PG_URL. The schema is the only entry of the connection's
    search_path, so every table (also alembic_version) lands in it.
    """
    base = make_url(os.environ.get("TEST_PG_URL", DEFAULT_TEST_PG_URL))
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, future=True, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = base.update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
        with admin.connect() as conn:
            # Fail loudly instead of hanging when a test leaked an open transaction.
            conn.execute(text("SET lock_timeout = '10s'"))
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def bot(tmp_path_factory):
    """The real assistant (action server + Rasa with the REST channel) on free
    localhost ports, with its own SQLite tracker and case store."""
    from tests.servers import start_bot

    running = start_bot(tmp_path_factory.mktemp("bot"),
                        extra_env={"IDENTITY_JWT_SECRET": IDENTITY_TEST_SECRET})
    yield running
    running.stop()


IDENTITY_TEST_SECRET = "test-identity-secret-for-the-rest-tests-0123456789"


@pytest.fixture
def pg_schema(monkeypatch):
    """A fresh PostgreSQL schema that Rasa's SQL tracker stores use (POSTGRESQL_SCHEMA).

    Yields (base URL, schema name, autocommit admin engine); dropped afterwards.
    """
    base = make_url(os.environ.get("TEST_PG_URL", DEFAULT_TEST_PG_URL))
    schema = f"ts_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, future=True, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    monkeypatch.setenv("POSTGRESQL_SCHEMA", schema)
    yield base, schema, admin
    with admin.connect() as conn:
        conn.execute(text("SET lock_timeout = '10s'"))
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()
