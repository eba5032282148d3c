"""Bulk API 2.0 under /services/data/vNN.N/jobs: query jobs and ingest jobs, for `sf.bulk2`.

Jobs run synchronously: a query is snapshotted when its job is created and reports JobComplete
on the first GET; an ingest job is processed when it is closed (state UploadComplete). The
wire shapes (job info, CSV pages with Sforce-Locator, results files) follow the real API.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from smartseg.sandbox.http import Request, Response, json_response
from smartseg.sandbox.salesforce.bulk_csv import DELIMITERS, LINE_ENDINGS, Dialect, parse_upload
from smartseg.sandbox.salesforce.bulk_jobs import (
    INGEST_OPERATIONS,
    QUERY_OPERATIONS,
    Job,
    process_ingest,
    snapshot_query,
)
from smartseg.sandbox.salesforce.errors import SfError
from smartseg.sandbox.salesforce.ids import make_id
from smartseg.sandbox.salesforce.rest import body_object

if TYPE_CHECKING:
    from smartseg.sandbox.salesforce.server import SalesforceServer

__all__ = ["MAX_UPLOAD_BYTES", "BulkApi", "register"]

MAX_UPLOAD_BYTES = 150 * 1024 * 1024
_TERMINAL = ("JobComplete", "Failed", "Aborted")
_DELETABLE = ("UploadComplete", *_TERMINAL)
_CSV = "text/csv"


def _job_error(message: str) -> SfError:
    return SfError("INVALIDJOB", message)


def _state_error(message: str) -> SfError:
    return SfError("INVALIDJOBSTATE", message)


def _dialect(body: dict[str, Any]) -> Dialect:
    delimiter = body.get("columnDelimiter") or "COMMA"
    ending = body.get("lineEnding") or "LF"
    if delimiter not in DELIMITERS:
        raise _job_error(
            f"Invalid columnDelimiter: {delimiter}; expected one of {sorted(DELIMITERS)}"
        )
    if ending not in LINE_ENDINGS:
        raise _job_error(f"Invalid lineEnding: {ending}; expected LF or CRLF")
    return Dialect(delimiter, ending)


def _csv(text: str, headers: dict[str, str] | None = None) -> Response:
    return Response(200, text.encode(), {"Content-Type": _CSV, **(headers or {})})


def _locator(offset: int) -> str:
    """An opaque locator, as Salesforce's look: the next row offset in unpadded base64."""
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def _offset(locator: str, total: int) -> int:
    try:
        text = base64.b64decode(locator + "=" * (-len(locator) % 4), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        text = ""
    if not text.isdigit() or int(text) > total:
        raise SfError("INVALID_QUERY_LOCATOR", f"Invalid locator: {locator}")
    return int(text)


def _max_records(request: Request) -> int | None:
    raw = request.arg("maxRecords")
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise SfError("INVALIDPARAMETER", f"maxRecords must be a positive integer, not {raw}")
    return int(raw)


class BulkApi:
    """The org's Bulk API 2.0 jobs and their routes; all state is guarded by the store lock."""

    def __init__(self, server: SalesforceServer) -> None:
        self.server = server
        self.store = server.store
        self.jobs: dict[str, Job] = {}
        self._created = 0

    # Jobs ---------------------------------------------------------------------------------

    def _new_job(
        self, request: Request, kind: str, operation: str, obj: str, dialect: Dialect, state: str
    ) -> Job:
        self._created += 1
        job = Job(
            id=make_id("750", self._created, created=True),
            kind=kind,
            operation=operation,
            object=obj,
            dialect=dialect,
            created_by=self.server.ids.integration_user,
            created=self.store.stamp(),
            api_version=request.params["version"],
            state=state,
        )
        self.jobs[job.id] = job
        return job

    def _job(self, request: Request, kind: str) -> Job:
        job = self.jobs.get(request.params["id"])
        if job is None or job.kind != kind:
            raise SfError("NOT_FOUND", "The requested resource does not exist", status=404)
        return job

    def _set_state(self, job: Job, state: str) -> None:
        job.state = state
        job.modstamp = self.store.stamp()

    def list_jobs(self, kind: str) -> Response:
        with self.store.lock:
            records = [j.info(detail=False) for j in self.jobs.values() if j.kind == kind]
        return json_response({"done": True, "records": records, "nextRecordsUrl": None})

    def get_job(self, request: Request, kind: str) -> Response:
        with self.store.lock:
            job = self._job(request, kind)
            if job.kind == "query" and job.state == "UploadComplete":
                self._set_state(job, "JobComplete")
            return json_response(job.info(detail=True))

    def delete_job(self, request: Request, kind: str) -> Response:
        with self.store.lock:
            job = self._job(request, kind)
            if job.state not in _DELETABLE:
                raise _state_error(f"Deleting a job in state {job.state} is not allowed")
            del self.jobs[job.id]
        return json_response(None, 204)

    def _abort(self, job: Job) -> None:
        if job.state in _TERMINAL:
            verb = {"JobComplete": "Completed", "Failed": "Failed", "Aborted": "Aborted"}
            raise _state_error(f"Aborting already {verb[job.state]} Job not allowed")
        if job.data is not None and not job.results:
            job.unprocessed = parse_upload(job.data, job.dialect).rows
        self._set_state(job, "Aborted")

    def _patch_state(self, request: Request) -> str:
        state = body_object(request).get("state")
        if state not in ("UploadComplete", "Aborted"):
            raise _state_error(f"Invalid state: {state}; expected UploadComplete or Aborted")
        return str(state)

    # Query jobs ---------------------------------------------------------------------------

    def create_query(self, request: Request) -> Response:
        body = body_object(request)
        operation = body.get("operation")
        if operation not in QUERY_OPERATIONS:
            raise _job_error(f"Invalid operation for a query job: {operation}")
        text = body.get("query")
        if not isinstance(text, str) or not text.strip():
            raise _job_error("A query is required for a query job")
        dialect = _dialect(body)
        with self.store.lock:
            obj, header, lines = snapshot_query(
                self.server.queries, text, operation == "queryAll", dialect
            )
            job = self._new_job(request, "query", operation, obj, dialect, "UploadComplete")
            job.header_line, job.lines = header, lines
            self.server.bulk_query_jobs += 1
            info = job.info(detail=False)
        return json_response(info)

    def query_results(self, request: Request) -> Response:
        with self.store.lock:
            job = self._job(request, "query")
            if job.state == "UploadComplete":
                self._set_state(job, "JobComplete")
            if job.state != "JobComplete":
                raise _state_error(f"Results are not available for a job in state {job.state}")
            total = len(job.lines)
            locator = request.arg("locator")
            start = _offset(locator, total) if locator else 0
            size = _max_records(request) or total
            end = min(start + size, total)
            page = job.header_line + "".join(job.lines[start:end])
        return _csv(
            page,
            {
                "Sforce-Locator": _locator(end) if end < total else "null",
                "Sforce-NumberOfRecords": str(end - start),
            },
        )

    def patch_query(self, request: Request) -> Response:
        state = self._patch_state(request)
        with self.store.lock:
            job = self._job(request, "query")
            if state != "Aborted":
                raise _state_error("A query job can only be aborted")
            self._abort(job)
            return json_response(job.info(detail=False))

    # Ingest jobs --------------------------------------------------------------------------

    def create_ingest(self, request: Request) -> Response:
        body = body_object(request)
        operation = body.get("operation")
        if operation not in INGEST_OPERATIONS:
            raise _job_error(f"Invalid operation for an ingest job: {operation}")
        if (body.get("contentType") or "CSV") != "CSV":
            raise _job_error(f"Invalid contentType: {body['contentType']}; only CSV is supported")
        obj = self.server.schema.get(str(body.get("object") or ""))
        if obj is None:
            raise _job_error(f"Unable to find object: {body.get('object')}")
        dialect = _dialect(body)
        external = body.get("externalIdFieldName")
        if operation == "upsert":
            if not external:
                raise _job_error(
                    f"External ID was blank for {obj.name}. "
                    "An External ID must be specified for upsert."
                )
            key = obj.get(str(external))
            if key is None or not (key.external_id or key.name == "Id"):
                raise _job_error(
                    f"Field name provided, {external} is not an External ID "
                    f"or indexed field for {obj.name}"
                )
            external = key.name
        with self.store.lock:
            job = self._new_job(request, "ingest", str(operation), obj.name, dialect, "Open")
            job.external_id = str(external) if operation == "upsert" else None
            info = job.info(detail=False)
        return json_response(info)

    def upload(self, request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != _CSV:
            raise SfError(
                "INVALIDCONTENTTYPE", f"Unsupported Content-Type: {content_type}; use text/csv"
            )
        if len(request.body) > MAX_UPLOAD_BYTES:
            raise SfError(
                "EXCEEDED_QUOTA",
                f"The upload is {len(request.body)} bytes; a job accepts at most "
                f"{MAX_UPLOAD_BYTES} bytes (150 MB). Split the data into several jobs.",
                status=413,
            )
        with self.store.lock:
            job = self._job(request, "ingest")
            if job.state != "Open":
                raise _state_error(f"Unable to upload data because the job is {job.state}")
            if job.data is not None:
                raise SfError(
                    "BULK_API_ERROR",
                    f"Found multiple contents for job: <{job.id}>, please 'Close' / 'Abort' / "
                    "'Delete' the current Job then create a new Job and make sure you only do "
                    "'PUT' once on a given Job.",
                )
            job.data = request.body
        return Response(201)

    def patch_ingest(self, request: Request) -> Response:
        state = self._patch_state(request)
        with self.store.lock:
            job = self._job(request, "ingest")
            if state == "Aborted":
                self._abort(job)
                return json_response(job.info(detail=False))
            if job.state != "Open":
                raise _state_error(f"Closing a job in state {job.state} is not allowed")
            self._set_state(job, "UploadComplete")
            info = job.info(detail=False)
            self._process(request, job)
        return json_response(info)

    def _process(self, request: Request, job: Job) -> None:
        """Run a closed job; a job without data or with a bad header fails as a whole."""
        if job.data is None:
            job.error_message = "InvalidBatch : No data was uploaded for this job"
            self._set_state(job, "Failed")
            return
        obj = self.server.schema.get(job.object)
        assert obj is not None
        try:
            upload = parse_upload(job.data, job.dialect)
        except SfError as exc:
            job.error_message = exc.message
            self._set_state(job, "Failed")
            return
        job.header = upload.header
        try:
            self.server.bulk_batches += process_ingest(
                job, self.store, obj, upload, request.item_fails
            )
        except SfError as exc:
            job.error_message = exc.message
            job.unprocessed = upload.rows
            self._set_state(job, "Failed")
            return
        self._set_state(job, "JobComplete")

    def results(self, request: Request, which: str) -> Response:
        with self.store.lock:
            job = self._job(request, "ingest")
            if job.state not in _TERMINAL:
                raise _state_error(f"Results are not available for a job in state {job.state}")
            dialect = job.dialect
            header = job.header or (
                parse_upload(job.data, dialect).header if job.data is not None else []
            )
            if which == "unprocessed":
                lines = [dialect.results_header([], header)] if header else []
                lines += [dialect.line(cells) for cells in job.unprocessed]
                return _csv("".join(lines))
            failed = which == "failed"
            sf_columns = ["sf__Id", "sf__Error" if failed else "sf__Created"]
            lines = [dialect.results_header(sf_columns, header)]
            for row in job.results:
                if bool(row.error) != failed:
                    continue
                outcome = row.error if failed else ("true" if row.created else "false")
                lines.append(dialect.line([row.record_id, outcome, *row.cells]))
        return _csv("".join(lines))


def register(server: SalesforceServer) -> BulkApi:
    """Add the /jobs/query and /jobs/ingest resources to the server's router."""
    api = BulkApi(server)
    add = server.add_route
    add("POST", "/jobs/query", api.create_query)
    add("GET", "/jobs/query", lambda r: api.list_jobs("query"))
    add("GET", "/jobs/query/{id}", lambda r: api.get_job(r, "query"))
    add("PATCH", "/jobs/query/{id}", api.patch_query)
    add("DELETE", "/jobs/query/{id}", lambda r: api.delete_job(r, "query"))
    add("GET", "/jobs/query/{id}/results", api.query_results)
    add("POST", "/jobs/ingest", api.create_ingest)
    add("GET", "/jobs/ingest", lambda r: api.list_jobs("ingest"))
    add("GET", "/jobs/ingest/{id}", lambda r: api.get_job(r, "ingest"))
    add("PATCH", "/jobs/ingest/{id}", api.patch_ingest)
    add("DELETE", "/jobs/ingest/{id}", lambda r: api.delete_job(r, "ingest"))
    add("PUT", "/jobs/ingest/{id}/batches", api.upload)
    add("GET", "/jobs/ingest/{id}/successfulResults", lambda r: api.results(r, "successful"))
    add("GET", "/jobs/ingest/{id}/failedResults", lambda r: api.results(r, "failed"))
    # The documented path is all lower case; simple-salesforce asks for unprocessedRecords.
    for path in ("unprocessedrecords", "unprocessedRecords"):
        add("GET", f"/jobs/ingest/{{id}}/{path}", lambda r: api.results(r, "unprocessed"))
    return api
