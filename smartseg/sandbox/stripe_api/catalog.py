"""Handlers for customers, products, prices and coupons: create, read, update, list, delete.

Each handler takes the request's `Ctx`, its validated parameters and the path's id, and
returns the JSON object to send; `SPECS` names the parameters each endpoint accepts (anything
else is a 400 parameter_unknown, as on Stripe). Parameters typed "any" are accepted and ignored.
"""

from __future__ import annotations

import zlib
from typing import Any

from smartseg.sandbox.stripe_api.context import (
    Ctx,
    merge_metadata,
    previous_attributes,
)
from smartseg.sandbox.stripe_api.errors import StripeError
from smartseg.sandbox.stripe_api.params import ADDRESS_FIELDS, CUSTOMER_FIELDS

__all__ = ["new_customer"]

Json = dict[str, Any]
Record = dict[str, Any]


def new_customer(ctx: Ctx, fields: dict[str, Any], created: int, customer_id: str) -> Record:
    """A customer record as Stripe creates it (also used by the world loader)."""
    return {
        "id": customer_id,
        "created": created,
        "invoice_prefix": fields.pop("invoice_prefix", None)
        or f"{zlib.crc32(customer_id.encode()):08X}",
        "metadata": fields.pop("metadata", None) or {},
        **fields,
    }


def _customer_fields(params: dict[str, Any]) -> dict[str, Any]:
    fields = {k: v for k, v in params.items() if CUSTOMER_FIELDS.get(k) != "any" and k != "expand"}
    if fields.get("address") == "":
        fields["address"] = None
    elif "address" in fields:
        fields["address"] = {k: fields["address"].get(k) for k in ADDRESS_FIELDS}
    return fields


def create_customer(ctx: Ctx, params: dict[str, Any], _: str | None) -> Json:
    fields = _customer_fields(params)
    record = new_customer(ctx, fields, ctx.now, ctx.store.new_id("customer"))
    ctx.store["customer"].add(record)
    ctx.store.emit("customer.created", "customer", record, ctx.now, request=ctx.request)
    return ctx.render("customer", record)


def retrieve_customer(ctx: Ctx, params: dict[str, Any], customer_id: str | None) -> Json:
    return ctx.render("customer", ctx.get("customer", str(customer_id)))


def _live_customer(ctx: Ctx, customer_id: str) -> Record:
    record = ctx.get("customer", customer_id)
    if record.get("deleted"):
        raise StripeError.missing("customer", customer_id)
    return record


def update_customer(ctx: Ctx, params: dict[str, Any], customer_id: str | None) -> Json:
    record = _live_customer(ctx, str(customer_id))
    before = ctx.render("customer", record)
    fields = _customer_fields(params)
    if "metadata" in fields:
        fields["metadata"] = merge_metadata(record["metadata"], fields["metadata"])
    record.update(fields)
    after = ctx.render("customer", record)
    changed = previous_attributes(before, after)
    if changed:
        ctx.store.emit(
            "customer.updated", "customer", record, ctx.now, previous=changed, request=ctx.request
        )
    return after


def delete_customer(ctx: Ctx, params: dict[str, Any], customer_id: str | None) -> Json:
    """Deleting a customer cancels its subscriptions at once, as Stripe does."""
    from smartseg.sandbox.stripe_api.subscriptions import end_subscription

    record = _live_customer(ctx, str(customer_id))
    for sub in list(ctx.store["subscription"].rows.values()):
        if sub["customer"] == record["id"] and sub["status"] not in (
            "canceled",
            "incomplete_expired",
        ):
            end_subscription(ctx, sub, "cancellation_requested")
    ctx.store.emit("customer.deleted", "customer", record, ctx.now, request=ctx.request)
    record["deleted"] = True
    ctx.store["customer"].unlist(record["id"])
    return ctx.render("customer", record)


def list_customers(ctx: Ctx, params: dict[str, Any], _: str | None) -> Json:
    email = params.get("email")
    keep = (lambda r: r.get("email") == email) if email is not None else None
    return ctx.page("customer", params, "/v1/customers", keep)


def search_customers(ctx: Ctx, params: dict[str, Any], _: str | None) -> Json:
    return ctx.search("customers", "customer", params, "/v1/customers/search")


def create_product(ctx: Ctx, params: dict[str, Any], _: str | None) -> Json:
    product_id = params.get("id") or ctx.store.new_id("product")
    if product_id in ctx.store["product"].rows:
        raise StripeError(
            400, f"Product already exists: {product_id}", code="resource_already_exists", param="id"
        )
    record: Record = {
        "id": product_id,
        "created": ctx.now,
        "updated": ctx.now,
        "name": params["name"],
        "active": params.get("active", True),
        "metadata": params.get("metadata") or {},
        **{k: params[k] for k in ("description", "unit_label", "url") if k in params},
    }
    ctx.store["product"].add(record)
    ctx.store.emit("product.created", "product", record, ctx.now, request=ctx.request)
    if "default_price_data" in params:
        data = params["default_price_data"]
        price = _add_price(ctx, {**data, "product": product_id})
        record["default_price"] = price["id"]
    return ctx.render("product", record)


