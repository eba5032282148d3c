"""Field-level security: which fields the API user may read and write, as a real org decides it.

A custom field created through the Tooling API starts with no field-level security for anyone,
so the API user's describe does not list it, SOQL naming it fails with INVALID_FIELD and writes
to it are refused, until a permission set assigned to the user carries a FieldPermissions row
for it (PermissionsRead to see it, PermissionsEdit, which needs Read, to write it). Fields the
org ships with stay visible: the user's profile grants them. Custom fields of tasks and events
are one Activity field, granted through a row naming either `Task.X__c` or `Event.X__c`.

The API user may create permission sets, assignments and field permissions unless the sandbox
switch `manage_permission_sets` is off (`PUT /_sandbox/permissions`); then Salesforce's
INSUFFICIENT_ACCESS_OR_READONLY answers every such write, as for a user without "Manage
Profiles and Permission Sets" and "Assign Permission Sets".
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from smartseg.sandbox.http import Request, Response, json_response
from smartseg.sandbox.salesforce.errors import SfError
from smartseg.sandbox.salesforce.schema import Access, FieldDef, ObjectDef
from smartseg.sandbox.salesforce.store import Record, Store

if TYPE_CHECKING:
    from smartseg.sandbox.salesforce.server import SalesforceServer

__all__ = ["FieldSecurity", "check_record"]

SETUP_OBJECTS = ("PermissionSet", "PermissionSetAssignment", "FieldPermissions")
ACTIVITY_OBJECTS = ("Task", "Event")
# Permission sets a customer-success org typically has; smartseg may grant read access to them.
SEEDED = (
    ("CSM_Access", "CSM Access", "What customer success managers need on accounts and contacts."),
    ("Sales_Operations", "Sales Operations", "Reporting and territory management."),
)
ADMIN_SET = "Admin_Field_Access"  # the permission set `grant_by_hand` uses
_SYSTEM_FIELDS = frozenset({"id", "isdeleted", "createddate", "lastmodifieddate", "systemmodstamp"})
_API_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|_(?!_))*(?<!_)$")


class FieldSecurity:
    """The API user's field access on one server, computed from its setup records."""

    def __init__(self, server: SalesforceServer) -> None:
        self.server = server
        self.store = server.store
        server.schema.access = self.access
        self._seed()

    # Access -------------------------------------------------------------------------------------

    def access(self, obj: ObjectDef, definition: FieldDef) -> Access:
        """What the API user may do with the field (the store's lock must be held)."""
        if not definition.secured:
            return "edit"
        user = self.server.ids.integration_user
        assigned = {
            r["PermissionSetId"]
            for r in self.store.tables["PermissionSetAssignment"].values()
            if r["AssigneeId"] == user and not r["IsDeleted"]
        }
        names = _grant_names(obj, definition)
        read = edit = False
        for row in self.store.tables["FieldPermissions"].values():
            if row["IsDeleted"] or row["ParentId"] not in assigned:
                continue
            if str(row["Field"]).casefold() in names:
                read = read or bool(row["PermissionsRead"])
                edit = edit or bool(row["PermissionsEdit"])
        return "edit" if read and edit else "read" if read else "none"

    def grant_by_hand(self, *fields: str) -> None:
        """What an admin does in Setup: give the API user read and edit on fields named like
        `Account.Tags__c`, through a permission set of the admin's (not smartseg's)."""
        kinds = {name: self._setup(name) for name in SETUP_OBJECTS}
        with self.store.lock:
            admin = next(
                (r["Id"] for r in self.store.tables["PermissionSet"].values()
                 if r["Name"] == ADMIN_SET),
                None,
            )  # fmt: skip
            if admin is None:
                admin = self._save(kinds["PermissionSet"], {"Name": ADMIN_SET, "Label": "Admin"})
                self._save(
                    kinds["PermissionSetAssignment"],
                    {"AssigneeId": self.server.ids.integration_user, "PermissionSetId": admin},
                )
            for full_name in fields:
                values = {
                    "ParentId": admin,
                    "SobjectType": full_name.partition(".")[0],
                    "Field": full_name,
                    "PermissionsRead": True,
                    "PermissionsEdit": True,
                }
                self._save(kinds["FieldPermissions"], values)

    def _save(self, obj: ObjectDef, values: Record) -> str:
        """Create a setup record whatever the switch says: the admin has the permission."""
        from smartseg.sandbox.salesforce import writes

        writable, obj.writable = obj.writable, True
        try:
            return writes.create(self.store, obj, values)
        finally:
            obj.writable = writable

    # The switch ---------------------------------------------------------------------------------

    @property
    def manage_permission_sets(self) -> bool:
        return all(self._setup(name).writable for name in SETUP_OBJECTS)

    @manage_permission_sets.setter
    def manage_permission_sets(self, allowed: bool) -> None:
        # Without the permission the setup objects are read-only to the user, and describe says so.
        with self.store.lock:
            for name in SETUP_OBJECTS:
                self._setup(name).writable = allowed

    def register(self) -> None:
        add = self.server.router.add
        add("GET", "/_sandbox/permissions", self._get_switch, internal=True)
        add("PUT", "/_sandbox/permissions", self._put_switch, internal=True)

    def _get_switch(self, request: Request) -> Response:
        return json_response({"manage_permission_sets": self.manage_permission_sets})

    def _put_switch(self, request: Request) -> Response:
        body = request.json()
        allowed = body.get("manage_permission_sets") if isinstance(body, dict) else None
        if not isinstance(allowed, bool):
            return json_response({"error": 'send {"manage_permission_sets": true|false}'}, 400)
        self.manage_permission_sets = allowed
        return self._get_switch(request)

    # Seed ---------------------------------------------------------------------------------------

    def _seed(self) -> None:
        obj = self._setup("PermissionSet")
        with self.store.lock:
            stamp = self.store.stamp()
            for name, label, description in SEEDED:
                record: Record = {
                    "Id": self.store.new_id(obj),
                    "IsDeleted": False,
                    "Name": name,
                    "Label": label,
                    "Description": description,
                    "IsOwnedByProfile": False,
                    "NamespacePrefix": None,
                    "CreatedDate": stamp,
                    "LastModifiedDate": stamp,
                    "SystemModstamp": stamp,
                }
                self.store.put(obj, record)

    def _setup(self, name: str) -> ObjectDef:
        return self.server.schema.objects[name.lower()]


