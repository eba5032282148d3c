"""The naive baseline's data access: the per-entity queries a hand-written script makes.

Through the SQLite driver, one entity (or one entity's related rows) per query, with nothing
cached across rules or entities; values are converted from SQLite's text and integers on
first use, as a script parses only the fields it reads. `naive.py` interprets rules over them.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from smartseg.segmenter.catalogue import RELATED, Related
from smartseg.store import models
from smartseg.store.models import table_of

__all__ = ["Entity", "Row", "Store"]

Row = Mapping[str, Any]
_USAGE = table_of(models.UsageDaily)


class _Record(dict[str, Any]):
    """A row whose columns are converted from the driver's values on first use, as a script
    parses only the fields it reads."""

    __slots__ = ("_raw", "_reader")

    def __init__(self, reader: _Reader, raw: tuple[Any, ...]) -> None:
        super().__init__()
        self._reader, self._raw = reader, raw

    def __missing__(self, name: str) -> Any:
        index = self._reader.index[name]
        value, convert = self._raw[index], self._reader.converters[index]
        self[name] = value = value if convert is None or value is None else convert(value)
        return value


class _Reader:
    """One store table read through the driver: its SELECT list and a converter per column
    (SQLite hands back dates, timestamps and booleans as text and integers)."""

    def __init__(self, table: sa.Table, names: tuple[str, ...] = ()) -> None:
        columns = [table.c[n] for n in names] if names else list(table.columns)
        self.index = {c.name: i for i, c in enumerate(columns)}
        self.select = f"SELECT {', '.join(self.index)} FROM {table.name}"
        self.converters = [_converter(c) for c in columns]

    def rows(self, cursor: sqlite3.Cursor) -> list[Row]:
        return [_Record(self, raw) for raw in cursor]


def _converter(column: sa.Column[Any]) -> Callable[[Any], Any] | None:
    kind = column.type
    if isinstance(kind, sa.TypeDecorator):
        kind = kind.impl_instance
    if isinstance(kind, sa.DateTime):
        return lambda v: dt.datetime.fromisoformat(v).replace(tzinfo=dt.UTC)
    if isinstance(kind, sa.Date):
        return dt.date.fromisoformat
    if isinstance(kind, sa.Boolean):
        return bool
    return None


def _param(value: Any) -> Any:
    """A value bound the way the store writes it on SQLite."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


class Store:
    """The queries a script makes, through the SQLite driver: one entity (or one entity's
    related rows) per query."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.queries = 0
        self._readers = {
            name: _Reader(table_of(model))
            for name, model in (("account", models.Account), ("contact", models.Contact))
        }
        self._readers |= {r.name: _Reader(table_of(r.model)) for r in RELATED.values()}
        self._usage = _Reader(_USAGE, ("day", "feature", "user_key", "events", "minutes"))

    def _rows(self, reader: _Reader, where: str, *params: Any) -> list[Row]:
        self.queries += 1
        return reader.rows(self.db.execute(f"{reader.select} WHERE {where}", params))

    def live_ids(self, level: str) -> list[int]:
        self.queries += 1
        query = f"SELECT id FROM {level} WHERE deleted_at IS NULL ORDER BY id"
        return [int(r[0]) for r in self.db.execute(query)]

    def row(self, level: str, entity_id: int | None) -> Row | None:
        if entity_id is None:
            return None
        found = self._rows(self._readers[level], "id = ?", entity_id)
        return found[0] if found else None

    def usage(self, level: str, entity_id: int, before: dt.date) -> list[Row]:
        key = "account_id" if level == "account" else "contact_id"
        where = f"{key} = ? AND day < ? ORDER BY day, feature, user_key"
        return self._rows(self._usage, where, entity_id, _param(before))

    def related(self, related: Related, level: str, entity_id: int) -> list[Row]:
        """The entity's rows of a related table: live ones, a record held in both CRMs once."""
        live = " AND deleted_at IS NULL" if related.live_only else ""
        where = f"{related.group_by[level]} = ?{live} ORDER BY id"
        rows = self._rows(self._readers[related.name], where, entity_id)
        if not related.mirror or not rows:
            return rows
        return self._first_copies(related, rows, peers_loaded=level == "account")

    def _first_copies(self, related: Related, rows: list[Row], *, peers_loaded: bool) -> list[Row]:
        """Of each record copied into both CRMs, the copy of the preferred source. Copies share
        the mirror columns (account, kind, time): an account's rows hold all their peers, a
        contact's are read again by account."""
        reader = self._readers[related.name]
        live = " AND deleted_at IS NULL" if related.live_only else ""
        peers: dict[int, Row] = {int(r["id"]): r for r in rows}
        accounts = sorted({r["account_id"] for r in rows if r["account_id"] is not None})
        if accounts and not peers_loaded:
            marks = ", ".join("?" for _ in accounts)
            found = self._rows(reader, f"account_id IN ({marks}){live}", *accounts)
            peers.update({int(r["id"]): r for r in found})
        for row in rows:
            if row["account_id"] is None:
                same = [f"{c} IS NULL" if row[c] is None else f"{c} = ?" for c in related.mirror]
                values = [_param(row[c]) for c in related.mirror if row[c] is not None]
                found = self._rows(reader, " AND ".join(same) + live, *values)
                peers.update({int(r["id"]): r for r in found})
        groups: dict[tuple[Any, ...], Row] = {}
        for peer in peers.values():
            mirror = tuple(peer[c] for c in related.mirror)
            best = groups.get(mirror)
            if best is None or _preference(related, peer) < _preference(related, best):
                groups[mirror] = peer
        kept = {int(r["id"]) for r in groups.values()}
        return [r for r in rows if int(r["id"]) in kept]


def _preference(related: Related, row: Row) -> tuple[int, str, int]:
    return (0 if row["source"] == related.prefer else 1, str(row["source"]), int(row["id"]))


class Entity:
    """One live account or contact; its related rows are read on first use, for one rule."""

    def __init__(self, store: Store, level: str, row: Row, day: dt.date) -> None:
        self.store, self.level, self.row, self.day = store, level, row, day
        self._usage: list[Row] | None = None
        self._related: dict[str, list[Row]] = {}
        self._account: tuple[Row | None] | None = None

    @property
    def id(self) -> int:
        return int(self.row["id"])

    def account(self) -> Row | None:
        """The account row (the entity itself for accounts)."""
        if self.level == "account":
            return self.row
        if self._account is None:
            self._account = (self.store.row("account", self.row["account_id"]),)
        return self._account[0]

    def usage(self) -> list[Row]:
        if self._usage is None:
            self._usage = self.store.usage(self.level, self.id, self.day)
        return self._usage

    def related(self, table: str) -> list[Row]:
        if table not in self._related:
            self._related[table] = self.store.related(RELATED[table], self.level, self.id)
        return self._related[table]
