"""The properties a fresh HubSpot portal has for each object, plus smartseg's custom ones.

Standard properties carry HubSpot's internal option values (industry COMPUTER_SOFTWARE, dealstage
closedwon, ...), so mapping code meets the same vocabulary it meets in production. The custom
properties are the ones a portal set up for smartseg would have (salesforce_account_id,
workspace_id, edition, salesforce_contact_id, contact_role).
"""

from __future__ import annotations

from .catalog import ENGAGEMENTS, OBJECT_TYPES
from .properties import Option, PropertyDef

__all__ = ["INDUSTRIES", "seed_schema"]

# World industry -> HubSpot's industry option value (the rest are upper-snake-cased at load).
INDUSTRIES: dict[str, str] = {
    "Software": "COMPUTER_SOFTWARE",
    "Healthcare": "HOSPITAL_HEALTH_CARE",
    "Financial Services": "FINANCIAL_SERVICES",
    "Retail": "RETAIL",
    "Manufacturing": "MECHANICAL_OR_INDUSTRIAL_ENGINEERING",
    "Education": "EDUCATION_MANAGEMENT",
    "Media": "MEDIA_PRODUCTION",
    "Logistics": "LOGISTICS_AND_SUPPLY_CHAIN",
    "Telecommunications": "TELECOMMUNICATIONS",
    "Government": "GOVERNMENT_ADMINISTRATION",
    "Nonprofit": "NON_PROFIT_ORGANIZATION_MANAGEMENT",
    "Hospitality": "HOSPITALITY",
    "Real Estate": "REAL_ESTATE",
    "Energy": "OIL_ENERGY",
    "Consulting": "MANAGEMENT_CONSULTING",
    "Insurance": "INSURANCE",
}

_LIFECYCLE = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead",
              "opportunity", "customer", "evangelist", "other")  # fmt: skip


def _opts(*values: str | tuple[str, str]) -> list[Option]:
    """Options from values, or (label, value) pairs; display order follows the arguments."""
    out = []
    for i, item in enumerate(values):
        label, value = item if isinstance(item, tuple) else (item.replace("_", " ").title(), item)
        out.append(Option(label=label, value=value, display_order=i))
    return out


def _text(name: str, label: str, group: str, **kw: object) -> PropertyDef:
    return PropertyDef(name, label, "string", "text", group, **kw)  # type: ignore[arg-type]


def _num(name: str, label: str, group: str, **kw: object) -> PropertyDef:
    return PropertyDef(name, label, "number", "number", group, **kw)  # type: ignore[arg-type]


def _when(name: str, label: str, group: str, **kw: object) -> PropertyDef:
    return PropertyDef(name, label, "datetime", "date", group, **kw)  # type: ignore[arg-type]


def _enum(
    name: str,
    label: str,
    group: str,
    options: list[Option],
    field_type: str = "select",
    **kw: object,
) -> PropertyDef:
    return PropertyDef(name, label, "enumeration", field_type, group, options, **kw)  # type: ignore[arg-type]


def _system(group: str, created: str) -> list[PropertyDef]:
    """The read-only bookkeeping properties every object has."""
    props = [
        _num("hs_object_id", "Record ID", group, read_only=True),
        _when("hs_lastmodifieddate", "Last Modified Date", group, read_only=True),
        _when("hs_createdate", "Create date", group, read_only=True),
        _enum("hubspot_owner_id", "Owner", group, [], external_options=True),
    ]
    if created == "createdate":
        props.append(_when("createdate", "Create Date", group))
    return props


