"""sObject Collections: create, update, upsert and delete up to 200 records in one call.

The HTTP status is 200 whenever the request itself is well formed; each record gets a result in
input order. With allOrNone every write is rolled back when one record fails, and the records
that were fine report ALL_OR_NONE_OPERATION_ROLLED_BACK.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from smartseg.sandbox.http import Request, Response, json_response
from smartseg.sandbox.salesforce import writes
from smartseg.sandbox.salesforce.errors import SfError
from smartseg.sandbox.salesforce.rest import body_object, sobject
from smartseg.sandbox.salesforce.schema import ObjectDef

if TYPE_CHECKING:
    from smartseg.sandbox.salesforce.server import SalesforceServer

__all__ = ["MAX_RECORDS", "register"]

MAX_RECORDS = 200
_ROLLED_BACK = SfError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all "
    "records were valid and the request was using AllOrNone header",
)
Operation = Callable[[int, Any], dict[str, Any]]


def _too_many() -> SfError:
    return SfError(
        "EXCEEDED_ID_LIMIT",
        f"record limit reached. cannot submit more than {MAX_RECORDS} records into this call",
    )


def _records(body: dict[str, Any]) -> tuple[list[Any], bool]:
    records = body.get("records")
    if not isinstance(records, list):
        raise SfError("JSON_PARSER_ERROR", "Missing required field: records")
    if len(records) > MAX_RECORDS:
        raise _too_many()
    return records, bool(body.get("allOrNone", False))


def _record_type(server: SalesforceServer, item: Any) -> tuple[ObjectDef, dict[str, Any]]:
    if not isinstance(item, dict):
        raise SfError("JSON_PARSER_ERROR", "Cannot deserialize instance of SObject")
    kind = (item.get("attributes") or {}).get("type")
    if not kind:
        raise SfError("INVALID_TYPE", "Must send a concrete entity type.")
    obj = server.schema.get(str(kind))
    if obj is None:
        raise SfError("INVALID_TYPE", f"sObject type '{kind}' is not supported.")
    return obj, item


def _run(
    server: SalesforceServer,
    request: Request,
    items: list[Any],
    all_or_none: bool,
    operation: Operation,
) -> Response:
    """Apply operation to each item under one lock; per-record results, rolled back if needed."""
    results: list[dict[str, Any]] = []
    store = server.store
    with store.lock, store.transaction() as rollback:
        for position, item in enumerate(items):
            try:
                if request.item_fails():
                    raise SfError(
                        "UNABLE_TO_LOCK_ROW",
                        "unable to obtain exclusive access to this record or 1 records",
                    )
                results.append(operation(position, item))
            except SfError as exc:
                result: dict[str, Any] = {"success": False, "errors": [exc.save_result()]}
                if isinstance(item, dict) and item.get("Id"):
                    result = {"id": item["Id"], **result}
                results.append(result)
        if all_or_none and any(not r["success"] for r in results):
            rollback()
            for result in results:
                if result["success"]:
                    result.update(success=False, errors=[_ROLLED_BACK.save_result()])
                    result.pop("created", None)
    return json_response(results)


def register(server: SalesforceServer) -> None:
    """Add /composite/sobjects (POST, PATCH, DELETE) and the upsert collection."""
    store = server.store

    def create(request: Request) -> Response:
        items, all_or_none = _records(body_object(request))

        def one(_: int, item: Any) -> dict[str, Any]:
            obj, data = _record_type(server, item)
            return {"id": writes.create(store, obj, data), "success": True, "errors": []}

        return _run(server, request, items, all_or_none, one)

    def update(request: Request) -> Response:
        items, all_or_none = _records(body_object(request))

        def one(_: int, item: Any) -> dict[str, Any]:
            obj, data = _record_type(server, item)
            record_id = next((v for k, v in data.items() if k.lower() == "id"), None)
            if not record_id:
                raise SfError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
            writes.update(store, obj, str(record_id), data)
            return {"id": record_id, "success": True, "errors": []}

        return _run(server, request, items, all_or_none, one)

    def upsert(request: Request) -> Response:
        obj = sobject(server, request.params["sobject"])
        field = obj.get(request.params["field"])
        if field is None or not field.external_id or not server.schema.readable(obj, field):
            raise SfError(
                "INVALID_FIELD",
                f"Field name provided, {request.params['field']} is "
                f"not an External ID or indexed field for {obj.name}",
            )
        items, all_or_none = _records(body_object(request))
        keys = [_key(item, field.name) for item in items]
        repeated = {k for k, n in Counter(k.casefold() for k in keys if k).items() if n > 1}

        def one(position: int, item: Any) -> dict[str, Any]:
            kind, data = _record_type(server, item)
            if kind is not obj:
                raise SfError(
                    "INVALID_TYPE",
                    f"Record type {kind.name} does not match the upsert type {obj.name}",
                )
            key = keys[position]
            if not key:
                raise SfError("MISSING_ARGUMENT", f"{field.name} not specified", [field.name])
            if key.casefold() in repeated:
                raise SfError(
                    "DUPLICATE_EXTERNAL_ID", f"Duplicate external id specified: {key}", [field.name]
                )
            new_id, created = writes.upsert(store, obj, field.name, key, data)
            return {"id": new_id, "success": True, "errors": [], "created": created}

        return _run(server, request, items, all_or_none, one)

    def delete(request: Request) -> Response:
        ids = [i for i in (request.arg("ids") or "").split(",") if i]
        if len(ids) > MAX_RECORDS:
            raise _too_many()
        all_or_none = (request.arg("allOrNone") or "false").lower() == "true"

        def one(_: int, record_id: Any) -> dict[str, Any]:
            obj = store.object_of(record_id)
            if obj is None:
                raise SfError("MALFORMED_ID", f"malformed id {record_id}")
            return {"id": writes.delete(store, obj, record_id), "success": True, "errors": []}

        return _run(
            server,
            request,
            [{"Id": i} for i in ids],
            all_or_none,
            lambda position, item: one(position, item["Id"]),
        )

    server.add_route("POST", "/composite/sobjects", create)
    server.add_route("PATCH", "/composite/sobjects", update)
    server.add_route("DELETE", "/composite/sobjects", delete)
    server.add_route("PATCH", "/composite/sobjects/{sobject}/{field}", upsert)


def _key(item: Any, field_name: str) -> str:
    if not isinstance(item, dict):
        return ""
    value = next((v for k, v in item.items() if k.lower() == field_name.lower()), None)
    return "" if value is None else str(value)
