"""Running SOQL for the REST API: result pages of up to 2,000 rows and query cursors.

The ids matching a query are snapshotted once, when it runs; later pages render those records
as they are when the page is fetched, which is how a Salesforce query locator behaves for the
rows it already selected.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from smartseg.sandbox.salesforce.errors import SfError
from smartseg.sandbox.salesforce.ids import to_18
from smartseg.sandbox.salesforce.schema import FieldDef, ObjectDef, Schema
from smartseg.sandbox.salesforce.soql import Query, parse
from smartseg.sandbox.salesforce.soql_eval import compile_where, sort_records
from smartseg.sandbox.salesforce.store import Record, Store
from smartseg.sandbox.salesforce.values import render

__all__ = ["DEFAULT_BATCH", "Cursor", "QueryEngine", "batch_size"]

DEFAULT_BATCH = 2000
MIN_BATCH = 200
_MAX_CURSORS = 500


@dataclass(slots=True)
class Cursor:
    obj: ObjectDef
    fields: tuple[FieldDef, ...]
    ids: list[str]
    batch: int
    endpoint: str  # "query" or "queryAll": the path the next pages live under


def batch_size(header: str | None) -> int:
    """The Sforce-Query-Options batchSize (200..2,000; a hint, so out-of-range values clamp)."""
    if not header:
        return DEFAULT_BATCH
    for option in header.split(","):
        key, _, value = option.strip().partition("=")
        if key.strip().lower() == "batchsize" and value.strip().isdigit():
            return min(max(int(value), MIN_BATCH), DEFAULT_BATCH)
    return DEFAULT_BATCH


class QueryEngine:
    """Runs queries against one store and remembers their cursors."""

    def __init__(self, store: Store, schema: Schema) -> None:
        self.store = store
        self.schema = schema
        self._cursors: OrderedDict[str, Cursor] = OrderedDict()
        self._next_cursor = 0

    def select(self, query: Query, include_deleted: bool) -> list[Record]:
        """The matching records in result order (LIMIT and OFFSET applied); lock must be held."""
        predicate = compile_where(query.where, self.store.today())
        table = self.store.tables[query.obj.name].values()
        rows = [r for r in table if (include_deleted or not r["IsDeleted"]) and predicate(r)]
        if query.order:
            rows = sort_records(rows, query.order)
        end = None if query.limit is None else query.offset + query.limit
        return rows[query.offset : end]

    def run(
        self, text: str, *, include_deleted: bool, batch: int, version: str, endpoint: str
    ) -> dict[str, Any]:
        """Execute SOQL and return the first page as the REST API shapes it."""
        with self.store.lock:
            query = parse(text, self.schema)
            rows = self.select(query, include_deleted)
            if query.count:
                return {"totalSize": len(rows), "done": True, "records": []}
            cursor = Cursor(query.obj, query.fields, [r["Id"] for r in rows], batch, endpoint)
            return self._page(cursor, self._remember(cursor), 0, version)

    def more(self, locator: str, version: str) -> dict[str, Any]:
        """A later page: `locator` is the last path part of nextRecordsUrl (cursor-offset)."""
        cursor_id, _, offset = locator.rpartition("-")
        with self.store.lock:
            cursor = self._cursors.get(cursor_id)
            if cursor is None or not offset.isdigit() or int(offset) > len(cursor.ids):
                raise SfError("INVALID_QUERY_LOCATOR", "invalid query locator")
            return self._page(cursor, cursor_id, int(offset), version)

    def _remember(self, cursor: Cursor) -> str:
        self._next_cursor += 1
        cursor_id = to_18(f"01g5g0000{self._next_cursor:06d}")
        self._cursors[cursor_id] = cursor
        while len(self._cursors) > _MAX_CURSORS:
            self._cursors.popitem(last=False)
        return cursor_id

    def _page(self, cursor: Cursor, cursor_id: str, offset: int, version: str) -> dict[str, Any]:
        end = min(offset + cursor.batch, len(cursor.ids))
        table = self.store.tables[cursor.obj.name]
        records = [
            render_record(cursor.obj, table[i], cursor.fields, version)
            for i in cursor.ids[offset:end]
        ]
        page: dict[str, Any] = {"totalSize": len(cursor.ids), "done": end >= len(cursor.ids)}
        if end < len(cursor.ids):
            page["nextRecordsUrl"] = f"/services/data/{version}/{cursor.endpoint}/{cursor_id}-{end}"
        else:
            self._cursors.pop(cursor_id, None)
        page["records"] = records
        return page


def render_record(
    obj: ObjectDef, record: Record, fields: tuple[FieldDef, ...] | None, version: str
) -> dict[str, Any]:
    """A record as JSON: attributes first, then the fields in order (all fields if None)."""
    out: dict[str, Any] = {
        "attributes": {
            "type": obj.name,
            "url": f"/services/data/{version}/sobjects/{obj.name}/{record['Id']}",
        }
    }
    for definition in obj.fields.values() if fields is None else fields:
        out[definition.name] = render(definition.type, record.get(definition.name))
    return out
