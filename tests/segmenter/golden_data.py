"""A small fixed store for the golden tests: four live accounts, one deleted, six contacts, and
usage, activities, tickets, NPS and subscriptions placed on both sides of every window edge.

The evaluation day is 2026-03-01: `30d` is 2026-01-30 .. 2026-02-28 and `previous 30d` is
2025-12-31 .. 2026-01-29. Rows on the evaluation day itself and after it must never count.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smartseg.store import models
from smartseg.store.models import table_of

AS_OF = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
DAY = AS_OF.date()


def _d(days_before: int) -> dt.date:
    return DAY - dt.timedelta(days=days_before)


def _t(days_before: int, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(_d(days_before), dt.time(hour), dt.UTC)


_ACCOUNTS: list[dict[str, Any]] = [
    dict(id=1, external_key="salesforce:001A", name="Acme Corp", domain="acme.test",
         status="customer", edition="Gold", employees=1200, start_date=dt.date(2024, 1, 15),
         renewal_date=dt.date(2026, 5, 1), seats=10, industry="Software", region="NA",
         strategic=True, arr=Decimal("50000"), csm_sentiment="Green",
         custom={"Tier__c": "A", "Tags__c": "vip;beta", "Score__c": "12",
                 "Renewal__c": "2026-04-01"}),
    dict(id=2, external_key="salesforce:001B", name="Globex Inc", domain="globex.test",
         status="customer", edition="Silver", employees=150, start_date=dt.date(2025, 11, 1),
         renewal_date=dt.date(2027, 1, 1), seats=5, industry="Retail", region="EMEA",
         strategic=False, arr=Decimal("4000"), csm_sentiment="Yellow",
         custom={"Tier__c": "B", "Tags__c": "beta", "Score__c": "n/a",
                 "Renewal__c": "soon"}),
    dict(id=3, external_key="hubspot:3", name="Initech", domain="initech.test", status="trial",
         edition=None, employees=None, start_date=dt.date(2026, 2, 10),
         trial_end_date=dt.date(2026, 3, 10), seats=3, custom={"Score__c": 7}),
    dict(id=4, external_key="salesforce:001D", name="Umbrella", domain="umbrella.test",
         status="churned", edition="Bronze", employees=500, start_date=dt.date(2023, 1, 1),
         churn_date=dt.date(2026, 1, 20), churn_reason="Competitor", seats=8, custom={}),
    dict(id=5, external_key="salesforce:001E", name="Deleted Co", domain="deleted.test",
         status="customer", edition="Gold", employees=5000, seats=10, custom={},
         deleted_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
]  # fmt: skip

_CONTACTS: list[dict[str, Any]] = [
    dict(id=11, external_key="c-alice", account_id=1, email="alice@acme.test",
         first_name="Alice", role="Decision Maker", custom={}),
    dict(id=12, external_key="c-bob", account_id=1, email="bob@acme.test", first_name="Bob",
         role="Primary Contact", custom={}),
    dict(id=13, external_key="c-carol", account_id=1, email="carol@acme.test",
         first_name="Carol", role="User", custom={}),
    dict(id=21, external_key="c-dave", account_id=2, email="dave@globex.test", first_name="Dave",
         role="Decision Maker", custom={}),
    dict(id=22, external_key="c-erin", account_id=2, email="erin@globex.test", first_name="Erin",
         role="Primary Contact", custom={}),
    dict(id=41, external_key="c-frank", account_id=4, email="frank@umbrella.test",
         first_name="Frank", role="Decision Maker", custom={}),
]  # fmt: skip


def _usage() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def add(account: int, contact: int | None, user: str, days: list[int], feature: str,
            events: int = 3, minutes: float = 10.0) -> None:  # fmt: skip
        for before in days:
            rows.append(
                dict(source="usage:test", account_key=f"ws{account}", day=_d(before),
                     feature=feature, user_key=user, account_id=account, contact_id=contact,
                     events=events, minutes=minutes)
            )  # fmt: skip

    # Acme: Alice on 20 of the last 30 days (10 the 30 before), Bob on 3 of Alice's days.
    add(1, 11, "alice", list(range(1, 21)), "login")
    add(1, 11, "alice", list(range(1, 21)), "dashboards", events=5, minutes=30.0)
    add(1, 11, "alice", list(range(31, 41)), "login")
    add(1, 12, "bob", [1, 2, 3], "login")
    add(1, 12, "bob", [100], "sso")  # SSO 100 days ago: outside 90d, inside 120d
    add(1, None, "", [5], "api")  # an account-level event: no user behind it
    add(1, 11, "alice", [0], "login")  # the evaluation day itself: never counted
    add(1, 11, "alice", [-3], "login")  # the future: never counted
    # Globex: Erin on 5 of the last 30 days, 15 of the 30 before.
    add(2, 22, "erin", [2, 4, 6, 8, 10], "login")
    add(2, 22, "erin", list(range(31, 46)), "login")
    # Minutes that sum to 0.6000000000000001 in this order, to exactly 0.6 in others.
    for day, minutes in ((2, 0.1), (4, 0.2), (6, 0.3)):  # days Erin is active anyway
        add(2, 22, "erin", [day], "reports", events=1, minutes=minutes)
    # Initech: dashboards and automation within its first days (started 19 days ago).
    add(3, None, "ian", [17], "dashboards")
    add(3, None, "ian", [14], "automation")
    return rows


_ACTIVITIES: list[dict[str, Any]] = [
    # One meeting held in both CRMs: counts once.
    dict(source="salesforce", source_id="a1", account_id=1, contact_id=12, kind="meeting",
         status="completed", occurred_at=_t(9)),
    dict(source="hubspot", source_id="h1", account_id=1, contact_id=12, kind="meeting",
         status="completed", occurred_at=_t(9)),
    dict(source="salesforce", source_id="a2", account_id=1, contact_id=11, kind="qbr",
         status="completed", occurred_at=_t(50)),
    dict(source="salesforce", source_id="a3", account_id=1, contact_id=12, kind="call",
         status="cancelled", occurred_at=_t(4)),
    dict(source="salesforce", source_id="a4", account_id=2, contact_id=22, kind="email",
         status="completed", occurred_at=_t(151)),
    dict(source="salesforce", source_id="a5", account_id=2, contact_id=22, kind="meeting",
         status="completed", occurred_at=_t(0, 8)),  # the evaluation day: never counted
]  # fmt: skip

_TICKETS: list[dict[str, Any]] = [
    dict(source="salesforce", source_id="t1", account_id=1, contact_id=12, type="Bug",
         severity="High", feature="dashboards", opened_at=_t(14)),
    dict(source="salesforce", source_id="t2", account_id=1, contact_id=13, type="Question",
         severity="Low", opened_at=_t(28)),
]  # fmt: skip

_NPS: list[dict[str, Any]] = [
    dict(source="nps", source_id="n1", account_id=1, contact_id=11, score=9,
         responded_at=_t(28)),
    dict(source="nps", source_id="n2", account_id=1, contact_id=11, score=3,
         responded_at=_t(151)),
    dict(source="nps", source_id="n3", account_id=2, contact_id=21, score=4, responded_at=_t(55)),
    dict(source="nps", source_id="n4", account_id=2, contact_id=22, score=10,
         responded_at=_t(19)),
    dict(source="nps", source_id="n5", account_id=4, contact_id=41, score=2, responded_at=_t(90)),
]  # fmt: skip

_SUBSCRIPTIONS: list[dict[str, Any]] = [
    dict(source="stripe", source_id="sub_1", account_id=1, status="active",
         mrr=Decimal("4166.67"), quantity=10, started_at=_t(700)),
    dict(source="stripe", source_id="sub_2", account_id=2, status="canceled",
         mrr=Decimal("0"), quantity=5, started_at=_t(100)),
]  # fmt: skip


def load(engine: Engine) -> None:
    """Fill an empty, migrated store with the golden dataset."""
    with engine.begin() as connection:
        for model, rows in (
            (models.Account, _ACCOUNTS),
            (models.Contact, _CONTACTS),
            (models.UsageDaily, _usage()),
            (models.Activity, _ACTIVITIES),
            (models.Ticket, _TICKETS),
            (models.NpsResponse, _NPS),
            (models.Subscription, _SUBSCRIPTIONS),
        ):
            table = table_of(model)
            columns = {c for row in rows for c in row}
            full = [{c: row.get(c) for c in columns} for row in rows]
            connection.execute(sa.insert(table), full)
        if connection.dialect.name == "postgresql":
            for name in ("account", "contact"):
                connection.execute(
                    sa.text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), 1000)")
                )
