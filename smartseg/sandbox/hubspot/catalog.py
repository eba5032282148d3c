"""HubSpot's object types and association types, as the CRM v3/v4 APIs name them.

Paths accept an object type by plural name ("contacts"), singular ("contact") or type id ("0-1"),
as HubSpot does. Association type ids are HubSpot's HUBSPOT_DEFINED ones (the same numbers as
hubspot-api-client's `AssociationType`), each with its inverse, so a link written in one direction
reads back from the other.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ENGAGEMENTS",
    "OBJECT_TYPES",
    "AssocType",
    "ObjectType",
    "assoc_type",
    "assoc_types_between",
    "default_assoc_type",
    "object_type",
]


@dataclass(frozen=True, slots=True)
class ObjectType:
    """One CRM object type and the facts about it that the API's behaviour depends on."""

    name: str  # plural, as in /crm/v3/objects/{name}
    singular: str
    type_id: str  # "0-1"
    id_base: int  # ids are id_base + n: each type has its own range, so ids never collide
    default_properties: tuple[str, ...]  # returned when a read names no properties
    modified_property: str  # the last-modified property incremental syncs filter on
    created_property: str
    searchable: tuple[str, ...]  # what the free-text `query` of a search matches
    required: tuple[str, ...] = ()  # properties a create must carry
    natural_key: str | None = None  # a built-in unique property (contacts' email)


ENGAGEMENTS = ("calls", "emails", "meetings", "notes", "tasks")

_ENGAGEMENT_DEFAULTS = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")

OBJECT_TYPES: dict[str, ObjectType] = {
    t.name: t
    for t in (
        ObjectType(
            "contacts", "contact", "0-1", 100_000_000,
            ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
            "lastmodifieddate", "createdate",
            ("email", "firstname", "lastname", "phone", "company"),
            natural_key="email",
        ),
        ObjectType(
            "companies", "company", "0-2", 20_000_000_000,
            ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
            "hs_lastmodifieddate", "createdate", ("name", "domain", "website", "phone"),
        ),
        ObjectType(
            "deals", "deal", "0-3", 30_000_000_000,
            ("amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate",
             "hs_object_id", "pipeline"),
            "hs_lastmodifieddate", "createdate", ("dealname",),
        ),
        ObjectType(
            "tickets", "ticket", "0-5", 1_000_000_000,
            ("content", "createdate", "hs_lastmodifieddate", "hs_object_id", "hs_pipeline",
             "hs_pipeline_stage", "hs_ticket_category", "hs_ticket_priority", "subject"),
            "hs_lastmodifieddate", "createdate", ("subject", "content"),
            required=("subject", "hs_pipeline_stage"),
        ),
        ObjectType("calls", "call", "0-48", 40_000_000_000, _ENGAGEMENT_DEFAULTS,
                   "hs_lastmodifieddate", "hs_createdate", ("hs_call_title", "hs_call_body"),
                   required=("hs_timestamp",)),
        ObjectType("emails", "email", "0-49", 41_000_000_000, _ENGAGEMENT_DEFAULTS,
                   "hs_lastmodifieddate", "hs_createdate", ("hs_email_subject", "hs_email_text"),
                   required=("hs_timestamp",)),
        ObjectType("meetings", "meeting", "0-47", 42_000_000_000, _ENGAGEMENT_DEFAULTS,
                   "hs_lastmodifieddate", "hs_createdate", ("hs_meeting_title", "hs_meeting_body"),
                   required=("hs_timestamp",)),
        ObjectType("notes", "note", "0-46", 43_000_000_000, _ENGAGEMENT_DEFAULTS,
                   "hs_lastmodifieddate", "hs_createdate", ("hs_note_body",),
                   required=("hs_timestamp",)),
        ObjectType("tasks", "task", "0-27", 44_000_000_000, _ENGAGEMENT_DEFAULTS,
                   "hs_lastmodifieddate", "hs_createdate", ("hs_task_subject", "hs_task_body"),
                   required=("hs_timestamp",)),
    )
}  # fmt: skip

