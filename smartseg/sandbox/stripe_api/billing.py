"""Billing arithmetic shared by the API handlers and the world loader: periods and invoices.

Periods advance by calendar months from the billing anchor, clamping to the month's last day as
Stripe does (a subscription anchored on the 31st bills on 30 April). Invoices are computed from
the subscription's items, prices and forever/once/repeating coupon discounts.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
from typing import Any

from smartseg.sandbox.stripe_api.store import Store

__all__ = ["add_interval", "discount_amount", "make_invoice", "period_containing"]

Record = dict[str, Any]
_DAY = 86_400
_MONTHS = {"month": 1, "year": 12}
_DAYS = {"day": 1, "week": 7}


@functools.lru_cache(maxsize=1 << 16)
def add_interval(ts: int, interval: str, count: int, times: int = 1) -> int:
    """`ts` moved forward by `times` billing intervals of `count` units each."""
    if interval in _DAYS:
        return ts + _DAYS[interval] * count * times * _DAY
    moment = dt.datetime.fromtimestamp(ts, dt.UTC)
    months = moment.month - 1 + _MONTHS[interval] * count * times
    year, month = moment.year + months // 12, months % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


def period_containing(anchor: int, at: int, interval: str, count: int) -> tuple[int, int, int]:
    """The (start, end, index) of the billing period around `at` for periods from `anchor`."""
    if at < anchor:
        return anchor, add_interval(anchor, interval, count), 0
    if interval in _DAYS:
        length = _DAYS[interval] * count * _DAY
        index = (at - anchor) // length
    else:
        start = dt.datetime.fromtimestamp(anchor, dt.UTC)
        now = dt.datetime.fromtimestamp(at, dt.UTC)
        months = (now.year - start.year) * 12 + now.month - start.month
        index = max(0, months // (_MONTHS[interval] * count))
        while index > 0 and add_interval(anchor, interval, count, index) > at:
            index -= 1
    while add_interval(anchor, interval, count, index + 1) <= at:
        index += 1
    begin = add_interval(anchor, interval, count, index)
    return begin, add_interval(anchor, interval, count, index + 1), index


def discount_amount(coupon: Record, subtotal: int) -> int:
    """What a coupon takes off a subtotal, in minor units (never more than the subtotal)."""
    if coupon.get("percent_off") is not None:
        return min(subtotal, round(subtotal * coupon["percent_off"] / 100))
    return min(subtotal, coupon.get("amount_off") or 0)


def make_invoice(
    store: Store,
    subscription: Record,
    customer: Record,
    *,
    period: tuple[int, int],
    created: int,
    billing_reason: str,
    status: str,
    zero: bool = False,
    bulk: bool = False,
) -> Record:
    """Create and store the invoice of one subscription period.

    `zero` bills nothing (a trial's first invoice). `status` is "paid" or "open"; an open
    invoice has failed one payment attempt and retries in three days, as past_due ones do.
    """
    invoice_id = store.new_id("invoice")
    lines = []
    subtotal = 0
    for item in subscription["items"]:
        price = store["price"].rows[item["price"]]
        unit = 0 if zero else price["unit_amount"]
        amount = unit * item["quantity"]
        subtotal += amount
        lines.append(
            {
                "id": store.new_id("line_item"),
                "price": price["id"],
                "quantity": item["quantity"],
                "unit_amount": unit,
                "amount": amount,
                "period_start": period[0],
                "period_end": period[1],
                "subscription_item": item["id"],
                "description": f"{item['quantity']} x {price.get('nickname') or 'seat'}"
                + (" (trial)" if zero else ""),
            }
        )
    discounts = list(subscription.get("discounts", []))
    off = 0
    for discount_id in discounts:
        coupon = store["coupon"].rows[store["discount"].rows[discount_id]["coupon"]]
        off += discount_amount(coupon, subtotal - off)
    if lines and off:
        lines[0]["discount_amount"] = off
    sequence = customer.get("next_invoice_sequence", 1)
    customer["next_invoice_sequence"] = sequence + 1
    total = subtotal - off
    paid = status == "paid"
    invoice = {
        "id": invoice_id,
        "created": created,
        "customer": customer["id"],
        "customer_email": customer.get("email"),
        "customer_name": customer.get("name"),
        "subscription": subscription["id"],
        "status": status,
        "billing_reason": billing_reason,
        "currency": subscription["currency"],
        "period_start": period[0],
        "period_end": period[1],
        "lines": lines,
        "discounts": discounts if off else [],
        "subtotal": subtotal,
        "total": total,
        "amount_due": total,
        "amount_paid": total if paid else 0,
        "number": f"{customer['invoice_prefix']}-{sequence:04d}",
        "finalized_at": created,
        "paid_at": created if paid else None,
        "attempt_count": 0 if total == 0 else (1 if paid else 2),
        "next_payment_attempt": None if paid else created + 3 * _DAY,
    }
    return store["invoice"].add(invoice, bulk=bulk)
