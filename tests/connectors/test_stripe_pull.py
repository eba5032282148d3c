"""Pulling the fake Stripe account with the real stripe-python: exact, incremental, safe."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
import stripe
import yaml
from sqlalchemy.engine import Engine

from smartseg.config import Config, load_config
from smartseg.connectors import stripe_source
from smartseg.connectors.pull import run_pull
from smartseg.connectors.runner import PullResult
from smartseg.sandbox.http import FaultRule
from smartseg.sandbox.salesforce.load import LoadedIds
from smartseg.sandbox.stripe_api import StripeServer
from smartseg.sandbox.world import World
from smartseg.store import make_engine, upgrade
from smartseg.store.models import Invoice

STREAMS = ("stripe.customers", "stripe.subscriptions", "stripe.invoices")


class _Clock:
    """One settable clock for the server (event times) and the pull (cursor, MRR as of)."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock(small_world: World) -> _Clock:
    return _Clock(small_world.anchor_time)


@pytest.fixture
def st_server(small_world: World, clock: _Clock) -> Iterator[StripeServer]:
    server = StripeServer(small_world, clock=clock, salesforce_id=LoadedIds().of)
    server.start()
    yield server
    server.stop()


def _config(
    directory: Path, server: StripeServer, key: str = StripeServer.DEFAULT_API_KEY
) -> Config:
    (directory / "stripe_key").write_text(key)
    section = {"api_base": server.url, "api_key": {"file": "stripe_key"}}
    path = directory / "smartseg.yaml"
    path.write_text(yaml.safe_dump({"sources": {"stripe": section}, "targets": {}}))
    return load_config(path, env={})


@pytest.fixture
def st_config(tmp_path: Path, st_server: StripeServer) -> Config:
    return _config(tmp_path, st_server)


def _pull(engine: Engine, config: Config, clock: _Clock, **kwargs: Any) -> PullResult:
    kwargs.setdefault("sleep", lambda seconds: None)
    return run_pull(engine, config, clock=clock, **kwargs)


def _sdk(server: StripeServer) -> Any:
    return stripe.StripeClient(server.DEFAULT_API_KEY, base_addresses={"api": server.url})


def _objects(server: StripeServer, resource: str) -> list[dict[str, Any]]:
    body = requests.get(f"{server.url}/_sandbox/objects/{resource}", timeout=10).json()
    return list(body["data"])


def _requests(server: StripeServer) -> dict[str, int]:
    return dict(requests.get(f"{server.url}/_sandbox/requests", timeout=10).json()["by_route"])


def _reset_requests(server: StripeServer) -> None:
    requests.delete(f"{server.url}/_sandbox/requests", timeout=10)


def _snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    queries = {
        "source_link": "SELECT source, object, source_id, hint FROM source_link",
        "subscription": "SELECT source_id, account_ref, customer_ref, status, product, plan, "
        "quantity, unit_amount, discount_percent, mrr, currency, current_period_end, canceled_at "
        "FROM subscription",
        "invoice": "SELECT source_id, account_ref, customer_ref, subscription_ref, status, "
        "currency, amount_due, amount_paid, amount_remaining, created_at, due_at, paid_at, "
        "period_start, period_end, attempt_count, updated_at FROM invoice",
    }
    with engine.connect() as connection:
        return {
            name: sorted((tuple(row) for row in connection.execute(sa.text(sql))), key=repr)
            for name, sql in queries.items()
        }


