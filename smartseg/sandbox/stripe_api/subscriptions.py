"""Handlers for subscriptions, invoices and events.

The sandbox assumes every customer pays: a subscription starts `active` (or `trialing`) with a
paid first invoice, where real Stripe would need a payment method first. Period renewals are
not simulated as time passes; the world loader sets periods around its anchor instead.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from smartseg.sandbox.stripe_api.billing import add_interval, make_invoice
from smartseg.sandbox.stripe_api.context import (
    Ctx,
    merge_metadata,
    previous_attributes,
)
from smartseg.sandbox.stripe_api.errors import StripeError

__all__ = ["end_subscription"]

Json = dict[str, Any]
Record = dict[str, Any]
_DAY = 86_400
_MAX_TRIAL_DAYS = 730
_MAX_ITEMS = 20
_EVENT_RETENTION = 30 * _DAY
_LIVE_EXCLUDED = ("canceled", "incomplete_expired")


def _prices_for(ctx: Ctx, items: list[dict[str, Any]], param: str = "items") -> list[Record]:
    """Check the items' prices exist, recur, and agree on currency and interval."""
    if not items:
        raise StripeError(
            400, "Missing required param: items.", code="parameter_missing", param=param
        )
    if len(items) > _MAX_ITEMS:
        raise StripeError(400, "A subscription can have at most 20 items.", param=param)
    prices = []
    for i, item in enumerate(items):
        price = ctx.get("price", item["price"], f"{param}[{i}][price]")
        if price["interval"] is None:
            raise StripeError(
                400,
                "The price specified is set to `type=one_time` but this field only accepts "
                "prices with `type=recurring`.",
                param=f"{param}[{i}][price]",
            )
        if not price["active"]:
            raise StripeError(
                400, f"The price specified is inactive: {price['id']}", param=f"{param}[{i}][price]"
            )
        prices.append(price)
    if len({p["id"] for p in prices}) < len(prices):
        raise StripeError(
            400, "Cannot add multiple subscription items with the same price.", param=param
        )
    for field in ("currency", "interval", "interval_count"):
        if len({p[field] for p in prices}) > 1:
            raise StripeError(
                400,
                "Currency and interval fields must match across all plans on this subscription. "
                f"Found mismatch in {field} field.",
                param=param,
            )
    return prices


def _trial_end(ctx: Ctx, params: dict[str, Any]) -> int | None:
    if "trial_end" in params and "trial_period_days" in params:
        raise StripeError(
            400,
            "You may only specify one of these parameters: trial_end, trial_period_days.",
            param="trial_end",
        )
    if "trial_period_days" in params:
        days = params["trial_period_days"]
        if not 0 <= days <= _MAX_TRIAL_DAYS:
            raise StripeError(
                400, "Trial period days must be at most 730.", param="trial_period_days"
            )
        return ctx.now + days * _DAY if days else None
    raw = params.get("trial_end")
    if raw is None or raw == "now":
        return None
    if not raw.isdigit():
        raise StripeError(
            400,
            "Invalid timestamp: must be an integer Unix timestamp in the future or 'now'.",
            param="trial_end",
        )
    end = int(raw)
    if end <= ctx.now or end > ctx.now + _MAX_TRIAL_DAYS * _DAY:
        raise StripeError(
            400,
            "Invalid timestamp: must be in the future and at most two years out.",
            param="trial_end",
        )
    return end


def _discounts(ctx: Ctx, entries: list[dict[str, Any]], customer: str, sub_id: str) -> list[str]:
    ids = []
    for i, entry in enumerate(entries):
        if "coupon" not in entry:
            raise StripeError(
                400, "Only coupons are supported in discounts.", param=f"discounts[{i}]"
            )
        coupon = ctx.get("coupon", entry["coupon"], f"discounts[{i}][coupon]")
        if not coupon.get("valid", True):
            raise StripeError(
                400, f"Coupon expired: {coupon['id']}", param=f"discounts[{i}][coupon]"
            )
        coupon["times_redeemed"] = coupon.get("times_redeemed", 0) + 1
        discount = {
            "id": ctx.store.new_id("discount"),
            "created": ctx.now,
            "start": ctx.now,
            "end": None,
            "coupon": coupon["id"],
            "customer": customer,
            "subscription": sub_id,
        }
        if coupon["duration"] == "repeating":
            discount["end"] = add_interval(ctx.now, "month", coupon["duration_in_months"])
        ctx.store["discount"].add(discount)
        ids.append(discount["id"])
    return ids


