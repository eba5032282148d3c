"""Pulling the fake HubSpot portal with the real hubspot-api-client: exact, incremental, paced."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
import yaml
from hubspot import HubSpot
from hubspot.crm.companies import (
    BatchInputSimplePublicObjectBatchInput,
    SimplePublicObjectBatchInput,
)
from hubspot.crm.deals import BatchInputSimplePublicObjectId, SimplePublicObjectId
from sqlalchemy.engine import Engine

from smartseg.config import Config, load_config
from smartseg.connectors.hubspot import RateLimiter
from smartseg.connectors.pull import run_pull
from smartseg.connectors.retry import RetryPolicy
from smartseg.connectors.runner import PullResult
from smartseg.sandbox.http import FaultRule
from smartseg.sandbox.hubspot import HubSpotServer
from smartseg.sandbox.salesforce.server import SalesforceServer
from smartseg.sandbox.world import World
from smartseg.store import make_engine, upgrade
from smartseg.store.models import StreamState

from .conftest import REPO_CONFIG, salesforce_config

STREAMS = ("owners", "companies", "contacts", "deals", "tickets", "calls", "meetings", "emails")
TABLES = {"companies": "account", "contacts": "contact", "deals": "opportunity",
          "tickets": "ticket"}  # fmt: skip


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _pull(engine: Engine, config: Config, **kwargs: Any) -> PullResult:
    kwargs.setdefault("clock", _now)
    return run_pull(engine, config, sleep=lambda seconds: None, sources=["hubspot"], **kwargs)


def hubspot_config(directory: Path, server: HubSpotServer, **overrides: Any) -> Config:
    """The shipped config's HubSpot section pointed at `server`, with nothing else enabled."""
    section = dict(yaml.safe_load(REPO_CONFIG.read_text())["sources"]["hubspot"])
    section.update(base_url=server.url, access_token={"file": "secrets/hubspot"}, **overrides)
    (directory / "secrets").mkdir(exist_ok=True)
    (directory / "secrets" / "hubspot").write_text(server.DEFAULT_TOKEN)
    document = {"sources": {"hubspot": section, "usage": {"enabled": False},
                            "nps": {"enabled": False}}, "targets": {}}  # fmt: skip
    (directory / "smartseg.yaml").write_text(yaml.safe_dump(document))
    return load_config(directory / "smartseg.yaml", env={})


@pytest.fixture
def hs_server(small_world: World) -> Iterator[HubSpotServer]:
    """A fresh portal per test, with HubSpot's default limits (100 per 10 s, 5 searches/s)."""
    with HubSpotServer(small_world) as server:
        yield server


@pytest.fixture
def hs_config(tmp_path: Path, hs_server: HubSpotServer) -> Config:
    return hubspot_config(tmp_path, hs_server)


def _live(server: HubSpotServer, object_type: str) -> list[Any]:
    return [r for r in server.state.tables[object_type].records.values() if r.archived_at is None]


def _count(engine: Engine, sql: str, **params: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.text(sql), params).scalar_one())


def _sdk(server: HubSpotServer) -> HubSpot:
    return HubSpot(access_token=server.DEFAULT_TOKEN, host=server.url)


def test_a_full_pull_stores_exactly_the_portals_records(
    engine: Engine, hs_server: HubSpotServer, hs_config: Config
) -> None:
    result = _pull(engine, hs_config)
    assert result.ok, result.as_dict()
    for object_type, table in TABLES.items():
        stored = _count(engine, f"SELECT count(*) FROM {table}")
        assert stored == len(_live(hs_server, object_type)), object_type
    engagements = sum(len(_live(hs_server, kind)) for kind in ("calls", "meetings", "emails"))
    assert _count(engine, "SELECT count(*) FROM activity") == engagements
    assert _count(engine, "SELECT count(*) FROM crm_user") == len(hs_server.state.owners)
    links = _count(engine, "SELECT count(*) FROM source_link WHERE source = 'hubspot'")
    assert links == len(_live(hs_server, "companies")) + len(_live(hs_server, "contacts"))
    deal = _live(hs_server, "deals")[0]
    with engine.connect() as connection:
        row = connection.execute(
            sa.text("SELECT stage, amount, is_won, account_ref FROM opportunity "
                    "WHERE source_id = :i"), {"i": str(deal.id)},
        ).one()  # fmt: skip
    company = next(iter(hs_server.state.assocs.of("deals", deal.id, "companies")))
    assert row.stage == deal.props["dealstage"]
    assert float(row.amount) == float(deal.props["amount"])
    assert row.is_won == (deal.props["dealstage"] == "closedwon")
    assert row.account_ref == f"hubspot:{company}"
    orphans = "SELECT count(*) FROM contact WHERE account_ref IS NOT NULL AND account_id IS NULL"
    assert _count(engine, orphans) == 0
    qbrs = _count(engine, "SELECT count(*) FROM activity WHERE kind = 'qbr'")
    assert qbrs == sum(
        1 for m in _live(hs_server, "meetings") if m.props.get("hs_activity_type") == "QBR"
    )