def check_record(store: Store, obj: ObjectDef, record: Record) -> None:
    """Salesforce's own rules for a permission set, an assignment or a field permission about
    to be saved (other objects pass); raises SfError with its code."""
    if obj.name == "PermissionSet":
        if not _API_NAME.match(str(record.get("Name") or "")):
            raise SfError(
                "FIELD_INTEGRITY_EXCEPTION",
                "The API Name can only contain underscores and alphanumeric characters. It must "
                "be unique, begin with a letter, not include spaces, not end with an underscore, "
                "and not contain two consecutive underscores.",
                ["Name"],
            )
    elif obj.name == "PermissionSetAssignment":
        _check_assignment(store, record)
    elif obj.name == "FieldPermissions":
        _check_field_permission(store, record)


def _check_assignment(store: Store, record: Record) -> None:
    for other in store.tables["PermissionSetAssignment"].values():
        if (
            other["Id"] != record["Id"]
            and not other["IsDeleted"]
            and other["AssigneeId"] == record["AssigneeId"]
            and other["PermissionSetId"] == record["PermissionSetId"]
        ):
            raise SfError(
                "DUPLICATE_VALUE",
                f"Duplicate PermissionSetAssignment. Assignee: {record['AssigneeId']}; "
                f"Permission Set: {record['PermissionSetId']}",
            )


def _check_field_permission(store: Store, record: Record) -> None:
    schema = store.schema
    sobject = str(record.get("SobjectType") or "")
    obj = schema.get(sobject)
    if obj is None or obj.name in SETUP_OBJECTS:
        raise _bad_value("SObject Type Name", sobject, "SobjectType")
    prefix, _, name = str(record.get("Field") or "").partition(".")
    definition = obj.get(name)
    if prefix.casefold() != obj.name.casefold() or definition is None:
        raise _bad_value("Field Name", str(record.get("Field")), "Field")
    if not _permissionable(definition):
        raise _bad_value("Field Name", str(record.get("Field")), "Field")
    record["SobjectType"], record["Field"] = obj.name, f"{obj.name}.{definition.name}"
    if record.get("PermissionsEdit") and not record.get("PermissionsRead"):
        raise SfError(
            "FIELD_INTEGRITY_EXCEPTION",
            "Permission Edit Field depends on permission(s): Read Field",
            ["PermissionsEdit"],
        )
    names = _grant_names(obj, definition)
    for other in store.tables["FieldPermissions"].values():
        if (
            other["Id"] != record["Id"]
            and not other["IsDeleted"]
            and other["ParentId"] == record["ParentId"]
            and str(other["Field"]).casefold() in names
        ):
            raise SfError(
                "DUPLICATE_VALUE",
                f"duplicate value found: <unknown> duplicates value on record with id: "
                f"{other['Id']}",
            )


def _permissionable(definition: FieldDef) -> bool:
    """Whether field-level security applies: not system fields, not required ones."""
    return definition.name.lower() not in _SYSTEM_FIELDS and not definition.required


def _grant_names(obj: ObjectDef, definition: FieldDef) -> frozenset[str]:
    """The FieldPermissions.Field values (casefolded) that grant this field."""
    holders = (
        ACTIVITY_OBJECTS if obj.name in ACTIVITY_OBJECTS and definition.custom else (obj.name,)
    )
    return frozenset(f"{holder}.{definition.name}".casefold() for holder in holders)


def _bad_value(label: str, value: str, field: str) -> SfError:
    return SfError(
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        f"{label}: bad value for restricted picklist field: {value}",
        [field],
    )
