"""Large first pulls through Bulk API 2.0, against the fake org with the real simple-salesforce.

With `bulk_threshold` at 100 the small org's Contacts (207) and Tasks (109) exceed it and go
through Bulk; the other objects stay on REST. Result pages are cut to 50 rows so every Bulk pull
reads several pages.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from simple_salesforce import Salesforce
from sqlalchemy.engine import Engine

from smartseg.config import Config
from smartseg.connectors import salesforce_bulk
from smartseg.connectors.pull import run_pull
from smartseg.connectors.runner import PullResult
from smartseg.sandbox import credentials
from smartseg.sandbox.http import FaultRule
from smartseg.sandbox.salesforce.server import SalesforceServer
from smartseg.store import make_engine, upgrade

STREAMS = ("User", "Account", "Contact", "Opportunity", "Case", "Task", "Event")
BULK = ("Contact", "Task")  # 207 and 109 records, over a threshold of 100
RESULT_PAGES = 5 + 3  # 207 and 109 rows in pages of 50
# Custom fields of several types, kept as they come in the `custom` JSON column: a Bulk pull must
# store the same JSON values (numbers, booleans, date-times) as a REST pull.
CUSTOM = {"contact": ["Referrals_Won__c", "HasOptedOutOfEmail", "CreatedDate"]}


@pytest.fixture(autouse=True)
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(salesforce_bulk, "PAGE_ROWS", 50)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _pull(engine: Engine, config: Config, **kwargs: Any) -> PullResult:
    return run_pull(engine, config, clock=_now, sleep=lambda seconds: None, **kwargs)


def _config(
    tmp_path: Path, server: SalesforceServer, make_sf_config: Any, threshold: int
) -> Config:
    return make_sf_config(tmp_path, server, bulk_threshold=threshold, custom_fields=CUSTOM)


@pytest.fixture
def rest_store(
    engine: Engine,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sf_server: SalesforceServer,
    make_sf_config: Any,
) -> Iterator[Engine]:
    """A second store on `engine`'s backend, filled by a plain REST pull (threshold far above the
    org's size): the reference a Bulk pull must match."""
    if engine.dialect.name == "sqlite":
        url = f"sqlite:///{tmp_path / 'rest.db'}"
    else:
        admin = make_engine(request.getfixturevalue("postgres_admin_url"))
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        options = {"options": f"-csearch_path={schema}"}
        url = engine.url.update_query_dict(options).render_as_string(hide_password=False)
    rest = make_engine(url)
    upgrade(rest)
    assert _pull(rest, _config(tmp_path, sf_server, make_sf_config, 50_000)).ok
    yield rest
    rest.dispose()
    if engine.dialect.name != "sqlite":
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _routes(server: SalesforceServer) -> dict[str, int]:
    return {
        route.replace("/services/data/{version}", ""): n
        for route, n in server.request_counts()["by_route"].items()
    }


def _forget_requests(server: SalesforceServer) -> None:
    assert server.tls is not None
    requests.delete(f"{server.url}/_sandbox/requests", verify=str(server.tls.ca_file), timeout=10)


