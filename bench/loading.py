"""Writing synthetic batches into the store fast: executemany on SQLite, COPY on PostgreSQL.

Secondary indexes (and on PostgreSQL the key constraints no foreign key needs) are dropped while
a table loads and built again afterwards with their original definitions, so the loaded schema
is the migrated one; `databases.py` checks that it is.
"""

from __future__ import annotations

import contextlib
import io
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import sqlalchemy as sa

from bench.logs import log
from bench.synthetic import (
    Batch,
    Scale,
    generate_accounts,
    generate_contacts,
    generate_usage,
    null_where,
)
from bench.synthetic_facts import (
    generate_activities,
    generate_crm_users,
    generate_invoices,
    generate_nps,
    generate_opportunities,
    generate_subscriptions,
    generate_tickets,
)
from smartseg.store.models import table_of


def check_batch(table: sa.Table, batch: Batch) -> None:
    """Refuse a batch that misses a NOT NULL column, holds a NULL in one, or names no column."""
    unknown = set(batch) - set(table.c.keys())
    if unknown:
        raise ValueError(f"{table.name}: no such columns {sorted(unknown)}")
    for column in table.c:
        if column.nullable or column.autoincrement is True or column.server_default is not None:
            continue
        if column.name not in batch:
            if column.primary_key and isinstance(column.type, sa.Integer):
                continue  # an integer key the database fills
            raise ValueError(f"{table.name}.{column.name} is NOT NULL and not generated")
        values = batch[column.name]
        missing = np.isnat(values) if values.dtype.kind == "M" else values == None  # noqa: E711
        if np.any(missing):
            raise ValueError(f"{table.name}.{column.name} is NOT NULL but has NULLs")


def _sqlite_values(values: np.ndarray) -> list[Any]:
    """A column as the values SQLAlchemy would bind on SQLite (dates and UTC times as text)."""
    if values.dtype.kind == "M":
        unit = np.datetime_data(values.dtype)[0]
        text = np.datetime_as_string(values, unit="D" if unit == "D" else "us")
        if unit != "D":
            text = np.strings.replace(text, "T", " ")
        out = text.astype(object)
        out[np.isnat(values)] = None
        return list(out.tolist())
    if values.dtype.kind == "b":
        return list(values.astype(np.int64).tolist())
    if values.dtype.kind == "f":
        return list(null_where(values, np.isnan(values)).tolist())
    return list(values.tolist())


def _arrow_csv(batch: Batch) -> bytes:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    columns = {}
    for name, values in batch.items():
        if values.dtype.kind == "M" and np.datetime_data(values.dtype)[0] != "D":
            columns[name] = pa.array(values, type=pa.timestamp("us", tz="UTC"), from_pandas=True)
        else:
            columns[name] = pa.array(values, from_pandas=True)
    sink = io.BytesIO()
    pacsv.write_csv(pa.table(columns), sink, pacsv.WriteOptions(include_header=False))
    return sink.getvalue()


class Loader(Protocol):
    """Writes one table at a time: `bulk(table)` around its batches, `write` per batch."""

    def bulk(self, table: sa.Table) -> contextlib.AbstractContextManager[None]: ...

    def write(self, table: sa.Table, batch: Batch) -> int: ...

    def close(self) -> None: ...


class SqliteLoader(Loader):
    """executemany in one transaction per batch, journal and syncs off for the load only."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "foreign_keys=OFF"):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.execute("PRAGMA cache_size=-2000000")

    @contextlib.contextmanager
    def bulk(self, table: sa.Table) -> Iterator[None]:
        """Secondary indexes dropped while the table loads, then built again (the same SQL)."""
        indexes = self.db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND sql IS NOT NULL",
            (table.name,),
        ).fetchall()
        for name, _ in indexes:
            self.db.execute(f'DROP INDEX "{name}"')
        yield
        started = time.perf_counter()
        for _, sql in indexes:
            self.db.execute(sql)
        if indexes:
            log(f"  {table.name}: {len(indexes)} indexes in {time.perf_counter() - started:.1f}s")

    def write(self, table: sa.Table, batch: Batch) -> int:
        check_batch(table, batch)
        names = list(batch)
        sql = (
            f"INSERT INTO {table.name} ({', '.join(names)}) "
            f"VALUES ({', '.join('?' for _ in names)})"
        )
        columns = [_sqlite_values(batch[c]) for c in names]
        self.db.execute("BEGIN")
        self.db.executemany(sql, zip(*columns, strict=True))
        self.db.execute("COMMIT")
        return len(columns[0])

    def close(self) -> None:
        self.db.execute("PRAGMA journal_mode=WAL")  # what the product's engine uses
        self.db.close()


SERIAL_TABLES = "account contact activity ticket nps_response subscription opportunity invoice"
# Indexes of a table that no foreign key depends on, with what builds them again.
_PG_INDEXES = """
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), c.conname,
       pg_get_constraintdef(c.oid)
