"""The parameters each Stripe endpoint accepts, as `forms.validate` specs.

Stripe answers any other parameter with 400 parameter_unknown. Parameters typed "any" are real
Stripe parameters the sandbox accepts and ignores, so a client that sends them is not refused.
"""

from __future__ import annotations

from typing import Any

from smartseg.sandbox.stripe_api.context import LIST_PARAMS, SEARCH_PARAMS
from smartseg.sandbox.stripe_api.forms import Req

__all__ = ["ADDRESS_FIELDS", "CUSTOMER_FIELDS", "SPECS"]

ADDRESS_FIELDS = {k: "str" for k in ("city", "country", "line1", "line2", "postal_code", "state")}
CUSTOMER_FIELDS: dict[str, Any] = {
    "email": "str",
    "name": "str",
    "description": "str",
    "phone": "str",
    "metadata": "metadata",
    "balance": "int",
    "address": ADDRESS_FIELDS,
    "preferred_locales": ["str"],
    "tax_exempt": ("none", "exempt", "reverse"),
    "invoice_prefix": "str",
    "next_invoice_sequence": "int",
    "expand": ["str"],
    **{k: "any" for k in ("business_name", "individual_name", "invoice_settings", "shipping")},
    **{k: "any" for k in ("payment_method", "source", "tax", "validate", "cash_balance")},
}
_PRODUCT_FIELDS: dict[str, Any] = {
    "name": "str",
    "active": "bool",
    "description": "str",
    "metadata": "metadata",
    "unit_label": "str",
    "url": "str",
    "expand": ["str"],
    **{k: "any" for k in ("images", "marketing_features", "package_dimensions", "shippable")},
    **{k: "any" for k in ("statement_descriptor", "tax_code", "tax_details")},
}
_RECURRING = {
    "interval": Req(("day", "week", "month", "year")),
    "interval_count": "int",
    "trial_period_days": "int",
    "usage_type": ("licensed",),
}
_PRICE_UPDATE: dict[str, Any] = {
    "active": "bool",
    "lookup_key": "str",
    "transfer_lookup_key": "bool",
    "metadata": "metadata",
    "nickname": "str",
    "tax_behavior": ("exclusive", "inclusive", "unspecified"),
    "expand": ["str"],
}


_PRICE_CREATE: dict[str, Any] = {
    **_PRICE_UPDATE,
    "currency": Req("str"),
    "product": "str",
    "product_data": {"name": Req("str"), "active": "bool", "metadata": "metadata", "id": "str"},
    "unit_amount": "int",
    "recurring": _RECURRING,
    "billing_scheme": ("per_unit",),
}
_EXPAND = {"expand": ["str"]}
_CATALOG: dict[str, dict[str, Any]] = {
    "create_customer": CUSTOMER_FIELDS,
    "update_customer": {**CUSTOMER_FIELDS, "default_source": "any"},
    "retrieve_customer": _EXPAND,
    "search_customers": SEARCH_PARAMS,
    "delete_customer": {},
    "list_customers": {**LIST_PARAMS, "email": "str", "test_clock": "any"},
    "create_product": {
        **_PRODUCT_FIELDS,
        "name": Req("str"),
        "id": "str",
        "type": ("good", "service"),
        "default_price_data": {
            "currency": Req("str"),
            "unit_amount": Req("int"),
            "recurring": _RECURRING,
            "metadata": "metadata",
        },
    },
    "update_product": {**_PRODUCT_FIELDS, "default_price": "str"},
    "retrieve_product": _EXPAND,
    "delete_product": {},
    "list_products": {
        **LIST_PARAMS,
        "active": "bool",
        "ids": ["str"],
        "url": "str",
        "shippable": "bool",
        "type": ("good", "service"),
    },
    "create_price": _PRICE_CREATE,
    "update_price": _PRICE_UPDATE,
    "retrieve_price": _EXPAND,
    "list_prices": {
        **LIST_PARAMS,
        "active": "bool",
        "currency": "str",
        "product": "str",
        "lookup_keys": ["str"],
        "type": ("one_time", "recurring"),
        "recurring": {
            "interval": ("day", "week", "month", "year"),
            "usage_type": "any",
            "meter": "any",
        },
    },
    "create_coupon": {
        "id": "str",
        "percent_off": "float",
        "amount_off": "int",
        "currency": "str",
        "duration": ("forever", "once", "repeating"),
        "duration_in_months": "int",
        "name": "str",
        "metadata": "metadata",
        "max_redemptions": "int",
        "redeem_by": "int",
        "applies_to": "any",
        "currency_options": "any",
        "expand": ["str"],
    },
    "update_coupon": {
        "name": "str",
        "metadata": "metadata",
        "currency_options": "any",
        "expand": ["str"],
    },
    "retrieve_coupon": _EXPAND,
    "delete_coupon": {},
    "list_coupons": LIST_PARAMS,
}