def _bill(ctx: Ctx, sub: Record, customer: Record, reason: str, period: tuple[int, int]) -> None:
    """Issue and pay the invoice of a new period; emit the events Stripe sends for it."""
    zero = sub["status"] == "trialing"
    invoice = make_invoice(
        ctx.store,
        sub,
        customer,
        period=period,
        created=ctx.now,
        billing_reason=reason,
        status="paid",
        zero=zero,
    )
    sub["latest_invoice"] = invoice["id"]
    for event_type in ("invoice.created", "invoice.finalized", "invoice.paid"):
        ctx.store.emit(event_type, "invoice", invoice, ctx.now, request=ctx.request)


def create_subscription(ctx: Ctx, params: dict[str, Any], _: str | None) -> Json:
    customer = ctx.get("customer", params["customer"], "customer")
    if customer.get("deleted"):
        raise StripeError.missing("customer", customer["id"], "customer")
    items = params.get("items", [])
    prices = _prices_for(ctx, items)
    trial_end = _trial_end(ctx, params)
    sub_id = ctx.store.new_id("subscription")
    price = prices[0]
    period_end = trial_end or add_interval(ctx.now, price["interval"], price["interval_count"])
    sub: Record = {
        "id": sub_id,
        "created": ctx.now,
        "start_date": ctx.now,
        "billing_cycle_anchor": period_end if trial_end else ctx.now,
        "customer": customer["id"],
        "currency": price["currency"],
        "status": "trialing" if trial_end else "active",
        "trial_start": ctx.now if trial_end else None,
        "trial_end": trial_end,
        "items": [
            {
                "id": ctx.store.new_id("subscription_item"),
                "created": ctx.now,
                "price": p["id"],
                "quantity": item.get("quantity", 1),
                "metadata": item.get("metadata") or {},
                "current_period_start": ctx.now,
                "current_period_end": period_end,
            }
            for item, p in zip(items, prices, strict=True)
        ],
        "metadata": params.get("metadata") or {},
        "description": params.get("description"),
        "cancel_at_period_end": params.get("cancel_at_period_end", False),
        "cancel_at": period_end if params.get("cancel_at_period_end") else params.get("cancel_at"),
        "discounts": _discounts(ctx, params.get("discounts", []), customer["id"], sub_id),
    }
    customer.setdefault("currency", price["currency"])
    ctx.store["subscription"].add(sub)
    _bill(ctx, sub, customer, "subscription_create", (ctx.now, period_end))
    ctx.store.emit(
        "customer.subscription.created", "subscription", sub, ctx.now, request=ctx.request
    )
    return ctx.render("subscription", sub)


def retrieve_subscription(ctx: Ctx, params: dict[str, Any], sub_id: str | None) -> Json:
    return ctx.render("subscription", ctx.get("subscription", str(sub_id)))


