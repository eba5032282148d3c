"""The standard and custom objects this org has: Account, Contact, Opportunity, Case, Task,
Event and User, with the fields smartseg reads and writes (see the sandbox brief), and the setup
objects of field-level security: PermissionSet, PermissionSetAssignment and FieldPermissions."""

from __future__ import annotations

from typing import Any

from smartseg.sandbox.salesforce.schema import FieldDef, ObjectDef, PicklistValue, Schema

__all__ = ["build_schema"]


def _f(name: str, kind: str, **kwargs: Any) -> FieldDef:
    values = kwargs.pop("values", ())
    default = kwargs.pop("default", None)
    if kind == "reference" and "relationship_name" not in kwargs:
        kwargs["relationship_name"] = (
            name[:-3] + "__r" if name.endswith("__c") else name.removesuffix("Id")
        )
    if kind in ("string", "textarea", "email", "url", "picklist", "multipicklist", "phone"):
        kwargs.setdefault("length", 4099 if kind == "multipicklist" else 255)
    if kind in ("id", "reference"):
        kwargs.setdefault("length", 18)
    if kind in ("double", "currency", "percent"):
        kwargs.setdefault("precision", 18)
        kwargs.setdefault("scale", 2 if kind == "currency" else 0)
    if kind == "int":
        kwargs.setdefault("precision", 9)
    kwargs.setdefault("custom", name.endswith("__c"))
    picklist = [PicklistValue(v, v, default=v == default) for v in values]
    return FieldDef(name, kind, picklist=picklist, **kwargs)


def _readonly(name: str, kind: str, **kwargs: Any) -> FieldDef:
    return _f(name, kind, createable=False, updateable=False, **kwargs)


def _custom_picklist(name: str, *values: str) -> FieldDef:
    return _f(name, "picklist", values=values, restricted=True)


def _system_fields() -> list[FieldDef]:
    return [
        _readonly("Id", "id", nillable=False, label="Record ID"),
        _readonly("IsDeleted", "boolean", nillable=False, label="Deleted"),
        _readonly("CreatedDate", "datetime", nillable=False),
        _readonly("LastModifiedDate", "datetime", nillable=False),
        _readonly("SystemModstamp", "datetime", nillable=False),
    ]


def _owner() -> FieldDef:
    return _f(
        "OwnerId",
        "reference",
        reference_to=["User"],
        nillable=False,
        defaulted=True,
        label="Owner ID",
    )


def _object(name: str, prefix: str, plural: str, fields: list[FieldDef]) -> ObjectDef:
    obj = ObjectDef(name=name, key_prefix=prefix, label=name, label_plural=plural)
    for item in _system_fields()[:2] + fields + _system_fields()[2:]:
        obj.add(item)
    return obj


def _account() -> ObjectDef:
    return _object(
        "Account",
        "001",
        "Accounts",
        [
            _f("Name", "string", nillable=False, name_field=True, label="Account Name"),
            _f("Website", "url"),
            _f(
                "Industry",
                "picklist",
                values=(
                    "Software",
                    "Healthcare",
                    "Financial Services",
                    "Retail",
                    "Manufacturing",
                    "Education",
                    "Media",
                    "Technology",
                    "Other",
                ),
            ),
            _f(
                "Type",
                "picklist",
                values=("Prospect", "Customer - Direct", "Customer - Channel", "Partner", "Other"),
                label="Account Type",
            ),
            _f("NumberOfEmployees", "int", precision=8, label="Employees"),
            _f("AnnualRevenue", "currency"),
            _f("BillingCountry", "string", length=80),
            _owner(),
            _f("ParentId", "reference", reference_to=["Account"], relationship_name="Parent"),
            _custom_picklist(
                "Customer_Status__c", "Customer", "Trial", "Pilot", "Churned", "Prospect"
            ),
            _custom_picklist("Edition__c", "Gold", "Silver", "Bronze", "Free"),
            _custom_picklist("Product__c", "Analytics", "Automation"),
            _custom_picklist("Contract_Type__c", "Annual", "Monthly"),
            _f("Opt_Out_Clause__c", "boolean", nillable=False),
            _f("Customer_Since__c", "date"),
            _f("Renewal_Date__c", "date"),
            _f("Trial_End_Date__c", "date"),
            _f("Churn_Date__c", "date"),
            _custom_picklist(
                "Churn_Reason__c", "Competitor", "Out of Business", "Budget", "Product Fit"
            ),
            _f("Licensed_Seats__c", "double"),
            _custom_picklist("CSM_Sentiment__c", "Green", "Yellow", "Red"),
            _custom_picklist("Product_Fit__c", "Good", "Fair", "Poor"),
            _custom_picklist(
                "Lifecycle_Stage__c", "Onboarding", "Adoption", "Value", "Renewal", "Churned"
            ),
            _custom_picklist(
                "Onboarding_Status__c", "Not Started", "In Progress", "Behind", "Stuck", "Completed"
            ),
            _f("Onboarding_Step__c", "double"),
            _custom_picklist(
                "Use_Case__c", "Reporting", "Automation", "Customer Marketing", "Data Integration"
            ),
            _f(
                "Purchase_Benefit__c",
                "picklist",
                values=("Reduce Reporting Time", "Increase Retention", "Save Time", "Grow Revenue"),
            ),
            _f("Benefit_Achieved_Date__c", "date"),
            _custom_picklist("Growth_Potential__c", "High", "Medium", "Low"),
            _f("Health_Score__c", "double"),
            _f("Reference_Account__c", "boolean", nillable=False),
            _f("Strategic__c", "boolean", nillable=False),
            _custom_picklist("Region__c", "NA", "EMEA", "APAC", "LATAM"),
            _f("Workspace_Id__c", "string", length=64, external_id=True, unique=True),
            _f("Stripe_Customer_Id__c", "string", external_id=True),
            _f("CSM__c", "reference", reference_to=["User"], label="CSM"),
        ],
    )


