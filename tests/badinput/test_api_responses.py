"""Odd API responses from the sandbox: HTML error pages, bodies cut short, envelopes missing
their list, records missing a field or carrying the wrong type.

Each case switches on one sandbox fault (`FaultRule` kinds "html", "truncate" and "edit") for
one source and pulls it. A response the client cannot use fails its stream with a message that
names the source and says what was wrong, after the retries; a single bad record is skipped (or
stored without the bad value) and reported by id, and the other records of its page are stored.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from smartseg.config import Config, load_config
from smartseg.connectors.pull import run_pull
from smartseg.connectors.retry import RetryPolicy
from smartseg.connectors.runner import PullResult
from smartseg.sandbox.app import Sandbox
from smartseg.sandbox.http import FaultRule
from smartseg.store import make_engine, upgrade
from smartseg.worker.commands import print_pull
from smartseg.worker.sandbox_config import write_sandbox_config

ANCHOR = dt.date(2026, 6, 30)
NOW = dt.datetime(2026, 6, 30, 7, 0, tzinfo=dt.UTC)
QUICK = RetryPolicy(attempts=2, base=0.0)
# Where each source's records land, to count what a pull stored.
STORED = {
    "salesforce.Account": "SELECT count(*) FROM account WHERE external_key LIKE 'salesforce:%'",
    "hubspot.companies": "SELECT count(*) FROM account WHERE external_key LIKE 'hubspot:%'",
    "stripe.customers": "SELECT count(*) FROM source_link WHERE object = 'customer'",
    "stripe.subscriptions": "SELECT count(*) FROM subscription",
}
ROUTES = {
    "salesforce": "*/query*",
    "hubspot": "/crm/v3/objects/{objectType}",
    "stripe.customers": "/v1/customers",
    "stripe.subscriptions": "/v1/subscriptions",
}
Edit = Callable[[Any], Any]


def _first(records_key: str, change: Callable[[dict[str, Any]], None]) -> Edit:
    """An edit that changes the first record of every page (a list of `records_key`)."""

    def edit(body: Any) -> Any:
        if isinstance(body, dict) and body.get(records_key):
            change(body[records_key][0])
        return body

    return edit


def _drop(key: str) -> Edit:
    def edit(body: Any) -> Any:
        body.pop(key, None)
        return body

    return edit


@dataclass(frozen=True)
class Case:
    """A fault on one source's list route and what the pull must say about `stream`.

    `error` is the stream's error (None: the stream succeeds); `issue` is (record id, reason
    fragment) of the one record reported; `lost` is how many records are not stored.
    """

    id: str
    stream: str
    rule: FaultRule
    error: str | None = None
    issue: tuple[str, str] | None = None
    lost: int = 0

    @property
    def source(self) -> str:
        return self.stream.partition(".")[0]


def _fault(kind: str, route: str, **options: Any) -> FaultRule:
    return FaultRule(kind, path=ROUTES[route], **options)


CASES = [
    Case(
        "salesforce-html-502",
        "salesforce.Account",
        _fault("html", "salesforce"),
        error="Salesforce answered 502 (gave up after 2 attempts)",
    ),
    Case(
        "hubspot-html-502",
        "hubspot.companies",
        _fault("html", "hubspot"),
        error="HubSpot answered 502 (gave up after 2 attempts)",
    ),
    Case(
        "stripe-html-503",
        "stripe.customers",
        _fault("html", "stripe.customers", status=503),
        error="Stripe answered 503 (gave up after 2 attempts)",
    ),
    Case(
        "hubspot-html-page-with-200",
        "hubspot.companies",
        _fault("html", "hubspot", status=200),
        error="HubSpot answered without its list of results (a cut-off or non-JSON body) (gave "
        "up after 2 attempts)",
    ),
    Case(
        "salesforce-truncated-json",
        "salesforce.Account",
        _fault("truncate", "salesforce"),
        error="the response was not complete JSON (gave up after 2 attempts)",
    ),
    Case(
        "hubspot-truncated-json",
        "hubspot.companies",
        _fault("truncate", "hubspot"),
        error="HubSpot answered without its list of results (a cut-off or non-JSON body) (gave "
        "up after 2 attempts)",
    ),
    Case(
        "stripe-truncated-json",
        "stripe.customers",
        _fault("truncate", "stripe.customers"),
        error="Stripe's response was not complete JSON (gave up after 2 attempts)",
    ),
    Case(
        "salesforce-page-without-records",
        "salesforce.Account",
        _fault("edit", "salesforce", edit=_drop("records")),
        error="Salesforce answered a query without its list of records (gave up after 2 attempts)",
    ),
    Case(
        "stripe-list-without-data",
        "stripe.customers",
        _fault("edit", "stripe.customers", edit=_drop("data")),
        error="Stripe's response did not have its documented shape (AttributeError: data) (gave "
        "up after 2 attempts)",
    ),
    Case(
        "hubspot-properties-not-an-object",
        "hubspot.companies",
        _fault("edit", "hubspot", edit=_first("results", lambda r: r.update(properties="x"))),
        error="HubSpot's response did not have its documented shape (AttributeError: 'str' "
        "object has no attribute 'items') (gave up after 2 attempts)",
    ),
    Case(
        "hubspot-date-not-a-date",
        "hubspot.companies",
        _fault("edit", "hubspot", edit=_first("results", lambda r: r.update(updatedAt="soon"))),
        error="HubSpot's response could not be read (Failed to parse `soon` as datetime "
        "object) (gave up after 2 attempts)",
    ),
    Case(
        "salesforce-record-without-id",
        "salesforce.Account",
        _fault("edit", "salesforce", edit=_first("records", lambda r: r.pop("Id"))),
        issue=("?", "Account record without an Id was skipped"),
        lost=1,
    ),
    Case(
        "salesforce-number-not-a-number",
        "salesforce.Account",
        _fault(
            "edit",
            "salesforce",
            edit=_first("records", lambda r: r.update(Id="001LOTS", NumberOfEmployees="lots")),
        ),
        issue=("001LOTS", "employees: expected a whole number, got 'lots'"),
    ),
    Case(
        "hubspot-record-without-id",
        "hubspot.companies",
        _fault("edit", "hubspot", edit=_first("results", lambda r: r.pop("id"))),
        issue=("?", "a companies record without an id was skipped"),
        lost=1,
    ),
    Case(
        "hubspot-number-not-a-number",
        "hubspot.companies",
        _fault(
            "edit",
            "hubspot",
            edit=_first(
                "results",
                lambda r: r.update(id="777") or r["properties"].update(numberofemployees="lots"),
            ),
        ),
        issue=("777", "employees: expected a whole number, got 'lots'"),
    ),
    Case(
        "stripe-customer-without-id",
        "stripe.customers",
        _fault("edit", "stripe.customers", edit=_first("data", lambda r: r.pop("id"))),
        issue=("?", "a customer without an id was skipped"),
        lost=1,
    ),
    Case(
        "stripe-metadata-not-an-object",
        "stripe.customers",
        _fault(
            "edit",
            "stripe.customers",
            edit=_first("data", lambda r: r.update(id="cus_ODD", metadata="sf=001")),
        ),
        issue=("cus_ODD", "metadata is not an object; matched without it"),
    ),
    Case(
        "stripe-subscription-without-id",
        "stripe.subscriptions",
        _fault("edit", "stripe.subscriptions", edit=_first("data", lambda r: r.pop("id"))),
        issue=("?", "a subscription without an id was skipped"),
        lost=1,
    ),
]


def _config(folder: Path, box: Sandbox, source: str) -> Config:
    """The shipped config aimed at `box`, reading `source` alone (a few objects, for speed);
    HubSpot alone is the CRM of record, so its company fields are stored and checked."""
    path = write_sandbox_config(folder, box.info())
    document = yaml.safe_load(path.read_text())
    sources = document["sources"]
    for name in ("salesforce", "hubspot", "stripe"):
        sources[name]["enabled"] = name == source
    sources["salesforce"]["objects"] = ["Account"]
    sources["hubspot"]["objects"] = ["companies"]
    document["targets"] = {}
    path.write_text(yaml.safe_dump(document))
    return load_config(path, env={})


@dataclass
class World:
    box: Sandbox
    configs: dict[str, Config]
    template: Path
    baseline: dict[str, int]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One small sandbox, a config per source, a migrated empty store to copy, and how many
    records each stream stores when nothing is wrong."""
    folder = tmp_path_factory.mktemp("api-corpus")
    with Sandbox(
        salesforce_port=0, hubspot_port=0, stripe_port=0, accounts=8, seed=5, anchor=ANCHOR,
        data_dir=folder / "data",
    ) as box:  # fmt: skip
        configs = {
            source: _config(folder / source, box, source)
            for source in ("salesforce", "hubspot", "stripe")
        }
        template = folder / "empty.db"
        engine = make_engine(f"sqlite:///{template}")
        upgrade(engine)
        engine.dispose()
        state = World(box, configs, template, {})
        for source in configs:
            result, counts = _pull(state, source, folder / f"baseline-{source}.db")
            assert result.ok, result.as_dict()
            state.baseline.update(counts)
        yield state


