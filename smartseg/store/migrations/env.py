"""Alembic environment: runs migrations on the connection smartseg hands it (store/migrate.py)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from smartseg.store import models  # noqa: F401  (registers every table on SQLModel.metadata)

target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("smartseg runs migrations through smartseg.store.migrate.upgrade()")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError(
        "offline (SQL script) migrations are not supported; use `smartseg db upgrade`"
    )
run_migrations_online()
