"""World -> Salesforce records: Users from reps, Accounts, Contacts, Opportunities, Tasks and
Events from activities, Cases from tickets, with deterministic ids (same world, same ids).

Records are built directly (no per-field validation) so 100,000 accounts with their contacts
and activities load in seconds; the mapping itself is the validation's test.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from smartseg.sandbox.salesforce.ids import make_id
from smartseg.sandbox.salesforce.store import Store
from smartseg.sandbox.world import Company, World

__all__ = ["LoadedIds", "add_integration_user", "load_world"]

_PREFIX = {"rep": "005", "company": "001", "person": "003", "opportunity": "006", "ticket": "500"}
_TASK, _EVENT = "00T", "00U"
_TASK_STATUS = {"completed": "Completed", "cancelled": "Deferred", "scheduled": "Not Started"}
_MEETING_STATUS = {"completed": "Completed", "cancelled": "Cancelled", "scheduled": "Scheduled"}
_PROBABILITY = {"Prospecting": 10.0, "Negotiation": 90.0, "Closed Won": 100.0, "Closed Lost": 0.0}


class LoadedIds:
    """Maps world entities (kind, idx) to their Salesforce ids."""

    def __init__(self) -> None:
        self.integration_user = make_id("005", 0)
        self._events: set[int] = set()
        # Accounts and users are referenced by every contact, deal and activity: build once.
        self._memo: dict[tuple[str, int], str] = {}

    def of(self, kind: str, idx: int) -> str:
        if kind in ("company", "rep"):
            found = self._memo.get((kind, idx))
            if found is None:
                found = self._memo[(kind, idx)] = make_id(_PREFIX[kind], idx + 1)
            return found
        if kind == "activity":
            return make_id(_EVENT if idx in self._events else _TASK, idx + 1)
        if kind not in _PREFIX:
            raise KeyError(f"unknown world kind {kind!r}; expected activity or {sorted(_PREFIX)}")
        return make_id(_PREFIX[kind], idx + 1)


def _ms(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is dt.UTC and not value.microsecond % 1000:
        return value  # the common case, already exact: skip two allocations per timestamp
    value = value.astimezone(dt.UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _stamped(
    record: dict[str, Any], created: dt.datetime, modified: dt.datetime, anchor: dt.datetime
) -> dict[str, Any]:
    created = _ms(min(created, anchor))
    modified = _ms(min(max(modified, created), anchor))
    record.update(
        IsDeleted=False, CreatedDate=created, LastModifiedDate=modified, SystemModstamp=modified
    )
    return record


def add_integration_user(store: Store, ids: LoadedIds) -> None:
    """The API user every session belongs to; the default owner of created records."""
    stamp = _ms(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    store.load(
        store.schema.objects["user"],
        [
            {
                "Id": ids.integration_user,
                "FirstName": "Integration",
                "LastName": "User",
                "Name": "Integration User",
                "Email": "integration@smartseg.sandbox",
                "IsActive": True,
                "Title": "API",
                "IsDeleted": False,
                "CreatedDate": stamp,
                "LastModifiedDate": stamp,
                "SystemModstamp": stamp,
            }
        ],
    )


def _account(c: Company, ids: LoadedIds, anchor: dt.datetime) -> dict[str, Any]:
    kind = {"Prospect": "Prospect", "Churned": "Other"}.get(c.status, "Customer - Direct")
    record = {
        "Id": ids.of("company", c.idx),
        "Name": c.name,
        "Website": f"https://www.{c.domain}",
        "Industry": c.industry,
        "Type": kind,
        "NumberOfEmployees": c.employees,
        "BillingCountry": c.country,
        "OwnerId": ids.of("rep", c.owner_rep),
        "Customer_Status__c": c.status,
        "Edition__c": c.edition,
        "Product__c": c.product,
        "Contract_Type__c": c.contract_type,
        "Opt_Out_Clause__c": c.opt_out_clause,
        "Customer_Since__c": c.start_date,
        "Renewal_Date__c": c.renewal_date,
        "Trial_End_Date__c": c.trial_end_date,
        "Churn_Date__c": c.churn_date,
        "Churn_Reason__c": c.churn_reason,
        "Licensed_Seats__c": float(c.seats),
        "CSM_Sentiment__c": c.csm_sentiment,
        "Product_Fit__c": c.product_fit,
        "Lifecycle_Stage__c": c.lifecycle_stage,
        "Onboarding_Status__c": c.onboarding_status,
        "Onboarding_Step__c": None if c.onboarding_step is None else float(c.onboarding_step),
        "Use_Case__c": c.use_case,
        "Purchase_Benefit__c": c.purchase_benefit,
        "Benefit_Achieved_Date__c": c.benefit_achieved_date,
        "Growth_Potential__c": c.growth_potential,
        "Health_Score__c": None if c.health_score is None else float(c.health_score),
        "Reference_Account__c": c.reference_account,
        "Strategic__c": c.strategic,
        "Region__c": c.region,
        "Workspace_Id__c": c.workspace_id,
        "CSM__c": None if c.csm_rep is None else ids.of("rep", c.csm_rep),
    }
    # The CRM was last touched when the latest of the account's dates was recorded.
    dates = [
        d
        for d in (c.start_date, c.renewal_date, c.churn_date, c.benefit_achieved_date)
        if d is not None and dt.datetime.combine(d, dt.time(), tzinfo=dt.UTC) <= anchor
    ]
    modified = max(
        [c.created_at] + [dt.datetime.combine(d, dt.time(12), tzinfo=dt.UTC) for d in dates]
    )
    return _stamped(
        {k: v for k, v in record.items() if v is not None}, c.created_at, modified, anchor
    )


def load_world(store: Store, world: World) -> LoadedIds:
    """Add the world's records to the store (lock held by the caller); returns the id map."""
    ids, anchor, objects = LoadedIds(), world.anchor_time, store.schema.objects
    add_integration_user(store, ids)
    early = _ms(anchor - dt.timedelta(days=3 * 365))
    store.load(
        objects["user"],
        [
            _stamped(
                {
                    "Id": ids.of("rep", r.idx),
                    "FirstName": r.first_name,
                    "LastName": r.last_name,
                    "Name": f"{r.first_name} {r.last_name}",
                    "Email": r.email,
                    "IsActive": r.active,
                    "Title": "Customer Success Manager" if r.role == "CSM" else "Account Executive",
                },
                early,
                early,
                anchor,
            )
            for r in world.reps
        ],
    )
    companies = {c.idx: c for c in world.companies if c.in_salesforce}
    store.load(objects["account"], [_account(c, ids, anchor) for c in companies.values()])
    people = {p.idx for p in world.people if p.in_salesforce and p.company in companies}
    store.load(
        objects["contact"],
        [
            _stamped(
                {
                    k: v
                    for k, v in {
                        "Id": ids.of("person", p.idx),
                        "AccountId": ids.of("company", p.company),
                        "FirstName": p.first_name,
                        "LastName": p.last_name,
                        "Name": f"{p.first_name} {p.last_name}",
                        "Email": p.email,
                        "Title": p.title,
                        "OwnerId": ids.of("rep", companies[p.company].owner_rep),
                        "HasOptedOutOfEmail": p.email_opt_out,
                        "Role__c": p.role,
                        "Referrals_Won__c": float(p.referrals_won),
                    }.items()
                    if v is not None
                },
                p.created_at,
                p.created_at,
                anchor,
            )
            for p in world.people
            if p.idx in people
        ],
    )
    _load_deals(store, world, ids, companies, people)
    _load_activities(store, world, ids, companies, people)
    return ids


