"""The whole sandbox: `smartseg sandbox` as a process, and the Sandbox the tests and demo start."""

from __future__ import annotations

import datetime as dt
import json
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hubspot
import pytest
import requests
import stripe
from simple_salesforce import Salesforce

from smartseg.sandbox.app import Sandbox, SandboxError

ANCHOR = dt.date(2026, 6, 30)


def _session(ca_file: str) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
    session.verify = ca_file
    return session


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`smartseg sandbox` on free ports; yields its JSON line, SIGTERMs it afterwards."""
    data_dir = tmp_path_factory.mktemp("sandbox-data")
    process = subprocess.Popen(
        [sys.executable, "-m", "smartseg", "sandbox", "--salesforce-port", "0",
         "--hubspot-port", "0", "--stripe-port", "0", "--accounts", "50", "--seed", "3",
         "--anchor", ANCHOR.isoformat(), "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 90)
    if not ready:
        process.kill()
        pytest.fail("smartseg sandbox printed nothing within 90 s")
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=10)
        pytest.fail(f"smartseg sandbox exited: {process.stderr.read() if process.stderr else ''}")
    info = json.loads(line)
    info["process"] = process
    yield info
    if process.poll() is None:
        process.kill()


def test_prints_one_json_line_with_everything_a_client_needs(running: dict[str, Any]) -> None:
    for key in ("salesforce", "hubspot", "stripe", "ca_file", "data_dir", "salesforce_session_id",
                "hubspot_token", "stripe_api_key"):  # fmt: skip
        assert running[key], key
    assert running["salesforce"].startswith("https://127.0.0.1:")
    assert Path(running["ca_file"]).is_file()
    assert running["anchor"] == ANCHOR.isoformat()


def test_the_three_sdks_read_the_same_customers(running: dict[str, Any]) -> None:
    sf = Salesforce(session_id=running["salesforce_session_id"], instance_url=running["salesforce"],
                    session=_session(running["ca_file"]))  # fmt: skip
    accounts = sf.query("SELECT Id, Website FROM Account")["records"]
    hs = hubspot.HubSpot(access_token=running["hubspot_token"], host=running["hubspot"])
    companies = hs.crm.companies.basic_api.get_page(limit=100, properties=["salesforce_account_id"])
    client = stripe.StripeClient(
        running["stripe_api_key"], base_addresses={"api": running["stripe"]}
    )
    customers = list(client.v1.customers.list({"limit": 100}).auto_paging_iter())
    sf_ids = {a["Id"] for a in accounts}
    linked = {c.properties.get("salesforce_account_id") for c in companies.results} - {None, ""}
    assert accounts and companies.results and customers
    assert linked and linked <= sf_ids
    assert {c.metadata.to_dict().get("sf_account_id") for c in customers} & sf_ids


def test_exports_are_written_to_the_data_dir(running: dict[str, Any]) -> None:
    data_dir = Path(running["data_dir"])
    assert list((data_dir / "usage" / "daily").glob("*.parquet"))
    assert list((data_dir / "usage" / "events").glob("*.csv"))
    assert (data_dir / "nps" / "nps_responses.csv").is_file()


def test_each_server_counts_the_api_requests_it_served(running: dict[str, Any]) -> None:
    for name in ("salesforce", "hubspot", "stripe"):
        session = _session(running["ca_file"])
        session.delete(f"{running[name]}/_sandbox/requests").raise_for_status()
        counts = session.get(f"{running[name]}/_sandbox/requests").json()
        assert counts == {"total": 0, "by_route": {}}
    client = stripe.StripeClient(
        running["stripe_api_key"], base_addresses={"api": running["stripe"]}
    )
    client.v1.customers.list({"limit": 3})
    counts = requests.get(f"{running['stripe']}/_sandbox/requests", timeout=10).json()
    assert counts == {"total": 1, "by_route": {"GET /v1/customers": 1}}


def test_sigterm_stops_it_cleanly(running: dict[str, Any]) -> None:
    process: subprocess.Popen[str] = running["process"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(running["stripe"].rsplit(":", 1)[1])), timeout=2)


def test_same_seed_gives_the_same_data(tmp_path: Path) -> None:
    def first_accounts(directory: Path) -> list[tuple[str, str]]:
        with Sandbox(salesforce_port=0, hubspot_port=0, stripe_port=0, accounts=20, seed=11,
                     anchor=ANCHOR, data_dir=directory) as box:  # fmt: skip
            assert box.salesforce is not None
            rows = box.salesforce.store.tables["Account"].values()
            return sorted((r["Id"], r["Name"]) for r in rows)

    assert first_accounts(tmp_path / "a") == first_accounts(tmp_path / "b")


def test_faults_given_at_start_apply_to_the_named_server(tmp_path: Path) -> None:
    with Sandbox(salesforce_port=0, hubspot_port=0, stripe_port=0, accounts=10, anchor=ANCHOR,
                 data_dir=tmp_path, faults="stripe.429:times=1:retry_after=3") as box:  # fmt: skip
        info = box.info()
        client = stripe.StripeClient(info.stripe_api_key, base_addresses={"api": info.stripe})
        with pytest.raises(stripe.RateLimitError):
            client.v1.customers.list({"limit": 1})
        assert client.v1.customers.list({"limit": 1}).data
        hs = hubspot.HubSpot(access_token=info.hubspot_token, host=info.hubspot)
        assert hs.crm.companies.basic_api.get_page(limit=1).results


def test_an_unknown_fault_server_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="unknown server"):
        Sandbox(data_dir=tmp_path, faults="zendesk.429").start()


def test_a_port_in_use_names_the_flag_to_change(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        box = Sandbox(
            salesforce_port=0, hubspot_port=port, stripe_port=0, accounts=5, data_dir=tmp_path
        )
        with pytest.raises(SandboxError, match="--hubspot-port"):
            box.start()
    assert box.salesforce is None  # nothing left running
