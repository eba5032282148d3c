"""A sandbox world pulled into SQLite and PostgreSQL once per session, and helpers that find
the archetype companies (and their contacts) the catalogue tests are written against."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smartseg.config import Config, load_config
from smartseg.connectors.pull import run_pull
from smartseg.sandbox.app import Sandbox
from smartseg.sandbox.generator import ARCHETYPE_KEYS
from smartseg.sandbox.world import World
from smartseg.store import make_engine, upgrade
from smartseg.worker.sandbox_config import write_sandbox_config

ANCHOR = dt.date(2026, 6, 30)
AS_OF = dt.datetime(2026, 6, 30, 6, 0, tzinfo=dt.UTC)
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def as_of() -> dt.datetime:
    """The evaluation time of the catalogue tests: the morning of the world's anchor day."""
    return AS_OF


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    box = Sandbox(
        salesforce_port=0,
        hubspot_port=0,
        stripe_port=0,
        accounts=len(ARCHETYPE_KEYS) + 15,
        seed=11,
        anchor=ANCHOR,
        data_dir=tmp_path_factory.mktemp("sandbox-data"),
    )
    box.start()
    yield box
    box.stop()


@pytest.fixture(scope="session")
def sandbox_config(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Config:
    path = write_sandbox_config(tmp_path_factory.mktemp("config"), sandbox.info())
    return load_config(path, env={})


@pytest.fixture(scope="session", params=BACKENDS)
def pulled(
    request: pytest.FixtureRequest,
    sandbox_config: Config,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Engine]:
    """The whole sandbox pulled into a fresh store, once per backend per session."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('pulled') / 'store.db'}"
        admin = None
        schema = ""
    else:
        admin_url: str = request.getfixturevalue("postgres_admin_url")
        schema = f"s_{uuid.uuid4().hex[:12]}"
        admin = make_engine(admin_url)
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = (
            sa.make_url(admin_url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    engine = make_engine(url)
    upgrade(engine)
    run_pull(
        engine,
        sandbox_config,
        clock=lambda: dt.datetime.combine(ANCHOR, dt.time(5), dt.UTC),
        sleep=lambda s: None,
    )
    yield engine
    engine.dispose()
    if admin is not None:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@dataclass(frozen=True)
class Finder:
    """Store ids of archetype companies ("gold-power") and contacts ("gold-power/Role")."""

    world: World
    engine: Engine

    def account(self, key: str) -> int:
        company = self.world.companies[ARCHETYPE_KEYS.index(key)]
        with self.engine.connect() as connection:
            found = connection.execute(
                sa.text("SELECT id FROM account WHERE domain = :d AND deleted_at IS NULL"),
                {"d": company.domain},
            ).scalar_one()
        return int(found)

    def contact(self, who: str) -> int:
        key, role = who.split("/")
        company = self.world.companies[ARCHETYPE_KEYS.index(key)]
        person = next(p for p in self.world.people if p.company == company.idx and p.role == role)
        with self.engine.connect() as connection:
            found = connection.execute(
                sa.text("SELECT id FROM contact WHERE lower(email) = :e AND deleted_at IS NULL"),
                {"e": person.email.lower()},
            ).scalar_one()
        return int(found)

    def entity(self, who: str) -> tuple[str, int]:
        return ("contact", self.contact(who)) if "/" in who else ("account", self.account(who))


@pytest.fixture(scope="session")
def finder(sandbox: Sandbox, pulled: Engine) -> Finder:
    assert sandbox.world is not None
    return Finder(sandbox.world, pulled)


SHIPPED_SEGMENTS = Path(__file__).parents[2] / "config" / "segments"
