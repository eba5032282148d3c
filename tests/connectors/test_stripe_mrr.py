"""Stripe subscriptions to store rows and MRR, as Stripe's billing analytics define MRR."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
import stripe

from smartseg.connectors.stripe_mrr import (
    MrrIssue,
    customer_mrr,
    monthly_recurring_revenue,
    mrr_breakdown,
    seats,
    subscription_row,
)
from smartseg.sandbox.generator import generate
from smartseg.sandbox.stripe_api import StripeServer
from smartseg.sandbox.world import World
from smartseg.store.models import Subscription

AS_OF = dt.datetime(2026, 6, 30, tzinfo=dt.UTC)
PERIOD_START = int(dt.datetime(2026, 6, 15, tzinfo=dt.UTC).timestamp())
PERIOD_END = int(dt.datetime(2026, 7, 15, tzinfo=dt.UTC).timestamp())
LAST_YEAR = int(dt.datetime(2025, 6, 15, tzinfo=dt.UTC).timestamp())
NEXT_YEAR = int(dt.datetime(2027, 6, 15, tzinfo=dt.UTC).timestamp())


# Small objects shaped like Stripe's published fixtures (tests/fixtures/stripe-fixtures.json).


def _price(
    amount: int | None = 2000,
    *,
    interval: str = "month",
    count: int = 1,
    currency: str = "usd",
    usage_type: str = "licensed",
    **fields: Any,
) -> dict[str, Any]:
    return {
        "id": "price_1", "object": "price", "billing_scheme": "per_unit", "currency": currency,
        "lookup_key": None, "nickname": None, "product": "prod_1", "tiers_mode": None,
        "recurring": {"interval": interval, "interval_count": count, "meter": None,
                      "trial_period_days": None, "usage_type": usage_type},
        "transform_quantity": None, "type": "recurring", "unit_amount": amount,
        "unit_amount_decimal": None if amount is None else str(amount),
        **fields,
    }  # fmt: skip


def _item(
    price: dict[str, Any] | None = None,
    quantity: Any = 1,
    *,
    item_id: str = "si_1",
    start: int = PERIOD_START,
    end: int = PERIOD_END,
    discounts: list[Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": item_id, "object": "subscription_item", "current_period_start": start,
        "current_period_end": end, "discounts": discounts or [], "metadata": {},
        "price": _price() if price is None else price, "quantity": quantity,
        "subscription": "sub_1",
    }  # fmt: skip


def _sub(
    *items: dict[str, Any],
    status: str = "active",
    currency: str = "usd",
    customer: Any = "cus_1",
    sub_id: str = "sub_1",
    discounts: list[Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    return {
        "id": sub_id, "object": "subscription", "cancel_at": None,
        "cancel_at_period_end": False, "canceled_at": None, "currency": currency,
        "customer": customer, "discounts": discounts or [], "ended_at": None,
        "items": {"object": "list", "data": list(items) or [_item()], "has_more": False},
        "start_date": LAST_YEAR, "status": status, "trial_end": None, "trial_start": None,
        **fields,
    }  # fmt: skip


def _coupon(
    duration: str = "forever",
    *,
    percent_off: float | None = None,
    amount_off: int | None = None,
    currency: str | None = None,
    duration_in_months: int | None = None,
) -> dict[str, Any]:
    return {
        "id": "Z4OV52SU", "object": "coupon", "amount_off": amount_off, "currency": currency,
        "duration": duration, "duration_in_months": duration_in_months, "metadata": {},
        "percent_off": percent_off, "valid": True,
    }  # fmt: skip


def _discount(coupon: Any, *, start: int = LAST_YEAR, end: int | None = None) -> dict[str, Any]:
    return {
        "id": "di_1", "object": "discount", "customer": "cus_1", "end": end,
        "source": {"coupon": coupon, "type": "coupon"}, "start": start,
        "subscription": "sub_1", "subscription_item": None,
    }  # fmt: skip


def _mrr(sub: dict[str, Any], **kw: Any) -> Decimal:
    return monthly_recurring_revenue(sub, as_of=AS_OF, **kw)


# Normalising to a month


def test_an_annual_1200_dollar_plan_is_100_dollars_mrr() -> None:
    assert _mrr(_sub(_item(_price(120_000, interval="year")))) == Decimal("100.0000")


def test_a_quarterly_price_is_a_month_times_three() -> None:
    assert _mrr(_sub(_item(_price(30_000, interval="month", count=3)))) == Decimal("100")


@pytest.mark.parametrize(
    ("interval", "expected"),
    [("week", Decimal("43.3333")), ("day", Decimal("304.1667"))],
)
def test_weekly_and_daily_prices_use_52_and_365_periods_a_year(
    interval: str, expected: Decimal
) -> None:
    assert _mrr(_sub(_item(_price(1000, interval=interval)))) == expected


def test_quantity_multiplies_the_unit_amount() -> None:
    assert _mrr(_sub(_item(_price(1500), quantity=7))) == Decimal("105")


def test_unit_amount_decimal_is_used_exactly() -> None:
    price = _price(None, currency="jpy", unit_amount_decimal="0.3333")
    assert _mrr(_sub(_item(price, quantity=3), currency="jpy")) == Decimal("0.9999")


def test_mrr_rounds_half_up_at_four_places() -> None:
    price = _price(None, unit_amount_decimal="0.025")  # 0.025 cents = 0.00025 dollars
    assert str(_mrr(_sub(_item(price)))) == "0.0003"


def test_zero_decimal_currencies_are_not_divided_by_100() -> None:
    yen = _item(_price(12_000, interval="year", currency="jpy"))
    assert _mrr(_sub(yen, currency="jpy")) == Decimal("1000")


def test_three_decimal_currencies_are_divided_by_1000() -> None:
    assert _mrr(_sub(_item(_price(12_340, currency="kwd")), currency="kwd")) == Decimal("12.34")


def test_volume_tiers_price_every_unit_at_the_tier_reached() -> None:
    tiers = [
        {"up_to": 5, "unit_amount": 1000, "unit_amount_decimal": "1000", "flat_amount": None},
        {"up_to": None, "unit_amount": 800, "unit_amount_decimal": "800", "flat_amount": 500},
    ]
    price = _price(None, billing_scheme="tiered", tiers_mode="volume", tiers=tiers)
    assert _mrr(_sub(_item(price, quantity=10))) == Decimal("85")  # 10 x 8 + 5 flat


def test_graduated_tiers_price_each_tiers_units_at_its_own_price() -> None:
    tiers = [
        {"up_to": 5, "unit_amount": 1000, "flat_amount": 500},
        {"up_to": None, "unit_amount": 800, "flat_amount": None},
    ]
    price = _price(None, billing_scheme="tiered", tiers_mode="graduated", tiers=tiers)
    assert _mrr(_sub(_item(price, quantity=10))) == Decimal("95")  # 5 + 5 x 10 + 5 x 8


def test_a_tiered_price_without_its_tiers_is_excluded_and_reported() -> None:
    price = _price(None, billing_scheme="tiered", tiers_mode="volume")
    result = mrr_breakdown(_sub(_item(price, quantity=10), _item(item_id="si_2")), as_of=AS_OF)
    assert result.mrr == Decimal("20")
    [issue] = result.issues
    assert issue.item_id == "si_1"
    assert "expand data.items.data.price.tiers" in issue.reason


def test_metered_prices_are_excluded_without_an_issue() -> None:
    metered = _item(_price(5, usage_type="metered"), quantity=None, item_id="si_m")
    result = mrr_breakdown(_sub(_item(), metered), as_of=AS_OF)
    assert (result.mrr, result.issues) == (Decimal("20"), ())
    assert result.items[1].excluded_because == "metered usage"


# Which subscriptions count


def test_a_trialing_subscription_counts_zero() -> None:
    result = mrr_breakdown(_sub(status="trialing", trial_end=NEXT_YEAR), as_of=AS_OF)
    assert (result.mrr, result.list_mrr) == (Decimal(0), Decimal("20"))


def test_an_active_subscription_still_in_trial_counts_zero() -> None:
    assert _mrr(_sub(status="active", trial_end=NEXT_YEAR)) == 0


def test_past_due_counts() -> None:
    assert _mrr(_sub(status="past_due")) == Decimal("20")


@pytest.mark.parametrize(
    "status", ["unpaid", "canceled", "incomplete", "incomplete_expired", "paused"]
)
def test_unpaid_canceled_incomplete_and_paused_count_zero(status: str) -> None:
    assert _mrr(_sub(status=status)) == 0


# Discounts


def test_a_forever_percent_coupon_reduces_mrr() -> None:
    sub = _sub(discounts=[_discount(_coupon(percent_off=20.0))])
    assert _mrr(sub) == Decimal("16")


def test_a_once_coupon_does_not_reduce_mrr() -> None:
    assert _mrr(_sub(discounts=[_discount(_coupon("once", percent_off=50.0))])) == Decimal("20")


def test_a_repeating_coupon_reduces_mrr_only_when_included_and_still_running() -> None:
    running = _discount(_coupon("repeating", percent_off=50.0, duration_in_months=3),
                        start=PERIOD_START)  # fmt: skip
    over = _discount(_coupon("repeating", percent_off=50.0, duration_in_months=3),
                     start=LAST_YEAR)  # fmt: skip
    assert _mrr(_sub(discounts=[running])) == Decimal("20")
    assert _mrr(_sub(discounts=[running]), include_repeating=True) == Decimal("10")
    assert _mrr(_sub(discounts=[over]), include_repeating=True) == Decimal("20")


def test_a_forever_amount_off_coupon_is_taken_off_per_month() -> None:
    annual = _item(_price(120_000, interval="year"))  # $100 a month
    coupon = _coupon(amount_off=24_000, currency="usd")  # $240 off each yearly invoice
    assert _mrr(_sub(annual, discounts=[_discount(coupon)])) == Decimal("80")


def test_an_item_discount_reduces_only_its_item() -> None:
    discounted = _item(item_id="si_1", discounts=[_discount(_coupon(percent_off=50.0))])
    other = _item(_price(3000), item_id="si_2")
    assert _mrr(_sub(discounted, other)) == Decimal("40")  # 20 x 0.5 + 30


def test_a_discount_left_as_an_id_is_ignored_and_reported() -> None:
    result = mrr_breakdown(_sub(discounts=["di_1"]), as_of=AS_OF)
    assert result.mrr == Decimal("20")
    assert result.issues == (
        MrrIssue("sub_1", None, "discount di_1 is an id; expand data.discounts.source.coupon"),
    )


def test_a_legacy_discount_with_the_coupon_on_it_is_read() -> None:
    legacy = {"id": "di_9", "object": "discount", "coupon": _coupon(percent_off=25.0), "end": None}
    assert _mrr(_sub(discount=legacy)) == Decimal("15")


# Bad data and customers


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({**_item(), "price": None}, "the item has no price object"),
        (_item(_price(interval="fortnight")), "price price_1 has unknown interval 'fortnight'"),
        (_item(_price(unit_amount_decimal="lots")), "unit_amount 'lots' is not a number"),
        (_item(quantity=-2), "quantity -2 is not a whole number of at least 0"),
    ],
)
def test_bad_items_count_zero_and_are_reported_not_raised(bad: dict[str, Any], reason: str) -> None:
    result = mrr_breakdown(_sub({**bad, "id": "si_bad"}, _item(item_id="si_ok")), as_of=AS_OF)
    assert result.mrr == Decimal("20")
    assert result.issues == (MrrIssue("sub_1", "si_bad", reason),)


def test_customer_mrr_keeps_currencies_apart_and_gives_arr() -> None:
    subs = [
        _sub(sub_id="sub_usd"),
        _sub(_item(_price(1000, currency="eur")), sub_id="sub_eur", currency="eur",
             customer={"id": "cus_1", "object": "customer"}),
        _sub(sub_id="sub_usd2", customer="cus_2", status="trialing", trial_end=NEXT_YEAR),
    ]  # fmt: skip
    totals = customer_mrr(subs, as_of=AS_OF)
    assert totals["cus_1"].mrr == {"usd": Decimal("20"), "eur": Decimal("10")}
    assert totals["cus_1"].arr == {"usd": Decimal("240"), "eur": Decimal("120")}
    assert totals["cus_2"].mrr == {"usd": Decimal(0)}


def test_seats_sum_licensed_quantities_only() -> None:
    metered = _item(_price(5, usage_type="metered"), quantity=None, item_id="si_m")
    assert seats(_sub(_item(quantity=4), _item(quantity=3, item_id="si_2"), metered)) == 7
    assert seats(_sub(metered)) is None


# Rows


def test_periods_are_read_from_the_items_earliest_start_to_latest_end() -> None:
    first = _item(item_id="si_1", start=PERIOD_START, end=PERIOD_END)
    second = _item(item_id="si_2", start=LAST_YEAR, end=NEXT_YEAR)
    row = subscription_row(_sub(first, second), as_of=AS_OF)
    assert row["current_period_start"] == dt.datetime(2025, 6, 15, tzinfo=dt.UTC)
    assert row["current_period_end"] == dt.datetime(2027, 6, 15, tzinfo=dt.UTC)


def test_a_row_fills_the_subscription_table() -> None:
    price = _price(60_000, interval="year", lookup_key="analytics_gold_yearly",
                   product={"id": "prod_1", "object": "product", "name": "Analytics"})  # fmt: skip
    sub = _sub(_item(price, quantity=10), customer={"id": "cus_9", "object": "customer"},
               discounts=[_discount(_coupon(percent_off=25.0))])  # fmt: skip
    row = subscription_row(sub, as_of=AS_OF)
    assert Subscription.model_validate(row).source_id == "sub_1"
    assert {k: row[k] for k in ("customer_ref", "product", "plan", "interval", "quantity")} == {
        "customer_ref": "cus_9", "product": "Analytics", "plan": "analytics_gold_yearly",
        "interval": "year", "quantity": 10,
    }  # fmt: skip
    assert (row["unit_amount"], row["discount_percent"], row["mrr"]) == (
        Decimal("600"), 25.0, Decimal("375"),
    )  # fmt: skip
    assert row["started_at"] == dt.datetime(2025, 6, 15, tzinfo=dt.UTC)


# Against the sandbox's Stripe, loaded from a synthetic world


@pytest.fixture(scope="module")
def world() -> World:
    return generate(seed=3, accounts=50, anchor=dt.date(2026, 6, 30))


@pytest.fixture(scope="module")
def listed_subscriptions(world: World) -> Iterator[list[dict[str, Any]]]:
    server = StripeServer(world, clock=lambda: world.anchor_time)
    server.start()
    try:
        client = stripe.StripeClient(server.DEFAULT_API_KEY, base_addresses={"api": server.url})
        # Discounts are ids and their coupons ids inside them unless expanded down to the coupon.
        expand = ["data.customer", "data.items.data.price.product", "data.discounts",
                  "data.discounts.source.coupon"]  # fmt: skip
        pages = client.v1.subscriptions.list({"status": "all", "limit": 100, "expand": expand})
        yield [sub.to_dict() for sub in pages.auto_paging_iter()]
    finally:
        server.stop()


def _world_mrr(seats: int, cents: int, interval: str, discount: float | None) -> Decimal:
    """Seats x list price per month x (1 - discount), as the world's `arr` / 12 has it."""
    per_month = Decimal(cents) / 100 / (12 if interval == "year" else 1)
    factor = 1 - Decimal(str(discount or 0)) / 100
    return (seats * per_month * factor).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def test_every_sandbox_subscription_maps_and_active_mrr_matches_the_world(
    world: World, listed_subscriptions: list[dict[str, Any]]
) -> None:
    billed = {c.workspace_id: c for c in world.companies if c.in_stripe and c.subscription_status}
    assert len(listed_subscriptions) == len(billed)
    for sub in listed_subscriptions:
        result = mrr_breakdown(sub, as_of=world.anchor_time)
        assert result.issues == (), sub["id"]
        row = subscription_row(sub, as_of=world.anchor_time)
        Subscription.model_validate(row)
        company = billed[sub["customer"]["metadata"]["workspace_id"]]
        assert row["quantity"] == company.seats
        assert company.billing_interval and company.unit_amount_cents is not None
        if company.subscription_status in ("active", "past_due"):
            expected = _world_mrr(company.seats, company.unit_amount_cents,
                                  company.billing_interval, company.discount_percent)  # fmt: skip
            assert result.mrr == expected, company.name
        else:
            assert result.mrr == 0, company.name


def test_a_naive_as_of_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        mrr_breakdown(_sub(), as_of=dt.datetime(2026, 6, 30))
