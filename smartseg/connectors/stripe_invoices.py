"""Stripe invoices as `Invoice` rows: what was due, paid and still owed, in major units.

Pure mapping plus the page writer the Stripe connector's `invoices` stream uses. Amounts are the
API's minor units divided by the currency's (`stripe_prices.minor_units`: 1 for JPY, 1000 for
KWD, else 100), exactly, then rounded once. Bad data never stops a pull: a missing or negative
amount, or a currency that is not a three-letter code, leaves the column empty and names the
problem per record.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Connection

from smartseg.connectors.mapping import Coercer
from smartseg.connectors.stream import RecordIssue, WriteResult
from smartseg.connectors.stripe_prices import PriceError, minor_units, round_money, stripe_amount
from smartseg.store import upsert
from smartseg.store.models import Invoice, table_of

__all__ = ["AMOUNTS", "INVOICE_EVENTS", "invoice_row", "write_invoices"]

AMOUNTS = ("amount_due", "amount_paid", "amount_remaining")
# The events after which a stored column may differ. `invoice.upcoming` carries a preview with
# no id; `sent`, `overdue` and `will_be_due` change nothing stored, and would cost a fetch each.
INVOICE_EVENTS = tuple(
    f"invoice.{kind}"
    for kind in ("created", "updated", "deleted", "finalized", "paid", "payment_succeeded",
                 "payment_failed", "payment_action_required", "marked_uncollectible", "voided",
                 "overpaid")
)  # fmt: skip
_CURRENCY = re.compile(r"[a-z]{3}")


def invoice_row(invoice: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The `Invoice` columns for one Stripe invoice (account_id is linked later), and what in it
    could not be read. `invoice["id"]` must be present."""
    problems: list[str] = []
    customer = _id_of(invoice.get("customer"))
    currency = _currency(invoice.get("currency"), problems)
    transitions = invoice.get("status_transitions")
    transitions = transitions if isinstance(transitions, Mapping) else {}
    row: dict[str, Any] = {
        "source": "stripe",
        "source_id": str(invoice["id"]),
        "account_ref": f"stripe:{customer}" if customer else None,
        "customer_ref": customer,
        "subscription_ref": _subscription_id(invoice),
        "status": invoice.get("status"),
        "currency": currency,
        **{name: _amount(invoice, name, currency, problems) for name in AMOUNTS},
        "created_at": _moment(invoice, "created", problems),
        "due_at": _moment(invoice, "due_date", problems),
        "paid_at": _moment(transitions, "paid_at", problems),
        "period_start": _moment(invoice, "period_start", problems),
        "period_end": _moment(invoice, "period_end", problems),
        "attempt_count": invoice.get("attempt_count"),
        # Stripe invoices carry no modification time; the clock would rewrite every row each pull.
        "updated_at": None,
    }
    return row, problems


def write_invoices(connection: Connection, records: Sequence[Mapping[str, Any]]) -> WriteResult:
    """Upsert one page of invoices, reporting each record's unreadable values."""
    table = table_of(Invoice)
    coercer = Coercer(table)
    result = WriteResult()
    rows = []
    for invoice in records:
        if not invoice.get("id"):
            result.issues.append(RecordIssue("?", "an invoice without an id was skipped"))
            continue
        raw, problems = invoice_row(invoice)
        row, unfit = coercer.coerce(raw)
        result.issues.extend(RecordIssue(str(invoice["id"]), p) for p in problems)
        result.issues.extend(RecordIssue(str(invoice["id"]), p) for p in unfit.values())
        rows.append(row)
    result.upserted = upsert(connection, table, rows, key=["source", "source_id"])
    return result


def _id_of(value: Any) -> str | None:
    """An object reference as its id, whether the API sent the id or the expanded object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return str(value) if value else None


def _subscription_id(invoice: Mapping[str, Any]) -> str | None:
    """Since API version 2025-03-31 the subscription sits under `parent`, and
    `invoice.subscription` is null; older payloads (events keep theirs) have only the latter."""
    parent = invoice.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, Mapping) else None
    if isinstance(details, Mapping) and (found := _id_of(details.get("subscription"))):
        return found
    return _id_of(invoice.get("subscription"))


def _currency(value: Any, problems: list[str]) -> str | None:
    code = str(value).strip().lower() if isinstance(value, str) else None
    if code and _CURRENCY.fullmatch(code):
        return code
    found = "missing" if value is None else f"{str(value)[:40]!r} is not a three-letter code"
    problems.append(f"currency: {found}; the amounts were left empty")
    return None


def _amount(
    invoice: Mapping[str, Any], name: str, currency: str | None, problems: list[str]
) -> Decimal | None:
    """`invoice[name]` in major units of `currency`; None (reported) when it cannot be read."""
    if currency is None:
        return None  # already reported once, for the currency
    try:
        minor = stripe_amount(invoice, name)
    except PriceError as exc:
        problems.append(f"{name}: {exc}")
        return None
    if minor is None:
        problems.append(f"{name}: missing")
        return None
    return round_money(minor / minor_units(currency))


def _moment(obj: Mapping[str, Any], name: str, problems: list[str]) -> dt.datetime | None:
    """A Stripe timestamp (epoch seconds) as aware UTC; null stays None, anything else is
    reported."""
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return dt.datetime.fromtimestamp(value, dt.UTC)
        except (OverflowError, OSError, ValueError):
            pass
    problems.append(f"{name}: expected a timestamp in epoch seconds, got {str(value)[:40]!r}")
    return None
