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

__all__ = ["UpsertResult", "upsert"]

# Bound-parameter ceilings: SQLite >= 3.32 allows 32,766 per statement, PostgreSQL 65,535.
_MAX_PARAMS = {"sqlite": 32_000, "postgresql": 60_000}


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
    batch_size: int = 1000,
) -> UpsertResult:
    """Insert `rows` into `model`, updating rows whose `key` columns already exist.

    `update` names the columns a conflict may overwrite (default: every column in the rows except
    the key); a row is only rewritten when one of them differs (IS DISTINCT FROM), so unchanged
    data costs no write. Rows repeating a key within one call collapse to the last one, as a
    stream that re-reads its overlap window produces. Runs in the caller's transaction.
    """
    table: sa.Table = model if isinstance(model, sa.Table) else model.__table__  # type: ignore[attr-defined]
    connection = bind.connection() if isinstance(bind, Session) else bind
    dialect = connection.dialect.name
    if dialect not in _MAX_PARAMS:
        raise ValueError(f"upsert supports sqlite and postgresql, not {dialect}")
    total = UpsertResult()
    batch_iter = iter(rows)
    first = next(batch_iter, None)
    if first is None:
        return total
    columns = list(first.keys())
    unknown = [c for c in columns if c not in table.c]
    if unknown:
        raise ValueError(f"{table.name} has no column(s) {', '.join(unknown)}")
    update_cols = [c for c in (update if update is not None else columns) if c not in key]
    per_batch = max(1, min(batch_size, _MAX_PARAMS[dialect] // max(1, len(columns))))
    for batch in _batches(_chain(first, batch_iter), per_batch):
        total += _upsert_batch(
            connection, table, _last_per_key(batch, key), key, update_cols, dialect
        )
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


def _upsert_batch(
    connection: Connection,
    table: sa.Table,
    batch: list[Mapping[str, Any]],
    key: Sequence[str],
    update_cols: list[str],
    dialect: str,
) -> UpsertResult:
    # executemany form: the compiled statement is cached and SQLAlchemy packs the rows into
    # multi-row VALUES itself ("insertmanyvalues"), far faster than a fresh .values(batch).
    index = [table.c[k] for k in key]
    if dialect == "postgresql":
        return _upsert_postgresql(connection, table, batch, index, update_cols)
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
    batch: list[Mapping[str, Any]],
    index: list[sa.Column[Any]],
    update_cols: list[str],
) -> UpsertResult:
    # One statement: xmax is 0 on rows this statement inserted, non-zero on rows it updated.
    pg = postgresql.insert(table)
    if not update_cols:
        add_only = pg.on_conflict_do_nothing(index_elements=index).returning(sa.literal(1))
        inserted = len(connection.execute(add_only, batch).all())
        return UpsertResult(inserted=inserted, unchanged=len(batch) - inserted)
    merge: Any = pg.on_conflict_do_update(
        index_elements=index,
        set_={c: pg.excluded[c] for c in update_cols},
        where=_changed(table, pg, update_cols),
    ).returning(sa.literal_column("xmax = 0"))
    flags = connection.execute(merge, batch).scalars().all()
    inserted = sum(1 for flag in flags if flag)
    updated = len(flags) - inserted
    return UpsertResult(inserted=inserted, updated=updated, unchanged=len(batch) - len(flags))


def _changed(table: sa.Table, insert: Any, columns: list[str]) -> sa.ColumnElement[bool]:
    return sa.or_(*(table.c[c].is_distinct_from(insert.excluded[c]) for c in columns))