def _companies() -> list[PropertyDef]:
    g = "companyinformation"
    industries = _opts(*sorted(set(INDUSTRIES.values()) | {"OTHER"}))
    return [
        *_system(g, "createdate"),
        _text("name", "Company name", g),
        _text("domain", "Company domain name", g),
        _text("website", "Website URL", g),
        _text("phone", "Phone Number", g),
        _text("city", "City", g),
        _text("country", "Country/Region", g),
        _text("description", "Description", g),
        _enum("industry", "Industry", g, industries),
        _num("numberofemployees", "Number of Employees", g),
        _num("annualrevenue", "Annual Revenue", g),
        _enum("lifecyclestage", "Lifecycle Stage", g, _opts(*_LIFECYCLE)),
        _enum("type", "Type", g, _opts("PROSPECT", "PARTNER", "RESELLER", "VENDOR", "OTHER")),
        _text("salesforce_account_id", "Salesforce account ID", g, hubspot_defined=False),
        _text("workspace_id", "Workspace ID", g, hubspot_defined=False, has_unique_value=True),
        _enum("edition", "Edition", g, _opts(*(("Gold", "Gold"), ("Silver", "Silver"),
                                               ("Bronze", "Bronze"), ("Free", "Free"))),
              hubspot_defined=False),
    ]  # fmt: skip


def _contacts() -> list[PropertyDef]:
    g = "contactinformation"
    roles = ("Decision Maker", "Executive Sponsor", "Primary Contact", "Champion", "User")
    return [
        *_system(g, "createdate"),
        _when("lastmodifieddate", "Last Modified Date", g, read_only=True),
        _text("email", "Email", g),
        _text("firstname", "First Name", g),
        _text("lastname", "Last Name", g),
        _text("jobtitle", "Job Title", g),
        _text("company", "Company Name", g),
        _text("phone", "Phone Number", g),
        _text("country", "Country/Region", g),
        _enum("lifecyclestage", "Lifecycle Stage", g, _opts(*_LIFECYCLE)),
        PropertyDef("hs_email_optout", "Unsubscribed from all email", "enumeration",
                    "booleancheckbox", g, _opts(("Yes", "true"), ("No", "false")),
                    read_only=False),
        _num("associatedcompanyid", "Primary Associated Company ID", g, read_only=True),
        _text("salesforce_contact_id", "Salesforce contact ID", g, hubspot_defined=False),
        _enum("contact_role", "Contact role", g, _opts(*((r, r) for r in roles)),
              hubspot_defined=False),
    ]  # fmt: skip


def _deals() -> list[PropertyDef]:
    g = "dealinformation"
    stages = _opts(("Appointment Scheduled", "appointmentscheduled"),
                   ("Qualified To Buy", "qualifiedtobuy"),
                   ("Presentation Scheduled", "presentationscheduled"),
                   ("Decision Maker Bought-In", "decisionmakerboughtin"),
                   ("Contract Sent", "contractsent"), ("Closed Won", "closedwon"),
                   ("Closed Lost", "closedlost"))  # fmt: skip
    return [
        *_system(g, "createdate"),
        _text("dealname", "Deal Name", g),
        _num("amount", "Amount", g),
        _enum("dealstage", "Deal Stage", g, stages, "radio"),
        _enum("pipeline", "Pipeline", g, _opts(("Sales Pipeline", "default"))),
        _when("closedate", "Close Date", g),
        _enum("dealtype", "Deal Type", g, _opts(("New Business", "newbusiness"),
                                                 ("Existing Business", "existingbusiness"))),
    ]  # fmt: skip


def _tickets() -> list[PropertyDef]:
    g = "ticketinformation"
    stages = _opts(("New", "1"), ("Waiting on contact", "2"), ("Waiting on us", "3"),
                   ("Closed", "4"))  # fmt: skip
    return [
        *_system(g, "createdate"),
        _text("subject", "Ticket name", g),
        PropertyDef("content", "Ticket description", "string", "textarea", g),
        _enum("hs_pipeline", "Pipeline", g, _opts(("Support Pipeline", "0"))),
        _enum("hs_pipeline_stage", "Ticket status", g, stages),
        _enum("hs_ticket_priority", "Priority", g, _opts("LOW", "MEDIUM", "HIGH", "URGENT")),
        _enum("hs_ticket_category", "Category", g, _opts(
            "PRODUCT_ISSUE", "BILLING_ISSUE", "FEATURE_REQUEST", "GENERAL_INQUIRY"), "checkbox"),
        _when("closed_date", "Close date", g),
    ]  # fmt: skip


