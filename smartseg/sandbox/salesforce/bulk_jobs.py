"""Bulk API 2.0 jobs: their state and job-info JSON, query snapshots, and ingest processing.

Ingest rows go through `writes` one by one, exactly as REST and sObject Collections writes do,
so a bulk row fails with the same code and message a single-record call would get.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from smartseg.sandbox.salesforce import writes
from smartseg.sandbox.salesforce.bulk_csv import NULL_MARKER, Dialect, Upload, format_value
from smartseg.sandbox.salesforce.errors import SfError
from smartseg.sandbox.salesforce.query import QueryEngine
from smartseg.sandbox.salesforce.schema import FieldDef, ObjectDef
from smartseg.sandbox.salesforce.soql import parse
from smartseg.sandbox.salesforce.store import Store
from smartseg.sandbox.salesforce.values import format_datetime

__all__ = [
    "INGEST_OPERATIONS",
    "QUERY_OPERATIONS",
    "Job",
    "RowResult",
    "process_ingest",
    "snapshot_query",
]

QUERY_OPERATIONS = ("query", "queryAll")
INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
# Salesforce splits ingest data into internal batches of this many rows; each counts against
# the org's daily Bulk API batch allocation.
ROWS_PER_BATCH = 10_000


@dataclass(slots=True)
class RowResult:
    """One processed row: the record id (if known), the row as uploaded, and its outcome."""

    record_id: str
    cells: list[str]
    created: bool = False
    error: str = ""


@dataclass(slots=True)
class Job:
    """One query or ingest job; `kind` is "query" or "ingest"."""

    id: str
    kind: str
    operation: str
    object: str
    dialect: Dialect
    created_by: str
    created: dt.datetime
    api_version: str
    state: str
    external_id: str | None = None
    modstamp: dt.datetime | None = None
    error_message: str | None = None
    # Query jobs: the result snapshot, as formatted CSV lines.
    header_line: str = ""
    lines: list[str] = field(default_factory=list)
    # Ingest jobs: the uploaded data and what became of each row.
    data: bytes | None = None
    header: list[str] = field(default_factory=list)
    results: list[RowResult] = field(default_factory=list)
    unprocessed: list[list[str]] = field(default_factory=list)

    def info(self, *, detail: bool) -> dict[str, Any]:
        """Job info as Salesforce returns it: the short form on create, the full one on GET."""
        version = self.api_version.removeprefix("v")
        out: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": self.created_by,
            "createdDate": format_datetime(self.created),
            "systemModstamp": format_datetime(self.modstamp or self.created),
            "state": self.state,
        }
        if self.external_id:
            out["externalIdFieldName"] = self.external_id
        out.update(concurrencyMode="Parallel", contentType="CSV", apiVersion=float(version))
        if self.kind == "ingest":
            out["contentUrl"] = f"services/data/v{version}/jobs/ingest/{self.id}/batches"
        if detail:
            out["jobType"] = "V2Query" if self.kind == "query" else "V2Ingest"
        out.update(
            lineEnding=self.dialect.line_ending, columnDelimiter=self.dialect.column_delimiter
        )
        if not detail:
            return out
        if self.kind == "query":
            out.update(
                numberRecordsProcessed=len(self.lines) if self.state == "JobComplete" else 0,
                retries=0,
                totalProcessingTime=0,
                isPkChunkingSupported=True,
            )
        else:
            out.update(
                numberRecordsProcessed=len(self.results),
                numberRecordsFailed=sum(1 for r in self.results if r.error),
                retries=0,
                totalProcessingTime=0,
                apiActiveProcessingTime=0,
                apexProcessingTime=0,
            )
        if self.error_message:
            out["errorMessage"] = self.error_message
        return out


def snapshot_query(
    engine: QueryEngine, text: str, include_deleted: bool, dialect: Dialect
) -> tuple[str, str, list[str]]:
    """Run SOQL once (lock held): (object name, CSV header, one CSV line per row).

    Bulk API 2.0 queries take neither COUNT() nor OFFSET."""
    query = parse(text, engine.schema)
    if query.count or query.offset:
        clause = "COUNT()" if query.count else "OFFSET"
        raise SfError("INVALIDJOB", f"{clause} is not supported by Bulk API 2.0 query jobs")
    rows = engine.select(query, include_deleted)
    header = dialect.line(d.name for d in query.fields)
    lines = [dialect.line(format_value(d.type, r.get(d.name)) for d in query.fields) for r in rows]
    return query.obj.name, header, lines


def _columns(job: Job, store: Store, obj: ObjectDef, header: list[str]) -> list[FieldDef]:
    """Resolve the header against the object; a bad header (a field missing or hidden from the
    user by field-level security) fails the whole job, as in Salesforce."""
    columns = []
    for name in header:
        definition = obj.get(name)
        if definition is None or not store.schema.readable(obj, definition):
            raise SfError("InvalidBatch", f"InvalidBatch : Field name not found : {name}")
        columns.append(definition)
    names = {d.name for d in columns}
    if job.operation in ("delete", "hardDelete") and names != {"Id"}:
        raise SfError(
            "InvalidBatch", f"InvalidBatch : The '{job.operation}' batch must contain only ids"
        )
    if job.operation == "update" and "Id" not in names:
        raise SfError("InvalidBatch", "InvalidBatch : Field name not found : Id")
    key = obj.get(job.external_id or "")
    if job.operation == "upsert" and (key is None or key.name not in names):
        raise SfError("InvalidBatch", f"InvalidBatch : Field name not found : {job.external_id}")
    return columns


def _sf_error(exc: SfError) -> str:
    """The sf__Error cell: CODE:message:fields --."""
    return f"{exc.code}:{exc.message}:{','.join(exc.fields)} --"


def _purge(store: Store, obj: ObjectDef, record_id: str) -> None:
    """Remove a soft-deleted record for good; clearing its indexed fields first drops it from
    the external-id indexes, which `put` maintains."""
    record = store.tables[obj.name][record_id]
    indexed = {d.name: None for d in obj.fields.values() if d.external_id or d.unique}
    store.put(obj, {**record, **indexed})
    del store.tables[obj.name][record_id]


def _write(
    store: Store, obj: ObjectDef, operation: str, key: str | None, data: dict[str, Any]
) -> tuple[str, bool]:
    """Apply one row through `writes`; returns (record id, created)."""
    record_id = str(data.get("Id") or "")
    if operation == "insert":
        return writes.create(store, obj, data), True
    if operation == "upsert" and key == "Id" and not record_id:
        return writes.create(store, obj, data), True
    if operation == "upsert":
        assert key is not None
        value = data.get(key)
        if value is None:
            raise SfError("MISSING_ARGUMENT", f"{key} not specified", [key])
        return writes.upsert(store, obj, key, str(value), data)
    if not record_id:
        raise SfError("MISSING_ARGUMENT", f"Id not specified in an {operation} call", ["Id"])
    if operation == "update":
        return writes.update(store, obj, record_id, data), False
    deleted = writes.delete(store, obj, record_id)
    if operation == "hardDelete":
        _purge(store, obj, deleted)
    return deleted, False


def process_ingest(
    job: Job, store: Store, obj: ObjectDef, upload: Upload, fails: Callable[[], bool]
) -> int:
    """Write every row (store lock held), recording per-row results; returns batches used.

    `fails` is the server's "partial" fault: when it fires, that row fails as a locked row would.
    """
    columns = _columns(job, store, obj, upload.header)
    key = None if job.external_id is None else obj.get(job.external_id)
    for cells in upload.rows:
        data = {
            d.name: None if cell == NULL_MARKER else cell
            for d, cell in zip(columns, cells, strict=False)
            if cell != ""
        }
        result = RowResult(str(data.get("Id") or ""), cells)
        try:
            if len(cells) > len(columns):
                raise SfError("TooManyColumns", "Row has more columns than the header")
            if fails():
                raise SfError(
                    "UNABLE_TO_LOCK_ROW",
                    "unable to obtain exclusive access to this record or 1 records",
                )
            result.record_id, result.created = _write(
                store, obj, job.operation, None if key is None else key.name, data
            )
        except SfError as exc:
            result.error = _sf_error(exc)
        job.results.append(result)
    return max(1, math.ceil(len(upload.rows) / ROWS_PER_BATCH))