def _update_items(ctx: Ctx, sub: Record, changes: list[dict[str, Any]]) -> list[Record]:
    """The subscription's new item list (new dicts: records are copy-on-write)."""
    items = {item["id"]: dict(item) for item in sub["items"]}
    period = (sub["items"][0]["current_period_start"], sub["items"][0]["current_period_end"])
    for i, change in enumerate(changes):
        item_id = change.get("id")
        if item_id is not None and item_id not in items:
            raise StripeError.missing("subscription_item", item_id, f"items[{i}][id]")
        if change.get("deleted"):
            items.pop(str(item_id), None)
            continue
        if item_id is None:
            if "price" not in change:
                raise StripeError(
                    400,
                    f"Missing required param: items[{i}][price].",
                    code="parameter_missing",
                    param=f"items[{i}][price]",
                )
            item_id = ctx.store.new_id("subscription_item")
            items[item_id] = {
                "id": item_id,
                "created": ctx.now,
                "quantity": 1,
                "metadata": {},
                "current_period_start": period[0],
                "current_period_end": period[1],
            }
        item = items[item_id]
        for key in ("price", "quantity"):
            if key in change:
                item[key] = change[key]
        if "metadata" in change:
            item["metadata"] = merge_metadata(item.get("metadata", {}), change["metadata"])
    if not items:
        raise StripeError(400, "A subscription must have at least one active item.", param="items")
    _prices_for(ctx, [{"price": item["price"]} for item in items.values()])
    return list(items.values())


def update_subscription(ctx: Ctx, params: dict[str, Any], sub_id: str | None) -> Json:
    sub = ctx.get("subscription", str(sub_id))
    if sub["status"] in _LIVE_EXCLUDED and set(params) - {
        "metadata",
        "cancellation_details",
        "expand",
    }:
        raise StripeError(
            400, "A canceled subscription can only update its cancellation_details and metadata."
        )
    if "cancel_at" in params and "cancel_at_period_end" in params:
        raise StripeError(
            400,
            "You may only specify one of these parameters: cancel_at, cancel_at_period_end.",
            param="cancel_at",
        )
    before = ctx.render("subscription", sub)
    customer = ctx.get("customer", sub["customer"])
    if "items" in params:
        old_price = ctx.store["price"].rows[sub["items"][0]["price"]]
        sub["items"] = _update_items(ctx, sub, params["items"])
        new_price = ctx.store["price"].rows[sub["items"][0]["price"]]
        if (old_price["interval"], old_price["interval_count"]) != (
            new_price["interval"],
            new_price["interval_count"],
        ):
            _restart_period(ctx, sub, customer, "subscription_update")
    if params.get("trial_end") == "now" and sub["status"] == "trialing":
        sub["trial_end"] = ctx.now
        sub["status"] = "active"
        _restart_period(ctx, sub, customer, "subscription_update")
    elif "trial_end" in params and params["trial_end"] != "now":
        end = _trial_end(ctx, {"trial_end": params["trial_end"]})
        sub.update(trial_end=end, status="trialing", trial_start=sub.get("trial_start") or ctx.now)
        sub["items"] = [{**i, "current_period_end": end} for i in sub["items"]]
    period_end = sub["items"][0]["current_period_end"]
    if "cancel_at_period_end" in params:
        sub["cancel_at_period_end"] = params["cancel_at_period_end"]
        sub["cancel_at"] = period_end if params["cancel_at_period_end"] else None
    if "cancel_at" in params:
        sub["cancel_at"] = params["cancel_at"] or None
        sub["cancel_at_period_end"] = sub["cancel_at"] == period_end
    if "metadata" in params:
        sub["metadata"] = merge_metadata(sub["metadata"], params["metadata"])
    if "description" in params:
        sub["description"] = params["description"] or None
    if "discounts" in params:
        sub["discounts"] = _discounts(ctx, params["discounts"] or [], sub["customer"], sub["id"])
    if "cancellation_details" in params:
        details = before["cancellation_details"]
        sub["cancellation_details"] = {**details, **params["cancellation_details"]}
    after = ctx.render("subscription", sub)
    if changed := previous_attributes(before, after):
        ctx.store.emit(
            "customer.subscription.updated",
            "subscription",
            sub,
            ctx.now,
            previous=changed,
            request=ctx.request,
        )
    return after


def _restart_period(ctx: Ctx, sub: Record, customer: Record, reason: str) -> None:
    price = ctx.store["price"].rows[sub["items"][0]["price"]]
    end = add_interval(ctx.now, price["interval"], price["interval_count"])
    sub["billing_cycle_anchor"] = ctx.now
    sub["items"] = [
        {**item, "current_period_start": ctx.now, "current_period_end": end}
        for item in sub["items"]
    ]
    _bill(ctx, sub, customer, reason, (ctx.now, end))


