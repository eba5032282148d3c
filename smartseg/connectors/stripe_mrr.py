"""Stripe subscriptions as `Subscription` rows, and their MRR as Stripe's analytics count it.

Pure functions over the JSON of Stripe objects (`obj.to_dict()` or an event's payload); no
network, no clock. The rules (docs.stripe.com/billing/subscriptions/analytics/glossary):

- only `active` and `past_due` subscriptions count, and not while `trial_end` is after `as_of`;
- each licensed item's amount per billing period is normalised to a month (year / 12,
  week x 52 / 12, day x 365 / 12, then / interval_count); metered prices never count;
- `forever` coupons reduce MRR; `repeating` ones only with `include_repeating`, while they last;
  `once` coupons never. Item discounts apply first, then the subscription's, in listed order.

Amounts are exact (fractions of the API's decimal strings) until the single rounding to 4 places,
ROUND_HALF_UP, in the subscription's own currency. Bad data never raises: the item or discount
contributes nothing and an `MrrIssue` says why. Discounts, and coupons inside them, must be
expanded (`expand=["data.discounts.source.coupon"]`); one left as an id is ignored and reported.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from smartseg.connectors.stripe_prices import (
    Interval,
    PriceError,
    billing_interval,
    licensed_monthly,
    minor_units,
    per_month,
    round_money,
    stripe_amount,
    usage_type,
)

__all__ = [
    "COUNTED_STATUSES",
    "CurrencyAmounts",
    "ItemMrr",
    "MrrIssue",
    "MrrResult",
    "customer_mrr",
    "monthly_recurring_revenue",
    "mrr_breakdown",
    "seats",
    "subscription_row",
]

COUNTED_STATUSES = frozenset({"active", "past_due"})
_ZERO = Decimal("0.0000")


@dataclass(frozen=True, slots=True)
class MrrIssue:
    """Why part of a subscription was left out of MRR; `item_id` is None for the whole one."""

    subscription_id: str
    item_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class ItemMrr:
    """One subscription item's list amount per month, before discounts, in major units."""

    item_id: str
    price_id: str | None
    quantity: int | None
    monthly: Decimal
    excluded_because: str | None = None


@dataclass(frozen=True, slots=True)
class MrrResult:
    """A subscription's MRR with how it was reached.

    `list_mrr` and `discounted_mrr` ignore status (what the items are worth per month);
    `mrr` is `discounted_mrr` when the subscription counts, else 0.
    """

    subscription_id: str
    customer_id: str | None
    currency: str | None
    mrr: Decimal
    list_mrr: Decimal
    discounted_mrr: Decimal
    excluded_because: str | None
    items: tuple[ItemMrr, ...]
    issues: tuple[MrrIssue, ...]

    @property
    def arr(self) -> Decimal:
        return self.mrr * 12


@dataclass(frozen=True, slots=True)
class CurrencyAmounts:
    """One customer's MRR per currency (lower-case ISO code); currencies are never summed."""

    mrr: dict[str, Decimal] = field(default_factory=dict)

    @property
    def arr(self) -> dict[str, Decimal]:
        return {currency: amount * 12 for currency, amount in self.mrr.items()}


class _DiscountError(ValueError):
    """A discount that cannot be applied; the message becomes an `MrrIssue` reason."""


def mrr_breakdown(
    sub: Mapping[str, Any], *, as_of: dt.datetime, include_repeating: bool = False
) -> MrrResult:
    """MRR of one subscription at `as_of`, with per-item amounts and every issue found."""
    _check_aware(as_of)
    sub_id = str(sub.get("id") or "?")
    issues: list[MrrIssue] = []
    customer_id = _ref(sub.get("customer"))
    for name, value in (("id", sub.get("id")), ("customer", customer_id)):
        if not value:
            issues.append(MrrIssue(sub_id, None, f"the subscription has no {name}"))
    currency = _currency(sub)
    items, gross, total, interval = _items(sub, sub_id, currency, as_of, include_repeating, issues)

    def report(reason: str) -> None:
        issues.append(MrrIssue(sub_id, None, reason))

    for discount in _sub_discounts(sub):
        total = _apply(total, discount, currency, interval, as_of, include_repeating, report)
    excluded = _status_exclusion(sub, as_of)
    if currency is None and gross:
        excluded = "the subscription has no currency"
        issues.append(MrrIssue(sub_id, None, excluded))
    discounted = round_money(total)
    return MrrResult(
        subscription_id=sub_id,
        customer_id=customer_id,
        currency=currency,
        mrr=_ZERO if excluded else discounted,
        list_mrr=round_money(gross),
        discounted_mrr=discounted,
        excluded_because=excluded,
        items=tuple(items),
        issues=tuple(issues),
    )