def retrieve_product(ctx: Ctx, params: dict[str, Any], product_id: str | None) -> Json:
    return ctx.render("product", ctx.get("product", str(product_id)))


def update_product(ctx: Ctx, params: dict[str, Any], product_id: str | None) -> Json:
    record = ctx.get("product", str(product_id))
    before = ctx.render("product", record)
    if "default_price" in params:
        price = ctx.get("price", params["default_price"], "default_price")
        if price["product"] != record["id"]:
            raise StripeError(
                400, "The default price must belong to this product.", param="default_price"
            )
    for key in ("name", "active", "description", "unit_label", "url", "default_price"):
        if key in params:
            record[key] = params[key]
    if "metadata" in params:
        record["metadata"] = merge_metadata(record["metadata"], params["metadata"])
    after = ctx.render("product", record)
    changed = previous_attributes(before, after)
    if changed:
        record["updated"] = after["updated"] = ctx.now
        ctx.store.emit(
            "product.updated", "product", record, ctx.now, previous=changed, request=ctx.request
        )
    return after


def delete_product(ctx: Ctx, params: dict[str, Any], product_id: str | None) -> Json:
    record = ctx.get("product", str(product_id))
    if any(p["product"] == record["id"] for p in ctx.store["price"].rows.values()):
        raise StripeError(
            400, "This product cannot be deleted because it has one or more user-created prices."
        )
    ctx.store.emit("product.deleted", "product", record, ctx.now, request=ctx.request)
    ctx.store["product"].remove(record["id"])
    return {"id": record["id"], "object": "product", "deleted": True}


def list_products(ctx: Ctx, params: dict[str, Any], _: str | None) -> Json:
    ids = set(params["ids"]) if "ids" in params else None

    def keep(r: Record) -> bool:
        return (
            ("active" not in params or r["active"] == params["active"])
            and (ids is None or r["id"] in ids)
            and ("url" not in params or r.get("url") == params["url"])
        )

    return ctx.page("product", params, "/v1/products", keep)


def _add_price(ctx: Ctx, params: dict[str, Any]) -> Record:
    product = params.get("product")
    if product is None and "product_data" not in params:
        raise StripeError(
            400,
            "You must specify either `product` or `product_data` when creating a price.",
            code="parameter_missing",
            param="product",
        )
    if product is not None:
        ctx.get("product", product, "product")
    else:
        data = params["product_data"]
        product = create_product(ctx, {"name": data["name"], **data}, None)["id"]
    if "unit_amount" not in params:
        raise StripeError(
            400,
            "Missing required param: unit_amount.",
            code="parameter_missing",
            param="unit_amount",
        )
    if params["unit_amount"] < 0:
        raise StripeError(400, "Invalid non-negative integer", param="unit_amount")
    recurring = params.get("recurring") or {}
    lookup_key = params.get("lookup_key")
    _claim_lookup_key(ctx, lookup_key, params.get("transfer_lookup_key", False))
    record: Record = {
        "id": ctx.store.new_id("price"),
        "created": ctx.now,
        "product": product,
        "currency": params["currency"].lower(),
        "unit_amount": params["unit_amount"],
        "interval": recurring.get("interval"),
        "interval_count": recurring.get("interval_count", 1) if recurring else None,
        "trial_period_days": recurring.get("trial_period_days"),
        "lookup_key": lookup_key,
        "active": params.get("active", True),
        "metadata": params.get("metadata") or {},
        "nickname": params.get("nickname"),
        "tax_behavior": params.get("tax_behavior", "unspecified"),
    }
    ctx.store["price"].add(record)
    if lookup_key is not None:
        ctx.store.lookup_keys[lookup_key] = record["id"]
    ctx.store.emit("price.created", "price", record, ctx.now, request=ctx.request)
    return record


def _claim_lookup_key(ctx: Ctx, lookup_key: str | None, transfer: bool) -> None:
    holder = ctx.store.lookup_keys.get(lookup_key or "")
    if lookup_key is None or holder is None:
        return
    if not transfer:
        raise StripeError(
            400,
            f"A price (`{holder}`) already uses that lookup key.",
            param="lookup_key",
        )
    ctx.store["price"].rows[holder]["lookup_key"] = None


def create_price(ctx: Ctx, params: dict[str, Any], _: str | None) -> Json:
    return ctx.render("price", _add_price(ctx, params))


def retrieve_price(ctx: Ctx, params: dict[str, Any], price_id: str | None) -> Json:
    return ctx.render("price", ctx.get("price", str(price_id)))