def end_subscription(
    ctx: Ctx, sub: Record, reason: str, details: dict[str, Any] | None = None
) -> None:
    """Cancel at once: status canceled, canceled_at/ended_at now, a .deleted event."""
    sub.update(status="canceled", canceled_at=ctx.now, ended_at=ctx.now)
    sub["cancellation_details"] = {
        "comment": None,
        "feedback": None,
        **(details or {}),
        "reason": reason,
    }
    ctx.store.emit(
        "customer.subscription.deleted", "subscription", sub, ctx.now, request=ctx.request
    )


def cancel_subscription(ctx: Ctx, params: dict[str, Any], sub_id: str | None) -> Json:
    sub = ctx.get("subscription", str(sub_id))
    if sub["status"] in _LIVE_EXCLUDED:
        raise StripeError(
            400, "A canceled subscription can only update its cancellation_details and metadata."
        )
    end_subscription(ctx, sub, "cancellation_requested", params.get("cancellation_details"))
    return ctx.render("subscription", sub)


def list_subscriptions(ctx: Ctx, params: dict[str, Any], _: str | None) -> Json:
    status = params.get("status")
    customer, price = params.get("customer"), params.get("price", params.get("plan"))

    def keep(r: Record) -> bool:
        if status is None and r["status"] in _LIVE_EXCLUDED:
            return False
        if status == "ended" and r["status"] not in _LIVE_EXCLUDED:
            return False
        if status not in (None, "all", "ended") and r["status"] != status:
            return False
        if customer is not None and r["customer"] != customer:
            return False
        return price is None or any(i["price"] == price for i in r["items"])

    return ctx.page("subscription", params, "/v1/subscriptions", keep)


def search_subscriptions(ctx: Ctx, params: dict[str, Any], _: str | None) -> Json:
    return ctx.search("subscriptions", "subscription", params, "/v1/subscriptions/search")


def retrieve_invoice(ctx: Ctx, params: dict[str, Any], invoice_id: str | None) -> Json:
    return ctx.render("invoice", ctx.get("invoice", str(invoice_id)))


def list_invoices(ctx: Ctx, params: dict[str, Any], _: str | None) -> Json:
    wanted = {k: params[k] for k in ("customer", "subscription", "status") if k in params}

    def keep(r: Record) -> bool:
        return all(r[k] == v for k, v in wanted.items())

    return ctx.page("invoice", params, "/v1/invoices", keep if wanted else None)


def retrieve_event(ctx: Ctx, params: dict[str, Any], event_id: str | None) -> Json:
    event = ctx.get("event", str(event_id))
    if event["created"] < ctx.now - _EVENT_RETENTION:
        raise StripeError.missing("event", event["id"])
    return ctx.render("event", event)


def list_events(ctx: Ctx, params: dict[str, Any], _: str | None) -> Json:
    """Events of the last 30 days, filtered by `type` (with `*`) or `types` (up to 20)."""
    if "type" in params and "types" in params:
        raise StripeError(
            400, "You may only specify one of these parameters: type, types.", param="type"
        )
    types = params.get("types")
    if types is not None and len(types) > 20:
        raise StripeError(400, "You may pass at most 20 types.", param="types")
    pattern = params.get("type")
    oldest = ctx.now - _EVENT_RETENTION
    if params.get("delivery_success") is False:
        return ctx.page("event", params, "/v1/events", lambda r: False)
    created = dict(params.get("created") or {})
    created["gte"] = max(created.get("gte", oldest), oldest)
    wanted = set(types) if types is not None else None

    def keep(r: Record) -> bool:
        if wanted is not None:
            return r["type"] in wanted
        return pattern is None or fnmatch.fnmatchcase(r["type"], pattern)

    return ctx.page("event", {**params, "created": created}, "/v1/events", keep)
