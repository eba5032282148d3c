"""Handlers for property definitions (`/crm/v3/properties`) and owners (`/crm/v3/owners`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from ..http import Request, Response, Router, json_response
from .catalog import object_type
from .errors import error, fail
from .properties import FIELD_TYPES, NAME_PATTERN, Option, PropertyDef, iso_ms
from .store import Owner, PortalState

__all__ = ["MetaApi", "owner_json"]

MAX_OWNER_PAGE = 500


def owner_json(owner: Owner) -> dict[str, Any]:
    """An owner as PublicOwner JSON."""
    return {
        "id": str(owner.id),
        "email": owner.email,
        "type": "PERSON",
        "firstName": owner.first_name,
        "lastName": owner.last_name,
        "userId": owner.user_id,
        "userIdIncludingInactive": owner.user_id,
        "createdAt": iso_ms(owner.created),
        "updatedAt": iso_ms(owner.updated),
        "archived": owner.archived,
        "teams": [],
    }


def _options(raw: Any) -> list[Option]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise fail(400, "VALIDATION_ERROR", "options must be a list")
    out: list[Option] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not item.get("label") or item.get("value") in (None, ""):
            raise fail(400, "VALIDATION_ERROR", f"Option {i} needs a label and a value")
        out.append(Option(label=str(item["label"]), value=str(item["value"]),
                          display_order=int(item.get("displayOrder", i)),
                          hidden=bool(item.get("hidden", False)),
                          description=str(item.get("description") or "")))  # fmt: skip
    values = [o.value for o in out]
    if len(set(values)) != len(values):
        raise fail(400, "VALIDATION_ERROR", f"Option values must be unique: {values}")
    return out


def _check_shape(prop: PropertyDef) -> None:
    """HubSpot's rules tying type, fieldType and options together."""
    allowed = FIELD_TYPES.get(prop.type)
    if allowed is None:
        raise fail(
            400,
            "VALIDATION_ERROR",
            f"Invalid type {prop.type!r}; expected one of {', '.join(FIELD_TYPES)}",
        )
    if prop.field_type not in allowed:
        raise fail(
            400,
            "VALIDATION_ERROR",
            f"fieldType {prop.field_type!r} is not valid for type {prop.type!r}; "
            f"use one of {', '.join(sorted(allowed))}",
        )
    if prop.type == "bool" and not prop.options:
        prop.options = [Option("Yes", "true", 0), Option("No", "false", 1)]
    if prop.type == "enumeration" and not prop.options and not prop.external_options:
        raise fail(
            400, "VALIDATION_ERROR", f"Enumeration property {prop.name} needs at least one option"
        )


