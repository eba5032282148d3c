from __future__ import annotations

from pathlib import Path

import pytest
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


def _ledger_at_0006(engine: Engine) -> None:
    """A segment, one membership and the task made for it, in a store migrated to 0006."""
    upgrade(engine, "0006")
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO segment (key, name, level, rule, rule_hash, catalogue, static, "
                "member_count, updated_at) VALUES ('gold', 'Gold', 'account', 'x', 'h', '[]', "
                "false, 1, '2026-06-01')"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO membership (id, segment_key, entity_type, entity_id, entered_at, "
                "\"values\") VALUES (7, 'gold', 'account', 1, '2026-06-01', '{}')"
            )
        )


def _task(connection: sa.Connection, membership_id: int) -> None:
    connection.execute(
        sa.text(
            "INSERT INTO task_ledger (playbook_key, segment_key, target, action, membership_id, "
            "entity_type, entity_id, marker, state, attempts) VALUES ('call', 'gold', "
            f"'salesforce', 'create', {membership_id}, 'account', 1, 'm{membership_id}', "
            "'done', 1)"
        )
    )


def test_a_table_rebuilt_by_a_migration_keeps_the_rows_that_cascade_from_it(db_url: str) -> None:
    # 0007 rebuilds `membership` on SQLite; with foreign keys on, dropping the old table would
    # delete the task ledger through its ON DELETE CASCADE, and every task would be made again.
    engine = make_engine(db_url)
    _ledger_at_0006(engine)
    with engine.begin() as connection:
        _task(connection, 7)
    assert upgrade(engine) == head_revision()
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT membership_id FROM task_ledger")).all() == [(7,)]
        assert connection.execute(sa.text("SELECT id FROM membership")).all() == [(7,)]
        if engine.dialect.name == "sqlite":
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert schema_drift(engine) == []
    engine.dispose()


def test_a_migration_that_would_break_a_foreign_key_changes_nothing(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    _ledger_at_0006(engine)
    with engine.connect() as connection:  # a task whose membership is gone, written keys-off
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
        with connection.begin():
            _task(connection, 99)
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()
    with pytest.raises(RuntimeError, match="would break 1 foreign keys"):
        upgrade(engine)
    assert current_revision(engine) == "0006"
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()
