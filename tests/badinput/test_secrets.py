"""No secret ever leaves smartseg: not in output, logs, errors, run rows or any table.

The sandbox is given recognisable credentials (every one contains S3CRET), the config reads
them from the environment, and the whole life of a store runs with DEBUG logs: upgrade, pull,
evaluate, CRM setup, sync, status; then pull, CRM setup and status after the credentials were
revoked (401s everywhere) and against an unreachable database whose URL carries a password, in
plain and JSON log lines. Everything
printed, every log line and every row of every table is then searched for the markers, and for
the session tokens the sandbox issued while it ran.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from smartseg.sandbox import credentials
from smartseg.sandbox.app import Sandbox
from smartseg.sandbox.generator import ARCHETYPE_KEYS
from smartseg.store import make_engine
from smartseg.worker.sandbox_config import write_sandbox_config

from .conftest import Cli

MARKER = "S3CRET"
SECRETS = {
    "SMARTSEG_SF_PASSWORD": f"{MARKER}-sf-password-4417",
    "SMARTSEG_SF_SECURITY_TOKEN": f"{MARKER}-sf-token-9921",
    "SMARTSEG_SF_CLIENT_SECRET": f"{MARKER}-sf-client-7730",
    "SMARTSEG_HS_TOKEN": f"{MARKER}-hs-token-5512",
    "SMARTSEG_STRIPE_KEY": f"{MARKER}-stripe-key-3388",
}
DB_PASSWORD = f"{MARKER}-db-password-6640"
ISSUED_TOKEN = "!sandbox-oauth-"  # every Salesforce session the sandbox hands out has this
KEPT_SEGMENTS = ("basics.yaml", "metrics.yaml", "lifecycle.yaml", "actions.yaml")  # for playbooks


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    """A sandbox that accepts only the marked credentials."""
    sandbox = Sandbox(
        salesforce_port=0, hubspot_port=0, stripe_port=0, accounts=len(ARCHETYPE_KEYS),
        seed=17, anchor=dt.date(2026, 6, 30), data_dir=tmp_path / "data",
    )  # fmt: skip
    with sandbox:
        assert sandbox.salesforce and sandbox.hubspot and sandbox.stripe
        sandbox.salesforce.DEFAULT_CLIENT_SECRET = SECRETS["SMARTSEG_SF_CLIENT_SECRET"]  # type: ignore[misc]
        sandbox.salesforce.DEFAULT_PASSWORD = SECRETS["SMARTSEG_SF_PASSWORD"]  # type: ignore[misc]
        sandbox.salesforce.DEFAULT_SECURITY_TOKEN = SECRETS["SMARTSEG_SF_SECURITY_TOKEN"]  # type: ignore[misc]
        sandbox.salesforce.expire_sessions()  # the well-known session id no longer opens it
        sandbox.hubspot.reset_token(SECRETS["SMARTSEG_HS_TOKEN"])
        sandbox.stripe.api_keys = {SECRETS["SMARTSEG_STRIPE_KEY"]}
        yield sandbox


def _config(folder: Path, box: Sandbox) -> Path:
    """The shipped config aimed at `box`, every credential read from the environment."""
    path = write_sandbox_config(folder, box.info())
    for rules in (folder / "segments").glob("*.yaml"):
        if rules.name not in KEPT_SEGMENTS:
            rules.unlink()
    document = yaml.safe_load(path.read_text())
    sources = document["sources"]
    sources["salesforce"]["auth"] = {
        "flow": "password",
        "username": credentials.SALESFORCE_USERNAME,
        "password": {"env": "SMARTSEG_SF_PASSWORD"},
        "security_token": {"env": "SMARTSEG_SF_SECURITY_TOKEN"},
        "client_id": credentials.SALESFORCE_CLIENT_ID,
        "client_secret": {"env": "SMARTSEG_SF_CLIENT_SECRET"},
    }
    sources["hubspot"]["access_token"] = {"env": "SMARTSEG_HS_TOKEN"}
    sources["stripe"]["api_key"] = {"env": "SMARTSEG_STRIPE_KEY"}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _revoke(box: Sandbox) -> None:
    """Every credential smartseg holds stops working, as when an admin rotates them."""
    assert box.salesforce and box.hubspot and box.stripe
    box.salesforce.DEFAULT_CLIENT_SECRET = "rotated-client-secret"  # type: ignore[misc]
    box.salesforce.expire_sessions()
    box.hubspot.reset_token("rotated-token")
    box.stripe.api_keys = {"rotated-key"}


def _every_row(url: str) -> str:
    """Every row of every table in the store, as text."""
    engine = make_engine(url)
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.connect() as connection:
            return "\n".join(
                f"{name}: {row}"
                for name, table in sorted(metadata.tables.items())
                for row in connection.execute(sa.select(table))
            )
    finally:
        engine.dispose()


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    ("db_url", "log_format"),
    [("sqlite", "plain"), pytest.param("postgresql", "json", marks=pytest.mark.postgres)],
    indirect=["db_url"],
)
def test_no_secret_reaches_output_logs_runs_or_tables(
    db_url: str, log_format: str, box: Sandbox, tmp_path: Path, cli: Cli
) -> None:
    url = sa.make_url(db_url)
    if url.get_backend_name() == "postgresql":  # the test server trusts local connections
        url = url.set(password=DB_PASSWORD)
    store = url.render_as_string(hide_password=False)
    config = str(_config(tmp_path / "config", box))
    env = {**SECRETS, "SMARTSEG_DATABASE_URL": store, "SMARTSEG_LOG_FORMAT": log_format}
    seen: list[str] = []

    def smartseg(*args: str, **extra: str) -> int:
        done = cli("--debug", "--config", config, *args, env={**env, **extra})
        seen.append(f"$ smartseg {' '.join(args)} -> {done.code}\n{done.out}{done.err}")
        return done.code

    steps = [("db", "upgrade"), ("pull",), ("evaluate",), ("crm", "setup"), ("sync",)]
    assert [smartseg(*step) for step in steps] == [0] * len(steps), "\n".join(seen)[-5000:]
    assert smartseg("status", "--json") == 0
    assert smartseg("status") == 0
    _revoke(box)
    unreachable = f"postgresql://smartseg:{DB_PASSWORD}@127.0.0.1:1/smartseg"
    for each in ("plain", "json"):  # the failures, in both log formats
        fmt = {"SMARTSEG_LOG_FORMAT": each}
        assert smartseg("pull", "salesforce", "hubspot", "stripe", "--full", **fmt) == 2
        assert smartseg("crm", "setup", **fmt) != 0  # the CRMs refuse to describe their fields
        assert smartseg("status", "--json", **fmt) == 0
        assert smartseg("status", SMARTSEG_DATABASE_URL=unreachable, **fmt) == 2
    everything = "\n".join(seen) + "\n" + _every_row(store)
    for line in (" DEBUG urllib3.", '"level": "DEBUG", "logger": "urllib3.', "refused"):
        assert line in everything  # the runs were logged at DEBUG, failures included
    leaks = [
        line
        for line in everything.splitlines()
        if MARKER in line or ISSUED_TOKEN in line or DB_PASSWORD in line
    ]
    assert leaks == []