class MetaApi:
    """Property definitions and owners of one portal."""

    def __init__(self, state: PortalState) -> None:
        self.state = state

    def register(self, router: Router) -> None:
        base = "/crm/v3/properties/{objectType}"
        routes: list[tuple[str, str, Callable[[Request], Response]]] = [
            ("GET", base, self.list_properties),
            ("POST", base, self.create_property),
            ("GET", base + "/{propertyName}", self.get_property),
            ("PATCH", base + "/{propertyName}", self.update_property),
            ("DELETE", base + "/{propertyName}", self.archive_property),
            ("GET", "/crm/v3/owners", self.list_owners),
            ("GET", "/crm/v3/owners/{ownerId}", self.get_owner),
        ]
        for method, template, handler in routes:
            router.add(method, template, self.state.serialized(handler))

    def _schema(self, request: Request) -> tuple[str, dict[str, PropertyDef]]:
        otype = object_type(request.params["objectType"])
        if otype is None:
            raise fail(
                400,
                "VALIDATION_ERROR",
                f"Unable to infer object type from: {request.params['objectType']}",
            )
        return otype.name, self.state.schema[otype.name]

    def _property(self, request: Request) -> tuple[str, PropertyDef]:
        name, schema = self._schema(request)
        prop = schema.get(request.params["propertyName"])
        if prop is None:
            raise fail(
                404,
                "OBJECT_NOT_FOUND",
                f"Unable to find property {request.params['propertyName']} on {name}",
            )
        return name, prop

    # Properties -------------------------------------------------------------------------------

    def list_properties(self, request: Request) -> Response:
        _, schema = self._schema(request)
        if (request.arg("archived") or "false").lower() == "true":
            return json_response({"results": []})  # deleted definitions are not kept
        return json_response({"results": [p.to_json() for p in schema.values()]})

    def get_property(self, request: Request) -> Response:
        return json_response(self._property(request)[1].to_json())

    def create_property(self, request: Request) -> Response:
        type_name, schema = self._schema(request)
        body = request.json()
        if not isinstance(body, dict):
            raise fail(400, "VALIDATION_ERROR", "Invalid input JSON: expected an object")
        missing = [
            k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)
        ]
        if missing:
            raise fail(400, "VALIDATION_ERROR", f"Missing required fields: {', '.join(missing)}")
        name = str(body["name"])
        if not NAME_PATTERN.match(name):
            raise fail(
                400,
                "VALIDATION_ERROR",
                f"Property name {name!r} must start with a lower-case letter and hold only "
                "lower-case letters, digits and underscores",
            )
        if name in schema:
            return error(409, "OBJECT_ALREADY_EXISTS", f"A property named '{name}' already exists.")
        now = iso_ms(int(self.state.clock() * 1000))
        prop = PropertyDef(
            name=name, label=str(body["label"]), type=str(body["type"]),
            field_type=str(body["fieldType"]), group_name=str(body["groupName"]),
            options=_options(body.get("options")),
            has_unique_value=bool(body.get("hasUniqueValue", False)), hubspot_defined=False,
            description=str(body.get("description") or ""),
            display_order=int(body.get("displayOrder", -1)), created_at=now, updated_at=now,
        )  # fmt: skip
        _check_shape(prop)
        schema[name] = prop
        if prop.has_unique_value:
            self.state.tables[type_name].index_unique(name)
        return json_response(prop.to_json(), 201)

    def update_property(self, request: Request) -> Response:
        _, prop = self._property(request)
        body = request.json()
        if not isinstance(body, dict):
            raise fail(400, "VALIDATION_ERROR", "Invalid input JSON: expected an object")
        if prop.read_only:
            raise fail(
                400,
                "VALIDATION_ERROR",
                f"{prop.name} is a read-only HubSpot property; its definition cannot change",
            )
        changed = dataclasses.replace(prop, options=list(prop.options))
        for key, attr in (
            ("label", "label"),
            ("type", "type"),
            ("fieldType", "field_type"),
            ("groupName", "group_name"),
            ("description", "description"),
        ):
            if body.get(key) is not None:
                setattr(changed, attr, str(body[key]))
        if body.get("displayOrder") is not None:
            changed.display_order = int(body["displayOrder"])
        if body.get("options") is not None:
            changed.options = _options(body["options"])  # replaces the whole list, as HubSpot does
        _check_shape(changed)
        changed.updated_at = iso_ms(int(self.state.clock() * 1000))
        for f in dataclasses.fields(PropertyDef):
            setattr(prop, f.name, getattr(changed, f.name))
        return json_response(prop.to_json())

    def archive_property(self, request: Request) -> Response:
        type_name, prop = self._property(request)
        if prop.hubspot_defined:
            raise fail(
                400,
                "VALIDATION_ERROR",
                f"{prop.name} is a HubSpot-defined property and cannot be archived",
            )
        del self.state.schema[type_name][prop.name]
        self.state.tables[type_name].unique.pop(prop.name, None)
        return json_response(None, 204)

    # Owners -------------------------------------------------------------------------------------

    def list_owners(self, request: Request) -> Response:
        try:
            limit = int(request.arg("limit") or 100)
            after = int(request.arg("after") or 0)
        except ValueError:
            raise fail(400, "VALIDATION_ERROR", "limit and after must be integers") from None
        if not 1 <= limit <= MAX_OWNER_PAGE:
            raise fail(400, "VALIDATION_ERROR", f"limit must be between 1 and {MAX_OWNER_PAGE}")
        archived = (request.arg("archived") or "false").lower() == "true"
        email = (request.arg("email") or "").lower()
        chosen = [
            o
            for o in sorted(self.state.owners.values(), key=lambda o: o.id)
            if o.archived == archived and o.id >= after and (not email or o.email.lower() == email)
        ]
        body: dict[str, Any] = {"results": [owner_json(o) for o in chosen[:limit]]}
        if len(chosen) > limit:
            body["paging"] = {"next": {"after": str(chosen[limit].id)}}
        return json_response(body)

    def get_owner(self, request: Request) -> Response:
        key = request.params["ownerId"]
        by_user = request.arg("idProperty") == "userId"
        archived = (request.arg("archived") or "false").lower() == "true"
        for owner in self.state.owners.values():
            if str(owner.user_id if by_user else owner.id) == key and owner.archived == archived:
                return json_response(owner_json(owner))
        raise fail(
            404, "OBJECT_NOT_FOUND", f"No owner found with {'userId' if by_user else 'id'} {key}"
        )
