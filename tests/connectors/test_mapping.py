"""Source values into store values: what fits is converted, what does not is named."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from smartseg.connectors.mapping import Coercer, email_domain, normalize_domain, parse_datetime
from smartseg.store.models import Account, Subscription

ACCOUNT = Coercer(Account.__table__)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("column", "raw", "expected"),
    [
        ("seats", "12", 12),
        ("seats", 12.0, 12),
        ("opt_out_clause", "true", True),
        ("opt_out_clause", "0", False),
        ("health_score", "87.5", 87.5),
        ("renewal_date", "2026-12-31", dt.date(2026, 12, 31)),
        ("renewal_date", "2026-12-31T00:00:00.000+0000", dt.date(2026, 12, 31)),
        ("created_at", "2026-01-31T10:00:00.000+0000", dt.datetime(2026, 1, 31, 10, tzinfo=dt.UTC)),
        ("mrr", "1234.5678", Decimal("1234.5678")),
        ("edition", "", None),
        ("edition", "  ", None),
        ("edition", "Gold", "Gold"),
        ("seats", "", None),
    ],
)
def test_values_that_fit_are_converted(column: str, raw: object, expected: object) -> None:
    row, problems = ACCOUNT.coerce({column: raw})
    assert problems == {}
    assert row[column] == expected


@pytest.mark.parametrize(
    ("column", "raw", "expected"),
    [
        ("seats", "12.5", "a whole number"),
        ("seats", "lots", "a whole number"),
        ("health_score", "NaN", "a number"),
        ("health_score", True, "a number"),
        ("opt_out_clause", "maybe", "true/false"),
        ("renewal_date", "31/12/2026", "a date YYYY-MM-DD"),
        ("created_at", "yesterday", "a date-time"),
    ],
)
def test_values_that_do_not_fit_are_emptied_and_named(
    column: str, raw: object, expected: str
) -> None:
    row, problems = ACCOUNT.coerce({column: raw})
    assert row[column] is None
    assert expected in problems[column] and column in problems[column]


def test_huge_text_is_cut_and_reported() -> None:
    row, problems = ACCOUNT.coerce({"name": "ü" * 50_000})
    assert len(row["name"]) == 10_000
    assert "cut" in problems["name"]


def test_money_columns_keep_decimals_exactly() -> None:
    row, _ = Coercer(Subscription.__table__).coerce({"mrr": "0.1", "unit_amount": 3})  # type: ignore[attr-defined]
    assert (row["mrr"], row["unit_amount"]) == (Decimal("0.1"), Decimal(3))


def test_datetimes_become_aware_utc_from_every_shape() -> None:
    expected = dt.datetime(2026, 1, 31, 10, tzinfo=dt.UTC)
    assert parse_datetime("2026-01-31T10:00:00Z") == expected
    assert parse_datetime("2026-01-31T12:00:00+02:00") == expected
    assert parse_datetime(int(expected.timestamp() * 1000)) == expected
    assert parse_datetime("2026-01-31T10:00:00") == expected


@pytest.mark.parametrize(
    ("website", "domain"),
    [
        ("https://www.Acme.com/about", "acme.com"),
        ("acme.io", "acme.io"),
        ("http://shop.acme.co.uk:8080", "shop.acme.co.uk"),
        ("", None),
        (None, None),
    ],
)
def test_websites_normalise_to_a_domain(website: str | None, domain: str | None) -> None:
    assert normalize_domain(website) == domain


def test_personal_mailboxes_identify_no_company() -> None:
    assert email_domain("Ann@Acme.COM") == "acme.com"
    assert email_domain("ann@gmail.com") is None
    assert email_domain("not an email") is None
