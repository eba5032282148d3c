"""Identity linking: one customer across systems, by id field, then workspace, then domain."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smartseg.connectors.identity import link, unmatched_counts, unmatched_links
from smartseg.store import upsert
from smartseg.store.models import (
    Account,
    Activity,
    Contact,
    NpsResponse,
    SourceLink,
    Subscription,
    UsageDaily,
)

NOW = dt.datetime(2026, 6, 30, tzinfo=dt.UTC)


def _accounts(engine: Engine, *rows: dict[str, Any]) -> dict[str, int]:
    with engine.begin() as connection:
        upsert(
            connection,
            Account,
            [{"name": r["external_key"], **r} for r in rows],
            key=["external_key"],
        )
        return dict(connection.execute(sa.text("SELECT external_key, id FROM account")).all())  # type: ignore[arg-type]


def _links(
    engine: Engine, *hints: dict[str, Any], source: str = "stripe", obj: str = "customer"
) -> None:
    rows = [
        {"source": source, "object": obj, "source_id": f"x{i}", "hint": h}
        for i, h in enumerate(hints)
    ]
    with engine.begin() as connection:
        upsert(connection, SourceLink, rows, key=["source", "object", "source_id"])


def _linked(engine: Engine, **options: Any) -> dict[str, tuple[int | None, str | None]]:
    with engine.begin() as connection:
        link(connection, **options)
        rows = connection.execute(
            sa.text("SELECT source_id, account_id, matched_by FROM source_link")
        )
        return {r.source_id: (r.account_id, r.matched_by) for r in rows}


def test_each_rule_links_a_source_record(engine: Engine) -> None:
    ids = _accounts(
        engine,
        {"external_key": "salesforce:001A", "workspace_id": "w-a", "domain": "a.com"},
        {"external_key": "salesforce:001B", "workspace_id": "w-b", "domain": "b.com"},
    )
    _links(
        engine,
        {"account_ref": "salesforce:001A"},
        {"workspace_id": "w-b"},
        {"domain": "a.com"},
        {"email_domain": "b.com"},
        {"domain": "nowhere.example"},
    )
    linked = _linked(engine)
    assert linked["x0"] == (ids["salesforce:001A"], "id_field")
    assert linked["x1"] == (ids["salesforce:001B"], "workspace")
    assert linked["x2"] == (ids["salesforce:001A"], "domain")
    assert linked["x3"] == (ids["salesforce:001B"], "email_domain")
    assert linked["x4"] == (None, None)


def test_the_id_field_wins_over_a_domain_pointing_elsewhere(engine: Engine) -> None:
    ids = _accounts(
        engine,
        {"external_key": "salesforce:001A", "domain": "a.com"},
        {"external_key": "salesforce:001B", "domain": "b.com"},
    )
    _links(engine, {"account_ref": "salesforce:001B", "domain": "a.com"})
    assert _linked(engine)["x0"] == (ids["salesforce:001B"], "id_field")


def test_an_ambiguous_domain_links_nothing(engine: Engine) -> None:
    _accounts(
        engine,
        {"external_key": "salesforce:001A", "domain": "shared.com"},
        {"external_key": "salesforce:001B", "domain": "shared.com"},
    )
    _links(engine, {"domain": "shared.com"})
    assert _linked(engine)["x0"] == (None, None)


def test_domain_matching_can_be_switched_off(engine: Engine) -> None:
    _accounts(engine, {"external_key": "salesforce:001A", "domain": "a.com"})
    _links(engine, {"domain": "a.com"})
    assert _linked(engine, match_domains=False)["x0"] == (None, None)


def test_a_link_moves_when_its_hint_changes(engine: Engine) -> None:
    ids = _accounts(
        engine,
        {"external_key": "salesforce:001A"},
        {"external_key": "salesforce:001B"},
    )
    _links(engine, {"account_ref": "salesforce:001A"})
    _linked(engine)
    _links(engine, {"account_ref": "salesforce:001B"})
    assert _linked(engine)["x0"] == (ids["salesforce:001B"], "id_field")


def test_fact_rows_resolve_every_namespace(engine: Engine) -> None:
    ids = _accounts(engine, {"external_key": "salesforce:001A", "workspace_id": "w-a"})
    _links(engine, {"account_ref": "salesforce:001A"})  # stripe customer x0
    with engine.begin() as connection:
        upsert(
            connection,
            Contact,
            [{"external_key": "salesforce:003A", "email": "ann@a.com"}],
            key=["external_key"],
        )
        upsert(
            connection,
            Subscription,
            [
                {
                    "source": "stripe",
                    "source_id": "sub_1",
                    "status": "active",
                    "account_ref": "stripe:x0",
                    "mrr": Decimal(100),
                    "currency": "usd",
                }
            ],
            key=["source", "source_id"],
        )
        upsert(
            connection,
            NpsResponse,
            [
                {
                    "source": "nps:file",
                    "source_id": "r1",
                    "score": 9,
                    "account_ref": "workspace:w-a",
                    "contact_ref": "email:ann@a.com",
                }
            ],
            key=["source", "source_id"],
        )
        upsert(
            connection,
            Activity,
            [
                {
                    "source": "salesforce",
                    "source_id": "00T1",
                    "kind": "call",
                    "account_ref": "salesforce:001A",
                    "contact_ref": "salesforce:003A",
                }
            ],
            key=["source", "source_id"],
        )
        upsert(
            connection,
            UsageDaily,
            [
                {
                    "source": "usage:daily",
                    "account_key": "w-a",
                    "day": NOW.date(),
                    "feature": "login",
                    "user_key": "ann@a.com",
                    "events": 3,
                }
            ],
            key=["source", "account_key", "day", "feature", "user_key"],
        )
        assert link(connection) == 0
        account_id = ids["salesforce:001A"]
        for table in ("subscription", "nps_response", "activity", "usage_daily"):
            assert (
                connection.execute(sa.text(f"SELECT account_id FROM {table}")).scalar_one()
                == account_id
            )
        contact_id = connection.execute(sa.text("SELECT id FROM contact")).scalar_one()
        assert (
            connection.execute(sa.text("SELECT contact_id FROM nps_response")).scalar_one()
            == contact_id
        )
        assert (
            connection.execute(sa.text("SELECT contact_id FROM usage_daily")).scalar_one()
            == contact_id
        )


def test_unmatched_records_are_counted_and_listed_not_dropped(engine: Engine) -> None:
    _accounts(engine, {"external_key": "salesforce:001A"})
    _links(engine, {"domain": "stranger.io", "name": "Stranger Inc"})
    with engine.begin() as connection:
        upsert(
            connection,
            Subscription,
            [
                {
                    "source": "stripe",
                    "source_id": "sub_9",
                    "status": "active",
                    "account_ref": "stripe:x0",
                }
            ],
            key=["source", "source_id"],
        )
        assert link(connection) == 2
        assert unmatched_counts(connection) == {"subscription": 1, "source_link": 1}
        listed = unmatched_links(connection)
    assert listed == [
        {
            "source": "stripe",
            "object": "customer",
            "id": "x0",
            "domain": "stranger.io",
            "name": "Stranger Inc",
        }
    ]


def test_account_revenue_adds_only_counted_subscriptions_in_one_currency(engine: Engine) -> None:
    _accounts(engine, {"external_key": "salesforce:001A"})
    _links(engine, {"account_ref": "salesforce:001A"})
    subscriptions = [
        ("s1", "active", 100, "usd", 10),
        ("s2", "past_due", 50, "usd", 5),
        ("s3", "canceled", 999, "usd", 99),
        ("s4", "trialing", 0, "usd", 3),
        ("s5", "active", 20, "eur", 2),
    ]
    rows = [
        {
            "source": "stripe",
            "source_id": sid,
            "status": status,
            "mrr": Decimal(mrr),
            "currency": cur,
            "quantity": qty,
            "account_ref": "stripe:x0",
        }
        for sid, status, mrr, cur, qty in subscriptions
    ]
    with engine.begin() as connection:
        upsert(connection, Subscription, rows, key=["source", "source_id"])
        link(connection, seats_from_quantity=True)
        account = connection.execute(sa.text("SELECT mrr, arr, currency, seats FROM account")).one()
    assert (Decimal(account.mrr), Decimal(account.arr), account.currency) == (150, 1800, "usd")
    assert account.seats == 10 + 5 + 3 + 2
