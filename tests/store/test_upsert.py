from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smartseg.store import Account, UpsertResult, UsageDaily, upsert


def _accounts(n: int, edition: str = "Gold") -> list[dict[str, object]]:
    return [
        {
            "external_key": f"sf:{i}",
            "name": f"Acme {i}",
            "edition": edition,
            "custom": {"tier": i % 3},
        }
        for i in range(n)
    ]


def _count(engine: Engine, table: sa.Table) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_first_upsert_inserts_every_row(engine: Engine) -> None:
    with engine.begin() as connection:
        result = upsert(connection, Account, _accounts(5), key=["external_key"])
    assert result == UpsertResult(inserted=5, updated=0, unchanged=0)


def test_repeating_the_same_rows_changes_nothing(engine: Engine) -> None:
    with engine.begin() as connection:
        upsert(connection, Account, _accounts(5), key=["external_key"])
    with engine.begin() as connection:
        result = upsert(connection, Account, _accounts(5), key=["external_key"])
    assert result == UpsertResult(inserted=0, updated=0, unchanged=5)


def test_only_changed_rows_are_updated(engine: Engine) -> None:
    with engine.begin() as connection:
        upsert(connection, Account, _accounts(5), key=["external_key"])
    rows = _accounts(6)
    rows[1]["edition"] = "Silver"
    rows[2]["custom"] = {"tier": 99}
    with engine.begin() as connection:
        result = upsert(connection, Account, rows, key=["external_key"])
    assert result == UpsertResult(inserted=1, updated=2, unchanged=3)
    with engine.connect() as connection:
        editions = dict(connection.execute(sa.select(Account.external_key, Account.edition)).all())  # type: ignore[call-overload]
    assert editions["sf:1"] == "Silver"


def test_a_key_repeated_within_a_call_keeps_the_last_version(engine: Engine) -> None:
    rows = [
        *_accounts(2),
        {"external_key": "sf:0", "name": "Renamed", "edition": "Gold", "custom": {}},
    ]
    with engine.begin() as connection:
        result = upsert(connection, Account, rows, key=["external_key"])
    assert result.inserted == 2
    with engine.connect() as connection:
        names = dict(connection.execute(sa.select(Account.external_key, Account.name)).all())  # type: ignore[call-overload]
    assert names["sf:0"] == "Renamed"


def test_batches_larger_than_the_parameter_limit_are_split(engine: Engine) -> None:
    day = dt.date(2026, 1, 1)
    rows = [
        {
            "source": "f",
            "account_key": f"w{i % 50}",
            "day": day,
            "feature": "login",
            "user_key": f"u{i}",
            "events": i,
            "minutes": 1.5,
        }
        for i in range(12_000)
    ]
    with engine.begin() as connection:
        result = upsert(
            connection,
            UsageDaily,
            rows,
            key=["source", "account_key", "day", "feature", "user_key"],
            batch_size=50_000,
        )
    assert result.inserted == 12_000
    assert _count(engine, UsageDaily.__table__) == 12_000  # type: ignore[arg-type]


def test_a_failed_batch_rolls_back_with_the_callers_transaction(engine: Engine) -> None:
    good = _accounts(3)
    bad = [
        {"external_key": "sf:bad", "name": None, "edition": "Gold", "custom": {}}
    ]  # name is NOT NULL
    try:
        with engine.begin() as connection:
            upsert(connection, Account, good, key=["external_key"])
            upsert(connection, Account, bad, key=["external_key"])
    except sa.exc.IntegrityError:
        pass
    assert _count(engine, Account.__table__) == 0  # type: ignore[arg-type]


def test_unknown_columns_are_refused_by_name(engine: Engine) -> None:
    with engine.begin() as connection:
        try:
            upsert(
                connection,
                Account,
                [{"external_key": "x", "name": "n", "colour": "red"}],
                key=["external_key"],
            )
        except ValueError as exc:
            assert "colour" in str(exc)
        else:
            raise AssertionError("expected ValueError")
