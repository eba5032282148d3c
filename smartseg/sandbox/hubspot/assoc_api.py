"""Handlers for the v4 associations API: list, labelled and default create, delete, batch.

Results carry HubSpot's shapes: `toObjectId` as a number, each link's `associationTypes` with
category, typeId and label (null when unlabeled), and 207s for batch reads of records that have
no associations (NO_ASSOCIATIONS_FOUND), which callers must treat as "none", not as a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..http import Request, Response, Router, json_response
from .catalog import OBJECT_TYPES, assoc_type, assoc_types_between, default_assoc_type, object_type
from .errors import ItemError, fail
from .objects import link
from .objects_api import batch_response
from .store import PortalState

__all__ = ["AssociationsApi"]

MAX_BATCH_READ = 1_000
MAX_BATCH_WRITE = 2_000
MAX_PAGE = 500


def _types_json(source: str, target: str, type_ids: list[int]) -> list[dict[str, Any]]:
    out = []
    for tid in type_ids:
        kind = assoc_type(source, target, tid)
        out.append({"category": "HUBSPOT_DEFINED", "typeId": tid,
                    "label": kind.label if kind else None})  # fmt: skip
    return out


class AssociationsApi:
    """The v4 association endpoints of one portal."""

    def __init__(self, state: PortalState) -> None:
        self.state = state

    def register(self, router: Router) -> None:
        one = "/crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}"
        batch = "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch"
        routes: list[tuple[str, str, Callable[[Request], Response]]] = [
            ("GET", one, self.list_for_object),
            ("PUT", one + "/{toObjectId}", self.create_labelled),
            ("DELETE", one + "/{toObjectId}", self.archive_one),
            (
                "PUT",
                "/crm/v4/objects/{objectType}/{objectId}/associations/default/"
                "{toObjectType}/{toObjectId}",
                self.create_default,
            ),
            ("POST", batch + "/read", self.batch_read),
            ("POST", batch + "/create", self.batch_create),
            ("POST", batch + "/associate/default", self.batch_default),
            ("POST", batch + "/archive", self.batch_archive),
            ("POST", batch + "/labels/archive", self.batch_archive_labels),
        ]
        for method, template, handler in routes:
            router.add(method, template, self.state.serialized(handler))

    # Helpers --------------------------------------------------------------------------------

    def _pair(self, source_name: str, target_name: str) -> tuple[str, str]:
        source, target = object_type(source_name), object_type(target_name)
        if source is None or target is None:
            unknown = source_name if source is None else target_name
            raise fail(400, "VALIDATION_ERROR", f"Unable to infer object type from: {unknown}")
        if not assoc_types_between(source.name, target.name):
            raise fail(
                400, "VALIDATION_ERROR", f"{source.name} cannot be associated with {target.name}"
            )
        return source.name, target.name

    def _exists(self, type_name: str, key: Any) -> int:
        text = str(key)
        if not text.isdigit() or self.state.tables[type_name].live(int(text)) is None:
            raise ItemError(
                400,
                "VALIDATION_ERROR",
                f"One or more ids for {OBJECT_TYPES[type_name].type_id} were not found: [{text}]",
                context={"ids": [text]},
            )
        return int(text)

    def _spec_ids(self, source: str, target: str, specs: Any) -> list[int]:
        if not isinstance(specs, list) or not specs:
            raise ItemError(400, "VALIDATION_ERROR", "At least one association spec is required")
        ids = []
        for spec in specs:
            tid = int(spec.get("associationTypeId", -1)) if isinstance(spec, dict) else -1
            category = spec.get("associationCategory") if isinstance(spec, dict) else None
            if category != "HUBSPOT_DEFINED" or assoc_type(source, target, tid) is None:
                raise ItemError(
                    400,
                    "VALIDATION_ERROR",
                    f"{category} association type {tid} does not exist between "
                    f"{source} and {target}",
                    sub_category="crm.associations.INVALID_ASSOCIATION_TYPE",
                )
            ids.append(tid)
        return ids

    def _labels(self, source: str, source_id: int, target: str, target_id: int) -> dict[str, Any]:
        type_ids = self.state.assocs.of(source, source_id, target).get(target_id, [])
        labels = [k.label for t in type_ids if (k := assoc_type(source, target, t)) and k.label]
        return {"fromObjectTypeId": OBJECT_TYPES[source].type_id, "fromObjectId": source_id,
                "toObjectTypeId": OBJECT_TYPES[target].type_id, "toObjectId": target_id,
                "labels": labels}  # fmt: skip

    def _default(
        self, source: str, source_id: int, target: str, target_id: int
    ) -> list[dict[str, Any]]:
        kind = default_assoc_type(source, target)
        assert kind is not None
        link(self.state, source, source_id, target, target_id, kind.type_id)
        spec = {"associationCategory": "HUBSPOT_DEFINED"}
        return [
            {"from": {"id": str(source_id)}, "to": {"id": str(target_id)},
             "associationSpec": {**spec, "associationTypeId": kind.type_id}},
            {"from": {"id": str(target_id)}, "to": {"id": str(source_id)},
             "associationSpec": {**spec, "associationTypeId": kind.inverse_id}},
        ]  # fmt: skip

    # Single-object endpoints -----------------------------------------------------------------

    def list_for_object(self, request: Request) -> Response:
        source, target = self._pair(request.params["objectType"], request.params["toObjectType"])
        key = request.params["objectId"]
        try:
            limit = int(request.arg("limit") or MAX_PAGE)
            after = int(request.arg("after") or 0)
        except ValueError:
            raise fail(400, "VALIDATION_ERROR", "limit and after must be integers") from None
        if not 1 <= limit <= MAX_PAGE:
            raise fail(400, "VALIDATION_ERROR", f"limit must be between 1 and {MAX_PAGE}")
        links = self.state.assocs.of(source, int(key), target) if key.isdigit() else {}
        items = list(links.items())[after:]
        body: dict[str, Any] = {
            "results": [
                {"toObjectId": tid, "associationTypes": _types_json(source, target, types)}
                for tid, types in items[:limit]
            ]
        }
        if len(items) > limit:
            body["paging"] = {"next": {"after": str(after + limit)}}
        return json_response(body)

    def create_labelled(self, request: Request) -> Response:
        source, target = self._pair(request.params["objectType"], request.params["toObjectType"])
        try:
            source_id = self._exists(source, request.params["objectId"])
            target_id = self._exists(target, request.params["toObjectId"])
            type_ids = self._spec_ids(source, target, request.json())
        except ItemError as exc:
            return exc.response()
        for tid in type_ids:
            link(self.state, source, source_id, target, target_id, tid)
        return json_response(self._labels(source, source_id, target, target_id), 201)

    def create_default(self, request: Request) -> Response:
        source, target = self._pair(request.params["objectType"], request.params["toObjectType"])
        try:
            source_id = self._exists(source, request.params["objectId"])
            target_id = self._exists(target, request.params["toObjectId"])
        except ItemError as exc:
            return exc.response()
        return batch_response(self.state, self._default(source, source_id, target, target_id), [])

    def archive_one(self, request: Request) -> Response:
        source, target = self._pair(request.params["objectType"], request.params["toObjectType"])
        key, to_key = request.params["objectId"], request.params["toObjectId"]
        if key.isdigit() and to_key.isdigit():
            self.state.assocs.remove(source, int(key), target, int(to_key))
        return json_response(None, 204)

    # Batch endpoints ---------------------------------------------------------------------------

    def _inputs(self, request: Request, limit: int) -> list[dict[str, Any]]:
        body = request.json()
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list):
            raise fail(400, "VALIDATION_ERROR", "Invalid input JSON: `inputs` must be a list")
        if len(inputs) > limit:
            raise fail(
                400,
                "VALIDATION_ERROR",
                f"Batch input size {len(inputs)} exceeds the limit of {limit} inputs",
            )
        return [i if isinstance(i, dict) else {} for i in inputs]

    def batch_read(self, request: Request) -> Response:
        source, target = self._pair(
            request.params["fromObjectType"], request.params["toObjectType"]
        )
        results, errors = [], []
        for item in self._inputs(request, MAX_BATCH_READ):
            key = str(item.get("id", ""))
            links = self.state.assocs.of(source, int(key), target) if key.isdigit() else {}
            if not links:
                errors.append(
                    ItemError(
                        404,
                        "OBJECT_NOT_FOUND",
                        f"No {OBJECT_TYPES[target].singular} is associated with "
                        f"{OBJECT_TYPES[source].singular} {key}.",
                        context={"fromObjectId": [key]},
                        sub_category="crm.associations.NO_ASSOCIATIONS_FOUND",
                    ).standard()
                )
                continue
            results.append(
                {
                    "from": {"id": key},
                    "to": [
                        {"toObjectId": tid, "associationTypes": _types_json(source, target, types)}
                        for tid, types in links.items()
                    ],
                }
            )
        return batch_response(self.state, results, errors)

    def batch_create(self, request: Request) -> Response:
        source, target = self._pair(
            request.params["fromObjectType"], request.params["toObjectType"]
        )
        results, errors = [], []
        for item in self._inputs(request, MAX_BATCH_WRITE):
            try:
                if request.item_fails():
                    raise ItemError(500, "INTERNAL_ERROR", "Association write failed; retry it.")
                source_id = self._exists(source, (item.get("from") or {}).get("id"))
                target_id = self._exists(target, (item.get("to") or {}).get("id"))
                type_ids = self._spec_ids(source, target, item.get("types"))
            except ItemError as exc:
                errors.append(exc.standard())
                continue
            for tid in type_ids:
                link(self.state, source, source_id, target, target_id, tid)
            results.append(self._labels(source, source_id, target, target_id))
        return batch_response(self.state, results, errors, 201)

    def batch_default(self, request: Request) -> Response:
        source, target = self._pair(
            request.params["fromObjectType"], request.params["toObjectType"]
        )
        results, errors = [], []
        for item in self._inputs(request, MAX_BATCH_WRITE):
            try:
                source_id = self._exists(source, (item.get("from") or {}).get("id"))
                target_id = self._exists(target, (item.get("to") or {}).get("id"))
            except ItemError as exc:
                errors.append(exc.standard())
                continue
            results += self._default(source, source_id, target, target_id)
        return batch_response(self.state, results, errors)

    def batch_archive(self, request: Request) -> Response:
        source, target = self._pair(
            request.params["fromObjectType"], request.params["toObjectType"]
        )
        for item in self._inputs(request, MAX_BATCH_WRITE):
            key = str((item.get("from") or {}).get("id", ""))
            for to in item.get("to") or []:
                to_key = str(to.get("id", "")) if isinstance(to, dict) else ""
                if key.isdigit() and to_key.isdigit():
                    self.state.assocs.remove(source, int(key), target, int(to_key))
        return json_response(None, 204)

    def batch_archive_labels(self, request: Request) -> Response:
        source, target = self._pair(
            request.params["fromObjectType"], request.params["toObjectType"]
        )
        for item in self._inputs(request, MAX_BATCH_WRITE):
            key = str((item.get("from") or {}).get("id", ""))
            to_key = str((item.get("to") or {}).get("id", ""))
            type_ids = [int(t.get("associationTypeId", -1)) for t in item.get("types") or []
                        if isinstance(t, dict)]  # fmt: skip
            if key.isdigit() and to_key.isdigit():
                self.state.assocs.remove(source, int(key), target, int(to_key), type_ids)
        return json_response(None, 204)