def _contact() -> ObjectDef:
    return _object(
        "Contact",
        "003",
        "Contacts",
        [
            _f("AccountId", "reference", reference_to=["Account"]),
            _f("FirstName", "string", length=40),
            _f("LastName", "string", length=80, nillable=False),
            _readonly(
                "Name", "string", length=121, nillable=False, name_field=True, label="Full Name"
            ),
            _f("Email", "email", length=80),
            _f("Title", "string", length=128),
            _owner(),
            _f("HasOptedOutOfEmail", "boolean", nillable=False, label="Email Opt Out"),
            _custom_picklist(
                "Role__c",
                "Decision Maker",
                "Executive Sponsor",
                "Primary Contact",
                "Champion",
                "User",
            ),
            _f("Referrals_Won__c", "double"),
        ],
    )


def _opportunity() -> ObjectDef:
    return _object(
        "Opportunity",
        "006",
        "Opportunities",
        [
            _f("AccountId", "reference", reference_to=["Account"]),
            _f("Name", "string", length=120, nillable=False, name_field=True),
            _f(
                "StageName",
                "picklist",
                nillable=False,
                label="Stage",
                values=("Prospecting", "Qualification", "Negotiation", "Closed Won", "Closed Lost"),
            ),
            _f("Amount", "currency"),
            _f("CloseDate", "date", nillable=False),
            _readonly("IsClosed", "boolean", nillable=False, label="Closed"),
            _readonly("IsWon", "boolean", nillable=False, label="Won"),
            _f("Probability", "percent", precision=3, defaulted=True),
            _f(
                "Type",
                "picklist",
                values=("New Business", "Renewal", "Upsell"),
                label="Opportunity Type",
            ),
            _owner(),
            _f("Referred_By__c", "reference", reference_to=["Contact"]),
        ],
    )


def _case() -> ObjectDef:
    return _object(
        "Case",
        "500",
        "Cases",
        [
            _f("AccountId", "reference", reference_to=["Account"]),
            _f("ContactId", "reference", reference_to=["Contact"]),
            _f(
                "Status",
                "picklist",
                values=("New", "Working", "Escalated", "Closed"),
                default="New",
                defaulted=True,
            ),
            _f(
                "Priority",
                "picklist",
                values=("Critical", "High", "Medium", "Low"),
                default="Medium",
                defaulted=True,
            ),
            _f("Origin", "picklist", values=("Phone", "Email", "Web"), label="Case Origin"),
            _f(
                "Type", "picklist", values=("Bug", "Question", "Feature Request"), label="Case Type"
            ),
            _f("Subject", "string"),
            _readonly("IsClosed", "boolean", nillable=False, label="Closed"),
            _readonly("ClosedDate", "datetime", label="Closed Date"),
            _f("Feature__c", "string", length=80),
        ],
    )


