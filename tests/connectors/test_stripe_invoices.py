"""Stripe invoices as rows: minor units per currency, and bad values reported per record."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smartseg.connectors.stream import RecordIssue
from smartseg.connectors.stripe_invoices import invoice_row, write_invoices


def _invoice(**changes: Any) -> dict[str, Any]:
    """A paid subscription invoice as the pinned API version renders it."""
    invoice: dict[str, Any] = {
        "id": "in_1",
        "customer": "cus_1",
        "subscription": None,
        "parent": {"subscription_details": {"subscription": "sub_1"}},
        "status": "paid",
        "currency": "usd",
        "amount_due": 1999,
        "amount_paid": 1999,
        "amount_remaining": 0,
        "created": 1782594000,
        "due_date": None,
        "status_transitions": {"paid_at": 1782594060},
        "period_start": 1782594000,
        "period_end": 1785186000,
        "attempt_count": 1,
    }
    return {**invoice, **changes}


def test_amounts_are_major_units_of_the_invoices_own_currency() -> None:
    for currency, minor, major in (("usd", 1999, "19.99"), ("jpy", 4500, "4500"),
                                   ("kwd", 12345, "12.345")):  # fmt: skip
        row, problems = invoice_row(_invoice(currency=currency.upper(), amount_due=minor))
        assert (row["currency"], row["amount_due"]) == (currency, Decimal(major))
        assert problems == []


def test_a_missing_amount_is_left_empty_and_reported_while_the_rest_is_kept() -> None:
    invoice = _invoice()
    del invoice["amount_paid"]
    row, problems = invoice_row(invoice)
    assert (row["amount_due"], row["amount_paid"]) == (Decimal("19.99"), None)
    assert problems == ["amount_paid: missing"]


def test_an_unknown_currency_empties_every_amount_with_one_problem() -> None:
    row, problems = invoice_row(_invoice(currency="dollars"))
    assert [row[n] for n in ("currency", "amount_due", "amount_paid")] == [None, None, None]
    assert problems == [
        "currency: 'dollars' is not a three-letter code; the amounts were left empty"
    ]


def test_an_older_payload_names_its_subscription_on_the_invoice_itself() -> None:
    row, _ = invoice_row(_invoice(parent=None, subscription="sub_old"))
    assert row["subscription_ref"] == "sub_old"


def test_a_timestamp_that_is_not_epoch_seconds_is_reported() -> None:
    row, problems = invoice_row(_invoice(due_date="next week"))
    assert row["due_at"] is None
    assert problems == ["due_date: expected a timestamp in epoch seconds, got 'next week'"]


def test_a_written_page_stores_bad_invoices_emptied_and_names_them(engine: Engine) -> None:
    bad = _invoice(id="in_bad", amount_due="lots", attempt_count="twice")
    with engine.begin() as connection:
        result = write_invoices(connection, [_invoice(), bad, {"status": "paid"}])
        stored = connection.execute(
            sa.text("SELECT source_id, amount_due, attempt_count FROM invoice ORDER BY source_id")
        ).all()
    assert result.upserted.inserted == 2
    assert [(r[0], r[1] is None, r[2]) for r in stored] == [
        ("in_1", False, 1), ("in_bad", True, None)
    ]  # fmt: skip
    assert result.issues == [
        RecordIssue("in_bad", "amount_due: amount_due 'lots' is not a number"),
        RecordIssue("in_bad", "attempt_count: expected a whole number, got 'twice'"),
        RecordIssue("?", "an invoice without an id was skipped"),
    ]