FROM pg_index i
LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.contype IN ('p', 'u')
WHERE i.indrelid = %s::regclass
  AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f'
                  AND f.conindid = i.indexrelid)
"""


class PostgresLoader(Loader):
    """COPY (CSV written by pyarrow) with foreign-key triggers off for the load only."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.db = psycopg.connect(
            sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        with self.db.cursor() as cursor:
            # Rows link by construction; skip the per-row foreign-key triggers for the load only.
            cursor.execute("SET session_replication_role = replica")
            cursor.execute("SET synchronous_commit = off")
            cursor.execute("SET maintenance_work_mem = '2GB'")
        self.db.commit()

    @contextlib.contextmanager
    def bulk(self, table: sa.Table) -> Iterator[None]:
        """Indexes and key constraints no foreign key needs are dropped while the table loads
        and built again afterwards, with their original names and definitions."""
        with self.db.cursor() as cursor:
            indexes = cursor.execute(_PG_INDEXES, (table.name,)).fetchall()
            for name, _, constraint, _ in indexes:
                if constraint:
                    cursor.execute(f'ALTER TABLE {table.name} DROP CONSTRAINT "{constraint}"')
                else:
                    cursor.execute(f"DROP INDEX {name}")
        self.db.commit()
        yield
        started = time.perf_counter()
        with self.db.cursor() as cursor:
            for _, definition, constraint, constraint_def in indexes:
                if constraint:
                    cursor.execute(
                        f'ALTER TABLE {table.name} ADD CONSTRAINT "{constraint}" {constraint_def}'
                    )
                else:
                    cursor.execute(definition)
        self.db.commit()
        if indexes:
            log(f"  {table.name}: {len(indexes)} indexes in {time.perf_counter() - started:.1f}s")

    def write(self, table: sa.Table, batch: Batch) -> int:
        check_batch(table, batch)
        names = ", ".join(f'"{c}"' for c in batch)
        data = _arrow_csv(batch)
        with (
            self.db.cursor() as cursor,
            cursor.copy(f"COPY {table.name} ({names}) FROM STDIN WITH (FORMAT csv)") as copy,
        ):
            for offset in range(0, len(data), 1 << 24):
                copy.write(data[offset : offset + (1 << 24)])
        self.db.commit()
        return len(next(iter(batch.values())))

    def close(self) -> None:
        with self.db.cursor() as cursor:
            for table in SERIAL_TABLES.split():  # ids were given explicitly: move the sequences on
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 1) FROM {table}))"
                )
        self.db.commit()
        self.db.close()


def load(loader: Loader, scale: Scale) -> dict[str, int]:
    """Generate and write every table; returns rows per table."""
    from smartseg.store import models

    rng = np.random.default_rng(scale.seed)
    counts: dict[str, int] = {}

    def put(model: Any, batches: Iterable[Batch]) -> None:
        table = table_of(model)
        with loader.bulk(table):
            for batch in batches:
                started = time.perf_counter()
                counts[table.name] = counts.get(table.name, 0) + loader.write(table, batch)
                seconds = time.perf_counter() - started
                log(f"  {table.name}: {counts[table.name]:,} rows (write {seconds:.1f}s)")

    put(models.CrmUser, [generate_crm_users()])
    accounts = generate_accounts(rng, scale)
    put(models.Account, [accounts.batch])
    contacts, emails = generate_contacts(rng, scale)
    put(models.Contact, [contacts])
    del contacts
    put(models.Activity, [generate_activities(rng, scale, accounts)])
    put(models.Ticket, [generate_tickets(rng, scale, accounts)])
    put(models.NpsResponse, [generate_nps(rng, scale, emails)])
    subs = generate_subscriptions(rng, scale, accounts)
    put(models.Subscription, [subs])
    put(models.Opportunity, [generate_opportunities(rng, scale, accounts)])
    put(models.Invoice, [generate_invoices(rng, scale, subs)])
    put(models.UsageDaily, generate_usage(rng, scale, accounts, emails))
    return counts
