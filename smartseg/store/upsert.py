"""Batched INSERT ... ON CONFLICT upserts that work on SQLite and PostgreSQL.

Every writer of source data goes through `upsert`. It only rewrites rows whose values changed (a
re-pull of unchanged data writes nothing) and reports how many rows were inserted, updated and
left alone, which is what a pull's counts and the "nothing changed" guarantee are built on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlmodel import SQLModel

from smartseg.store.models import table_of
from smartseg.store.pg_copy import staged

__all__ = ["UpsertResult", "upsert"]

# SQLite (>= 3.32) allows 32,766 bound parameters per statement.
_SQLITE_MAX_PARAMS = 32_000
_SQLITE_BATCH_ROWS = 1000
# PostgreSQL COPYs batches into a staging table: no parameter limit, and large enough batches
# make the per-batch round trips negligible while memory stays flat.
_COPY_BATCH_ROWS = 20_000


@dataclass(frozen=True, slots=True)
class UpsertResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: UpsertResult) -> UpsertResult:
        return UpsertResult(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
        )

    @property
    def written(self) -> int:
        return self.inserted + self.updated


def upsert(
    bind: Session | Connection,
    model: type[SQLModel] | sa.Table,
    rows: Iterable[Mapping[str, Any]],
    *,
    key: Sequence[str],
    update: Sequence[str] | None = None,
    batch_size: int | None = None,
) -> UpsertResult:
    """Insert `rows` into `model`, updating rows whose `key` columns already exist.

    `update` names the columns a conflict may overwrite (default: every column in the rows except
    the key); a row is only rewritten when one of them differs (IS DISTINCT FROM), so unchanged
    data costs no write. Rows repeating a key within one call collapse to the last one, as a
    stream that re-reads its overlap window produces. Runs in the caller's transaction.
    `batch_size` caps the rows held in memory and merged at once (default 1,000 on SQLite, where
    the parameter limit may lower it further; 20,000 on PostgreSQL, which loads them with COPY).
    """
    table = table_of(model)
    connection = bind.connection() if isinstance(bind, Session) else bind
    dialect = connection.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise ValueError(f"upsert supports sqlite and postgresql, not {dialect}")
    rest = iter(rows)
    first = next(rest, None)
    if first is None:
        return UpsertResult()
    columns = list(first.keys())
    unknown = [c for c in columns if c not in table.c]
    if unknown:
        raise ValueError(f"{table.name} has no column(s) {', '.join(unknown)}")
    update_cols = [c for c in (update if update is not None else columns) if c not in key]
    all_rows = _chain(first, rest)
    if dialect == "postgresql":
        return _upsert_postgresql(
            connection, table, all_rows, columns, key, update_cols, batch_size or _COPY_BATCH_ROWS
        )
    per_batch = max(
        1, min(batch_size or _SQLITE_BATCH_ROWS, _SQLITE_MAX_PARAMS // max(1, len(columns)))
    )
    total = UpsertResult()
    for batch in _batches(all_rows, per_batch):
        total += _upsert_sqlite(connection, table, _last_per_key(batch, key), key, update_cols)
    return total


def _chain(
    first: Mapping[str, Any], rest: Iterator[Mapping[str, Any]]
) -> Iterator[Mapping[str, Any]]:
    yield first
    yield from rest


def _batches(rows: Iterator[Mapping[str, Any]], size: int) -> Iterator[list[Mapping[str, Any]]]:
    while batch := list(islice(rows, size)):
        yield batch


def _last_per_key(batch: list[Mapping[str, Any]], key: Sequence[str]) -> list[Mapping[str, Any]]:
    # PostgreSQL refuses to update one row twice in a statement; the last version wins.
    by_key: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for row in batch:
        by_key[tuple(row[k] for k in key)] = row
    return list(by_key.values())


def _upsert_sqlite(
    connection: Connection,
    table: sa.Table,
    batch: list[Mapping[str, Any]],
    key: Sequence[str],
    update_cols: list[str],
) -> UpsertResult:
    # executemany form: the compiled statement is cached and SQLAlchemy packs the rows into
    # multi-row VALUES itself ("insertmanyvalues"), far faster than a fresh .values(batch).
    index = [table.c[k] for k in key]
    # SQLite reports one change count per statement, so insert new keys first, then rewrite the
    # existing rows that differ; rows inserted a moment ago compare equal and are not rewritten.
    lite = sqlite.insert(table)
    inserted = connection.execute(lite.on_conflict_do_nothing(index_elements=index), batch).rowcount
    updated = 0
    if update_cols:
        rewrite = lite.on_conflict_do_update(
            index_elements=index,
            set_={c: lite.excluded[c] for c in update_cols},
            where=_changed(table, lite, update_cols),
        )
        updated = connection.execute(rewrite, batch).rowcount
    return UpsertResult(
        inserted=inserted, updated=updated, unchanged=len(batch) - inserted - updated
    )


def _upsert_postgresql(
    connection: Connection,
    table: sa.Table,
    rows: Iterator[Mapping[str, Any]],
    columns: list[str],
    key: Sequence[str],
    update_cols: list[str],
    batch_size: int,
) -> UpsertResult:
    total = UpsertResult()
    with staged(connection, table, columns) as stage:
        # Columns with SQL-expression defaults are added to the INSERT by from_select itself.
        pg = postgresql.insert(table).from_select(
            [column.name for column in stage.columns], sa.select(*stage.table.c)
        )
        index = [table.c[k] for k in key]
        merge = (
            pg.on_conflict_do_update(
                index_elements=index,
                set_={c: pg.excluded[c] for c in update_cols},
                where=_changed(table, pg, update_cols),
            )
            if update_cols
            else pg.on_conflict_do_nothing(index_elements=index)
        )
        # xmax is 0 on rows this statement inserted, non-zero on rows it updated; rows the WHERE
        # left alone are not returned. Counting in the database spares shipping a flag per row.
        flag = sa.literal_column("xmax = 0", sa.Boolean).label("inserted")
        written = merge.returning(flag).cte("written")
        new = sa.func.count().filter(written.c.inserted)
        counts = sa.select(new, sa.func.count()).select_from(written)
        for batch in _batches(rows, max(1, batch_size)):
            unique = _last_per_key(batch, key)
            stage.load(unique)
            inserted, changed = connection.execute(counts).one()
            total += UpsertResult(
                inserted=inserted, updated=changed - inserted, unchanged=len(unique) - changed
            )
    return total


def _changed(table: sa.Table, insert: Any, columns: list[str]) -> sa.ColumnElement[bool]:
    return sa.or_(*(table.c[c].is_distinct_from(insert.excluded[c]) for c in columns))