def monthly_recurring_revenue(
    sub: Mapping[str, Any],
    *,
    as_of: dt.datetime,
    include_repeating: bool = False,
    issues: list[MrrIssue] | None = None,
) -> Decimal:
    """The subscription's MRR in its own currency; issues are appended to `issues` if given."""
    result = mrr_breakdown(sub, as_of=as_of, include_repeating=include_repeating)
    if issues is not None:
        issues.extend(result.issues)
    return result.mrr


def customer_mrr(
    subs: Iterable[Mapping[str, Any]],
    *,
    as_of: dt.datetime,
    include_repeating: bool = False,
    issues: list[MrrIssue] | None = None,
) -> dict[str, CurrencyAmounts]:
    """MRR (and ARR) per customer id and currency; every currency a customer is billed in
    appears, at 0 when none of its subscriptions count."""
    totals: dict[str, dict[str, Decimal]] = {}
    for sub in subs:
        result = mrr_breakdown(sub, as_of=as_of, include_repeating=include_repeating)
        if issues is not None:
            issues.extend(result.issues)
        if result.customer_id is None or result.currency is None:
            continue
        per_currency = totals.setdefault(result.customer_id, {})
        per_currency[result.currency] = per_currency.get(result.currency, Decimal(0)) + result.mrr
    return {customer: CurrencyAmounts(amounts) for customer, amounts in totals.items()}


def seats(sub: Mapping[str, Any]) -> int | None:
    """Licensed quantity summed over items (metered items have none); None when there is none."""
    quantities = [
        item.get("quantity")
        for item in _item_list(sub)
        if isinstance(item, Mapping) and usage_type(item.get("price")) == "licensed"
    ]
    valid = [q for q in quantities if isinstance(q, int) and not isinstance(q, bool) and q >= 0]
    return sum(valid) if valid else None


def subscription_row(
    sub: Mapping[str, Any], *, as_of: dt.datetime, include_repeating: bool = False
) -> dict[str, Any]:
    """The `Subscription` table's columns for one Stripe subscription (account_id is linked
    later). Product, plan, interval and unit amount describe the first licensed item."""
    result = mrr_breakdown(sub, as_of=as_of, include_repeating=include_repeating)
    items = [item for item in _item_list(sub) if isinstance(item, Mapping)]
    licensed = [item for item in items if usage_type(item.get("price")) == "licensed"]
    primary = (licensed or items or [{}])[0]
    price = _mapping(primary.get("price"))
    recurring = _mapping(price.get("recurring"))
    starts = [t for t in (_when(i.get("current_period_start")) for i in items) if t]
    ends = [t for t in (_when(i.get("current_period_end")) for i in items) if t]
    return {
        "source": "stripe",
        "source_id": result.subscription_id,
        "customer_ref": result.customer_id,
        "status": str(sub.get("status") or "unknown"),
        "product": _product(price.get("product")),
        "plan": price.get("lookup_key") or price.get("nickname") or price.get("id"),
        "interval": recurring.get("interval"),
        "interval_count": recurring.get("interval_count"),
        "quantity": seats(sub),
        "unit_amount": _unit_amount(price, result.currency),
        "discount_percent": _discount_percent(result),
        "mrr": result.mrr,
        "currency": result.currency,
        "started_at": _when(sub.get("start_date")),
        # Periods sit on items in current API versions; older payloads have them on the top.
        "current_period_start": min(starts, default=_when(sub.get("current_period_start"))),
        "current_period_end": max(ends, default=_when(sub.get("current_period_end"))),
        "trial_end": _when(sub.get("trial_end")),
        "cancel_at_period_end": bool(sub.get("cancel_at_period_end")),
        "canceled_at": _when(sub.get("canceled_at")),
        "ended_at": _when(sub.get("ended_at")),
    }


