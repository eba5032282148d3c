"""Fixtures for connector tests: a fake Salesforce org seeded from the generator, and a config
pointing at it, loaded through the real config loader."""

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
from smartseg.sandbox import credentials
from smartseg.sandbox.generator import generate
from smartseg.sandbox.http import TlsFiles, make_tls
from smartseg.sandbox.salesforce.server import SalesforceServer
from smartseg.sandbox.world import World

ANCHOR = dt.date(2026, 6, 30)
REPO_CONFIG = Path(__file__).parents[2] / "config" / "smartseg.yaml"


@pytest.fixture(scope="session")
def small_world() -> World:
    return generate(seed=3, accounts=50, anchor=ANCHOR)


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def sf_server(small_world: World, tls: TlsFiles) -> Iterator[SalesforceServer]:
    """A fresh org per test: tests edit and fault it."""
    with SalesforceServer(small_world, tls=tls) as server:
        yield server  # type: ignore[misc]


def salesforce_config(directory: Path, server: SalesforceServer, **overrides: Any) -> Config:
    """The shipped config's Salesforce section, pointed at `server`, everything else off."""
    shipped = yaml.safe_load(REPO_CONFIG.read_text())
    section = dict(shipped["sources"]["salesforce"])
    assert server.tls is not None
    section.update(instance_url=server.url, login_url=server.url, ca_file=str(server.tls.ca_file))
    section["auth"] = {"flow": "client_credentials", "client_id": credentials.SALESFORCE_CLIENT_ID,
                       "client_secret": {"file": "secrets/sf"}}  # fmt: skip
    section.update(overrides)
    (directory / "secrets").mkdir(exist_ok=True)
    (directory / "secrets" / "sf").write_text(credentials.SALESFORCE_CLIENT_SECRET)
    document = {"sources": {"salesforce": section}, "targets": {}}
    path = directory / "smartseg.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_config(path, env={})


@pytest.fixture
def sf_config(tmp_path: Path, sf_server: SalesforceServer) -> Config:
    return salesforce_config(tmp_path, sf_server)


@pytest.fixture
def make_sf_config() -> Any:
    """`salesforce_config` as a fixture, for tests that need a variant of the config."""
    return salesforce_config


@pytest.fixture
def store_snapshot() -> Any:
    """`snapshot` as a fixture: compares two stores by content."""
    return snapshot


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored row of the pulled tables, with surrogate ids replaced by natural keys, so two
    stores filled in different orders compare equal when they hold the same data."""
    queries = {
        "account": "SELECT external_key, name, domain, edition, status, renewal_date, seats, "
        "owner_id, owner_name, deleted_at FROM account",
        "contact": "SELECT c.external_key, a.external_key, c.email, c.role, c.deleted_at "
        "FROM contact c LEFT JOIN account a ON a.id = c.account_id",
        "opportunity": "SELECT o.source_id, a.external_key, o.stage, o.amount, o.deleted_at "
        "FROM opportunity o LEFT JOIN account a ON a.id = o.account_id",
        "activity": "SELECT t.source_id, a.external_key, c.external_key, t.kind, t.status, "
        "t.occurred_at FROM activity t LEFT JOIN account a ON a.id = t.account_id "
        "LEFT JOIN contact c ON c.id = t.contact_id",
        "ticket": "SELECT t.source_id, a.external_key, t.type, t.severity, t.is_closed "
        "FROM ticket t LEFT JOIN account a ON a.id = t.account_id",
        "crm_user": "SELECT source_id, name, email, active FROM crm_user",
    }
    with engine.connect() as connection:
        return {
            name: sorted((tuple(row) for row in connection.execute(sa.text(sql))), key=repr)
            for name, sql in queries.items()
        }
