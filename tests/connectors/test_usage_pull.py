"""Usage and NPS exports pulled through the loop: exact totals, linked, each file loaded once."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Engine

from smartseg.config import Config, load_config
from smartseg.connectors.pull import run_pull
from smartseg.connectors.runner import PullResult
from smartseg.sandbox.exports import Exports, write_exports
from smartseg.sandbox.salesforce.server import SalesforceServer
from smartseg.sandbox.world import World


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def exports(small_world: World, tmp_path_factory: pytest.TempPathFactory) -> Exports:
    return write_exports(small_world, tmp_path_factory.mktemp("exports"))


def _config(
    directory: Path, server: SalesforceServer, data_dir: Path, make_sf_config: Any
) -> Config:
    make_sf_config(directory, server)
    document = yaml.safe_load((directory / "smartseg.yaml").read_text())
    document["sources"]["usage"] = {
        "files": [
            {"path": str(data_dir / "usage/daily/*.parquet"), "format": "parquet", "kind": "daily"},
            {"path": str(data_dir / "usage/events/*.csv"), "format": "csv", "kind": "events"},
        ],
        "account_key": "workspace_id",
    }
    document["sources"]["nps"] = {"files": [{"path": str(data_dir / "nps/*.csv"), "format": "csv"}]}
    (directory / "smartseg.yaml").write_text(yaml.safe_dump(document))
    return load_config(directory / "smartseg.yaml", env={})


@pytest.fixture
def config(
    tmp_path: Path, sf_server: SalesforceServer, exports: Exports, make_sf_config: Any
) -> Config:
    return _config(tmp_path, sf_server, exports.data_dir, make_sf_config)


def _pull(engine: Engine, config: Config, **kwargs: Any) -> PullResult:
    return run_pull(engine, config, clock=_now, sleep=lambda s: None, **kwargs)


def _totals(data_dir: Path) -> tuple[int, float]:
    events, minutes = 0, 0.0
    for path in sorted((data_dir / "usage/daily").glob("*.parquet")):
        table = pq.read_table(path)
        events += sum(table.column("events").to_pylist())
        minutes += sum(table.column("minutes").to_pylist())
    for path in sorted((data_dir / "usage/events").glob("*.csv")):
        table = pacsv.read_csv(path)
        events += table.num_rows
        minutes += sum(table.column("duration_seconds").to_pylist()) / 60
    return events, minutes


def test_usage_exports_load_with_exact_totals_and_link_to_accounts(
    engine: Engine, config: Config, exports: Exports
) -> None:
    result = _pull(engine, config)
    assert result.ok, result.as_dict()
    events, minutes = _totals(exports.data_dir)
    with engine.connect() as connection:
        stored = connection.execute(
            sa.text("SELECT sum(events), sum(minutes) FROM usage_daily")
        ).one()
        linked = connection.execute(
            sa.text(
                "SELECT count(*) FROM usage_daily u JOIN account a ON a.id = u.account_id "
                "WHERE a.workspace_id = u.account_key"
            )
        ).scalar_one()
        total = connection.execute(sa.text("SELECT count(*) FROM usage_daily")).scalar_one()
        known = connection.execute(
            sa.text(
                "SELECT count(*) FROM usage_daily "
                "WHERE account_key IN (SELECT workspace_id FROM account)"
            )
        ).scalar_one()
    assert stored[0] == events
    assert stored[1] == pytest.approx(minutes, rel=1e-9)
    assert linked == known > 0
    assert total >= known


def test_nps_answers_link_to_accounts_and_contacts(engine: Engine, config: Config) -> None:
    _pull(engine, config)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT n.email, c.email AS contact_email, n.account_id FROM nps_response n "
                "LEFT JOIN contact c ON c.id = n.contact_id"
            )
        ).all()
    assert rows
    assert all(r.contact_email == r.email for r in rows if r.contact_email is not None)
    assert sum(1 for r in rows if r.account_id is not None) > len(rows) // 2


def test_unchanged_files_are_not_read_again(engine: Engine, config: Config) -> None:
    _pull(engine, config)
    second = _pull(engine, config)
    for key, report in second.streams.items():
        if key.startswith(("usage.", "nps.")):
            assert report.records == 0, key


def test_a_changed_file_is_read_again_and_its_rows_replaced(
    engine: Engine,
    tmp_path: Path,
    sf_server: SalesforceServer,
    exports: Exports,
    make_sf_config: Any,
) -> None:
    data_dir = tmp_path / "copy"
    shutil.copytree(exports.data_dir, data_dir)
    config = _config(tmp_path, sf_server, data_dir, make_sf_config)
    _pull(engine, config)
    day_file = sorted((data_dir / "usage/events").glob("*.csv"))[-1]
    lines = day_file.read_text().splitlines()
    first = lines[1].split(",")
    first[0] = "999999999999"  # a new event id, same workspace, user, day and feature
    day_file.write_text("\n".join([*lines, ",".join(first)]) + "\n")
    before = _events(engine)
    result = _pull(engine, config)
    assert result.streams["usage.files[1]"].updated == 1
    assert _events(engine) == before + 1


def test_a_malformed_row_is_reported_and_the_good_rows_stored(
    engine: Engine,
    tmp_path: Path,
    sf_server: SalesforceServer,
    exports: Exports,
    make_sf_config: Any,
) -> None:
    data_dir = tmp_path / "bad"
    (data_dir / "usage/events").mkdir(parents=True)
    (data_dir / "nps").mkdir()
    (data_dir / "usage/daily").mkdir()
    (data_dir / "usage/events/events-2026-06-29.csv").write_text(
        "event_id,workspace_id,user_email,timestamp,feature,duration_seconds\n"
        "1,w1,a@x.com,2026-06-29T10:00:00Z,login,60\n"
        "2,w1,a@x.com,not-a-time,login,60\n"
        "3,w1,a@x.com,2026-06-29T11:00:00Z,login,120\n"
    )
    config = _config(tmp_path, sf_server, data_dir, make_sf_config)
    result = _pull(engine, config, sources=["usage"])
    report = result.streams["usage.files[1]"]
    assert report.skipped == 1
    assert "row 2" in report.issues[0]["id"]
    assert _events(engine) == 2


def _events(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                sa.text("SELECT coalesce(sum(events), 0) FROM usage_daily")
            ).scalar_one()
        )