def test_a_second_pull_makes_one_request_per_stream_and_changes_nothing(
    engine: Engine, hs_server: HubSpotServer, hs_config: Config, store_snapshot: Any
) -> None:
    _pull(engine, hs_config)
    before = store_snapshot(engine)
    requests.delete(f"{hs_server.url}/_sandbox/requests", timeout=10)
    result = _pull(engine, hs_config)
    routes = hs_server.request_counts()["by_route"]
    assert routes == {"POST /crm/v3/objects/{objectType}/search": len(STREAMS) - 1,
                      "GET /crm/v3/owners": 1}  # fmt: skip
    assert result.as_dict()["streams"]["hubspot.companies"]["api_calls"] == 1
    assert all(r.created == r.updated == r.deleted == 0 for r in result.streams.values())
    assert store_snapshot(engine) == before


def test_edits_reach_the_store_on_the_next_pull_and_archives_on_the_daily_sweep(
    engine: Engine, hs_server: HubSpotServer, hs_config: Config
) -> None:
    _pull(engine, hs_config)
    company, deal = _live(hs_server, "companies")[0], _live(hs_server, "deals")[0]
    sdk = _sdk(hs_server)
    rename = SimplePublicObjectBatchInput(id=str(company.id), properties={"name": "Renamed Inc"})
    sdk.crm.companies.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=[rename]))
    sdk.crm.deals.batch_api.archive(
        BatchInputSimplePublicObjectId(inputs=[SimplePublicObjectId(id=str(deal.id))])
    )
    soon = _pull(engine, hs_config)
    assert soon.streams["hubspot.companies"].updated >= 1
    assert soon.streams["hubspot.deals"].deleted == 0  # the sweep is not due yet
    later = _now() + dt.timedelta(days=1, minutes=1)
    swept = _pull(engine, hs_config, clock=lambda: later)
    assert swept.streams["hubspot.deals"].deleted == 1
    with engine.connect() as connection:
        name = connection.execute(
            sa.text("SELECT name FROM account WHERE external_key = :k"),
            {"k": f"hubspot:{company.id}"},
        ).scalar_one()
        deleted_at = connection.execute(
            sa.text("SELECT deleted_at FROM opportunity WHERE source_id = :i"), {"i": str(deal.id)}
        ).scalar_one()
    assert name == "Renamed Inc"
    assert deleted_at is not None


