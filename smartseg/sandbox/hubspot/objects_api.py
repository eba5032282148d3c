"""Handlers for `/crm/v3/objects/{objectType}`: list, get, create, update, archive, batch, search.

Each handler holds the portal lock for its whole request, so a batch is atomic to other clients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..http import Request, Response, Router, json_response
from .errors import ItemError, fail
from .objects import archive, create, list_arg, render, table_for, update
from .properties import iso_ms
from .search import search
from .store import ObjectTable, PortalState, Record

__all__ = ["MAX_BATCH", "MAX_PAGE", "ObjectsApi", "batch_response"]

MAX_PAGE = 100
MAX_PAGE_WITH_HISTORY = 50
MAX_BATCH = 100
PORTAL_ID = 21_000_000  # appears in some of HubSpot's error messages


def batch_response(
    state: PortalState, results: list[Any], errors: list[dict[str, Any]], ok_status: int = 200
) -> Response:
    """A BatchResponse body: `ok_status` if every input succeeded, else 207 with the errors."""
    now = iso_ms(int(state.clock() * 1000))
    body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": now,
                            "completedAt": now}  # fmt: skip
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
    return json_response(body, 207 if errors else ok_status)


def _flag(request: Request, name: str) -> bool:
    return (request.arg(name) or "false").lower() == "true"


def _inputs(body: Any, limit: int = MAX_BATCH) -> list[Any]:
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list):
        raise fail(400, "VALIDATION_ERROR", "Invalid input JSON: `inputs` must be a list")
    if len(inputs) > limit:
        raise fail(
            400,
            "VALIDATION_ERROR",
            f"Batch input size {len(inputs)} exceeds the limit of {limit} inputs",
            context={"inputs": [str(len(inputs))]},
        )
    return [item if isinstance(item, dict) else {} for item in inputs]


class ObjectsApi:
    """The object endpoints of one portal."""

    def __init__(self, state: PortalState) -> None:
        self.state = state

    def register(self, router: Router) -> None:
        base = "/crm/v3/objects/{objectType}"
        routes: list[tuple[str, str, Callable[[Request], Response]]] = [
            ("GET", base, self.list_page),
            ("POST", base, self.create_one),
            ("POST", base + "/search", self.search),
            ("POST", base + "/batch/read", self.batch_read),
            ("POST", base + "/batch/create", self.batch_create),
            ("POST", base + "/batch/update", self.batch_update),
            ("POST", base + "/batch/upsert", self.batch_upsert),
            ("POST", base + "/batch/archive", self.batch_archive),
            ("GET", base + "/{objectId}", self.get_one),
            ("PATCH", base + "/{objectId}", self.update_one),
            ("DELETE", base + "/{objectId}", self.archive_one),
        ]
        for method, template, handler in routes:
            router.add(method, template, self.state.serialized(handler))

    # Lookups ---------------------------------------------------------------------------------

    def _unique_property(self, table: ObjectTable, name: str) -> str:
        if name not in table.unique:
            raise ItemError(
                400,
                "VALIDATION_ERROR",
                f"Unable to perform update/upsert by non-unique {table.type.type_id} "
                f"property {name} in portal ID {PORTAL_ID}",
            )
        return name

    def _find(
        self, table: ObjectTable, key: str, id_property: str | None, archived: bool = False
    ) -> Record | None:
        if id_property and id_property != "hs_object_id":
            rec = table.find_unique(self._unique_property(table, id_property), key)
        else:
            rec = table.records.get(int(key)) if key.isdigit() else None
        if rec is None or (rec.archived_at is not None) != archived:
            return None
        return rec

    def _missing(self, table: ObjectTable, ids: list[str]) -> ItemError:
        kind = table.type.singular.upper()
        return ItemError(
            404,
            "OBJECT_NOT_FOUND",
            f"Could not get some {kind} objects, they may be deleted or not exist. "
            "Check that ids are valid.",
            context={"ids": ids},
        )

    # Single-object endpoints -----------------------------------------------------------------

    def list_page(self, request: Request) -> Response:
        table = table_for(self.state, request.params["objectType"])
        history = list_arg(request, "propertiesWithHistory")
        cap = MAX_PAGE_WITH_HISTORY if history else MAX_PAGE
        try:
            limit = int(request.arg("limit") or 10)
            after = int(request.arg("after") or 0)
        except ValueError:
            raise fail(400, "VALIDATION_ERROR", "limit and after must be integers") from None
        if not 1 <= limit <= cap:
            raise fail(
                400,
                "VALIDATION_ERROR",
                f"limit must be between 1 and {cap}; got {limit}",
                context={"limit": [str(limit)]},
            )
        properties = list_arg(request, "properties")
        associations = list_arg(request, "associations")
        page: list[Record] = []
        more = False
        for rec in table.page_after(after - 1, _flag(request, "archived")):
            if len(page) == limit:
                more = True
                break
            page.append(rec)
        body: dict[str, Any] = {
            "results": [
                render(
                    self.state, table, rec, properties, history=history, associations=associations
                )
                for rec in page
            ]
        }
        if more:
            # HubSpot's cursor is the id the next page starts at.
            body["paging"] = {"next": {"after": str(page[-1].id + 1)}}
        return json_response(body)

    def get_one(self, request: Request) -> Response:
        table = table_for(self.state, request.params["objectType"])
        try:
            rec = self._find(
                table,
                request.params["objectId"],
                request.arg("idProperty"),
                _flag(request, "archived"),
            )
        except ItemError as exc:
            return exc.response()
        if rec is None:
            return self._missing(table, [request.params["objectId"]]).response()
        return json_response(
            render(
                self.state,
                table,
                rec,
                list_arg(request, "properties"),
                history=list_arg(request, "propertiesWithHistory"),
                associations=list_arg(request, "associations"),
            )
        )

    def create_one(self, request: Request) -> Response:
        table = table_for(self.state, request.params["objectType"])
        body = request.json()
        try:
            rec = create(self.state, table, body)
        except ItemError as exc:
            return exc.response()
        props = list((body.get("properties") or {}).keys()) if isinstance(body, dict) else []
        return json_response(render(self.state, table, rec, props), 201)

    def update_one(self, request: Request) -> Response:
        table = table_for(self.state, request.params["objectType"])
        body = request.json()
        try:
            rec = self._find(table, request.params["objectId"], request.arg("idProperty"))
            if rec is None:
                raise self._missing(table, [request.params["objectId"]])
            update(
                self.state, table, rec, body.get("properties") if isinstance(body, dict) else None
            )
        except ItemError as exc:
            return exc.response()
        return json_response(render(self.state, table, rec, list(rec.props)))

    def archive_one(self, request: Request) -> Response:
        table = table_for(self.state, request.params["objectType"])
        key = request.params["objectId"]
        rec = table.live(int(key)) if key.isdigit() else None
        if rec is not None:
            archive(self.state, table, rec)
        return json_response(None, 204)

    def search(self, request: Request) -> Response:
        table = table_for(self.state, request.params["objectType"])
        return json_response(search(self.state, table, request.json()))

    # Batch endpoints ---------------------------------------------------------------------------

    def batch_read(self, request: Request) -> Response:
        table = table_for(self.state, request.params["objectType"])
        body = request.json()
        inputs = _inputs(body)
        id_property = body.get("idProperty")
        properties = body.get("properties") or []
        history = body.get("propertiesWithHistory") or None
        archived = _flag(request, "archived")
        results, missing, seen = [], [], set()
        for item in inputs:
            key = str(item.get("id", ""))
            try:
                rec = self._find(table, key, id_property, archived)
            except ItemError as exc:
                return exc.response()
            if rec is None:
                missing.append(key)
            elif rec.id not in seen:
                seen.add(rec.id)
                results.append(render(self.state, table, rec, properties, history=history))
        errors = [self._missing(table, missing).standard()] if missing else []
        return batch_response(self.state, results, errors)

    def batch_create(self, request: Request) -> Response:
        table = table_for(self.state, request.params["objectType"])
        results, errors = [], []
        for item in _inputs(request.json()):
            trace = item.get("objectWriteTraceId")
            try:
                if request.item_fails():
                    raise _transient()
                rec = create(self.state, table, item)
            except ItemError as exc:
                errors.append(exc.standard(trace))
                continue
            props = list((item.get("properties") or {}).keys())
            results.append(render(self.state, table, rec, props, trace_id=trace))
        return batch_response(self.state, results, errors, 201)

    def batch_update(self, request: Request) -> Response:
        table = table_for(self.state, request.params["objectType"])
        inputs = _inputs(request.json())
        keys = [(str(i.get("id", "")), i.get("idProperty")) for i in inputs]
        duplicates = sorted({k for k, _ in keys if sum(1 for x, _ in keys if x == k) > 1})
        if duplicates:
            raise fail(
                400,
                "VALIDATION_ERROR",
                f"Duplicate IDs found in batch input: {duplicates}. IDs must be unique",
                context={"ids": duplicates},
            )
        results, errors = [], []
        for item, (key, id_property) in zip(inputs, keys, strict=True):
            trace = item.get("objectWriteTraceId")
            try:
                if request.item_fails():
                    raise _transient()
                rec = self._find(table, key, id_property)
                if rec is None:
                    raise self._missing(table, [key])
                update(self.state, table, rec, item.get("properties"))
            except ItemError as exc:
                errors.append(exc.standard(trace))
                continue
            results.append(
                render(self.state, table, rec, list(item.get("properties") or {}), trace_id=trace)
            )
        return batch_response(self.state, results, errors)

    def batch_upsert(self, request: Request) -> Response:
        table = table_for(self.state, request.params["objectType"])
        inputs = _inputs(request.json())
        results, errors = [], []
        for item in inputs:
            trace = item.get("objectWriteTraceId")
            key = str(item.get("id", ""))
            try:
                prop = self._unique_property(table, str(item.get("idProperty", "hs_object_id")))
            except ItemError as exc:
                return exc.response()
            try:
                if request.item_fails():
                    raise _transient()
                rec = table.find_unique(prop, key)
                props = dict(item.get("properties") or {})
                is_new = rec is None or rec.archived_at is not None
                if is_new:
                    rec = create(self.state, table, {"properties": {**props, prop: key}})
                else:
                    assert rec is not None
                    update(self.state, table, rec, props)
            except ItemError as exc:
                errors.append(exc.standard(trace))
                continue
            body = render(self.state, table, rec, [*props, prop], trace_id=trace)
            results.append({**body, "new": is_new})
        return batch_response(self.state, results, errors)

    def batch_archive(self, request: Request) -> Response:
        table = table_for(self.state, request.params["objectType"])
        for item in _inputs(request.json()):
            key = str(item.get("id", ""))
            rec = table.live(int(key)) if key.isdigit() else None
            if rec is not None:
                archive(self.state, table, rec)
        return json_response(None, 204)


def _transient() -> ItemError:
    """The per-item failure the "partial" fault injects: a lock timeout, retried by the caller."""
    return ItemError(
        500,
        "INTERNAL_ERROR",
        "The record was locked by another write; retry this input.",
        sub_category="crm.objects.RECORD_LOCKED",
    )
