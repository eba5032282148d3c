"""The shipped config against the whole sandbox: every source pulled, one customer everywhere."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Engine

from smartseg.config import Config, load_config
from smartseg.connectors.identity import unmatched_links
from smartseg.connectors.pull import AVAILABLE_SOURCES, run_pull
from smartseg.connectors.runner import PullResult
from smartseg.sandbox import credentials
from smartseg.sandbox.app import Sandbox
from smartseg.store import make_engine, upgrade

ANCHOR = dt.date(2026, 6, 30)
REPO_CONFIG = Path(__file__).parents[2] / "config" / "smartseg.yaml"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    box = Sandbox(
        salesforce_port=0,
        hubspot_port=0,
        stripe_port=0,
        accounts=60,
        seed=5,
        anchor=ANCHOR,
        data_dir=tmp_path_factory.mktemp("sandbox-data"),
    )
    box.start()
    yield box
    box.stop()


def shipped_config(directory: Path, box: Sandbox) -> Config:
    """config/smartseg.yaml as shipped, with the sandbox's ports and files filled in."""
    info = box.info()
    document: dict[str, Any] = yaml.safe_load(REPO_CONFIG.read_text())
    sources = document["sources"]
    sources["salesforce"].update(
        instance_url=info.salesforce, login_url=info.salesforce, ca_file=info.ca_file
    )
    sources["hubspot"]["base_url"] = info.hubspot
    sources["stripe"]["api_base"] = info.stripe
    for spec in (*sources["usage"]["files"], *sources["nps"]["files"]):
        spec["path"] = spec["path"].replace("../sandbox-data", info.data_dir)
    secrets = directory / "secrets"
    secrets.mkdir(exist_ok=True)
    (secrets / "salesforce_client_secret").write_text(credentials.SALESFORCE_CLIENT_SECRET)
    (secrets / "hubspot_token").write_text(credentials.HUBSPOT_TOKEN)
    (secrets / "stripe_api_key").write_text(credentials.STRIPE_API_KEY)
    (directory / "smartseg.yaml").write_text(yaml.safe_dump(document))
    return load_config(directory / "smartseg.yaml", env={})


@pytest.fixture(scope="module")
def pulled(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, PullResult]:
    directory = tmp_path_factory.mktemp("config")
    engine = make_engine(f"sqlite:///{directory / 'store.db'}")
    upgrade(engine)
    result = run_pull(
        engine,
        shipped_config(directory, sandbox),
        clock=lambda: dt.datetime.now(dt.UTC),
        sleep=lambda s: None,
    )
    return engine, result


def test_every_source_of_the_shipped_config_pulls_cleanly(
    pulled: tuple[Engine, PullResult], tmp_path: Path, sandbox: Sandbox
) -> None:
    _, result = pulled
    assert result.ok, {k: r.error for k, r in result.streams.items() if r.error}
    sources = {key.split(".")[0] for key in result.streams}
    enabled = set(shipped_config(tmp_path, sandbox).sources.enabled_names())
    assert sources == enabled
    # Activities from files are off in the shipped config: the sandbox's meetings come from the
    # CRMs, and a second feed of the same meetings would count them twice.
    assert enabled == set(AVAILABLE_SOURCES) - {"activities"}
    assert all(r.records > 0 for r in result.streams.values()), result.as_dict()


def test_source_records_link_exactly_where_the_world_says_they_can(
    sandbox: Sandbox, pulled: tuple[Engine, PullResult]
) -> None:
    engine, _ = pulled
    world = sandbox.world
    assert world is not None
    # A HubSpot company or Stripe customer can link only if its company is in Salesforce.
    unlinkable = {c.name for c in world.companies if not c.in_salesforce}
    with engine.connect() as connection:
        unmatched = {
            (r["source"], r.get("name")) for r in unmatched_links(connection, limit=10_000)
        }
    assert {name for _, name in unmatched} <= unlinkable
    expected = {
        ("hubspot", c.name) for c in world.companies if c.in_hubspot and not c.in_salesforce
    }
    expected |= {("stripe", c.name) for c in world.companies if c.in_stripe and not c.in_salesforce}
    assert unmatched == expected


def test_paying_accounts_carry_mrr_from_stripe(
    sandbox: Sandbox, pulled: tuple[Engine, PullResult]
) -> None:
    engine, _ = pulled
    assert sandbox.world is not None
    paying = {
        c.domain
        for c in sandbox.world.companies
        if c.in_salesforce
        and c.in_stripe
        and c.unit_amount_cents
        and c.subscription_status in ("active", "past_due")
    }
    with engine.connect() as connection:
        with_mrr = {
            r.domain
            for r in connection.execute(sa.text("SELECT domain FROM account WHERE mrr > 0"))
        }
    assert paying and paying <= with_mrr


def test_usage_nps_and_activity_rows_link_to_accounts(pulled: tuple[Engine, PullResult]) -> None:
    engine, _ = pulled
    with engine.connect() as connection:
        for table in ("usage_daily", "nps_response", "activity", "ticket", "subscription"):
            total, linked = connection.execute(
                sa.text(f"SELECT count(*), count(account_id) FROM {table}")
            ).one()
            assert total > 0 and linked / total > 0.8, (table, total, linked)


def test_a_pull_leaves_the_planner_statistics_current(pulled: tuple[Engine, PullResult]) -> None:
    engine, _ = pulled
    with engine.connect() as connection:
        analyzed = set(connection.execute(sa.text("SELECT tbl FROM sqlite_stat1")).scalars())
    # Without them SQLite's window scans read all of usage history (tests/segmenter).
    assert {"usage_daily", "account", "contact", "activity"} <= analyzed