def _person(ids: LoadedIds, people: set[int], idx: int | None) -> str | None:
    return ids.of("person", idx) if idx is not None and idx in people else None


def _load_deals(
    store: Store, world: World, ids: LoadedIds, companies: dict[int, Company], people: set[int]
) -> None:
    anchor, objects = world.anchor_time, store.schema.objects
    rows = []
    for o in world.opportunities:
        if o.company not in companies:
            continue
        closes = dt.datetime.combine(o.close_date, dt.time(12), tzinfo=dt.UTC)
        rows.append(
            _stamped(
                {
                    k: v
                    for k, v in {
                        "Id": ids.of("opportunity", o.idx),
                        "AccountId": ids.of("company", o.company),
                        "Name": o.name,
                        "StageName": o.stage,
                        "Amount": float(o.amount),
                        "CloseDate": o.close_date,
                        "IsClosed": o.stage.startswith("Closed"),
                        "IsWon": o.stage == "Closed Won",
                        "Probability": _PROBABILITY.get(o.stage),
                        "Type": o.kind,
                        "OwnerId": ids.of("rep", o.owner_rep),
                        "Referred_By__c": _person(ids, people, o.referred_by),
                    }.items()
                    if v is not None
                },
                closes - dt.timedelta(days=60),
                closes,
                anchor,
            )
        )
    store.load(objects["opportunity"], rows)
    cases = []
    for t in world.tickets:
        if t.company not in companies:
            continue
        cases.append(
            _stamped(
                {
                    k: v
                    for k, v in {
                        "Id": ids.of("ticket", t.idx),
                        "AccountId": ids.of("company", t.company),
                        "ContactId": _person(ids, people, t.person),
                        "Status": t.status,
                        "Priority": t.severity,
                        "Origin": "Web",
                        "Type": t.type,
                        "Subject": t.subject,
                        "IsClosed": t.status == "Closed",
                        "Feature__c": t.feature,
                        "ClosedDate": None if t.closed_at is None else _ms(t.closed_at),
                    }.items()
                    if v is not None
                },
                t.opened_at,
                t.closed_at or t.opened_at,
                anchor,
            )
        )
    store.load(objects["case"], cases)