_ITEM = {
    "price": Req("str"),
    "quantity": "int",
    "metadata": "metadata",
    **{k: "any" for k in ("discounts", "tax_rates", "billing_thresholds", "price_data")},
}
_UPDATE_ITEM = {**_ITEM, "price": "str", "id": "str", "deleted": "bool", "clear_usage": "any"}
_DISCOUNT = {"coupon": "str", "discount": "str", "promotion_code": "str"}
_CANCELLATION = {"comment": "str", "feedback": "str"}
_IGNORED = {
    k: "any"
    for k in (
        "payment_behavior",
        "proration_behavior",
        "default_payment_method",
        "default_source",
        "collection_method",
        "days_until_due",
        "off_session",
        "payment_settings",
        "automatic_tax",
        "default_tax_rates",
        "invoice_settings",
        "billing_thresholds",
        "add_invoice_items",
        "pending_invoice_item_interval",
        "trial_settings",
        "on_behalf_of",
        "transfer_data",
        "application_fee_percent",
        "trial_from_plan",
    )
}
_BILLING: dict[str, dict[str, Any]] = {
    "create_subscription": {
        **_IGNORED,
        "customer": Req("str"),
        "items": Req([_ITEM]),
        "metadata": "metadata",
        "description": "str",
        "trial_period_days": "int",
        "trial_end": "str",
        "discounts": [_DISCOUNT],
        "cancel_at_period_end": "bool",
        "cancel_at": "int",
        "currency": "str",
        "billing_cycle_anchor": "any",
        "billing_mode": "any",
        "backdate_start_date": "any",
        "expand": ["str"],
    },
    "update_subscription": {
        **_IGNORED,
        "items": [_UPDATE_ITEM],
        "metadata": "metadata",
        "description": "str",
        "trial_end": "str",
        "discounts": [_DISCOUNT],
        "cancel_at_period_end": "bool",
        "cancel_at": "int",
        "cancellation_details": _CANCELLATION,
        "pause_collection": "any",
        "billing_cycle_anchor": "any",
        "proration_date": "any",
        "expand": ["str"],
    },
    "cancel_subscription": {
        "cancellation_details": _CANCELLATION,
        "invoice_now": "bool",
        "prorate": "bool",
        "expand": ["str"],
    },
    "retrieve_subscription": {"expand": ["str"]},
    "search_subscriptions": SEARCH_PARAMS,
    "list_subscriptions": {
        **LIST_PARAMS,
        "customer": "str",
        "price": "str",
        "plan": "str",
        "status": (
            "active",
            "all",
            "canceled",
            "ended",
            "incomplete",
            "incomplete_expired",
            "past_due",
            "paused",
            "trialing",
            "unpaid",
        ),
        "collection_method": "any",
        "current_period_end": "any",
        "current_period_start": "any",
        "automatic_tax": "any",
        "test_clock": "any",
        "customer_account": "any",
    },
    "retrieve_invoice": {"expand": ["str"]},
    "list_invoices": {
        **LIST_PARAMS,
        "customer": "str",
        "subscription": "str",
        "status": ("draft", "open", "paid", "uncollectible", "void"),
        "collection_method": "any",
        "due_date": "any",
        "customer_account": "any",
    },
    "retrieve_event": {"expand": ["str"]},
    "list_events": {
        **LIST_PARAMS,
        "type": "str",
        "types": ["str"],
        "delivery_success": "bool",
    },
}
SPECS: dict[str, dict[str, Any]] = {**_CATALOG, **_BILLING}
