"""REST resources: versions, limits, query/queryAll, describe and single-record sObject calls."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smartseg.sandbox.http import Request, Response, json_response
from smartseg.sandbox.salesforce import writes
from smartseg.sandbox.salesforce.errors import SfError
from smartseg.sandbox.salesforce.query import batch_size, render_record
from smartseg.sandbox.salesforce.schema import ObjectDef

if TYPE_CHECKING:
    from smartseg.sandbox.salesforce.server import SalesforceServer

__all__ = ["body_object", "register", "sobject"]


def sobject(server: SalesforceServer, name: str) -> ObjectDef:
    obj = server.schema.get(name)
    if obj is None:
        raise SfError("NOT_FOUND", "The requested resource does not exist", status=404)
    return obj


def body_object(request: Request) -> dict[str, Any]:
    """The JSON body, which must be an object."""
    body = request.json()
    if not isinstance(body, dict):
        raise SfError(
            "JSON_PARSER_ERROR",
            "Cannot deserialize instance of SObject from START_ARRAY value [line:1, column:1]"
            if isinstance(body, list)
            else "Cannot deserialize request body as an SObject",
        )
    return body


def register(server: SalesforceServer) -> None:
    """Add the REST resources to the server's router."""
    version = lambda request: request.params["version"]  # noqa: E731
    store = server.store

    def versions(request: Request) -> Response:
        return json_response(
            [{"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"}]
        )

    def resources(request: Request) -> Response:
        base = f"/services/data/{version(request)}"
        names = ("limits", "query", "queryAll", "sobjects", "tooling", "composite", "jobs")
        return json_response({name: f"{base}/{name}" for name in names})

    def limits(request: Request) -> Response:
        used, limit = server.usage()
        jobs = server.bulk_query_jobs
        return json_response(
            {
                "DailyApiRequests": {"Max": limit, "Remaining": max(limit - used, 0)},
                "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000 - server.bulk_batches},
                "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000 - jobs},
                "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
                "DataStorageMB": {"Max": 1024, "Remaining": 1024},
                "FileStorageMB": {"Max": 1024, "Remaining": 1024},
            }
        )

    def query(request: Request, include_deleted: bool) -> Response:
        text = request.arg("q")
        if not text:
            raise SfError("MALFORMED_QUERY", "A query string has to be specified")
        page = server.queries.run(
            text,
            include_deleted=include_deleted,
            batch=batch_size(request.headers.get("sforce-query-options")),
            version=version(request),
            endpoint="queryAll" if include_deleted else "query",
        )
        return json_response(page)

    def more(request: Request) -> Response:
        return json_response(server.queries.more(request.params["locator"], version(request)))

    def global_describe(request: Request) -> Response:
        with store.lock:
            return json_response(server.schema.global_describe(version(request)))

    def basic_info(request: Request) -> Response:
        with store.lock:
            obj = sobject(server, request.params["sobject"])
            return json_response(
                {"objectDescribe": obj.summary(version(request)), "recentItems": []}
            )

    def describe(request: Request) -> Response:
        with store.lock:
            obj = sobject(server, request.params["sobject"])
            return json_response(obj.describe(version(request), server.schema.access))

    def create(request: Request) -> Response:
        with store.lock:
            obj = sobject(server, request.params["sobject"])
            new_id = writes.create(store, obj, body_object(request))
        return json_response({"id": new_id, "success": True, "errors": []}, 201)

    def read(request: Request) -> Response:
        with store.lock:
            obj = sobject(server, request.params["sobject"])
            record = store.get(obj, request.params["id"])
            if record is None or record["Id"][:3] != obj.key_prefix:
                raise SfError("NOT_FOUND", "The requested resource does not exist", status=404)
            if record["IsDeleted"]:
                raise SfError("ENTITY_IS_DELETED", "entity is deleted", status=404)
            return json_response(
                render_record(obj, record, _fields(server, obj, request), version(request))
            )

    def patch(request: Request) -> Response:
        with store.lock:
            obj = sobject(server, request.params["sobject"])
            writes.update(store, obj, request.params["id"], body_object(request))
        return json_response(None, 204)

    def remove(request: Request) -> Response:
        with store.lock:
            obj = sobject(server, request.params["sobject"])
            writes.delete(store, obj, request.params["id"])
        return json_response(None, 204)

    def by_external_id(request: Request) -> Response:
        with store.lock:
            obj = sobject(server, request.params["sobject"])
            definition = obj.get(request.params["field"])
            if (
                definition is None
                or not definition.external_id
                or not server.schema.readable(obj, definition)
            ):
                raise SfError(
                    "NOT_FOUND",
                    "Provided external ID field does not exist or is not "
                    f"accessible: {request.params['field']}",
                    status=404,
                )
            ids = [
                i
                for i in store.find(obj, definition, request.params["value"])
                if not store.tables[obj.name][i]["IsDeleted"]
            ]
            if not ids:
                raise SfError("NOT_FOUND", "The requested resource does not exist", status=404)
            if len(ids) > 1:
                base = f"/services/data/{version(request)}/sobjects/{obj.name}"
                return json_response([f"{base}/{i}" for i in ids], 300)
            return json_response(
                render_record(
                    obj,
                    store.tables[obj.name][ids[0]],
                    _fields(server, obj, request),
                    version(request),
                )
            )

    def upsert(request: Request) -> Response:
        with store.lock:
            obj = sobject(server, request.params["sobject"])
            new_id, created = writes.upsert(
                store, obj, request.params["field"], request.params["value"], body_object(request)
            )
        return json_response(
            {"id": new_id, "success": True, "errors": [], "created": created},
            201 if created else 200,
        )

    server.router.add("GET", "/services/data", versions)
    server.add_route("GET", "", resources)
    server.add_route("GET", "/limits", limits)
    server.add_route("GET", "/query", lambda r: query(r, False))
    server.add_route("GET", "/queryAll", lambda r: query(r, True))
    server.add_route("GET", "/query/{locator}", more)
    server.add_route("GET", "/queryAll/{locator}", more)
    server.add_route("GET", "/sobjects", global_describe)
    server.add_route("GET", "/sobjects/{sobject}", basic_info)
    server.add_route("POST", "/sobjects/{sobject}", create)
    server.add_route("GET", "/sobjects/{sobject}/describe", describe)
    server.add_route("GET", "/sobjects/{sobject}/{id}", read)
    server.add_route("PATCH", "/sobjects/{sobject}/{id}", patch)
    server.add_route("DELETE", "/sobjects/{sobject}/{id}", remove)
    server.add_route("GET", "/sobjects/{sobject}/{field}/{value}", by_external_id)
    server.add_route("PATCH", "/sobjects/{sobject}/{field}/{value}", upsert)


def _fields(server: SalesforceServer, obj: ObjectDef, request: Request) -> tuple[Any, ...]:
    """The ?fields=a,b selection of a record GET (every field the user can read when absent)."""
    readable = server.schema.readable
    names = request.arg("fields")
    if not names:
        return tuple(d for d in obj.fields.values() if readable(obj, d))
    chosen = []
    for name in names.split(","):
        definition = obj.get(name.strip())
        if definition is None or not readable(obj, definition):
            raise SfError(
                "INVALID_FIELD", f"No such column '{name.strip()}' on sobject of type {obj.name}"
            )
        chosen.append(definition)
    return tuple(chosen)