# Items and prices


def _items(
    sub: Mapping[str, Any],
    sub_id: str,
    currency: str | None,
    as_of: dt.datetime,
    include_repeating: bool,
    issues: list[MrrIssue],
) -> tuple[list[ItemMrr], Fraction, Fraction, Interval | None]:
    """Each item's list amount per month; the exact totals before and after item discounts;
    the billing interval of the first licensed item (what a subscription amount_off is per)."""
    raw_items = sub.get("items")
    if isinstance(raw_items, Mapping) and raw_items.get("has_more"):
        issues.append(MrrIssue(sub_id, None, "items list is truncated; list all items first"))
    results: list[ItemMrr] = []
    gross = net = Fraction(0)
    interval: Interval | None = None
    for n, item in enumerate(_item_list(sub)):
        if not isinstance(item, Mapping):
            issues.append(MrrIssue(sub_id, f"#{n}", "an item is not an object"))
            continue
        item_id = str(item.get("id") or f"#{n}")
        price = item.get("price")
        price_id = price.get("id") if isinstance(price, Mapping) else None
        quantity = item.get("quantity")
        try:
            if not isinstance(price, Mapping):
                raise PriceError("the item has no price object")
            item_interval = billing_interval(price)
            monthly = licensed_monthly(price, quantity, currency)
        except PriceError as bad:
            issues.append(MrrIssue(sub_id, item_id, str(bad)))
            results.append(ItemMrr(item_id, price_id, None, _ZERO, str(bad)))
            continue
        if monthly is None:
            results.append(ItemMrr(item_id, price_id, None, _ZERO, "metered usage"))
            continue
        interval = interval or item_interval
        results.append(ItemMrr(item_id, price_id, quantity, round_money(monthly)))
        gross += monthly

        def report(reason: str, item_id: str = item_id) -> None:
            issues.append(MrrIssue(sub_id, item_id, reason))

        for discount in _list(item.get("discounts")):
            monthly = _apply(monthly, discount, currency, item_interval, as_of, include_repeating,
                             report)  # fmt: skip
        net += monthly
    return results, gross, net, interval


# Discounts


def _sub_discounts(sub: Mapping[str, Any]) -> list[Any]:
    """`discounts`, plus the legacy single `discount` unless it is already listed."""
    discounts = _list(sub.get("discounts"))
    legacy = sub.get("discount")
    if legacy is not None and _ref(legacy) not in {_ref(d) for d in discounts}:
        discounts.append(legacy)
    return discounts


def _apply(
    amount: Fraction,
    discount: Any,
    currency: str | None,
    interval: Interval | None,
    as_of: dt.datetime,
    include_repeating: bool,
    report: Callable[[str], None],
) -> Fraction:
    """`amount` (per month) less one discount when it counts; a discount that cannot be read
    is reported and leaves the amount unchanged."""
    try:
        coupon = _coupon(discount)
        if not _counts(discount, coupon, as_of, include_repeating):
            return amount
        percent = coupon.get("percent_off")
        if percent is not None:
            off = stripe_amount({"percent_off": percent}, "percent_off")
            if off is None or off > 100:
                raise _DiscountError(
                    f"coupon {coupon.get('id')} has invalid percent_off {percent!r}"
                )
            return amount * (1 - off / 100)
        return max(amount - _amount_off(coupon, currency, interval), Fraction(0))
    except (_DiscountError, PriceError) as bad:
        report(str(bad))
        return amount


def _coupon(discount: Any) -> Mapping[str, Any]:
    if isinstance(discount, str):
        raise _DiscountError(f"discount {discount} is an id; expand data.discounts.source.coupon")
    if not isinstance(discount, Mapping):
        raise _DiscountError("a discount is neither an id nor an object")
    source = discount.get("source")
    # Current API versions nest the coupon under `source`; older ones put it on the discount.
    coupon = source.get("coupon") if isinstance(source, Mapping) else discount.get("coupon")
    if isinstance(coupon, str):
        raise _DiscountError(f"coupon {coupon} of discount {discount.get('id')} is not expanded")
    if not isinstance(coupon, Mapping):
        raise _DiscountError(f"discount {discount.get('id')} has no coupon")
    return coupon