def _full_rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every column the Bulk-pulled tables hold, surrogate ids aside, JSON compared as values."""
    queries = {
        "contact": "SELECT external_key, account_ref, email, first_name, last_name, title, "
        "owner_id, email_opt_out, role, referrals_won, custom, created_at, updated_at, "
        "deleted_at FROM contact",
        "activity": "SELECT source_id, account_ref, contact_ref, kind, status, occurred_at, "
        "duration_minutes, owner_id, subject, custom, updated_at, deleted_at FROM activity",
    }
    with engine.connect() as connection:
        return {
            name: sorted(tuple(map(_plain, row)) for row in connection.execute(sa.text(sql)))
            for name, sql in queries.items()
        }


def _plain(value: Any) -> str:
    """A column value as comparable text; SQLite hands JSON back as text, PostgreSQL as dicts."""
    if isinstance(value, str) and value.startswith("{"):
        value = json.loads(value)
    return json.dumps(value, sort_keys=True, default=str)


def test_a_large_first_pull_uses_bulk_and_stores_what_rest_stores(
    engine: Engine,
    tmp_path: Path,
    sf_server: SalesforceServer,
    make_sf_config: Any,
    store_snapshot: Any,
    rest_store: Engine,
) -> None:
    _forget_requests(sf_server)
    result = _pull(engine, _config(tmp_path, sf_server, make_sf_config, 100))
    assert result.ok, result.as_dict()
    routes = _routes(sf_server)
    assert routes["POST /jobs/query"] == len(BULK)
    assert routes["GET /jobs/query/{id}/results"] == RESULT_PAGES
    assert not any("{locator}" in route for route in routes)
    assert store_snapshot(engine) == store_snapshot(rest_store)
    assert _full_rows(engine) == _full_rows(rest_store)


def test_every_bulk_call_is_counted_under_salesforce(
    engine: Engine, tmp_path: Path, sf_server: SalesforceServer, make_sf_config: Any
) -> None:
    result = _pull(engine, _config(tmp_path, sf_server, make_sf_config, 100))
    routes = _routes(sf_server)
    # Per Bulk object: the REST page that measured it, describe, create, one poll, the pages.
    assert routes["GET /sobjects/{sobject}/describe"] == len(BULK)
    assert routes["GET /jobs/query/{id}"] == len(BULK)
    bulk_calls = sum(n for route, n in routes.items() if "/jobs/" in route or "describe" in route)
    assert bulk_calls == len(BULK) * 3 + RESULT_PAGES
    with engine.connect() as connection:
        api_calls = connection.execute(
            sa.text("SELECT api_calls FROM run WHERE id = :i"), {"i": result.run_id}
        ).scalar_one()
    api_calls = api_calls if isinstance(api_calls, dict) else json.loads(api_calls)
    assert api_calls["salesforce"] == sf_server.request_counts()["total"]


def test_a_second_pull_after_bulk_is_one_rest_query_per_stream(
    engine: Engine,
    tmp_path: Path,
    sf_server: SalesforceServer,
    make_sf_config: Any,
    store_snapshot: Any,
) -> None:
    config = _config(tmp_path, sf_server, make_sf_config, 100)
    assert _pull(engine, config).ok
    before = store_snapshot(engine)
    _forget_requests(sf_server)
    result = _pull(engine, config)
    routes = _routes(sf_server)
    assert routes["GET /queryAll"] == len(STREAMS)
    assert not any("/jobs/" in route for route in routes)
    assert all(r.created == r.updated == r.deleted == 0 for r in result.streams.values())
    assert store_snapshot(engine) == before


def test_a_record_deleted_in_the_org_arrives_deleted_through_bulk(
    engine: Engine, tmp_path: Path, sf_server: SalesforceServer, make_sf_config: Any
) -> None:
    config = _config(tmp_path, sf_server, make_sf_config, 100)
    assert _pull(engine, config).ok
    contact = next(r for r in sf_server.store.tables["Contact"].values() if not r["IsDeleted"])
    assert sf_server.tls is not None
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sf_server.tls.ca_file)
    sf: Any = Salesforce(  # attribute access (sf.Contact) is typed as a union mypy cannot narrow
        session_id=credentials.SALESFORCE_SESSION_ID, instance_url=sf_server.url, session=session
    )
    sf.Contact.delete(contact["Id"])
    _forget_requests(sf_server)
    result = _pull(engine, config, full=True)
    assert _routes(sf_server)["POST /jobs/query"] == len(BULK)
    assert result.streams["salesforce.Contact"].deleted == 1
    with engine.connect() as connection:
        deleted_at = connection.execute(
            sa.text("SELECT deleted_at FROM contact WHERE external_key = :k"),
            {"k": f"salesforce:{contact['Id']}"},
        ).scalar_one()
    assert deleted_at is not None


def test_a_500_on_a_results_page_is_retried_and_the_store_is_the_same(
    engine: Engine,
    tmp_path: Path,
    sf_server: SalesforceServer,
    make_sf_config: Any,
    store_snapshot: Any,
    rest_store: Engine,
) -> None:
    fault = FaultRule(kind="500", path="*/results", after=1, times=2)
    sf_server.faults.set([fault])
    result = _pull(engine, _config(tmp_path, sf_server, make_sf_config, 100))
    assert result.ok, result.as_dict()
    assert fault.fired == 2
    assert store_snapshot(engine) == store_snapshot(rest_store)


def test_a_bulk_pull_that_gives_up_saves_no_cursor_and_the_next_run_pulls_in_full(
    engine: Engine,
    tmp_path: Path,
    sf_server: SalesforceServer,
    make_sf_config: Any,
    store_snapshot: Any,
    rest_store: Engine,
) -> None:
    config = _config(tmp_path, sf_server, make_sf_config, 100)
    # Contacts' second results page answers 500 to every retry: the pull stops after page one.
    sf_server.faults.set([FaultRule(kind="500", path="*/results", after=1, times=6)])
    first = _pull(engine, config)
    assert [k for k, r in first.streams.items() if r.error] == ["salesforce.Contact"]
    assert first.streams["salesforce.Contact"].records == 50
    with engine.connect() as connection:
        cursor = connection.execute(
            sa.text("SELECT cursor FROM stream_state WHERE source = 'salesforce' "
                    "AND stream = 'Contact'")
        ).scalar_one()  # fmt: skip
    assert cursor is None
    sf_server.faults.clear()
    _forget_requests(sf_server)
    assert _pull(engine, config).ok
    assert _routes(sf_server)["POST /jobs/query"] == 1  # Contacts again in full; Tasks are done
    assert store_snapshot(engine) == store_snapshot(rest_store)


def test_a_first_pull_not_over_the_threshold_stays_on_rest(
    engine: Engine, tmp_path: Path, sf_server: SalesforceServer, make_sf_config: Any
) -> None:
    # 207 Contacts, the largest object, equal the threshold: not over it.
    result = _pull(engine, _config(tmp_path, sf_server, make_sf_config, 207))
    assert result.ok
    routes = _routes(sf_server)
    assert routes["GET /queryAll"] == len(STREAMS)
    assert not any("/jobs/" in route for route in routes)


def test_the_cursor_after_bulk_is_the_newest_systemmodstamp_of_the_whole_job(
    engine: Engine, tmp_path: Path, sf_server: SalesforceServer, make_sf_config: Any
) -> None:
    assert _pull(engine, _config(tmp_path, sf_server, make_sf_config, 100)).ok
    with engine.connect() as connection:
        saved: dict[str, str] = dict(
            connection.execute(
                sa.text("SELECT stream, cursor FROM stream_state WHERE source = 'salesforce'")
            ).all()
        )
    for sobject in BULK:
        newest = max(r["SystemModstamp"] for r in sf_server.store.tables[sobject].values())
        assert dt.datetime.fromisoformat(saved[sobject]) == newest
