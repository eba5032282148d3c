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
    """Apply migrations up to `revision`; returns the revision the database is at afterwards."""
    with engine.begin() as connection:
        command.upgrade(_config(connection), revision)
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
