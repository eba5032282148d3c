"""Map the neutral `World` into a HubSpot portal: companies, contacts, deals, tickets, engagements.

Ids are deterministic: a record's id is its type's id base + world idx + 1 (see
`catalog.OBJECT_TYPES`), owners are 40,000,000 + rep idx. Loading writes straight into the tables
with no per-record validation, and each record's properties are built on its first read, so
100,000 companies and 500,000 contacts load in about three seconds. Enumeration values the world
uses beyond the seeded options are added as options, as a portal admin would have done.

Salesforce ids (salesforce_account_id, salesforce_contact_id) come from the `salesforce_id`
callable, called as `salesforce_id(kind, idx)` with kind "company" or "person" -- the signature of
`SalesforceServer.salesforce_id`. Without one, the Salesforce sandbox's own deterministic scheme
(`salesforce.load.LoadedIds`) is used, so both fake CRMs agree on every id either way.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Callable
from functools import partial

from ..salesforce.load import LoadedIds
from ..world import Activity, Company, Opportunity, Person, Ticket, World
from .catalog import OBJECT_TYPES
from .properties import Option, iso_ms
from .seed import INDUSTRIES
from .store import Owner, PortalState, Record

__all__ = ["OWNER_ID_BASE", "load_world"]

OWNER_ID_BASE = 40_000_000
USER_ID_BASE = 9_000_000
_DAY_MS = 86_400_000
_FREEZE_AT = 100_000  # records; below this a full collection is cheap and freezing would leak

_LIFECYCLE_BY_STATUS = {"Customer": "customer", "Pilot": "opportunity", "Trial": "opportunity",
                        "Churned": "other", "Prospect": "salesqualifiedlead"}  # fmt: skip
_DEALSTAGE = {"Prospecting": "qualifiedtobuy", "Negotiation": "contractsent",
              "Closed Won": "closedwon", "Closed Lost": "closedlost"}  # fmt: skip
_TICKET_STAGE = {"New": "1", "Working": "3", "Closed": "4"}
_TICKET_PRIORITY = {"Critical": "URGENT", "High": "HIGH", "Medium": "MEDIUM", "Low": "LOW"}
_TICKET_CATEGORY = {"Bug": "PRODUCT_ISSUE", "Question": "GENERAL_INQUIRY",
                    "Feature Request": "FEATURE_REQUEST"}  # fmt: skip
_CALL_STATUS = {"completed": "COMPLETED", "cancelled": "CANCELED", "scheduled": "QUEUED"}
_MEETING_OUTCOME = {"completed": "COMPLETED", "cancelled": "CANCELED", "scheduled": "SCHEDULED"}
_TABLE_OF = {"call": "calls", "email": "emails", "meeting": "meetings", "qbr": "meetings"}
_EMAIL_STATUS = {"completed": "SENT", "cancelled": "FAILED", "scheduled": "SCHEDULED"}
# Engagement -> (to-company, to-contact) unlabeled association type ids.
_ENGAGEMENT_TYPES = {"calls": (182, 194), "emails": (186, 198), "meetings": (188, 200)}


def _ms(moment: dt.datetime | dt.date) -> int:
    if not isinstance(moment, dt.datetime):
        moment = dt.datetime.combine(moment, dt.time(), tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


class _Loader:
    """One load: the id maps, the options it extends and the links it writes at the end.

    Each record is inserted with a builder (`_company_props`, ...) that makes its properties on
    first read; the load itself only does ids, dates, unique keys, options and associations.
    """

    def __init__(self, state: PortalState, world: World, sf_id: Callable[[str, int], str]) -> None:
        self.state = state
        self.world = world
        self.sf_id = sf_id
        self.anchor_ms = _ms(world.anchor_time)
        self.companies: dict[int, int] = {}  # world idx -> HubSpot id
        self.contacts: dict[int, int] = {}
        self.company_facts: dict[int, dict[str, str]] = {}  # what a company's contacts inherit
        self._options: dict[tuple[str, str], set[str]] = {}
        # Associations are gathered per (source, target, type ids) and written in bulk at the end.
        self.links: dict[tuple[str, str, tuple[int, ...]], list[tuple[int, int]]] = {}

    def link(
        self, source: str, source_id: int, target: str, target_id: int, type_ids: tuple[int, ...]
    ) -> None:
        self.links.setdefault((source, target, type_ids), []).append((source_id, target_id))

    def option(self, type_name: str, prop_name: str, value: str) -> str:
        """`value`, added to the property's options first if the portal lacks it."""
        key = (type_name, prop_name)
        known = self._options.get(key)
        prop = self.state.schema[type_name][prop_name]
        if known is None:
            known = self._options[key] = prop.option_values()
        if value not in known:
            prop.options.append(Option(value, value, len(prop.options)))
            known.add(value)
        return value

    def insert(
        self,
        type_name: str,
        idx: int,
        build: Callable[[], dict[str, str]],
        created: int,
        updated: int,
        unique: dict[str, str] | None = None,
    ) -> int:
        rec_id = OBJECT_TYPES[type_name].id_base + idx + 1
        rec = Record(rec_id, None, created, updated, build)
        self.state.tables[type_name].insert(rec, unique or {})
        return rec_id

    def owner(self, rep_idx: int | None) -> dict[str, str]:
        if rep_idx is None or OWNER_ID_BASE + rep_idx not in self.state.owners:
            return {}
        return {"hubspot_owner_id": str(OWNER_ID_BASE + rep_idx)}

    def run(self) -> None:
        world = self.world
        for rep in world.reps:
            self.state.owners[OWNER_ID_BASE + rep.idx] = Owner(
                OWNER_ID_BASE + rep.idx,
                USER_ID_BASE + rep.idx,
                rep.email,
                rep.first_name,
                rep.last_name,
                not rep.active,
                self.anchor_ms - 730 * _DAY_MS,
                self.anchor_ms,
            )
        for company in sorted(world.companies, key=lambda c: c.idx):
            self.company(company)
        self.people()
        self.deals()
        self.tickets()
        by_table: dict[str, list[Activity]] = {kind: [] for kind in _ENGAGEMENT_TYPES}
        for activity in sorted(world.activities, key=lambda a: a.idx):
            kind = _TABLE_OF.get(activity.kind)
            if kind is not None and activity.company in self.companies:
                by_table[kind].append(activity)
        for kind, activities in by_table.items():
            self.activities(kind, activities)
        for (source, target, type_ids), pairs in self.links.items():
            self.state.assocs.add_many(source, target, pairs, type_ids)
        latest = max(
            (r.updated for t in self.state.tables.values() for r in t.records.values()), default=0
        )
        self.state.note_stamp(latest)

    # Companies and contacts ---------------------------------------------------------

    def company(self, c: Company) -> None:
        facts = {"company": c.name, **self.owner(c.csm_rep or c.owner_rep)}
        self.company_facts[c.idx] = facts
        if not c.in_hubspot:
            return
        industry = INDUSTRIES.get(c.industry) or c.industry.upper().replace(" ", "_")
        self.option("companies", "industry", industry)
        if c.edition:
            self.option("companies", "edition", c.edition)
        created = _ms(c.created_at)
        company_id = self.insert(
            "companies",
            c.idx,
            partial(self._company_props, c, industry),
            created,
            created,
            {"workspace_id": c.workspace_id},
        )
        self.companies[c.idx] = company_id
        facts["associatedcompanyid"] = str(company_id)

    def _company_props(self, c: Company, industry: str) -> dict[str, str]:
        props = {
            "name": c.name, "domain": c.domain, "website": f"https://www.{c.domain}",
            "industry": industry, "country": c.country, "numberofemployees": str(c.employees),
            "lifecyclestage": _LIFECYCLE_BY_STATUS.get(c.status, "other"),
            "workspace_id": c.workspace_id, **self.owner(c.owner_rep),
        }  # fmt: skip
        if c.edition:
            props["edition"] = c.edition
        if c.in_salesforce:
            props["salesforce_account_id"] = self.sf_id("company", c.idx)
        return props

    def people(self) -> None:
        # The hot loop of a large load: keep per-contact work to ids, dates and the email key.
        option, table = self.option, self.state.tables["contacts"]
        base = OBJECT_TYPES["contacts"].id_base + 1
        builder = self._person_props
        links: list[tuple[int, int]] = []
        for p in sorted(self.world.people, key=lambda p: p.idx):
            if not p.in_hubspot:
                continue
            option("contacts", "lifecyclestage", p.lifecycle_stage)
            option("contacts", "contact_role", p.role)
            created = int(p.created_at.timestamp() * 1000)
            contact_id = base + p.idx
            table.insert(
                Record(contact_id, None, created, created, partial(builder, p)), {"email": p.email}
            )
            self.contacts[p.idx] = contact_id
            company_id = self.companies.get(p.company)
            if company_id is not None:
                links.append((contact_id, company_id))
        # Primary (1) and unlabeled (279), as HubSpot shows a contact's only company.
        self.links[("contacts", "companies", (1, 279))] = links

    def _person_props(self, p: Person) -> dict[str, str]:
        props = {
            "email": p.email, "firstname": p.first_name, "lastname": p.last_name,
            "jobtitle": p.title, "lifecyclestage": p.lifecycle_stage,
            "hs_email_optout": "true" if p.email_opt_out else "false", "contact_role": p.role,
            **self.company_facts.get(p.company, {}),
        }  # fmt: skip
        if p.in_salesforce:
            props["salesforce_contact_id"] = self.sf_id("person", p.idx)
        return props

    # Deals and tickets ----------------------------------------------------------------

    def deals(self) -> None:
        for o in sorted(self.world.opportunities, key=lambda o: o.idx):
            company_id = self.companies.get(o.company)
            if company_id is None:
                continue
            self.option("deals", "dealstage", _DEALSTAGE.get(o.stage, o.stage))
            created = min(_ms(o.close_date), self.anchor_ms) - 30 * _DAY_MS
            deal_id = self.insert("deals", o.idx, partial(self._deal_props, o), created, created)
            self.link("deals", deal_id, "companies", company_id, (5, 341))

    def _deal_props(self, o: Opportunity) -> dict[str, str]:
        return {
            "dealname": o.name, "amount": f"{o.amount:g}",
            "dealstage": _DEALSTAGE.get(o.stage, o.stage), "pipeline": "default",
            "closedate": iso_ms(_ms(o.close_date)),
            "dealtype": "newbusiness" if o.kind == "New Business" else "existingbusiness",
            **self.owner(o.owner_rep),
        }  # fmt: skip

    def tickets(self) -> None:
        for t in sorted(self.world.tickets, key=lambda t: t.idx):
            company_id = self.companies.get(t.company)
            if company_id is None:
                continue
            opened = _ms(t.opened_at)
            updated = opened if t.closed_at is None else max(opened, _ms(t.closed_at))
            ticket_id = self.insert("tickets", t.idx, partial(_ticket_props, t), opened, updated)
            self.link("tickets", ticket_id, "companies", company_id, (26, 339))
            contact_id = self.contacts.get(t.person) if t.person is not None else None
            if contact_id is not None:
                self.link("tickets", ticket_id, "contacts", contact_id, (16,))

    # Engagements ----------------------------------------------------------------------

    def activities(self, kind: str, activities: list[Activity]) -> None:
        """Insert one engagement table (ids ascending), the second-hottest loop of a load."""
        table, base, anchor = (
            self.state.tables[kind],
            OBJECT_TYPES[kind].id_base + 1,
            self.anchor_ms,
        )
        builder, companies, contacts = self._activity_props, self.companies, self.contacts
        to_company, to_contact = _ENGAGEMENT_TYPES[kind]
        company_links: list[tuple[int, int]] = []
        contact_links: list[tuple[int, int]] = []
        for a in activities:
            at = int(a.at.timestamp() * 1000)
            # Scheduled activities are logged before they happen; the rest when they happened.
            created = at if at < anchor else anchor
            eng_id = base + a.idx
            table.insert(Record(eng_id, None, created, created, partial(builder, kind, a, at)), {})
            company_links.append((eng_id, companies[a.company]))
            contact_id = contacts.get(a.person) if a.person is not None else None
            if contact_id is not None:
                contact_links.append((eng_id, contact_id))
        self.links[(kind, "companies", (to_company,))] = company_links
        self.links[(kind, "contacts", (to_contact,))] = contact_links

    def _activity_props(self, kind: str, a: Activity, at: int) -> dict[str, str]:
        when = iso_ms(at)
        props = {"hs_timestamp": when, **self.owner(a.owner_rep)}
        if kind == "calls":
            props.update(hs_call_title=a.subject, hs_call_body=a.subject,
                         hs_call_duration=str(a.duration_minutes * 60_000),
                         hs_call_direction="OUTBOUND",
                         hs_call_status=_CALL_STATUS[a.status])  # fmt: skip
        elif kind == "meetings":
            props.update(hs_meeting_title=a.subject, hs_meeting_body=a.subject,
                         hs_meeting_start_time=when,
                         hs_meeting_end_time=iso_ms(at + a.duration_minutes * 60_000),
                         hs_meeting_outcome=_MEETING_OUTCOME[a.status],
                         hs_activity_type="QBR" if a.kind == "qbr" else "Check-in")  # fmt: skip
        else:
            props.update(hs_email_subject=a.subject, hs_email_text=a.subject,
                         hs_email_direction="EMAIL",
                         hs_email_status=_EMAIL_STATUS[a.status])  # fmt: skip
        return props


