"""Fixtures shared by the whole suite: a migrated database on SQLite and on PostgreSQL.

PostgreSQL comes from SMARTSEG_TEST_POSTGRES_URL (an admin URL; `.ci/run` starts a server and sets
it). Each test gets its own schema, so tests never see each other's rows. Outside CI a missing
server skips the PostgreSQL half; in CI (CI=true) it fails, so the PostgreSQL tests can never
silently stop running.

Also the options of the reliability tests (`--fault-seed`, `--soak-seeds`), and the rule that
keeps `soak` tests out of every run that does not ask for them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smartseg.store import make_engine, upgrade

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    url = os.environ.get("SMARTSEG_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("SMARTSEG_TEST_POSTGRES_URL is not set in CI: PostgreSQL tests must run")
        pytest.skip("no PostgreSQL: set SMARTSEG_TEST_POSTGRES_URL to run these")
    return url


@pytest.fixture(params=BACKENDS)
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty database URL, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'smartseg.db'}"
        return
    admin_url: str = request.getfixturevalue("postgres_admin_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(admin_url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.make_url(admin_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated engine, once per backend."""
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("smartseg reliability")
    group.addoption(
        "--fault-seed",
        action="append",
        type=int,
        default=[],
        help="Run the fault and crash tests for this seed only (repeatable); "
        "SMARTSEG_FAULT_SEEDS=1,2,3 does the same.",
    )
    group.addoption(
        "--soak-seeds",
        type=int,
        default=int(os.environ.get("SMARTSEG_SOAK_SEEDS", "200")),
        help="How many seeds `pytest -m soak` runs (default 200, or SMARTSEG_SOAK_SEEDS).",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Soak tests run only when asked for by name (`-m soak`), never in the default suite.

    Done here rather than with `-m "not soak"` in addopts, which any other `-m` on the command
    line (say `-m postgres`) would replace, quietly pulling two hundred soak seeds in."""
    if "soak" in (config.option.markexpr or ""):
        return
    soak = [item for item in items if item.get_closest_marker("soak") is not None]
    if soak:
        config.hook.pytest_deselected(items=soak)
        items[:] = [item for item in items if item.get_closest_marker("soak") is None]
