"""What every command needs: the config (loaded once, on demand) and the database engine."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from smartseg.config import Config, load_config
from smartseg.store import database_url, make_engine

__all__ = ["DEFAULT_CONFIG_PATH", "AppContext"]

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
        if self._engine is None:
            self._engine = make_engine(self.database_url())
        return self._engine