def _ticket_props(t: Ticket) -> dict[str, str]:
    content = f"{t.type}: {t.subject}" + (f" (feature: {t.feature})" if t.feature else "")
    props = {
        "subject": t.subject, "content": content, "hs_pipeline": "0",
        "hs_pipeline_stage": _TICKET_STAGE.get(t.status, "1"),
        "hs_ticket_priority": _TICKET_PRIORITY.get(t.severity, "MEDIUM"),
        "hs_ticket_category": _TICKET_CATEGORY.get(t.type, "GENERAL_INQUIRY"),
    }  # fmt: skip
    if t.closed_at is not None:
        props["closed_date"] = iso_ms(_ms(t.closed_at))
    return props


def load_world(
    state: PortalState, world: World, salesforce_id: Callable[[str, int], str] | None = None
) -> None:
    """Fill an empty portal from `world`; ValueError if the portal already holds records."""
    with state.lock:
        if any(table.records for table in state.tables.values()):
            raise ValueError(
                "HubSpotServer.load() fills an empty portal; this one has records. "
                "Create a new HubSpotServer to load another world."
            )
        # Half a million small dicts would trigger the cyclic collector hundreds of times over
        # objects that can never be garbage; that costs more than the load itself.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            _Loader(state, world, salesforce_id or LoadedIds().of).run()
        finally:
            if was_enabled:
                if sum(len(t.records) for t in state.tables.values()) >= _FREEZE_AT:
                    # Park a large load outside the collector's generations, so the first full
                    # collection after it does not walk millions of live objects (seconds).
                    gc.freeze()
                gc.enable()
