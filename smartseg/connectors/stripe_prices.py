"""Stripe price arithmetic: what one licensed price costs per month, exactly, in major units.

Amounts stay `Fraction`s of the API's decimal strings until `round_money`, the one rounding
(4 places, ROUND_HALF_UP). A value that cannot be priced raises `PriceError`, whose message says
what is wrong with which price, so callers can report it and carry on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

__all__ = [
    "THREE_DECIMAL_CURRENCIES",
    "ZERO_DECIMAL_CURRENCIES",
    "Interval",
    "PriceError",
    "billing_interval",
    "licensed_monthly",
    "minor_units",
    "per_month",
    "round_money",
    "stripe_amount",
    "usage_type",
]

# docs.stripe.com/currencies: amounts in these are whole units, or thousandths. ISK, HUF and TWD
# are "special cases" that the API still writes with two decimals, so they divide by 100.
ZERO_DECIMAL_CURRENCIES = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
     "xaf", "xof", "xpf"}
)  # fmt: skip
THREE_DECIMAL_CURRENCIES = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
# Billing periods per month; the week and day factors are a convention, not Stripe-documented.
_PER_MONTH = {
    "month": Fraction(1),
    "year": Fraction(1, 12),
    "week": Fraction(52, 12),
    "day": Fraction(365, 12),
}
_PLACES = 4

Interval = tuple[str, int]  # (recurring.interval, recurring.interval_count)


class PriceError(ValueError):
    """A price, tier or amount that cannot be turned into money."""


def billing_interval(price: Mapping[str, Any]) -> Interval:
    """The price's (interval, interval_count), checked."""
    recurring = price.get("recurring")
    if not isinstance(recurring, Mapping):
        raise PriceError(f"price {price.get('id')} is not recurring")
    interval, count = recurring.get("interval"), recurring.get("interval_count", 1)
    if interval not in _PER_MONTH:
        raise PriceError(f"price {price.get('id')} has unknown interval {interval!r}")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise PriceError(f"price {price.get('id')} has invalid interval_count {count!r}")
    return str(interval), count


def usage_type(price: Any) -> str | None:
    """`licensed` or `metered` for a recurring price, None for anything else."""
    recurring = price.get("recurring") if isinstance(price, Mapping) else None
    return recurring.get("usage_type", "licensed") if isinstance(recurring, Mapping) else None


def per_month(amount: Fraction, interval: Interval) -> Fraction:
    """An amount per billing period as an amount per month."""
    return amount * _PER_MONTH[interval[0]] / interval[1]


def licensed_monthly(
    price: Mapping[str, Any], quantity: Any, currency: str | None
) -> Fraction | None:
    """What `quantity` of a licensed price costs per month in major units; None if metered."""
    interval = billing_interval(price)
    if usage_type(price) == "metered":
        return None
    price_currency = str(price.get("currency") or currency or "").lower()
    if currency is not None and price_currency != currency:
        raise PriceError(
            f"price currency {price_currency} differs from the subscription's {currency}"
        )
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
        raise PriceError(f"quantity {quantity!r} is not a whole number of at least 0")
    return per_month(_period_amount(price, quantity) / minor_units(price_currency), interval)


def _period_amount(price: Mapping[str, Any], quantity: int) -> Fraction:
    """What one billing period costs, in minor units."""
    if price.get("billing_scheme") == "tiered":
        tiers = price.get("tiers")
        if not isinstance(tiers, Sequence) or not tiers:
            raise PriceError(
                f"tiered price {price.get('id')} came without tiers; "
                "expand data.items.data.price.tiers"
            )
        return _tiered(tiers, str(price.get("tiers_mode")), quantity)
    unit = stripe_amount(price, "unit_amount")
    if unit is None:
        raise PriceError(f"price {price.get('id')} has no unit amount")
    transform = price.get("transform_quantity")
    if isinstance(transform, Mapping) and transform.get("divide_by"):
        divide_by = transform["divide_by"]
        if not isinstance(divide_by, int) or divide_by < 1:
            raise PriceError(f"price {price.get('id')} has invalid transform_quantity {transform}")
        whole, rest = divmod(quantity, divide_by)
        quantity = whole + (1 if rest and transform.get("round") == "up" else 0)
    return unit * quantity


def _tiered(tiers: Sequence[Any], mode: str, quantity: int) -> Fraction:
    """Stripe's volume (all units at the reached tier) or graduated (each tier's units at its
    own price) pricing; a tier's flat amount is charged once the tier is reached."""
    if mode not in ("volume", "graduated"):
        raise PriceError(f"unknown tiers_mode {mode!r}")
    total, below = Fraction(0), 0
    for tier in tiers:
        if not isinstance(tier, Mapping):
            raise PriceError("a price tier is not an object")
        up_to = tier.get("up_to")
        if up_to not in (None, "inf") and (not isinstance(up_to, int) or isinstance(up_to, bool)):
            raise PriceError(f"price tier has invalid up_to {up_to!r}")
        top = None if up_to in (None, "inf") else int(up_to)
        unit = stripe_amount(tier, "unit_amount") or Fraction(0)
        flat = stripe_amount(tier, "flat_amount") or Fraction(0)
        if mode == "volume":
            if top is None or quantity <= top:
                return unit * quantity + flat
            continue
        in_tier = (quantity if top is None else min(quantity, top)) - below
        total += unit * max(in_tier, 0) + flat
        if top is None or quantity <= top:
            return total
        below = top
    raise PriceError(f"no price tier covers quantity {quantity}")


def stripe_amount(obj: Mapping[str, Any], name: str) -> Fraction | None:
    """`obj[name + "_decimal"]` (exact) when present, else `obj[name]`; None when neither is."""
    for raw in (obj.get(f"{name}_decimal"), obj.get(name)):
        if raw is None:
            continue
        if isinstance(raw, bool) or not isinstance(raw, int | str | Decimal | float):
            raise PriceError(f"{name} {raw!r} is not a number")
        try:
            # A float (percent_off) by its shortest repr: 25.5, not 25.499999...
            value = Decimal(str(raw)) if isinstance(raw, float) else Decimal(raw)
        except InvalidOperation:
            raise PriceError(f"{name} {raw!r} is not a number") from None
        if not value.is_finite() or value < 0:
            raise PriceError(f"{name} {raw!r} is not a non-negative amount")
        return Fraction(value)
    return None


def minor_units(currency: str) -> int:
    """How many API units make one unit of `currency`: 100 usd, 1 jpy, 1000 kwd."""
    code = currency.lower()
    if code in ZERO_DECIMAL_CURRENCIES:
        return 1
    return 1000 if code in THREE_DECIMAL_CURRENCIES else 100


def round_money(value: Fraction) -> Decimal:
    """`value` to 4 decimal places, ROUND_HALF_UP (away from zero on a tie), exactly."""
    scaled = value * 10**_PLACES
    whole, rest = divmod(abs(scaled.numerator), scaled.denominator)
    if 2 * rest >= scaled.denominator:
        whole += 1
    sign = -1 if scaled < 0 and whole else 1
    return Decimal(sign * whole).scaleb(-_PLACES)