def _counts(
    discount: Mapping[str, Any],
    coupon: Mapping[str, Any],
    as_of: dt.datetime,
    include_repeating: bool,
) -> bool:
    duration = coupon.get("duration")
    start = _when(discount.get("start"))
    if start is not None and start > as_of:
        return False
    if duration == "forever":
        return True
    if duration == "once":
        return False
    if duration != "repeating":
        raise _DiscountError(f"coupon {coupon.get('id')} has unknown duration {duration!r}")
    if not include_repeating:
        return False
    end = _when(discount.get("end"))
    months = coupon.get("duration_in_months")
    if end is None and start is not None and isinstance(months, int):
        end = _add_months(start, months)
    if end is None:
        raise _DiscountError(f"repeating discount {discount.get('id')} has no end")
    return as_of < end


def _amount_off(
    coupon: Mapping[str, Any], currency: str | None, interval: Interval | None
) -> Fraction:
    """A coupon's amount_off per month in major units of `currency` (it is off each invoice)."""
    amount = stripe_amount(coupon, "amount_off")
    if amount is None:
        raise _DiscountError(f"coupon {coupon.get('id')} has neither percent_off nor amount_off")
    if str(coupon.get("currency") or "").lower() != currency:
        options = coupon.get("currency_options")
        option = options.get(currency) if isinstance(options, Mapping) and currency else None
        amount = stripe_amount(option, "amount_off") if isinstance(option, Mapping) else None
        if amount is None:
            raise _DiscountError(f"coupon {coupon.get('id')} has no amount_off in {currency}")
    if interval is None:
        raise _DiscountError(f"coupon {coupon.get('id')} applies to no billing interval")
    return per_month(amount / minor_units(str(currency)), interval)


# Small readers


def _status_exclusion(sub: Mapping[str, Any], as_of: dt.datetime) -> str | None:
    status = sub.get("status")
    if status not in COUNTED_STATUSES:
        return f"status {status} does not count"
    trial_end = _when(sub.get("trial_end"))
    if trial_end is not None and trial_end > as_of:
        return f"in trial until {trial_end.isoformat()}"
    ended = _when(sub.get("ended_at"))
    if ended is not None and ended <= as_of:
        return f"ended at {ended.isoformat()}"
    return None


def _discount_percent(result: MrrResult) -> float | None:
    """The share of the list amount the counted discounts take off, in percent."""
    if not result.list_mrr or result.discounted_mrr == result.list_mrr:
        return None
    return float(round((1 - result.discounted_mrr / result.list_mrr) * 100, 4))


def _unit_amount(price: Mapping[str, Any], currency: str | None) -> Decimal | None:
    try:
        unit = stripe_amount(price, "unit_amount")
    except PriceError:
        return None
    code = str(price.get("currency") or currency or "")
    return None if unit is None or not code else round_money(unit / minor_units(code))


def _currency(sub: Mapping[str, Any]) -> str | None:
    currency = sub.get("currency")
    if not currency:
        prices = [i.get("price") for i in _item_list(sub) if isinstance(i, Mapping)]
        currency = next((p.get("currency") for p in prices if isinstance(p, Mapping)), None)
    return str(currency).lower() if currency else None


def _item_list(sub: Mapping[str, Any]) -> list[Any]:
    items = sub.get("items")
    return _list(items.get("data") if isinstance(items, Mapping) else items)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _ref(value: Any) -> str | None:
    """An id, whether the field holds the id or the expanded object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return str(value) if value else None


def _product(value: Any) -> str | None:
    if isinstance(value, Mapping):
        return str(value.get("name") or value.get("id") or "") or None
    return str(value) if value else None


def _when(value: Any) -> dt.datetime | None:
    """A Stripe timestamp (epoch seconds) as an aware UTC datetime; None when absent or bad."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC) if value.tzinfo else None
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _add_months(start: dt.datetime, months: int) -> dt.datetime:
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


def _check_aware(as_of: dt.datetime) -> None:
    if as_of.tzinfo is None:
        raise ValueError(f"as_of must be timezone-aware (UTC), got naive {as_of.isoformat()}")
