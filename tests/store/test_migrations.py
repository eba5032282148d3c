from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smartseg.store import current_revision, head_revision, make_engine, schema_drift, upgrade


def test_migrations_produce_exactly_the_models_schema(engine: Engine) -> None:
    assert schema_drift(engine) == []


def test_upgrade_records_the_head_revision(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()


def test_upgrade_twice_is_a_no_op(db_url: str) -> None:
    engine = make_engine(db_url)
    first = upgrade(engine)
    assert upgrade(engine) == first
    assert schema_drift(engine) == []


def test_every_ledger_table_exists(engine: Engine) -> None:
    tables = set(sa.inspect(engine).get_table_names())
    assert {
        "account",
        "contact",
        "source_link",
        "subscription",
        "activity",
        "ticket",
        "nps_response",
        "usage_daily",
        "stream_state",
        "run",
        "segment",
        "membership",
        "pushed",
        "task_ledger",
    } <= tables


def test_usage_and_membership_have_the_indexes_queries_need(engine: Engine) -> None:
    inspector = sa.inspect(engine)
    usage = {tuple(ix["column_names"]) for ix in inspector.get_indexes("usage_daily")}
    membership = {tuple(ix["column_names"]) for ix in inspector.get_indexes("membership")}
    assert ("account_id", "day") in usage
    assert ("segment_key", "entity_type", "entity_id") in membership
