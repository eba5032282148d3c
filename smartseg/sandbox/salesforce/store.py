"""The org's records: one in-memory table per object, indexed by id and by external-id fields.

One re-entrant lock guards everything (tables, indexes, schema changes). Writes go through
`put`, which keeps the unique indexes right and, inside `transaction()`, remembers what it
replaced so an allOrNone batch can be rolled back exactly.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from smartseg.sandbox.salesforce.ids import make_id
from smartseg.sandbox.salesforce.schema import FieldDef, ObjectDef, Schema

__all__ = ["Clock", "Record", "Store", "utc_now"]

Record = dict[str, Any]
Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    """The real clock; servers take a clock argument so tests can fix time."""
    return dt.datetime.now(dt.UTC)


class Store:
    """Tables of records keyed by object name then id; every method expects `lock` held."""

    def __init__(self, schema: Schema, clock: Clock = utc_now) -> None:
        self.lock = threading.RLock()
        self.schema = schema
        self.clock = clock
        self.tables: dict[str, dict[str, Record]] = {o.name: {} for o in schema.objects.values()}
        self._created: dict[str, int] = {}
        self._last_stamp = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
        # (object name, field name) -> casefolded value -> ids holding it
        self._indexes: dict[tuple[str, str], dict[str, set[str]]] = {}
        self._journal: list[tuple[str, str, Record | None]] | None = None
        for obj in schema.objects.values():
            for definition in obj.fields.values():
                if definition.external_id or definition.unique:
                    self._indexes[(obj.name, definition.name)] = {}

    # Time and ids -----------------------------------------------------------------------------

    def stamp(self) -> dt.datetime:
        """Now at ms precision, strictly after every stamp already given or loaded."""
        now = self.clock().astimezone(dt.UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if now <= self._last_stamp:
            now = self._last_stamp + dt.timedelta(milliseconds=1)
        self._last_stamp = now
        return now

    def observe_stamp(self, stamp: dt.datetime) -> None:
        """Loaded data may be stamped later than the clock; new writes must still sort after it."""
        self._last_stamp = max(self._last_stamp, stamp)

    def today(self) -> dt.date:
        return self.clock().astimezone(dt.UTC).date()

    def new_id(self, obj: ObjectDef) -> str:
        number = self._created.get(obj.name, 0) + 1
        self._created[obj.name] = number
        return make_id(obj.key_prefix, number, created=True)

    # Reads ------------------------------------------------------------------------------------

    def object_of(self, record_id: str) -> ObjectDef | None:
        return self.schema.by_prefix.get(record_id[:3])

    def get(self, obj: ObjectDef, record_id: str) -> Record | None:
        table = self.tables[obj.name]
        return (
            table.get(record_id)
            if len(record_id) != 15
            else next((r for key, r in table.items() if key[:15] == record_id), None)
        )

    def find(self, obj: ObjectDef, definition: FieldDef, value: str) -> list[str]:
        """Ids of records whose external-id/unique field equals value (ignoring case)."""
        index = self._indexes.get((obj.name, definition.name))
        if index is None:
            return [
                i
                for i, r in self.tables[obj.name].items()
                if str(r.get(definition.name, "")).casefold() == value.casefold()
            ]
        return sorted(index.get(value.casefold(), ()))

    def add_index(self, obj: ObjectDef, definition: FieldDef) -> None:
        """Index a field that just became an external id or unique (Tooling API)."""
        index: dict[str, set[str]] = {}
        for record_id, record in self.tables[obj.name].items():
            value = record.get(definition.name)
            if value is not None:
                index.setdefault(str(value).casefold(), set()).add(record_id)
        self._indexes[(obj.name, definition.name)] = index

    # Writes -----------------------------------------------------------------------------------

    def put(self, obj: ObjectDef, record: Record) -> None:
        """Insert or replace a record (by its Id), keeping indexes and the undo journal."""
        table, record_id = self.tables[obj.name], record["Id"]
        old = table.get(record_id)
        if self._journal is not None:
            self._journal.append((obj.name, record_id, None if old is None else dict(old)))
        self._reindex(obj.name, record_id, old, record)
        table[record_id] = record

    def _reindex(self, name: str, record_id: str, old: Record | None, new: Record | None) -> None:
        for (obj_name, field_name), index in self._indexes.items():
            if obj_name != name:
                continue
            before = None if old is None else old.get(field_name)
            after = None if new is None else new.get(field_name)
            if before == after:
                continue
            if before is not None:
                index.get(str(before).casefold(), set()).discard(record_id)
            if after is not None:
                index.setdefault(str(after).casefold(), set()).add(record_id)

    @contextmanager
    def transaction(self) -> Iterator[Callable[[], None]]:
        """Collect undo information; the yielded function rolls back every write made so far."""
        outer, self._journal = self._journal, []
        journal = self._journal

        def rollback() -> None:
            for name, record_id, old in reversed(journal):
                table = self.tables[name]
                self._reindex(name, record_id, table.get(record_id), old)
                if old is None:
                    table.pop(record_id, None)
                else:
                    table[record_id] = old
            journal.clear()

        try:
            yield rollback
        finally:
            self._journal = outer
            if outer is not None:
                outer.extend(journal)

    def load(self, obj: ObjectDef, records: list[Record]) -> None:
        """Bulk insert of trusted records (the world), without validation or journaling."""
        table = self.tables[obj.name]
        indexes = [(f, i) for (o, f), i in self._indexes.items() if o == obj.name]
        latest = self._last_stamp
        for record in records:
            table[record["Id"]] = record
            for field_name, index in indexes:
                value = record.get(field_name)
                if value is not None:
                    index.setdefault(str(value).casefold(), set()).add(record["Id"])
            stamp = record["SystemModstamp"]
            latest = max(latest, stamp)
        self._last_stamp = latest