def _pull(world: World, source: str, store: Path) -> tuple[PullResult, dict[str, int]]:
    shutil.copy(world.template, store)
    engine = make_engine(f"sqlite:///{store}")
    try:
        result = run_pull(
            engine, world.configs[source], clock=lambda: NOW, sources=[source], policy=QUICK,
            sleep=lambda s: None,
        )  # fmt: skip
        with engine.connect() as connection:
            counts = {
                stream: int(connection.execute(sa.text(sql)).scalar_one())
                for stream, sql in STORED.items()
                if stream.startswith(source)
            }
    finally:
        engine.dispose()
    return result, counts


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_the_pull_names_what_was_wrong_and_keeps_the_good_records(
    case: Case,
    world: World,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = getattr(world.box, case.source)
    server.faults.set([case.rule])
    try:
        result, counts = _pull(world, case.source, tmp_path / "store.db")
    finally:
        server.faults.clear()
    report = result.streams[case.stream]
    print_pull(result.as_dict())
    shown = capsys.readouterr().out + caplog.text
    issues = [(i["id"], i["reason"]) for i in report.issues]
    if case.error is not None:
        assert (report.error, "Traceback" in shown) == (case.error, False)
        assert f"{case.stream}\t" in shown and case.error in shown
        return
    expected_id, reason = case.issue or ("", "")
    found = [r for i, r in issues if i == expected_id and reason in r]
    stored = world.baseline[case.stream] - case.lost
    assert (report.error, len(found), counts[case.stream]) == (None, 1, stored), issues
