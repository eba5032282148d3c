"""Values go through `upsert` exactly as the ORM would store them, on both backends."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smartseg.store import Account, Segment, UpsertResult, UsageDaily, upsert

_USAGE_KEY = ["source", "account_key", "day", "feature", "user_key"]
_ACCOUNTS: sa.Table = Account.__table__  # type: ignore[attr-defined]
_SEGMENTS: sa.Table = Segment.__table__  # type: ignore[attr-defined]
_USAGE: sa.Table = UsageDaily.__table__  # type: ignore[attr-defined]


def _stored(engine: Engine, table: sa.Table, key: str) -> dict[Any, dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(table)).mappings().all()
    return {row[key]: dict(row) for row in rows}


def _usage(user: str, events: int) -> dict[str, Any]:
    return {
        "source": "f",
        "account_key": "w1",
        "day": dt.date(2026, 1, 1),
        "feature": "login",
        "user_key": user,
        "events": events,
        "minutes": 1.5,
    }


def test_values_round_trip_exactly(engine: Engine) -> None:
    custom = {"tier": 2, "ratio": 0.25, "tags": ["a", "é"], "none": None, "nested": {"ok": True}}
    name = "tab\there, new\nline, back\\slash, \\N and 'quotes'"
    row = {
        "external_key": "sf:1",
        "name": name,
        "domain": None,
        "employees": None,
        "opt_out_clause": False,
        "strategic": True,
        "start_date": dt.date(2024, 2, 29),
        "mrr": Decimal("1234.5678"),
        "arr": Decimal("-0.0001"),
        "custom": custom,
        "created_at": dt.datetime(
            2026, 3, 1, 12, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2))
        ),
        "updated_at": None,
    }
    with engine.begin() as connection:
        upsert(connection, Account, [row], key=["external_key"])
    stored = _stored(engine, _ACCOUNTS, "external_key")["sf:1"]
    assert stored["name"] == name
    assert stored["domain"] is None and stored["employees"] is None
    assert stored["opt_out_clause"] is False and stored["strategic"] is True
    assert stored["start_date"] == dt.date(2024, 2, 29)
    assert stored["mrr"] == Decimal("1234.5678") and stored["arr"] == Decimal("-0.0001")
    assert stored["custom"] == custom
    assert stored["created_at"] == dt.datetime(2026, 3, 1, 10, 30, 15, 123456, tzinfo=dt.UTC)
    assert stored["created_at"].utcoffset() == dt.timedelta(0)
    assert stored["updated_at"] is None


def test_rewriting_the_same_values_counts_as_unchanged(engine: Engine) -> None:
    row = {
        "external_key": "sf:1",
        "name": "Acme",
        "mrr": Decimal("10.5000"),
        "start_date": dt.date(2026, 1, 1),
        "custom": {"b": [1, 2], "a": None},
        "created_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    }
    with engine.begin() as connection:
        upsert(connection, Account, [row], key=["external_key"])
    with engine.begin() as connection:
        result = upsert(connection, Account, [row], key=["external_key"])
    assert result == UpsertResult(unchanged=1)


def test_omitted_columns_take_their_defaults(engine: Engine) -> None:
    with engine.begin() as connection:
        upsert(
            connection, Account, [{"external_key": "sf:1", "name": "Acme"}], key=["external_key"]
        )
        upsert(
            connection,
            Segment,
            [{"key": "s", "name": "S", "level": "account", "rule": "true", "rule_hash": "h"}],
            key=["key"],
        )
        upsert(
            connection,
            UsageDaily,
            [{k: v for k, v in _usage("u1", 0).items() if k not in ("events", "minutes")}],
            key=_USAGE_KEY,
        )
    account = _stored(engine, _ACCOUNTS, "external_key")["sf:1"]
    assert account["custom"] == {}
    assert account["id"] is not None
    assert _stored(engine, _SEGMENTS, "key")["s"]["catalogue"] == []
    usage = _stored(engine, _USAGE, "user_key")["u1"]
    assert (usage["events"], usage["minutes"]) == (0, 0.0)


def test_a_naive_datetime_is_refused_by_column(engine: Engine) -> None:
    row = {"external_key": "sf:1", "name": "Acme", "created_at": dt.datetime(2026, 3, 1)}
    with (
        pytest.raises(sa.exc.StatementError, match="naive datetime") as refused,
        engine.begin() as connection,
    ):
        upsert(connection, Account, [row], key=["external_key"])
    assert "created_at" in str(refused.value)


def test_a_refused_value_leaves_the_transaction_usable(engine: Engine) -> None:
    naive = {"external_key": "sf:1", "name": "Acme", "created_at": dt.datetime(2026, 3, 1)}
    aware = {**naive, "created_at": dt.datetime(2026, 3, 1, tzinfo=dt.UTC)}
    with engine.begin() as connection:
        with pytest.raises(sa.exc.StatementError):
            upsert(connection, Account, [naive], key=["external_key"])
        result = upsert(connection, Account, [aware], key=["external_key"])
    assert result == UpsertResult(inserted=1)


def test_every_row_needs_the_first_rows_columns(engine: Engine) -> None:
    rows = [
        {"external_key": "sf:1", "name": "Acme", "edition": "Gold"},
        {"external_key": "sf:2", "name": "Beta"},
    ]
    with pytest.raises(sa.exc.StatementError, match="edition"), engine.begin() as connection:
        upsert(connection, Account, rows, key=["external_key"])


def test_a_repeated_key_keeps_the_last_row(engine: Engine) -> None:
    rows = [_usage("u1", 1), _usage("u2", 2), _usage("u1", 3)]
    with engine.begin() as connection:
        result = upsert(connection, UsageDaily, rows, key=_USAGE_KEY)
    assert result == UpsertResult(inserted=2)
    assert _stored(engine, _USAGE, "user_key")["u1"]["events"] == 3


def test_a_key_repeated_across_batches_is_updated_by_the_later_batch(engine: Engine) -> None:
    rows = [_usage("u1", 1), _usage("u2", 2), _usage("u1", 3)]
    with engine.begin() as connection:
        result = upsert(connection, UsageDaily, rows, key=_USAGE_KEY, batch_size=2)
    assert result == UpsertResult(inserted=2, updated=1)
    assert _stored(engine, _USAGE, "user_key")["u1"]["events"] == 3


def test_a_mixed_batch_is_counted_row_by_row(engine: Engine) -> None:
    with engine.begin() as connection:
        upsert(connection, UsageDaily, [_usage("same", 1), _usage("changed", 1)], key=_USAGE_KEY)
    rows = (
        row for row in [_usage("same", 1), _usage("changed", 2), _usage("new", 1), _usage("new", 5)]
    )
    with engine.begin() as connection:
        result = upsert(connection, UsageDaily, rows, key=_USAGE_KEY)
    assert result == UpsertResult(inserted=1, updated=1, unchanged=1)
    events = {user: row["events"] for user, row in _stored(engine, _USAGE, "user_key").items()}
    assert events == {"same": 1, "changed": 2, "new": 5}


def test_columns_outside_update_are_never_rewritten(engine: Engine) -> None:
    with engine.begin() as connection:
        upsert(connection, UsageDaily, [_usage("u1", 1)], key=_USAGE_KEY)
    rows = [{**_usage("u1", 9), "minutes": 7.0}, _usage("u2", 1)]
    with engine.begin() as connection:
        only_minutes = upsert(connection, UsageDaily, rows, key=_USAGE_KEY, update=["minutes"])
        add_only = upsert(connection, UsageDaily, [_usage("u1", 4)], key=_USAGE_KEY, update=[])
    assert only_minutes == UpsertResult(inserted=1, updated=1)
    assert add_only == UpsertResult(unchanged=1)
    stored = _stored(engine, _USAGE, "user_key")["u1"]
    assert (stored["events"], stored["minutes"]) == (1, 7.0)


def test_the_callers_transaction_goes_on_after_an_upsert(engine: Engine) -> None:
    with engine.begin() as connection:
        upsert(connection, UsageDaily, [_usage("u1", 1)], key=_USAGE_KEY)
        upsert(connection, UsageDaily, [_usage("u1", 2)], key=_USAGE_KEY)
        upsert(connection, Account, [{"external_key": "sf:1", "name": "A"}], key=["external_key"])
        if engine.dialect.name == "postgresql":
            staging = sa.text(
                "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'upsert_stage_%'"
            )
            assert connection.execute(staging).scalar_one() == 0
    assert _stored(engine, _USAGE, "user_key")["u1"]["events"] == 2


def test_upsert_works_outside_a_transaction(engine: Engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        first = upsert(connection, UsageDaily, [_usage("u1", 1)], key=_USAGE_KEY)
        again = upsert(connection, UsageDaily, [_usage("u1", 2)], key=_USAGE_KEY)
    assert (first, again) == (UpsertResult(inserted=1), UpsertResult(updated=1))