def _load_activities(
    store: Store, world: World, ids: LoadedIds, companies: dict[int, Company], people: set[int]
) -> None:
    anchor, objects = world.anchor_time, store.schema.objects
    tasks, events = [], []
    for a in world.activities:
        if a.company not in companies:
            continue
        account = ids.of("company", a.company)
        common = {
            "WhatId": account,
            "WhoId": _person(ids, people, a.person),
            "AccountId": account,
            "OwnerId": ids.of("rep", a.owner_rep),
            "Subject": a.subject,
        }
        if a.kind in ("meeting", "qbr"):
            ids._events.add(a.idx)
            start = _ms(a.at)
            record: dict[str, Any] = {
                **common,
                "Id": ids.of("activity", a.idx),
                "Type": "QBR" if a.kind == "qbr" else "Meeting",
                "StartDateTime": start,
                "EndDateTime": start + dt.timedelta(minutes=a.duration_minutes),
                "DurationInMinutes": a.duration_minutes,
                "Meeting_Status__c": _MEETING_STATUS[a.status],
            }
            events.append(
                _stamped(
                    {k: v for k, v in record.items() if v is not None},
                    a.at - dt.timedelta(days=7),
                    a.at,
                    anchor,
                )
            )
            continue
        status = _TASK_STATUS[a.status]
        subtype = "Email" if a.kind == "email" else "Call"
        record = {
            **common,
            "Id": ids.of("activity", a.idx),
            "ActivityDate": a.at.date(),
            "Status": status,
            "Priority": "Normal",
            "TaskSubtype": subtype,
            "Type": subtype,
            "IsClosed": status == "Completed",
            "CompletedDateTime": _ms(a.at) if status == "Completed" else None,
        }
        tasks.append(
            _stamped({k: v for k, v in record.items() if v is not None}, a.at, a.at, anchor)
        )
    store.load(objects["task"], tasks)
    store.load(objects["event"], events)
