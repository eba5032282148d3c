"""What every command needs: the config (loaded once, on demand) and the database engine."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smartseg.config import Config, load_config
from smartseg.errors import ConfigError, SmartsegError
from smartseg.logs import redact
from smartseg.store import current_revision, database_url, head_revision, make_engine, redacted_url

__all__ = ["DEFAULT_CONFIG_PATH", "AppContext", "schema_revision"]

DEFAULT_CONFIG_PATH = Path("config/smartseg.yaml")


@dataclass
class AppContext:
    """Global CLI state. `config_path` is None unless --config or SMARTSEG_CONFIG named a file."""

    config_path: Path | None = None
    debug: bool = False
    _config: Config | None = field(default=None, init=False, repr=False)
    _engine: Engine | None = field(default=None, init=False, repr=False)

    def config(self) -> Config:
        """The loaded config; a missing or invalid file is a ConfigError (exit 2)."""
        if self._config is None:
            self._config = load_config(self.config_path or DEFAULT_CONFIG_PATH)
        return self._config

    def optional_config(self) -> Config | None:
        """The config if one was named or exists at the default path; None otherwise.

        Commands that only need the database (status, db upgrade) work without a config file.
        """
        if self.config_path is None and not DEFAULT_CONFIG_PATH.exists():
            return None
        return self.config()

    def database_url(self) -> str:
        config = self.optional_config()
        return database_url(config.database_url if config else None, os.environ)

    def engine(self) -> Engine:
        """The database engine, once one connection has worked; else a ConfigError naming the
        database (password masked) and the driver's reason, rather than a driver traceback."""
        if self._engine is None:
            engine = make_engine(self.database_url())
            try:
                with engine.connect():
                    pass
            except sa.exc.DBAPIError as exc:
                engine.dispose()
                reason = redact(str(exc.orig or exc).strip().splitlines()[0])
                raise ConfigError(
                    f"cannot open the database {redacted_url(engine.url)} ({reason}). Check "
                    "database_url in the config or SMARTSEG_DATABASE_URL, and that the "
                    "database server is running"
                ) from None
            self._engine = engine
        return self._engine

    def migrated_engine(self) -> Engine:
        """The engine, once its schema is known to be current; otherwise say what to run."""
        engine = self.engine()
        revision = schema_revision(engine)
        if revision != head_revision():
            raise SmartsegError(
                f"the database {redacted_url(engine.url)} is at schema revision {revision}, "
                f"this smartseg needs {head_revision()}; run `smartseg db upgrade`"
            )
        return engine


def schema_revision(engine: Engine) -> str:
    """The schema revision; a database smartseg never migrated is an error saying what to run."""
    revision = current_revision(engine)
    if revision is None or not sa.inspect(engine).has_table("run"):
        raise SmartsegError(
            f"the database {redacted_url(engine.url)} has no smartseg schema yet; "
            "run `smartseg db upgrade` (or `smartseg demo`) first"
        )
    return revision
