"""The loaded database for a scale, built once and cached: a SQLite file or a PostgreSQL database.

SQLite files live under a cache folder and PostgreSQL databases are named for their scale; a
marker written when the load completes (a JSON file, a database comment) lets a later run reuse
them, after applying any migration added since.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bench.loading import PostgresLoader, SqliteLoader, load
from bench.logs import log
from bench.synthetic import Scale
from smartseg.store import make_engine, refresh_statistics, upgrade

__all__ = ["Database", "prepare_database", "reset_ledgers", "server_version"]


@dataclass(slots=True)
class Database:
    """A loaded database: its kind ("sqlite" or "postgresql"), URL, engine and load figures."""

    kind: str
    url: str
    engine: Engine
    load: dict[str, Any]


def _pg_urls(admin_url: str, scale: Scale) -> tuple[str, str]:
    name = f"smartseg_bench_{scale.tag}"[:63]
    url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    return name, url


def prepare_database(
    kind: str, scale: Scale, *, cache_dir: Path, admin_url: str | None = None, reuse: bool = True
) -> Database:
    """The loaded database for `scale`: reused when `reuse` finds a complete one, else built.
    SQLite files go under `cache_dir`; PostgreSQL needs `admin_url`, a URL whose user may
    create databases."""
    if kind == "sqlite":
        return _sqlite_database(cache_dir, scale, reuse=reuse)
    if admin_url is None:
        raise ValueError("a PostgreSQL database needs an admin URL (one that may create databases)")
    return _postgres_database(admin_url, scale, reuse=reuse)


def server_version(database: Database) -> str:
    """The database server's version (SQLite: the library's)."""
    if database.kind == "sqlite":
        return sqlite3.sqlite_version
    with database.engine.connect() as connection:
        return str(connection.execute(sa.text("SHOW server_version")).scalar())


def _sqlite_database(cache_dir: Path, scale: Scale, *, reuse: bool) -> Database:
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"smartseg_bench_{scale.tag}.db"
    marker = path.with_suffix(".json")  # written once the load is complete
    url = f"sqlite:///{path}"
    if reuse and path.exists() and marker.exists():
        log(f"reusing {path}")
        engine = make_engine(url)
        upgrade(engine)  # migrations added since the load
        refresh_statistics(engine)  # as a pull leaves them (earlier loads analyzed in full)
        return Database("sqlite", url, engine, _reused(marker.read_text()))
    for stale in (path, marker, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    log(f"loading {path}")
    started = time.perf_counter()
    loader = SqliteLoader(path)
    counts = load(loader, scale)
    loaded = time.perf_counter() - started
    loader.close()
    log("planner statistics, as smartseg's pull gathers them")
    analyze_started = time.perf_counter()
    engine = make_engine(url)
    refresh_statistics(engine)
    engine.dispose()
    info = _load_info(scale, counts, loaded, time.perf_counter() - analyze_started)
    info["file_mb"] = round(path.stat().st_size / 2**20)
    engine = make_engine(url)
    _check_schema(engine)
    marker.write_text(json.dumps(info))
    return Database("sqlite", url, engine, {**info, "reused": False})


def _postgres_database(admin_url: str, scale: Scale, *, reuse: bool) -> Database:
    name, url = _pg_urls(admin_url, scale)
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            # The database's comment is the marker: set once the load is complete.
            comment = connection.execute(
                sa.text(
                    "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                    "WHERE datname = :name"
                ),
                {"name": name},
            ).scalar()
            if reuse and comment:
                log(f"reusing database {name}")
                engine = make_engine(url)
                upgrade(engine)  # migrations added since the load
                return Database("postgresql", url, engine, _reused(comment))
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine = make_engine(url)
        upgrade(engine)
        log(f"loading database {name}")
        started = time.perf_counter()
        loader = PostgresLoader(url)
        counts = load(loader, scale)
        loader.close()
        loaded = time.perf_counter() - started
        log("VACUUM ANALYZE")
        analyze_started = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("VACUUM (ANALYZE)"))
            size = connection.execute(sa.text("SELECT pg_database_size(current_database())"))
            info = _load_info(scale, counts, loaded, time.perf_counter() - analyze_started)
            info["database_mb"] = round(int(size.scalar() or 0) / 2**20)
        _check_schema(engine)
        with admin.connect() as connection:
            text = json.dumps(info).replace("'", "''")
            connection.execute(sa.text(f"COMMENT ON DATABASE \"{name}\" IS '{text}'"))
        return Database("postgresql", url, engine, {**info, "reused": False})
    finally:
        admin.dispose()


def _reused(marker: str) -> dict[str, Any]:
    return {**json.loads(marker), "reused": True}


def _check_schema(engine: Engine) -> None:
    """The load dropped and rebuilt indexes: the schema must still be the migrated one."""
    from smartseg.store import schema_drift

    drift = schema_drift(engine)
    if drift:
        raise RuntimeError(f"the loaded schema differs from the models: {drift}")


def _load_info(
    scale: Scale, counts: dict[str, int], seconds: float, analyze: float
) -> dict[str, Any]:
    return {
        "scale": scale.as_json(),
        "rows": counts,
        "load_seconds": round(seconds, 1),
        "analyze_seconds": round(analyze, 1),
    }


def reset_ledgers(engine: Engine) -> None:
    """Forget earlier evaluations, so the first one sees everyone enter."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text("TRUNCATE task_ledger, membership, segment, run"))
        else:
            for table in ("task_ledger", "membership", "segment", "run"):
                connection.execute(sa.text(f"DELETE FROM {table}"))
    with engine.connect() as connection:
        connection.execute(sa.text("ANALYZE membership"))
        connection.commit()
