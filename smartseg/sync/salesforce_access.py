"""Field-level security for the fields smartseg writes to Salesforce, granted by `crm setup`.

A field created through the Tooling API has no field-level security: nobody, not even the
integration user that created it, can read or write it (SOQL and writes fail with INVALID_FIELD)
until a permission set assigned to them grants it. So smartseg owns one permission set
(`targets.salesforce.permission_set`), assigns it to the integration user and gives it read and
edit FieldPermissions on every field smartseg writes; `grant_read_to` gives existing permission
sets (the CSMs') read-only FieldPermissions on the same fields, so people see them on records.

Every step reads before it writes: a second run with nothing to change costs three queries
(the permission sets by name, the assignment, the field permissions) and writes nothing, and a
run stopped half-way is finished by the next. FieldPermissions are created and updated through
sObject Collections, 200 records a call, never one call per field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from smartseg.errors import ConfigError
from smartseg.segmenter.check import did_you_mean

__all__ = ["PERMISSION_SET_LABEL", "OwnedField", "SetupApi", "grant_access", "refused"]

PERMISSION_SET_LABEL = "smartseg fields"
_DESCRIPTION = (
    "Read and edit access to the fields smartseg writes; managed by `smartseg crm setup`."
)
_KEY = "targets.salesforce.permission_set"
_PS, _PSA, _FP = "PermissionSet", "PermissionSetAssignment", "FieldPermissions"


@dataclass(frozen=True, slots=True)
class OwnedField:
    """A field smartseg writes, as FieldPermissions names it (Task fields by their Task name)."""

    sobject: str
    name: str

    @property
    def full_name(self) -> str:
        return f"{self.sobject}.{self.name}"


class SetupApi(Protocol):
    """The few calls granting needs, made by the Salesforce target (counted, paced, retried)."""

    def records(self, soql: str, stream: str) -> list[dict[str, Any]]:
        """Every record the query returns, following its pages."""
        ...

    def save(
        self, method: Literal["POST", "PATCH"], records: Sequence[Mapping[str, Any]], stream: str
    ) -> list[str]:
        """Create (POST) or update (PATCH) through sObject Collections; the ids, in order.
        Raises when a record fails, since a person has to fix the cause."""
        ...

    def user_id(self) -> str:
        """The integration user's record id."""
        ...


def grant_access(
    api: SetupApi, permission_set: str, readers: Sequence[str], fields: Sequence[OwnedField]
) -> list[str]:
    """Make `permission_set` exist, be assigned to the integration user and carry read and
    edit on `fields`; give each of `readers` read on them. Returns what it did, one line each."""
    names = list(dict.fromkeys([permission_set, *readers]))
    listed = ", ".join(f"'{name}'" for name in names)  # API names, checked by the config model
    found = {
        str(r["Name"]).casefold(): str(r["Id"])
        for r in api.records(f"SELECT Id, Name FROM PermissionSet WHERE Name IN ({listed})", _PS)
    }
    for reader in readers:
        if reader.casefold() not in found:
            raise _unknown_reader(api, reader)
    lines: list[str] = []
    user = api.user_id()
    own = found.get(permission_set.casefold())
    assigned = False
    if own is None:
        record = {
            "Name": permission_set,
            "Label": PERMISSION_SET_LABEL,
            "Description": _DESCRIPTION,
        }
        own = api.save("POST", [_sobject(_PS, record)], _PS)[0]
        lines.append(f"permission set {permission_set}: created")
    else:
        assigned = bool(
            api.records(
                f"SELECT Id FROM {_PSA} WHERE AssigneeId = '{user}' AND PermissionSetId = '{own}'",
                _PSA,
            )
        )
    if not assigned:
        api.save("POST", [_sobject(_PSA, {"AssigneeId": user, "PermissionSetId": own})], _PSA)
        lines.append(f"permission set {permission_set}: assigned to the integration user")
    edit_by_parent = {found[r.casefold()]: False for r in readers}
    edit_by_parent[own] = True
    label = {found[r.casefold()]: r for r in readers}
    label[own] = permission_set
    creates, updates = _changes(api, edit_by_parent, fields)
    api.save("POST", [_sobject(_FP, r) for r in creates], _FP)
    api.save("PATCH", [_sobject(_FP, r) for r in updates], _FP)
    for parent, edit in edit_by_parent.items():
        count = sum(1 for r in [*creates, *updates] if r["_parent"] == parent)
        if count:
            what = "read and edit" if edit else "read"
            lines.append(f"permission set {label[parent]}: granted {what} on {count} fields")
    if not lines:
        lines.append(f"field-level security: up to date ({', '.join(names)})")
    return lines


def refused(code: str, message: str, fields: Sequence[OwnedField]) -> ConfigError:
    """The error for an integration user that may not manage permission sets."""
    names = ", ".join(f.full_name for f in fields)
    return ConfigError(
        f"Salesforce refused to let the integration user manage permission sets ({code}: "
        f"{message}), so smartseg cannot grant it access to its fields. Give the integration "
        'user the "Manage Profiles and Permission Sets", "Assign Permission Sets" and "View '
        'Setup and Configuration" permissions and run `smartseg crm setup` again; or set '
        "targets.salesforce.permission_set to null and grant the integration user read and "
        f"edit field-level security on {names} by hand",
        key=_KEY,
    )


def _changes(
    api: SetupApi, edit_by_parent: Mapping[str, bool], fields: Sequence[OwnedField]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """FieldPermissions to create and to update so each parent has what it should (read, and
    edit where asked); access a parent has beyond that is left alone."""
    parents = ", ".join(f"'{p}'" for p in edit_by_parent)  # ids Salesforce gave us
    objects = ", ".join(f"'{o}'" for o in dict.fromkeys(f.sobject for f in fields))
    rows = api.records(
        "SELECT Id, ParentId, SobjectType, Field, PermissionsRead, PermissionsEdit "
        f"FROM {_FP} WHERE ParentId IN ({parents}) AND SobjectType IN ({objects})",
        _FP,
    )
    existing = {(str(r["ParentId"])[:15], str(r["Field"]).casefold()): r for r in rows}
    creates: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for parent, edit in edit_by_parent.items():
        for field in fields:
            row = existing.get((parent[:15], field.full_name.casefold()))
            if row is None:
                creates.append({
                    "_parent": parent, "ParentId": parent, "SobjectType": field.sobject,
                    "Field": field.full_name, "PermissionsRead": True, "PermissionsEdit": edit,
                })  # fmt: skip
            elif not row["PermissionsRead"] or (edit and not row["PermissionsEdit"]):
                updates.append({
                    "_parent": parent, "Id": row["Id"], "PermissionsRead": True,
                    "PermissionsEdit": edit or bool(row["PermissionsEdit"]),
                })  # fmt: skip
    return creates, updates


def _sobject(kind: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """A Collections record: its type, and its values without the bookkeeping keys (`_...`)."""
    return {"attributes": {"type": kind}, **{k: v for k, v in values.items() if k[0] != "_"}}


def _unknown_reader(api: SetupApi, name: str) -> ConfigError:
    known = [
        str(r["Name"])
        for r in api.records(f"SELECT Name FROM {_PS} WHERE IsOwnedByProfile = false", _PS)
    ]
    hint = did_you_mean(name, known) or "; use its API name (Setup > Permission Sets)"
    return ConfigError(
        f"targets.salesforce.grant_read_to names the permission set {name!r}, which Salesforce "
        f"does not have{hint}",
        key="targets.salesforce.grant_read_to",
    )
