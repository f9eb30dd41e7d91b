"""Alembic environment of the case store.

Used programmatically by ``CaseStore.migrate()``, which hands over an open
connection in ``config.attributes["connection"]`` (so SQLite pragmas and a
PostgreSQL ``search_path`` of the store's engine apply to the migration too).
Without it, ``sqlalchemy.url`` of the config is used.
"""
from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

from bot.cases.models import metadata

config = context.config

# Arbitrary constant: serialises concurrent `upgrade head` runs on PostgreSQL
# (bot, action server and staff CLI may all start at once).
_ADVISORY_LOCK_ID = 74802026


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"), future=True)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