def _engagement(kind: str) -> list[PropertyDef]:
    g = f"{kind[:-1]}information"
    props = [*_system(g, "hs_createdate"), _when("hs_timestamp", "Activity date", g)]
    if kind == "calls":
        props += [
            _text("hs_call_title", "Call Title", g),
            PropertyDef("hs_call_body", "Call notes", "string", "html", g),
            _num("hs_call_duration", "Call duration", g),
            _enum("hs_call_direction", "Call direction", g, _opts("INBOUND", "OUTBOUND")),
            _enum(
                "hs_call_status",
                "Call status",
                g,
                _opts(
                    "BUSY",
                    "CALLING_CRM_USER",
                    "CANCELED",
                    "COMPLETED",
                    "CONNECTING",
                    "FAILED",
                    "IN_PROGRESS",
                    "NO_ANSWER",
                    "QUEUED",
                    "RINGING",
                ),
            ),
            _text("hs_call_disposition", "Call outcome", g),
        ]
    elif kind == "meetings":
        props += [
            _text("hs_meeting_title", "Meeting name", g),
            PropertyDef("hs_meeting_body", "Meeting description", "string", "html", g),
            _when("hs_meeting_start_time", "Start time", g),
            _when("hs_meeting_end_time", "End time", g),
            _enum(
                "hs_meeting_outcome",
                "Meeting outcome",
                g,
                _opts("SCHEDULED", "COMPLETED", "RESCHEDULED", "NO_SHOW", "CANCELED"),
            ),
            _text("hs_meeting_location", "Location", g),
            _enum(
                "hs_activity_type",
                "Call and meeting type",
                g,
                _opts(
                    ("QBR", "QBR"),
                    ("Check-in", "Check-in"),
                    ("Onboarding", "Onboarding"),
                    ("Demo", "Demo"),
                ),
            ),
        ]
    elif kind == "emails":
        props += [
            _text("hs_email_subject", "Email subject", g),
            PropertyDef("hs_email_text", "Email body", "string", "textarea", g),
            PropertyDef("hs_email_html", "Email HTML", "string", "html", g),
            _enum(
                "hs_email_direction",
                "Email direction",
                g,
                _opts("EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL"),
            ),
            _enum(
                "hs_email_status",
                "Email send status",
                g,
                _opts("BOUNCED", "FAILED", "SCHEDULED", "SENDING", "SENT"),
            ),
            _text("hs_email_headers", "Email headers", g),
        ]
    elif kind == "notes":
        props.append(PropertyDef("hs_note_body", "Note body", "string", "html", g))
    else:
        props += [
            _text("hs_task_subject", "Task Title", g),
            PropertyDef("hs_task_body", "Notes", "string", "html", g),
            _enum(
                "hs_task_status",
                "Task Status",
                g,
                _opts("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"),
            ),
            _enum("hs_task_priority", "Priority", g, _opts("NONE", "LOW", "MEDIUM", "HIGH")),
            _enum("hs_task_type", "Task Type", g, _opts("EMAIL", "CALL", "TODO", "LINKED_IN")),
            _text("hs_task_reminders", "Reminder", g),
            _when("hs_task_completion_date", "Completed at", g, read_only=True),
        ]
    return props  # fmt: skip


def seed_schema() -> dict[str, dict[str, PropertyDef]]:
    """A fresh schema: object type -> property name -> definition (independent copies)."""
    builders = {"companies": _companies, "contacts": _contacts, "deals": _deals,
                "tickets": _tickets}  # fmt: skip
    schema: dict[str, dict[str, PropertyDef]] = {}
    for name in OBJECT_TYPES:
        props = builders[name]() if name in builders else _engagement(name)
        schema[name] = {p.name: p for p in props}
    assert set(schema) >= set(ENGAGEMENTS)
    return schema