_ALIASES: dict[str, str] = {}
for _t in OBJECT_TYPES.values():
    _ALIASES.update({_t.name: _t.name, _t.singular: _t.name, _t.type_id: _t.name})


def object_type(name: str) -> ObjectType | None:
    """The object type a path segment names (plural, singular or "0-n"), or None."""
    key = _ALIASES.get(name.lower())
    return OBJECT_TYPES[key] if key else None


@dataclass(frozen=True, slots=True)
class AssocType:
    """One HUBSPOT_DEFINED association type from `source` to `target`."""

    source: str
    target: str
    type_id: int
    inverse_id: int
    label: str | None  # "Primary" for the primary-company types; None when unlabeled
    name: str  # the v3 `type` string, e.g. "contact_to_company_unlabeled"


def _pair(
    a: str, b: str, a_to_b: int, b_to_a: int, *, primary: tuple[int, int] | None = None
) -> list[AssocType]:
    sa, sb = OBJECT_TYPES[a].singular, OBJECT_TYPES[b].singular
    # Where a primary type exists, HubSpot calls the unlabeled one "..._unlabeled".
    suffix = "_unlabeled" if primary else ""
    types = [
        AssocType(a, b, a_to_b, b_to_a, None, f"{sa}_to_{sb}{suffix}"),
        AssocType(b, a, b_to_a, a_to_b, None, f"{sb}_to_{sa}{suffix}"),
    ]
    if primary:
        types += [
            AssocType(a, b, primary[0], primary[1], "Primary", f"{sa}_to_{sb}"),
            AssocType(b, a, primary[1], primary[0], "Primary", f"{sb}_to_{sa}"),
        ]
    return types


_TYPES: list[AssocType] = [
    *_pair("contacts", "companies", 279, 280, primary=(1, 2)),
    *_pair("deals", "companies", 341, 342, primary=(5, 6)),
    *_pair("tickets", "companies", 339, 340, primary=(26, 25)),
    *_pair("deals", "contacts", 3, 4),
    *_pair("tickets", "contacts", 16, 15),
    *_pair("deals", "tickets", 28, 27),
]
for _eng, (_co, _ct, _dl, _tk) in {
    "calls": (182, 194, 206, 220),
    "emails": (186, 198, 210, 224),
    "meetings": (188, 200, 212, 226),
    "notes": (190, 202, 214, 228),
    "tasks": (192, 204, 216, 230),
}.items():
    # Each engagement-to-object type id is one more than its inverse (company_to_call 181, ...).
    _TYPES += _pair(_eng, "companies", _co, _co - 1)
    _TYPES += _pair(_eng, "contacts", _ct, _ct - 1)
    _TYPES += _pair(_eng, "deals", _dl, _dl - 1)
    _TYPES += _pair(_eng, "tickets", _tk, _tk - 1)

_BY_ID: dict[tuple[str, str, int], AssocType] = {(t.source, t.target, t.type_id): t for t in _TYPES}
_BETWEEN: dict[tuple[str, str], list[AssocType]] = {}
for _at in _TYPES:
    _BETWEEN.setdefault((_at.source, _at.target), []).append(_at)


def assoc_type(source: str, target: str, type_id: int) -> AssocType | None:
    """The association type `type_id` from `source` to `target`, if HubSpot defines it."""
    return _BY_ID.get((source, target, type_id))


def assoc_types_between(source: str, target: str) -> list[AssocType]:
    """Every association type from `source` to `target` (empty: the pair cannot associate)."""
    return _BETWEEN.get((source, target), [])


def default_assoc_type(source: str, target: str) -> AssocType | None:
    """The unlabeled type HubSpot uses for default associations between two object types."""
    return next((t for t in assoc_types_between(source, target) if t.label is None), None)