def _crowd(world: World, people: int) -> World:
    """One company with `people` contacts, seven to each creation millisecond."""
    company = dataclasses.replace(world.companies[0], in_hubspot=True)
    template = world.people[0]
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    crowd = [
        dataclasses.replace(template, idx=i, company=company.idx, email=f"p{i}@crowd.example",
                            in_hubspot=True, created_at=start + dt.timedelta(seconds=i // 7))
        for i in range(people)
    ]  # fmt: skip
    return dataclasses.replace(world, companies=[company], people=crowd, opportunities=[],
                               activities=[], tickets=[], nps=[])  # fmt: skip


def test_more_than_10000_changes_restart_the_search_and_store_each_contact_once(
    tmp_path: Path, small_world: World
) -> None:
    with HubSpotServer(
        _crowd(small_world, 10_050), burst_limit=100_000, search_per_second=1_000
    ) as server:
        config = hubspot_config(tmp_path, server, objects=["contacts"],
                                rate_limit={"burst": 100_000, "window": "1s",
                                            "search_per_second": 1_000})  # fmt: skip
        engine = make_engine(f"sqlite:///{tmp_path / 'crowd.db'}")
        upgrade(engine)
        with engine.begin() as connection:
            connection.execute(sa.insert(StreamState.__table__).values(  # type: ignore[attr-defined]
                source="hubspot", stream="contacts", cursor="2024-12-31T00:00:00+00:00",
                state={"swept_at": _now().isoformat()}))  # fmt: skip
        result = _pull(engine, config)
        routes = server.request_counts()["by_route"]
    assert result.ok, result.as_dict()
    assert result.streams["hubspot.contacts"].records == 10_050
    assert _count(engine, "SELECT count(*) FROM contact") == 10_050
    assert routes["POST /crm/v3/objects/{objectType}/search"] == 51  # 50 pages, then a restart
    assert routes["POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read"] == 11


@pytest.mark.parametrize(
    "fault",
    [
        FaultRule(kind="429", path="/crm/v3/objects/*", times=2, retry_after=0),
        FaultRule(kind="503", path="/crm/v3/objects/*", times=2),
        FaultRule(kind="drop", path="/crm/v3/objects/*", times=2),
    ],
    ids=["429", "503", "dropped-connection"],
)
def test_a_pull_through_faults_ends_like_a_clean_pull(
    tmp_path: Path, hs_server: HubSpotServer, hs_config: Config, fault: FaultRule,
    store_snapshot: Any,
) -> None:  # fmt: skip
    clean = make_engine(f"sqlite:///{tmp_path / 'clean.db'}")
    upgrade(clean)
    assert _pull(clean, hs_config).ok
    faulted = make_engine(f"sqlite:///{tmp_path / 'faulted.db'}")
    upgrade(faulted)
    hs_server.faults.set([fault])
    result = _pull(faulted, hs_config)
    assert result.ok, result.as_dict()
    assert fault.fired == fault.times
    assert store_snapshot(faulted) == store_snapshot(clean)


def test_an_interrupted_full_pull_resumes_at_the_page_it_stopped(
    tmp_path: Path, hs_server: HubSpotServer, hs_config: Config, store_snapshot: Any
) -> None:
    clean = make_engine(f"sqlite:///{tmp_path / 'clean.db'}")
    upgrade(clean)
    _pull(clean, hs_config)
    broken = make_engine(f"sqlite:///{tmp_path / 'broken.db'}")
    upgrade(broken)
    # Contacts' second page fails for good (all six attempts answer 500) after the first commits;
    # the list requests before it are companies' live and archived pages and contacts' first.
    rule = FaultRule(kind="500", path="/crm/v3/objects/{objectType}", method="GET", after=3,
                     times=6)  # fmt: skip
    hs_server.faults.set([rule])
    first = _pull(broken, hs_config)
    assert [k for k, r in first.streams.items() if r.error] == ["hubspot.contacts"]
    assert first.streams["hubspot.contacts"].records == 100
    hs_server.faults.clear()
    second = _pull(broken, hs_config)
    assert second.ok
    assert second.streams["hubspot.contacts"].records == len(_live(hs_server, "contacts")) - 100
    assert store_snapshot(broken) == store_snapshot(clean)


def test_a_pull_paces_itself_below_the_burst_and_search_limits(
    tmp_path: Path, small_world: World
) -> None:
    with HubSpotServer(small_world, burst_limit=10, burst_window=1.0) as server:
        paced = {"burst": 8, "window": "1s", "search_per_second": 4}
        config = hubspot_config(tmp_path, server, rate_limit=paced)
        engine = make_engine(f"sqlite:///{tmp_path / 'paced.db'}")
        upgrade(engine)
        once = RetryPolicy(attempts=1)  # any 429 would fail its stream
        full = _pull(engine, config, policy=once)
        incremental = _pull(engine, config, policy=once)
    assert full.ok, full.as_dict()
    assert incremental.ok, incremental.as_dict()


def test_the_rate_limiter_waits_for_the_window_to_roll() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(3, 10.0, 2, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        limiter.acquire()
    limiter.acquire(search=True)
    limiter.acquire(search=True)
    limiter.acquire(search=True)
    assert slept == [10.0, 1.0]


def test_with_salesforce_as_the_crm_companies_become_links_to_salesforce_accounts(
    engine: Engine, tmp_path: Path, hs_server: HubSpotServer, sf_server: SalesforceServer
) -> None:
    sf_section = salesforce_config(tmp_path, sf_server).sources.salesforce
    config = hubspot_config(tmp_path, hs_server, objects=["companies", "contacts"])
    config = config.model_copy(update={"sources": config.sources.model_copy(
        update={"salesforce": sf_section})})  # fmt: skip
    assert _pull(engine, config).ok
    company = next(c for c in _live(hs_server, "companies") if c.props.get("salesforce_account_id"))
    with engine.connect() as connection:
        hint = connection.execute(
            sa.text("SELECT hint FROM source_link WHERE object = 'company' AND source_id = :i"),
            {"i": str(company.id)},
        ).scalar_one()
    hint = hint if isinstance(hint, dict) else json.loads(hint)
    assert hint["account_ref"] == f"salesforce:{company.props['salesforce_account_id']}"
    assert hint["workspace_id"] == company.props["workspace_id"]
    assert _count(engine, "SELECT count(*) FROM account") == 0
    assert _count(engine, "SELECT count(*) FROM contact") == 0


def test_a_bad_token_is_a_config_error_naming_the_setting_not_the_token(
    engine: Engine, tmp_path: Path, hs_server: HubSpotServer
) -> None:
    hubspot_config(tmp_path, hs_server)
    (tmp_path / "secrets" / "hubspot").write_text("pat-na1-not-the-token")
    result = _pull(engine, load_config(tmp_path / "smartseg.yaml", env={}))
    assert {r.failure for r in result.streams.values()} == {"config"}
    assert "sources.hubspot.access_token" in (result.streams["hubspot.companies"].error or "")
    assert "not-the-token" not in str(result.as_dict())