def _subscriptions(engine: Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT * FROM subscription"))
        return {row.source_id: row for row in rows}


def _hints(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(sa.column("source_id"), sa.column("hint", sa.JSON)).select_from(
                sa.table("source_link")
            )
        )
        return {row.source_id: row.hint for row in rows}


def _world_mrr(seats: int, cents: int, interval: str, discount: float | None) -> Decimal:
    """Seats x list price per month x (1 - discount), as the world priced the company."""
    per_month = Decimal(cents) / 100 / (12 if interval == "year" else 1)
    factor = 1 - Decimal(str(discount or 0)) / 100
    return (seats * per_month * factor).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def test_a_full_pull_stores_exactly_the_accounts_customers_and_subscriptions_with_mrr(
    engine: Engine, small_world: World, st_server: StripeServer, st_config: Config, clock: _Clock
) -> None:
    result = _pull(engine, st_config, clock)
    assert result.ok, result.as_dict()
    customers = {c["id"]: c for c in _objects(st_server, "customers")}
    hints = _hints(engine)
    assert set(hints) == set(customers)
    for customer_id, customer in customers.items():
        metadata = customer["metadata"]
        assert hints[customer_id]["workspace_id"] == metadata["workspace_id"]
        assert hints[customer_id].get("account_ref") == (
            f"salesforce:{metadata['sf_account_id']}" if "sf_account_id" in metadata else None
        )
        assert hints[customer_id]["email_domain"] == customer["email"].split("@")[1]
    stored = _subscriptions(engine)
    assert set(stored) == {s["id"] for s in _objects(st_server, "subscriptions")}
    companies = {c.workspace_id: c for c in small_world.companies}
    for row in stored.values():
        assert row.account_ref == f"stripe:{row.customer_ref}"
        company = companies[hints[row.customer_ref]["workspace_id"]]
        assert row.quantity == company.seats
        assert company.billing_interval and company.unit_amount_cents is not None
        counted = company.subscription_status in ("active", "past_due")
        expected = _world_mrr(company.seats, company.unit_amount_cents,
                              company.billing_interval, company.discount_percent)  # fmt: skip
        assert Decimal(str(row.mrr)) == (expected if counted else 0), company.name
    assert all(report.skipped == 0 for report in result.streams.values())


def _invoices(engine: Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        # Through the model's types, so SQLite hands back aware datetimes and Decimals too.
        rows = connection.execute(sa.select(Invoice.__table__))  # type: ignore[attr-defined]
        return {row.source_id: row for row in rows}


def _assert_stored_as_served(row: Any, served: dict[str, Any]) -> None:
    """The row holds the server's invoice: amounts in major units, times as UTC."""

    def when(ts: int | None) -> dt.datetime | None:
        return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC)

    per_unit = 1 if served["currency"] == "jpy" else 100
    assert row.account_ref == f"stripe:{served['customer']}"
    assert row.customer_ref == served["customer"]
    assert row.subscription_ref == served["parent"]["subscription_details"]["subscription"]
    assert (row.status, row.currency) == (served["status"], served["currency"])
    for name in ("amount_due", "amount_paid", "amount_remaining"):
        assert Decimal(str(getattr(row, name))) == Decimal(served[name]) / per_unit, name
    assert row.created_at == when(served["created"])
    assert row.due_at == when(served["due_date"])
    assert row.paid_at == when(served["status_transitions"]["paid_at"])
    assert (row.period_start, row.period_end) == (
        when(served["period_start"]),
        when(served["period_end"]),
    )
    assert row.attempt_count == served["attempt_count"]
    assert row.updated_at is None


def test_a_full_pull_stores_exactly_the_servers_invoices_with_amounts_and_statuses(
    engine: Engine, st_server: StripeServer, st_config: Config, clock: _Clock
) -> None:
    result = _pull(engine, st_config, clock)
    assert result.ok, result.as_dict()
    served = {i["id"]: i for i in _objects(st_server, "invoices")}
    stored = _invoices(engine)
    assert served and set(stored) == set(served)
    for invoice_id, invoice in served.items():
        _assert_stored_as_served(stored[invoice_id], invoice)
    assert result.streams["stripe.invoices"].skipped == 0


def test_a_new_subscriptions_paid_invoice_arrives_on_the_next_pull_in_whole_yen(
    engine: Engine, st_server: StripeServer, st_config: Config, clock: _Clock
) -> None:
    # The sandbox cannot pay an open invoice through its API; a new subscription bills one.
    _pull(engine, st_config, clock)
    sdk = _sdk(st_server)
    clock.advance(minutes=10)
    product = _objects(st_server, "prices")[0]["product"]
    price = sdk.v1.prices.create({"currency": "jpy", "unit_amount": 1500, "product": product,
                                  "recurring": {"interval": "month"}})  # fmt: skip
    customer = sdk.v1.customers.create({"email": "kaito@example.jp", "name": "Kaito"})
    sub = sdk.v1.subscriptions.create(
        {"customer": customer.id, "items": [{"price": price.id, "quantity": 3}]}
    )
    clock.advance(minutes=10)
    _reset_requests(st_server)
    result = _pull(engine, st_config, clock)
    assert result.streams["stripe.invoices"].created == 1
    # One events.list per stream; the new subscription and its invoice fetched once each.
    assert _requests(st_server) == {
        "GET /v1/events": 3,
        "GET /v1/subscriptions/{id}": 1,
        "GET /v1/invoices/{id}": 1,
    }
    served = next(i for i in _objects(st_server, "invoices") if i["customer"] == customer.id)
    row = _invoices(engine)[served["id"]]
    _assert_stored_as_served(row, served)
    assert (row.status, row.subscription_ref, row.paid_at) == (
        "paid",
        sub.id,
        clock.now - dt.timedelta(minutes=10),
    )
    assert Decimal(str(row.amount_paid)) == 4500


def test_a_second_pull_makes_one_request_per_stream_and_changes_nothing(
    engine: Engine, st_server: StripeServer, st_config: Config, clock: _Clock
) -> None:
    _pull(engine, st_config, clock)
    before = _snapshot(engine)
    _reset_requests(st_server)
    clock.advance(hours=1)
    result = _pull(engine, st_config, clock)
    assert _requests(st_server) == {"GET /v1/events": len(STREAMS)}
    assert all(r.created == r.updated == r.records == 0 for r in result.streams.values())
    assert _snapshot(engine) == before


def test_a_quantity_change_and_a_cancellation_reach_the_store_with_their_new_mrr(
    engine: Engine, st_server: StripeServer, st_config: Config, clock: _Clock
) -> None:
    _pull(engine, st_config, clock)
    before = _subscriptions(engine)
    active = [s for s in before.values() if s.status == "active" and Decimal(str(s.mrr)) > 0]
    grown, canceled = active[0], active[1]
    sdk = _sdk(st_server)
    clock.advance(minutes=10)
    item = sdk.v1.subscriptions.retrieve(grown.source_id)["items"].data[0]
    sdk.v1.subscriptions.update(
        grown.source_id, {"items": [{"id": item.id, "quantity": grown.quantity * 2}]}
    )
    sdk.v1.subscriptions.cancel(canceled.source_id)
    clock.advance(minutes=10)
    _reset_requests(st_server)
    result = _pull(engine, st_config, clock)
    assert result.streams["stripe.subscriptions"].updated == 2
    # One events.list per stream, then the two changed subscriptions fetched once each.
    assert _requests(st_server) == {"GET /v1/events": 3, "GET /v1/subscriptions/{id}": 2}
    after = _subscriptions(engine)
    assert after[grown.source_id].quantity == grown.quantity * 2
    assert Decimal(str(after[grown.source_id].mrr)) == Decimal(str(grown.mrr)) * 2
    assert after[canceled.source_id].status == "canceled"
    assert Decimal(str(after[canceled.source_id].mrr)) == 0


def test_a_deleted_customer_keeps_its_link_marked_deleted(
    engine: Engine, st_server: StripeServer, st_config: Config, clock: _Clock
) -> None:
    _pull(engine, st_config, clock)
    customer = _objects(st_server, "customers")[0]
    clock.advance(minutes=10)
    _sdk(st_server).v1.customers.delete(customer["id"])
    clock.advance(minutes=10)
    _pull(engine, st_config, clock)
    hint = _hints(engine)[customer["id"]]
    assert hint["deleted"] is True
    assert hint["workspace_id"] == customer["metadata"]["workspace_id"]


@pytest.mark.parametrize(
    "fault",
    [
        FaultRule(kind="429", path="/v1/*", times=2, retry_after=0),
        FaultRule(kind="500", path="/v1/*", times=2),
        FaultRule(kind="drop", path="/v1/*", times=2),
        FaultRule(kind="500", path="/v1/invoices", times=3),
    ],
    ids=["429", "500", "dropped-connection", "500-on-invoices"],
)
def test_a_pull_through_faults_ends_like_a_clean_pull(
    tmp_path: Path, st_server: StripeServer, st_config: Config, clock: _Clock, fault: FaultRule
) -> None:
    clean = make_engine(f"sqlite:///{tmp_path / 'clean.db'}")
    upgrade(clean)
    assert _pull(clean, st_config, clock).ok
    faulted = make_engine(f"sqlite:///{tmp_path / 'faulted.db'}")
    upgrade(faulted)
    st_server.faults.set([fault])
    waits: list[float] = []
    result = _pull(faulted, st_config, clock, sleep=waits.append)
    assert result.ok, result.as_dict()
    assert fault.fired == fault.times == len(waits)
    assert _snapshot(faulted) == _snapshot(clean)


def test_a_listing_that_gives_up_resumes_after_its_last_committed_page(
    tmp_path: Path,
    st_server: StripeServer,
    st_config: Config,
    clock: _Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stripe_source, "PAGE_SIZE", 10)
    clean = make_engine(f"sqlite:///{tmp_path / 'clean.db'}")
    upgrade(clean)
    _pull(clean, st_config, clock)
    broken = make_engine(f"sqlite:///{tmp_path / 'broken.db'}")
    upgrade(broken)
    # Two pages commit, then every attempt at the third answers 500 until the call gives up.
    st_server.faults.set([FaultRule(kind="500", path="/v1/subscriptions", after=2, times=6)])
    first = _pull(broken, st_config, clock)
    assert "gave up after" in (first.streams["stripe.subscriptions"].error or "")
    st_server.faults.clear()
    _reset_requests(st_server)
    assert _pull(broken, st_config, clock).ok
    pages = -(-len(_objects(st_server, "subscriptions")) // 10)
    assert _requests(st_server)["GET /v1/subscriptions"] == pages - 2
    assert _snapshot(broken) == _snapshot(clean)


def test_a_wrong_api_key_is_a_config_error_that_does_not_show_the_key(
    engine: Engine, tmp_path: Path, st_server: StripeServer, clock: _Clock
) -> None:
    config = _config(tmp_path, st_server, key="sk_test_notthekey9876")
    result = _pull(engine, config, clock)
    assert {r.failure for r in result.streams.values()} == {"config"}
    assert "sources.stripe.api_key" in (result.streams["stripe.customers"].error or "")
    with engine.connect() as connection:
        error = connection.execute(
            sa.text("SELECT error FROM run WHERE id = :i"), {"i": result.run_id}
        ).scalar_one()
    assert "notthekey" not in str(result.as_dict()) + str(error)


def test_a_cursor_older_than_stripes_event_window_triggers_a_full_pull(
    engine: Engine,
    st_server: StripeServer,
    st_config: Config,
    clock: _Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _pull(engine, st_config, clock)
    before = _snapshot(engine)
    clock.advance(days=40)
    _reset_requests(st_server)
    with caplog.at_level(logging.INFO, logger="smartseg.connectors"):
        result = _pull(engine, st_config, clock)
    assert result.ok, result.as_dict()
    assert _requests(st_server) == {
        "GET /v1/customers": 1,
        "GET /v1/subscriptions": 1,
        "GET /v1/invoices": 1,
    }
    assert "older than the 30 days Stripe keeps events" in caplog.text
    # Forty days on, trials and discounts are read as of the new clock; links are unchanged.
    assert _snapshot(engine)["source_link"] == before["source_link"]