def update_price(ctx: Ctx, params: dict[str, Any], price_id: str | None) -> Json:
    record = ctx.get("price", str(price_id))
    before = ctx.render("price", record)
    if "lookup_key" in params and params["lookup_key"] != record.get("lookup_key"):
        _claim_lookup_key(ctx, params["lookup_key"], params.get("transfer_lookup_key", False))
        ctx.store.lookup_keys.pop(record.get("lookup_key") or "", None)
        record["lookup_key"] = params["lookup_key"] or None
        if record["lookup_key"]:
            ctx.store.lookup_keys[record["lookup_key"]] = record["id"]
    for key in ("active", "nickname", "tax_behavior"):
        if key in params:
            record[key] = params[key]
    if "metadata" in params:
        record["metadata"] = merge_metadata(record["metadata"], params["metadata"])
    after = ctx.render("price", record)
    changed = previous_attributes(before, after)
    if changed:
        ctx.store.emit(
            "price.updated", "price", record, ctx.now, previous=changed, request=ctx.request
        )
    return after


def list_prices(ctx: Ctx, params: dict[str, Any], _: str | None) -> Json:
    keys = params.get("lookup_keys")
    if keys is not None and len(keys) > 10:
        raise StripeError(400, "You may pass at most 10 lookup_keys.", param="lookup_keys")
    interval = (params.get("recurring") or {}).get("interval")

    def keep(r: Record) -> bool:
        return (
            ("active" not in params or r["active"] == params["active"])
            and ("product" not in params or r["product"] == params["product"])
            and ("currency" not in params or r["currency"] == params["currency"].lower())
            and (keys is None or r.get("lookup_key") in keys)
            and (interval is None or r["interval"] == interval)
            and (
                "type" not in params
                or (r["interval"] is not None) == (params["type"] == "recurring")
            )
        )

    return ctx.page("price", params, "/v1/prices", keep)


def create_coupon(ctx: Ctx, params: dict[str, Any], _: str | None) -> Json:
    percent, amount = params.get("percent_off"), params.get("amount_off")
    if (percent is None) == (amount is None):
        raise StripeError(400, "You must pass exactly one of percent_off or amount_off.")
    if percent is not None and not 0 < percent <= 100:
        raise StripeError(400, "Percent off must be between 0 and 100.", param="percent_off")
    if amount is not None and "currency" not in params:
        raise StripeError(
            400,
            "You must pass currency when passing amount_off.",
            code="parameter_missing",
            param="currency",
        )
    duration = params.get("duration", "once")
    months = params.get("duration_in_months")
    if (duration == "repeating") != (months is not None):
        raise StripeError(
            400,
            "duration_in_months is required exactly when duration is repeating.",
            param="duration_in_months",
        )
    coupon_id = params.get("id") or ctx.store.new_id("coupon")
    if coupon_id in ctx.store["coupon"].rows:
        raise StripeError(400, "Coupon already exists.", code="resource_already_exists", param="id")
    record: Record = {
        "id": coupon_id,
        "created": ctx.now,
        "percent_off": float(percent) if percent is not None else None,
        "amount_off": amount,
        "currency": params["currency"].lower() if "currency" in params else None,
        "duration": duration,
        "duration_in_months": months,
        "name": params.get("name"),
        "metadata": params.get("metadata") or {},
        "max_redemptions": params.get("max_redemptions"),
        "redeem_by": params.get("redeem_by"),
    }
    ctx.store["coupon"].add(record)
    ctx.store.emit("coupon.created", "coupon", record, ctx.now, request=ctx.request)
    return ctx.render("coupon", record)


def retrieve_coupon(ctx: Ctx, params: dict[str, Any], coupon_id: str | None) -> Json:
    return ctx.render("coupon", ctx.get("coupon", str(coupon_id)))


def update_coupon(ctx: Ctx, params: dict[str, Any], coupon_id: str | None) -> Json:
    record = ctx.get("coupon", str(coupon_id))
    before = ctx.render("coupon", record)
    if "name" in params:
        record["name"] = params["name"]
    if "metadata" in params:
        record["metadata"] = merge_metadata(record["metadata"], params["metadata"])
    after = ctx.render("coupon", record)
    if changed := previous_attributes(before, after):
        ctx.store.emit(
            "coupon.updated", "coupon", record, ctx.now, previous=changed, request=ctx.request
        )
    return after


def delete_coupon(ctx: Ctx, params: dict[str, Any], coupon_id: str | None) -> Json:
    """A deleted coupon stops new redemptions; existing discounts keep referring to it."""
    record = ctx.get("coupon", str(coupon_id))
    if not ctx.store["coupon"].listed(record["id"]):
        raise StripeError.missing("coupon", record["id"])
    ctx.store.emit("coupon.deleted", "coupon", record, ctx.now, request=ctx.request)
    record["valid"] = False
    ctx.store["coupon"].unlist(record["id"])
    return {"id": record["id"], "object": "coupon", "deleted": True}


def list_coupons(ctx: Ctx, params: dict[str, Any], _: str | None) -> Json:
    return ctx.page("coupon", params, "/v1/coupons", None)
