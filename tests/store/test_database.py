from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from smartseg.errors import ConfigError
from smartseg.store import (
    Account,
    Contact,
    Membership,
    Segment,
    database_url,
    make_engine,
    refresh_statistics,
    session_scope,
    table_of,
)


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_environment_url_wins_over_config_and_default() -> None:
    assert (
        database_url("sqlite:///a.db", env={"SMARTSEG_DATABASE_URL": "sqlite:///b.db"})
        == "sqlite:///b.db"
    )
    assert database_url("sqlite:///a.db", env={}) == "sqlite:///a.db"
    assert database_url(None, env={}) == "sqlite:///smartseg.db"


def test_unsupported_database_url_is_a_config_error_without_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        make_engine("mysql://admin:hunter2secret@db/smartseg")
    assert "hunter2secret" not in str(caught.value)
    assert "database_url" in str(caught.value)


def test_timestamps_read_back_aware_utc(engine: Engine) -> None:
    moment = dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    with session_scope(engine) as session:
        session.add(Account(external_key="t:1", name="Acme", created_at=moment))
    with Session(engine) as session:
        stored = session.exec(select(Account)).one().created_at
    assert stored == moment
    assert stored is not None and stored.utcoffset() == dt.timedelta(0)


def test_naive_timestamps_are_refused(engine: Engine) -> None:
    with (
        pytest.raises(sa.exc.StatementError, match="naive datetime"),
        session_scope(engine) as session,
    ):
        session.add(Account(external_key="t:1", name="Acme", created_at=dt.datetime(2026, 3, 1)))


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    with pytest.raises(sa.exc.IntegrityError), session_scope(engine) as session:
        session.add(Contact(external_key="c:1", account_id=999_999))


def test_one_open_membership_episode_per_entity(engine: Engine) -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with session_scope(engine) as session:
        session.add(Segment(key="s", name="S", level="account", rule="true", rule_hash="h"))
        session.flush()
        session.add(
            Membership(
                segment_key="s", entity_type="account", entity_id=1, entered_at=now, exited_at=now
            )
        )
        session.add(Membership(segment_key="s", entity_type="account", entity_id=1, entered_at=now))
    with pytest.raises(sa.exc.IntegrityError), session_scope(engine) as session:
        session.add(Membership(segment_key="s", entity_type="account", entity_id=1, entered_at=now))


def test_session_scope_rolls_back_on_error(engine: Engine) -> None:
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        session.add(Account(external_key="t:2", name="Gone"))
        session.flush()
        raise RuntimeError("boom")
    with Session(engine) as session:
        assert session.exec(select(Account)).all() == []


def test_planner_statistics_follow_the_data(engine: Engine) -> None:
    accounts = table_of(Account)
    with engine.begin() as connection:
        connection.execute(
            sa.insert(accounts),
            [{"external_key": f"a{i}", "name": f"Account {i}", "custom": {}} for i in range(600)],
        )
    if engine.dialect.name == "sqlite":
        assert refresh_statistics(engine) == ["*"]
        with engine.connect() as connection:
            stats = connection.execute(
                sa.text("SELECT stat FROM sqlite_stat1 WHERE tbl = 'account'")
            ).scalars()
            assert {stat.split()[0] for stat in stats} == {"600"}  # rows, per index
        return
    # PostgreSQL's counters of changed rows reach other sessions within a second or so.
    deadline = time.monotonic() + 10
    while "account" not in (analyzed := refresh_statistics(engine)):
        assert time.monotonic() < deadline, analyzed
        time.sleep(0.2)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT reltuples FROM pg_class WHERE oid = 'account'::regclass")
        ).scalar_one()
    assert rows == 600
    assert "account" not in refresh_statistics(engine)  # nothing changed since
