"""The wire shapes of Stripe objects, rendered from the store's compact records.

Field sets and JSON types follow Stripe's published fixtures for the pinned API version
(/work/shared/specs/stripe-fixtures.json); fields the sandbox does not model carry the null or
empty value a plain test-mode account shows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from smartseg.sandbox.stripe_api.store import Store

__all__ = ["API_VERSION", "list_object", "render", "render_plan"]

API_VERSION = "2026-10-28.endive"
Record = dict[str, Any]
Json = dict[str, Any]

_INVOICE_SETTINGS = {
    "custom_fields": None,
    "default_payment_method": None,
    "footer": None,
    "rendering_options": None,
}


def list_object(data: list[Json], has_more: bool, url: str) -> Json:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def _customer(store: Store, rec: Record) -> Json:
    return {
        "id": rec["id"],
        "object": "customer",
        "address": rec.get("address"),
        "balance": rec.get("balance", 0),
        "created": rec["created"],
        "currency": rec.get("currency"),
        "default_source": None,
        "delinquent": rec.get("delinquent", False),
        "description": rec.get("description"),
        "discount": None,
        "email": rec.get("email"),
        "invoice_prefix": rec["invoice_prefix"],
        "invoice_settings": _INVOICE_SETTINGS,
        "livemode": False,
        "metadata": rec["metadata"],
        "name": rec.get("name"),
        "next_invoice_sequence": rec.get("next_invoice_sequence", 1),
        "phone": rec.get("phone"),
        "preferred_locales": rec.get("preferred_locales", []),
        "shipping": None,
        "tax_exempt": rec.get("tax_exempt", "none"),
        "test_clock": None,
    }


def _product(store: Store, rec: Record) -> Json:
    return {
        "id": rec["id"],
        "object": "product",
        "active": rec["active"],
        "created": rec["created"],
        "default_price": rec.get("default_price"),
        "description": rec.get("description"),
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": rec["metadata"],
        "name": rec["name"],
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": rec.get("unit_label"),
        "updated": rec.get("updated", rec["created"]),
        "url": rec.get("url"),
    }


def _price(store: Store, rec: Record) -> Json:
    amount = rec["unit_amount"]
    return {
        "id": rec["id"],
        "object": "price",
        "active": rec["active"],
        "billing_scheme": "per_unit",
        "created": rec["created"],
        "currency": rec["currency"],
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": rec.get("lookup_key"),
        "metadata": rec["metadata"],
        "nickname": rec.get("nickname"),
        "product": rec["product"],
        "recurring": {
            "interval": rec["interval"],
            "interval_count": rec["interval_count"],
            "meter": None,
            "trial_period_days": rec.get("trial_period_days"),
            "usage_type": "licensed",
        }
        if rec["interval"]
        else None,
        "tax_behavior": rec.get("tax_behavior", "unspecified"),
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if rec["interval"] else "one_time",
        "unit_amount": amount,
        "unit_amount_decimal": str(amount),
    }


def render_plan(rec: Record) -> Json:
    """The legacy `plan` view of a recurring price, still embedded in subscription items."""
    return {
        "id": rec["id"],
        "object": "plan",
        "active": rec["active"],
        "amount": rec["unit_amount"],
        "amount_decimal": str(rec["unit_amount"]),
        "billing_scheme": "per_unit",
        "created": rec["created"],
        "currency": rec["currency"],
        "interval": rec["interval"],
        "interval_count": rec["interval_count"],
        "livemode": False,
        "metadata": rec["metadata"],
        "meter": None,
        "nickname": rec.get("nickname"),
        "product": rec["product"],
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": rec.get("trial_period_days"),
        "usage_type": "licensed",
    }


def _coupon(store: Store, rec: Record) -> Json:
    return {
        "id": rec["id"],
        "object": "coupon",
        "amount_off": rec.get("amount_off"),
        "created": rec["created"],
        "currency": rec.get("currency"),
        "duration": rec["duration"],
        "duration_in_months": rec.get("duration_in_months"),
        "livemode": False,
        "max_redemptions": rec.get("max_redemptions"),
        "metadata": rec["metadata"],
        "name": rec.get("name"),
        "percent_off": rec.get("percent_off"),
        "redeem_by": rec.get("redeem_by"),
        "times_redeemed": rec.get("times_redeemed", 0),
        "valid": rec.get("valid", True),
    }


def _discount(store: Store, rec: Record) -> Json:
    return {
        "id": rec["id"],
        "object": "discount",
        "checkout_session": None,
        "customer": rec["customer"],
        "customer_account": None,
        "end": rec.get("end"),
        "invoice": None,
        "invoice_item": None,
        "promotion_code": None,
        "source": {"coupon": rec["coupon"], "type": "coupon"},
        "start": rec["start"],
        "subscription": rec.get("subscription"),
        "subscription_item": None,
    }


def _subscription_item(store: Store, rec: Record, subscription: str) -> Json:
    price = store["price"].rows[rec["price"]]
    return {
        "id": rec["id"],
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": rec["created"],
        "current_period_end": rec["current_period_end"],
        "current_period_start": rec["current_period_start"],
        "discounts": [],
        "metadata": rec.get("metadata", {}),
        "plan": render_plan(price),
        "price": _price(store, price),
        "quantity": rec["quantity"],
        "subscription": subscription,
        "tax_rates": [],
    }


def _subscription(store: Store, rec: Record) -> Json:
    sub_id = rec["id"]
    items = [_subscription_item(store, item, sub_id) for item in rec["items"]]
    return {
        "id": sub_id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": rec["billing_cycle_anchor"],
        "billing_cycle_anchor_config": None,
        "billing_mode": {"flexible": None, "type": "classic"},
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": rec.get("cancel_at"),
        "cancel_at_period_end": rec.get("cancel_at_period_end", False),
        "canceled_at": rec.get("canceled_at"),
        "cancellation_details": rec.get("cancellation_details")
        or {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": rec["created"],
        "currency": rec["currency"],
        "customer": rec["customer"],
        "customer_account": None,
        "days_until_due": None,
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": rec.get("description"),
        "discounts": rec.get("discounts", []),
        "ended_at": rec.get("ended_at"),
        "invoice_settings": {
            "account_tax_ids": None,
            "custom_fields": None,
            "description": None,
            "footer": None,
            "issuer": {"type": "self"},
        },
        "items": list_object(items, False, f"/v1/subscription_items?subscription={sub_id}"),
        "latest_invoice": rec.get("latest_invoice"),
        "livemode": False,
        "managed_payments": {"enabled": False},
        "metadata": rec["metadata"],
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": rec["start_date"],
        "status": rec["status"],
        "test_clock": None,
        "transfer_data": None,
        "trial_end": rec.get("trial_end"),
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": rec.get("trial_start"),
    }


def _line_item(line: Record, invoice: Record) -> Json:
    discount = line.get("discount_amount", 0)
    return {
        "id": line["id"],
        "object": "line_item",
        "amount": line["amount"],
        "currency": invoice["currency"],
        "description": line["description"],
        "discount_amounts": (
            [{"amount": discount, "discount": d} for d in invoice.get("discounts", [])]
        ),
        "discountable": True,
        "discounts": [],
        "invoice": invoice["id"],
        "livemode": False,
        "metadata": {},
        "parent": {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": invoice["subscription"],
                "subscription_item": line["subscription_item"],
            },
            "type": "subscription_item_details",
        },
        "period": {"end": line["period_end"], "start": line["period_start"]},
        "pretax_credit_amounts": [],
        "pricing": {"type": "price_details", "unit_amount_decimal": str(line["unit_amount"])},
        "quantity": line["quantity"],
        "quantity_decimal": str(line["quantity"]),
        "subscription": invoice["subscription"],
        "subtotal": line["amount"],
        "taxes": [],
    }


def _invoice(store: Store, rec: Record) -> Json:
    inv_id = rec["id"]
    status = rec["status"]
    finalized = status != "draft"
    lines = [_line_item(line, rec) for line in rec["lines"]]
    discount_total = rec["subtotal"] - rec["total"]
    return {
        "id": inv_id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "smartseg sandbox",
        "account_tax_ids": None,
        "amount_due": rec["amount_due"],
        "amount_overpaid": 0,
        "amount_paid": rec["amount_paid"],
        "amount_remaining": rec["amount_due"] - rec["amount_paid"],
        "amount_shipping": 0,
        "application": None,
        "attempt_count": rec.get("attempt_count", 0),
        "attempted": rec.get("attempt_count", 0) > 0,
        "auto_advance": status in ("draft", "open"),
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        "automatically_finalizes_at": None,
        "billing_reason": rec["billing_reason"],
        "collection_method": "charge_automatically",
        "created": rec["created"],
        "currency": rec["currency"],
        "custom_fields": None,
        "customer": rec["customer"],
        "customer_account": None,
        "customer_address": None,
        "customer_email": rec.get("customer_email"),
        "customer_name": rec.get("customer_name"),
        "customer_phone": None,
        "customer_shipping": None,
        "customer_tax_exempt": "none",
        "customer_tax_ids": [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": rec.get("discounts", []),
        "due_date": None,
        "effective_at": rec.get("finalized_at"),
        "ending_balance": 0 if finalized else None,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": f"https://invoice.stripe.com/i/sandbox/{inv_id}"
        if finalized
        else None,
        "invoice_pdf": f"https://pay.stripe.com/invoice/sandbox/{inv_id}/pdf"
        if finalized
        else None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": list_object(lines, False, f"/v1/invoices/{inv_id}/lines"),
        "livemode": False,
        "metadata": rec.get("metadata", {}),
        "next_payment_attempt": rec.get("next_payment_attempt"),
        "number": rec.get("number"),
        "on_behalf_of": None,
        "parent": {
            "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": rec["subscription"]},
            "type": "subscription_details",
        },
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": rec["period_end"],
        "period_start": rec["period_start"],
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": status,
        "status_transitions": {
            "finalized_at": rec.get("finalized_at"),
            "marked_uncollectible_at": rec.get("marked_uncollectible_at"),
            "paid_at": rec.get("paid_at"),
            "voided_at": rec.get("voided_at"),
        },
        # Present in the pinned version's fixture but superseded by parent.subscription_details.
        "subscription": None,
        "subtotal": rec["subtotal"],
        "subtotal_excluding_tax": rec["subtotal"],
        "test_clock": None,
        "total": rec["total"],
        "total_discount_amounts": (
            [{"amount": discount_total, "discount": d} for d in rec.get("discounts", [])]
        ),
        "total_excluding_tax": rec["total"],
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": rec.get("finalized_at"),
    }


def _event(store: Store, rec: Record) -> Json:
    data: Json = {"object": render(store, rec["kind"], rec["snapshot"])}
    if rec.get("previous") is not None:
        data["previous_attributes"] = rec["previous"]
    return {
        "id": rec["id"],
        "object": "event",
        "api_version": API_VERSION,
        "created": rec["created"],
        "data": data,
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": rec.get("request_id"), "idempotency_key": rec.get("idempotency_key")},
        "type": rec["type"],
    }


_RENDERERS: dict[str, Callable[[Store, Record], Json]] = {
    "customer": _customer,
    "product": _product,
    "price": _price,
    "coupon": _coupon,
    "discount": _discount,
    "subscription": _subscription,
    "invoice": _invoice,
    "event": _event,
}


def render(store: Store, kind: str, rec: Record) -> Json:
    """The full Stripe object for a record of `kind` (a deleted customer renders its stub)."""
    if kind == "customer" and rec.get("deleted"):
        return {"id": rec["id"], "object": "customer", "deleted": True}
    return _RENDERERS[kind](store, rec)
