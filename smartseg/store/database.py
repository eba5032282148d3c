"""Engines and sessions: SQLite (WAL, foreign keys on) by default, PostgreSQL by URL."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.engine.url import URL, make_url
from sqlmodel import Session

__all__ = [
    "DEFAULT_DATABASE_URL",
    "database_url",
    "make_engine",
    "redacted_url",
    "refresh_statistics",
    "session_scope",
]

DEFAULT_DATABASE_URL = "sqlite:///smartseg.db"


def database_url(configured: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """SMARTSEG_DATABASE_URL wins, then the config's `database_url`, then a local SQLite file."""
    env = os.environ if env is None else env
    return env.get("SMARTSEG_DATABASE_URL") or configured or DEFAULT_DATABASE_URL


def redacted_url(url: str | URL) -> str:
    """The URL with its password masked, for logs and errors."""
    return make_url(url).render_as_string(hide_password=True)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`; PostgreSQL URLs use psycopg 3 whatever driver they name."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise _url_error(
            "a database URL such as sqlite:///smartseg.db or postgresql://user@host/db", _mask(url)
        ) from exc
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
        kwargs.setdefault("pool_pre_ping", True)
        return sa.create_engine(parsed, **kwargs)
    if parsed.get_backend_name() != "sqlite":
        raise _url_error("a sqlite:// or postgresql:// URL", redacted_url(parsed))
    engine = sa.create_engine(parsed, **kwargs)
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _url_error(expected: str, got: str) -> Exception:
    from smartseg.errors import ConfigError

    return ConfigError(
        f"expected {expected}, got {got!r}. "
        "Set SMARTSEG_DATABASE_URL or database_url in the config",
        key="database_url",
        expected=expected,
    )


def _mask(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}***" if sep and "@" in rest else url


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    # WAL lets readers (status, preview) run while a pull writes; foreign keys are off by default
    # in SQLite; the busy timeout turns "database is locked" into a short wait.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# Rows SQLite's ANALYZE reads per index: enough for the planner's choices (which index, which
# join order), a few milliseconds per table however large the store. SQLite before 3.32
# ignores the pragma and reads whole indexes, which is slower but still right.
_SQLITE_ANALYSIS_LIMIT = 2000


def refresh_statistics(engine: Engine) -> list[str]:
    """Bring the query planner's statistics up to date after a pull changed the store.

    Evaluation's plans depend on them. Without statistics SQLite cannot skip through
    ix_usage_account_day by account, so a window scan reads all of history instead of its
    days, and it drives the start-date windows from usage rather than from accounts (both
    measured on the bench's stores, whose loader analyzes them the same way). SQLite never
    gathers statistics on its own; PostgreSQL's autovacuum does, but only some time after
    a bulk load, so an evaluation right after the first pull would plan blind. Returns the
    tables analyzed (SQLite: all of them, sampled).
    """
    with engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql(f"PRAGMA analysis_limit={_SQLITE_ANALYSIS_LIMIT}")
            connection.exec_driver_sql("ANALYZE")
            return ["*"]
        # The tables autovacuum would analyze next (more than a tenth of their rows changed
        # since the last analysis), analyzed now.
        stale = (
            connection.execute(
                sa.text(
                    "SELECT relname FROM pg_stat_user_tables "
                    "WHERE schemaname = current_schema() "
                    "AND n_mod_since_analyze > 50 + 0.1 * n_live_tup ORDER BY relname"
                )
            )
            .scalars()
            .all()
        )
        for name in stale:
            connection.exec_driver_sql(f'ANALYZE "{name}"')
        return list(stale)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
