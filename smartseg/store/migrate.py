"""Schema migrations: `smartseg db upgrade` and the helpers tests use to compare schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from smartseg.store import models  # noqa: F401  (registers the tables)

__all__ = ["current_revision", "head_revision", "schema_drift", "upgrade"]

_MIGRATIONS = Path(__file__).with_name("migrations")


def _config(connection: Any = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Apply migrations up to `revision`; returns the revision the database is at afterwards.

    On SQLite foreign keys are off while migrations run. SQLite cannot alter a constraint, so
    batch mode copies the table and drops the old one, and with foreign keys on, that DROP
    first deletes every row and fires ON DELETE actions: recreating `membership` emptied the
    task ledger (its rows cascade from memberships), which would make the next sync create
    every task again. SQLite's own procedure for schema changes is the one here: keys off
    outside the transaction, change, `PRAGMA foreign_key_check` before committing, keys on.
    """
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Outside any transaction (the driver begins one before the first write only),
            # where SQLite honours it.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                command.upgrade(_config(connection), revision)
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(
                            f"migrating to {revision} would break {len(broken)} foreign keys "
                            f"(first: {tuple(broken[0])}); nothing was changed"
                        )
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()
    return current_revision(engine)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def schema_drift(engine: Engine) -> list[Any]:
    """Differences between the migrated database and the models (empty when they agree)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))