def _activity_links() -> list[FieldDef]:
    return [
        _f(
            "WhatId",
            "reference",
            reference_to=["Account", "Opportunity", "Case"],
            relationship_name="What",
            label="Related To ID",
        ),
        _f(
            "WhoId", "reference", reference_to=["Contact"], relationship_name="Who", label="Name ID"
        ),
        _readonly("AccountId", "reference", reference_to=["Account"], relationship_name="Account"),
        _owner(),
        _f("Subject", "string"),
    ]


def _task() -> ObjectDef:
    return _object(
        "Task",
        "00T",
        "Tasks",
        [
            *_activity_links(),
            _f("Description", "textarea", length=32000, label="Comments"),
            _f("ActivityDate", "date", label="Due Date Only"),
            _f(
                "Status",
                "picklist",
                nillable=False,
                defaulted=True,
                default="Not Started",
                values=("Not Started", "In Progress", "Completed", "Deferred"),
            ),
            _f(
                "Priority",
                "picklist",
                nillable=False,
                defaulted=True,
                default="Normal",
                values=("High", "Normal", "Low"),
            ),
            _f("TaskSubtype", "picklist", values=("Task", "Email", "Call"), updateable=False),
            _f("Type", "picklist", values=("Call", "Email", "Meeting", "Other")),
            _readonly("IsClosed", "boolean", nillable=False, label="Closed"),
            _readonly("CompletedDateTime", "datetime"),
        ],
    )


def _event() -> ObjectDef:
    return _object(
        "Event",
        "00U",
        "Events",
        [
            *_activity_links(),
            _f("Type", "picklist", values=("Meeting", "QBR", "Call")),
            _f("StartDateTime", "datetime", nillable=False),
            _f("EndDateTime", "datetime", defaulted=True),
            _f("DurationInMinutes", "int", defaulted=True, precision=8),
            _custom_picklist("Meeting_Status__c", "Completed", "Cancelled", "Scheduled"),
        ],
    )


def _user() -> ObjectDef:
    obj = _object(
        "User",
        "005",
        "Users",
        [
            _readonly(
                "Name", "string", length=121, nillable=False, name_field=True, label="Full Name"
            ),
            _f("FirstName", "string", length=40),
            _f("LastName", "string", length=80, nillable=False),
            _f("Email", "email", length=128, nillable=False),
            _f("IsActive", "boolean", nillable=False, label="Active"),
            _f("Title", "string", length=80),
        ],
    )
    obj.writable = False
    return obj


def _setup_field(name: str, kind: str, **kwargs: Any) -> FieldDef:
    """A field of a setup object that is set on create and never changes afterwards."""
    return _f(name, kind, updateable=False, nillable=False, **kwargs)


def _permission_set() -> ObjectDef:
    return _object(
        "PermissionSet",
        "0PS",
        "Permission Sets",
        [
            _f("Name", "string", length=80, nillable=False, unique=True, label="Name"),
            _f("Label", "string", length=80, nillable=False, name_field=True),
            _f("Description", "textarea", length=255),
            _readonly("IsOwnedByProfile", "boolean", nillable=False),
            _readonly("NamespacePrefix", "string", length=15),
        ],
    )


def _permission_set_assignment() -> ObjectDef:
    return _object(
        "PermissionSetAssignment",
        "0Pa",
        "Permission Set Assignments",
        [
            _setup_field("AssigneeId", "reference", reference_to=["User"]),
            _setup_field("PermissionSetId", "reference", reference_to=["PermissionSet"]),
        ],
    )


def _field_permissions() -> ObjectDef:
    return _object(
        "FieldPermissions",
        "01k",
        "Field Permissions",
        [
            _setup_field(
                "ParentId",
                "reference",
                reference_to=["PermissionSet"],
                relationship_name="Parent",
            ),
            _setup_field("SobjectType", "picklist", length=40, label="SObject Type Name"),
            # Real orgs report length 40 but accept any field's full name.
            _setup_field("Field", "picklist", label="Field Name"),
            _f("PermissionsRead", "boolean", nillable=False, label="Read Field"),
            _f("PermissionsEdit", "boolean", nillable=False, label="Edit Field"),
        ],
    )


def build_schema() -> Schema:
    """A fresh copy of the org's data schema (each server owns one and may extend it)."""
    return Schema(
        [
            _account(),
            _contact(),
            _opportunity(),
            _case(),
            _task(),
            _event(),
            _user(),
            _permission_set(),
            _permission_set_assignment(),
            _field_permissions(),
        ]
    )
