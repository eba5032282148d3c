"""The fake Stripe API, driven through the real stripe-python StripeClient over sockets."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe

from smartseg.sandbox.http import FaultRule
from smartseg.sandbox.stripe_api import StripeServer
from smartseg.sandbox.world import Company, World

ANCHOR = dt.date(2025, 6, 1)
ANCHOR_TS = int(dt.datetime(2025, 6, 1, tzinfo=dt.UTC).timestamp())
# Stripe's published example objects (openapi fixtures3.json, MIT), copied from shared/specs.
FIXTURES = Path(__file__).parents[1] / "fixtures" / "stripe-fixtures.json"
STATUSES = ["active", "active", "active", "canceled", "trialing", "past_due", "unpaid"]
N_COMPANIES = 280


def _company(idx: int) -> Company:
    status = STATUSES[idx % len(STATUSES)]
    start = dt.date(2024, 1, 1) + dt.timedelta(days=idx)
    return Company(
        idx=idx, name=f"Company {idx}", domain=f"company{idx}.example", workspace_id=f"ws-{idx}",
        industry="Software", region="NA", country="United States", employees=50,
        status="Churned" if status == "canceled" else "Customer",
        edition=["Gold", "Silver"][idx % 2], product=["Analytics", "Automation"][idx % 2],
        contract_type="Monthly", opt_out_clause=False, start_date=start, renewal_date=None,
        trial_end_date=dt.date(2025, 6, 14) if status == "trialing" else None,
        churn_date=dt.date(2025, 5, 20) if status == "canceled" else None,
        churn_reason="Budget" if status == "canceled" else None, seats=5 + idx % 20,
        csm_sentiment=None, product_fit=None, lifecycle_stage=None, onboarding_status=None,
        onboarding_step=None, use_case=None, purchase_benefit=None, benefit_achieved_date=None,
        growth_potential=None, health_score=None, reference_account=False, strategic=False,
        owner_rep=0, csm_rep=None, billing_interval="year" if idx % 5 == 0 else "month",
        unit_amount_cents=(50_000 if idx % 5 == 0 else 5_000) + (idx % 3 == 0) * 1_000,
        discount_percent=20.0 if idx % 4 == 0 else None, subscription_status=status,
        cancel_at_period_end=idx % 11 == 0, in_salesforce=idx % 3 != 1,
        created_at=dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC),
    )  # fmt: skip


def _world() -> World:
    companies = [_company(i) for i in range(N_COMPANIES)]
    return World(seed=7, anchor=ANCHOR, reps=[], companies=companies, people=[],
                 opportunities=[], activities=[], tickets=[], nps=[])  # fmt: skip


def _sf_id(obj: str, idx: int) -> str:
    return f"001SANDBOX{idx:08d}"


class _Clock:
    """A settable clock, starting at the world's anchor."""

    def __init__(self) -> None:
        self.now = dt.datetime.fromtimestamp(ANCHOR_TS, dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: int) -> int:
        self.now += dt.timedelta(seconds=seconds)
        return int(self.now.timestamp())


@pytest.fixture(scope="module")
def st_server() -> Iterator[StripeServer]:
    """A read-only server shared by the module's list and search tests."""
    server = StripeServer(clock=_Clock())
    server.load(_world(), salesforce_id=_sf_id)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def st_clock() -> _Clock:
    return _Clock()


@pytest.fixture
def st_fresh(st_clock: _Clock) -> Iterator[StripeServer]:
    """A server of its own for tests that write or inject faults."""
    server = StripeServer(_world(), clock=st_clock, salesforce_id=_sf_id)
    server.start()
    yield server
    server.stop()


def _client(server: StripeServer, key: str = StripeServer.DEFAULT_API_KEY, **kw: Any) -> Any:
    return stripe.StripeClient(key, base_addresses={"api": server.url}, **kw)


@pytest.fixture(scope="module")
def st_client(st_server: StripeServer) -> Any:
    return _client(st_server)


def _counts(server: StripeServer) -> dict[str, int]:
    body = requests.get(f"{server.url}/_sandbox/requests", timeout=5).json()
    return dict(body["by_route"])


def _reset_counts(server: StripeServer) -> None:
    requests.delete(f"{server.url}/_sandbox/requests", timeout=5)


def _objects(server: StripeServer, resource: str) -> list[dict[str, Any]]:
    return requests.get(f"{server.url}/_sandbox/objects/{resource}", timeout=5).json()["data"]


def test_auto_paging_yields_every_customer_once_in_pages_of_100(
    st_server: StripeServer, st_client: Any
) -> None:
    _reset_counts(st_server)
    ids = [c.id for c in st_client.v1.customers.list({"limit": 100}).auto_paging_iter()]
    assert len(ids) == len(set(ids)) == N_COMPANIES
    assert _counts(st_server)["GET /v1/customers"] == math.ceil(N_COMPANIES / 100)


def test_lists_run_newest_first_and_page_backwards_with_ending_before(st_client: Any) -> None:
    newest_first = [c.id for c in st_client.v1.customers.list({"limit": 100}).auto_paging_iter()]
    oldest = newest_first[-1]
    backwards = st_client.v1.customers.list({"limit": 50, "ending_before": oldest})
    assert [c.id for c in backwards.auto_paging_iter()] == list(reversed(newest_first[:-1]))


def test_created_filters_bound_the_listed_customers(st_client: Any) -> None:
    cut = int(dt.datetime(2024, 6, 1, tzinfo=dt.UTC).timestamp())
    after = list(st_client.v1.customers.list({"created": {"gte": cut}, "limit": 100})
                 .auto_paging_iter())  # fmt: skip
    before = list(st_client.v1.customers.list({"created": {"lt": cut}, "limit": 100})
                  .auto_paging_iter())  # fmt: skip
    assert all(c.created >= cut for c in after) and all(c.created < cut for c in before)
    assert len(after) + len(before) == N_COMPANIES


def test_subscriptions_list_excludes_canceled_unless_status_all(st_client: Any) -> None:
    default = list(st_client.v1.subscriptions.list({"limit": 100}).auto_paging_iter())
    everything = list(st_client.v1.subscriptions.list({"limit": 100, "status": "all"})
                      .auto_paging_iter())  # fmt: skip
    assert "canceled" not in {s.status for s in default}
    assert len(everything) == N_COMPANIES
    assert len(everything) - len(default) == sum(s.status == "canceled" for s in everything)


def test_billing_periods_sit_on_items_and_bracket_the_anchor(st_client: Any) -> None:
    active = st_client.v1.subscriptions.list({"status": "active", "limit": 100})
    for sub in active.data:
        item = sub["items"].data[0]
        assert item.current_period_start <= ANCHOR_TS < item.current_period_end
        assert "current_period_end" not in sub


def test_search_finds_customers_by_metadata(st_client: Any) -> None:
    found = st_client.v1.customers.search({"query": "metadata['workspace_id']:'ws-42'"})
    assert [c.name for c in found.data] == ["Company 42"]
    assert found.data[0].metadata["sf_account_id"] == _sf_id("company", 42)


def test_search_pages_through_next_page_tokens(st_client: Any) -> None:
    query = "status:'active' OR status:'trialing'"
    seen = [s.id for s in st_client.v1.subscriptions.search({"query": query, "limit": 25})
            .auto_paging_iter()]  # fmt: skip
    expected = sum(1 for i in range(N_COMPANIES) if STATUSES[i % 7] in ("active", "trialing"))
    assert len(seen) == len(set(seen)) == expected


def test_search_rejects_an_unsupported_field(st_client: Any) -> None:
    with pytest.raises(stripe.InvalidRequestError, match="unsupported search field"):
        st_client.v1.customers.search({"query": "colour:'red'"})


def test_expand_resolves_customer_latest_invoice_and_item_products(st_client: Any) -> None:
    subs = st_client.v1.subscriptions.list(
        {"limit": 2, "expand": ["data.customer", "data.latest_invoice",
                                "data.items.data.price.product"]}
    )  # fmt: skip
    sub = subs.data[0]
    assert sub.customer.object == "customer"
    assert sub.latest_invoice.object == "invoice"
    assert sub["items"].data[0].price.product.name in ("Analytics", "Automation")


def test_updating_a_subscription_emits_an_updated_event_after_the_watermark(
    st_fresh: StripeServer, st_clock: _Clock
) -> None:
    client = _client(st_fresh)
    watermark = st_clock.advance(60)
    sub = client.v1.subscriptions.list({"limit": 1}).data[0]
    st_clock.advance(1)
    client.v1.subscriptions.update(sub.id, {"metadata": {"segment": "at_risk"},
                                            "cancel_at_period_end": True})  # fmt: skip
    events = client.v1.events.list({"created": {"gt": watermark},
                                    "types": ["customer.subscription.updated"]})  # fmt: skip
    assert [e.data.object.id for e in events.data] == [sub.id]
    previous = events.data[0].data.previous_attributes
    assert previous["metadata"].to_dict() == {"segment": None}
    assert previous["cancel_at_period_end"] is False


def test_event_type_wildcard_matches_a_family(st_client: Any) -> None:
    events = st_client.v1.events.list({"type": "invoice.*", "limit": 100})
    assert events.data and all(e.type.startswith("invoice.") for e in events.data)


def test_invalid_key_raises_authentication_error_with_redacted_key(st_server: StripeServer) -> None:
    client = _client(st_server, key="sk_test_wrongkey1234")
    with pytest.raises(stripe.AuthenticationError) as raised:
        client.v1.customers.list()
    assert raised.value.http_status == 401
    message = str(raised.value)
    assert "Invalid API Key provided: sk_test_********1234" in message
    assert "wrongkey" not in message


def test_unknown_parameter_raises_invalid_request_error_naming_it(st_client: Any) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        st_client.v1.customers.create({"email": "a@b.example", "colour": "red"})
    assert raised.value.param == "colour" and raised.value.code == "parameter_unknown"


def test_limit_above_100_is_rejected(st_client: Any) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        st_client.v1.customers.list({"limit": 101})
    assert raised.value.param == "limit"


def test_rate_limit_fault_raises_rate_limit_error_without_retrying(st_fresh: StripeServer) -> None:
    st_fresh.faults.add(FaultRule(kind="429", path="/v1/customers"))
    with pytest.raises(stripe.RateLimitError):
        _client(st_fresh, max_network_retries=2).v1.customers.list()
    assert _counts(st_fresh)["GET /v1/customers"] == 1


def test_server_error_fault_is_retried_by_the_sdk(st_fresh: StripeServer) -> None:
    st_fresh.faults.add(FaultRule(kind="500", path="/v1/customers", times=2))
    page = _client(st_fresh, max_network_retries=2).v1.customers.list({"limit": 1})
    assert len(page.data) == 1
    assert _counts(st_fresh)["GET /v1/customers"] == 3


def test_idempotency_key_replays_the_first_response(st_fresh: StripeServer) -> None:
    client = _client(st_fresh)
    options = {"idempotency_key": "create-acme-1"}
    first = client.v1.customers.create({"email": "ops@acme.example"}, options)
    second = client.v1.customers.create({"email": "ops@acme.example"}, options)
    assert first.id == second.id
    assert sum(c["email"] == "ops@acme.example" for c in _objects(st_fresh, "customers")) == 1
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create({"email": "other@acme.example"}, options)


def test_responses_carry_request_id_and_stripe_version(st_server: StripeServer) -> None:
    headers = {"Authorization": f"Bearer {StripeServer.DEFAULT_API_KEY}"}
    ok = requests.get(f"{st_server.url}/v1/customers?limit=1", headers=headers, timeout=5)
    missing = requests.get(f"{st_server.url}/v1/customers/cus_nope", headers=headers, timeout=5)
    for response in (ok, missing):
        assert response.headers["Request-Id"].startswith("req_")
        assert response.headers["Stripe-Version"] == stripe.api_version
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "resource_missing"


def test_subscription_create_bills_a_paid_first_invoice_and_applies_a_coupon(
    st_fresh: StripeServer,
) -> None:
    client = _client(st_fresh)
    customer = client.v1.customers.create({"email": "new@co.example", "name": "New Co"})
    price = client.v1.prices.list({"lookup_keys": ["analytics_gold_monthly"]}).data[0]
    coupon = client.v1.coupons.create({"percent_off": 50, "duration": "forever"})
    sub = client.v1.subscriptions.create(
        {"customer": customer.id, "items": [{"price": price.id, "quantity": 3}],
         "discounts": [{"coupon": coupon.id}], "expand": ["latest_invoice"]}
    )  # fmt: skip
    assert sub.status == "active" and sub["items"].data[0].quantity == 3
    assert sub.latest_invoice.status == "paid"
    assert sub.latest_invoice.total == price.unit_amount * 3 // 2


def test_trial_subscription_starts_trialing_with_a_zero_invoice(st_fresh: StripeServer) -> None:
    client = _client(st_fresh)
    customer = client.v1.customers.create({"email": "trial@co.example"})
    price = client.v1.prices.list({"lookup_keys": ["automation_silver_yearly"]}).data[0]
    sub = client.v1.subscriptions.create(
        {"customer": customer.id, "items": [{"price": price.id}], "trial_period_days": 14}
    )
    assert sub.status == "trialing" and sub.trial_end == ANCHOR_TS + 14 * 86_400
    assert client.v1.invoices.retrieve(sub.latest_invoice).amount_due == 0


def test_cancel_marks_the_subscription_canceled_and_emits_deleted(
    st_fresh: StripeServer, st_clock: _Clock
) -> None:
    client = _client(st_fresh)
    sub = client.v1.subscriptions.list({"limit": 1}).data[0]
    now = st_clock.advance(5)
    canceled = client.v1.subscriptions.cancel(sub.id)
    assert canceled.status == "canceled" and canceled.ended_at == now
    events = client.v1.events.list(
        {"type": "customer.subscription.deleted", "created": {"gte": now}}
    )
    assert [e.data.object.id for e in events.data] == [sub.id]


def test_invoices_filter_by_subscription_and_status(st_client: Any) -> None:
    sub = st_client.v1.subscriptions.list({"status": "past_due", "limit": 1}).data[0]
    open_invoices = st_client.v1.invoices.list({"subscription": sub.id, "status": "open"})
    assert [i.id for i in open_invoices.data] == [sub.latest_invoice]


def test_loading_the_same_world_gives_the_same_ids() -> None:
    first, second = StripeServer(_world()), StripeServer(_world())
    assert list(first.store["customer"].rows) == list(second.store["customer"].rows)
    assert list(first.store["invoice"].rows) == list(second.store["invoice"].rows)


# Fields Stripe documents as nullable where the fixture happens to show a value.
NULLABLE = {
    "customer": {"address", "discount", "shipping", "invoice_settings.rendering_options"},
    "product": {"default_price", "description", "package_dimensions"},
    "price": {"custom_unit_amount", "transform_quantity"},
    "coupon": {"currency", "duration_in_months", "name", "redeem_by", "percent_off"},
    "subscription": {
        "automatic_tax.liability", "billing_cycle_anchor_config", "billing_mode.flexible",
        "billing_thresholds", "cancel_at", "canceled_at", "ended_at", "pause_collection",
        "next_pending_invoice_item_invoice", "payment_settings.payment_method_options",
        "pending_invoice_item_interval", "pending_update", "transfer_data", "trial_end",
        "trial_start", "items.data.billing_thresholds", "items.data.plan.transform_usage",
        "items.data.price.custom_unit_amount", "items.data.price.transform_quantity",
    },
    "subscription_item": {
        "billing_thresholds", "plan.transform_usage", "price.custom_unit_amount",
        "price.transform_quantity",
    },
    "invoice": {
        "automatic_tax.liability", "customer_address", "customer_shipping", "due_date",
        "from_invoice", "last_finalization_error", "next_payment_attempt",
        "parent.quote_details", "payment_settings.payment_method_options", "rendering",
        "shipping_cost", "shipping_details", "lines.data.parent.invoice_item_details",
        "lines.data.parent.subscription_item_details.proration_details.credited_items",
    },
}  # fmt: skip


def _assert_shape(actual: Any, expected: Any, path: str, nullable: set[str]) -> None:
    if expected is None or (actual is None and path in nullable):
        return
    where = path or "<root>"
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        if path.endswith("metadata"):
            return  # a free-form map, not an object with fields
        assert set(actual) == set(expected), (
            f"{where}: fields differ: {set(actual) ^ set(expected)}"
        )
        for key, value in expected.items():
            _assert_shape(actual[key], value, f"{path}.{key}" if path else key, nullable)
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: expected an array, got {actual!r}"
        if expected and actual and isinstance(expected[0], dict):
            for item in actual:
                _assert_shape(item, expected[0], path, nullable)
    elif isinstance(expected, bool):
        assert isinstance(actual, bool), f"{where}: expected a boolean, got {actual!r}"
    elif isinstance(expected, int | float):
        assert isinstance(actual, int | float) and not isinstance(actual, bool), where
    else:
        assert isinstance(actual, str), f"{where}: expected a string, got {actual!r}"


@pytest.fixture(scope="module")
def st_fixtures() -> dict[str, Any]:
    return dict(json.loads(FIXTURES.read_text())["resources"])


def _raw(server: StripeServer, path: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {StripeServer.DEFAULT_API_KEY}"}
    response = requests.get(f"{server.url}{path}", headers=headers, timeout=5)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _samples(server: StripeServer) -> dict[str, list[dict[str, Any]]]:
    """Several rendered objects per resource, chosen to cover nulls and filled values."""
    subs = _raw(server, "/v1/subscriptions?status=all&limit=100")["data"]
    return {
        "customer": _raw(server, "/v1/customers?limit=20")["data"],
        "product": _raw(server, "/v1/products")["data"],
        "price": _raw(server, "/v1/prices?limit=100")["data"],
        "coupon": _raw(server, "/v1/coupons")["data"],
        "subscription": subs,
        "subscription_item": [item for s in subs for item in s["items"]["data"]],
        "invoice": _raw(server, "/v1/invoices?limit=100")["data"],
    }


@pytest.mark.parametrize("resource", [*NULLABLE, "event"])
def test_objects_have_exactly_the_fields_of_stripes_fixture(
    st_server: StripeServer, st_fixtures: dict[str, Any], resource: str
) -> None:
    fixtures = st_fixtures
    if resource == "event":
        events = _raw(st_server, "/v1/events?limit=100")["data"]
        assert events
        for event in events:
            body = {k: v for k, v in event.items() if k != "data"}
            _assert_shape(body, {k: v for k, v in fixtures["event"].items() if k != "data"},
                          "", {"api_version"})  # fmt: skip
            assert set(event["data"]) <= {"object", "previous_attributes"}
            kind = event["data"]["object"]["object"]
            _assert_shape(event["data"]["object"], fixtures[kind], "", NULLABLE[kind])
        return
    samples = _samples(st_server)[resource]
    assert samples
    for sample in samples:
        _assert_shape(sample, fixtures[resource], "", NULLABLE[resource])


def test_list_and_search_envelopes_have_stripes_fields(st_server: StripeServer) -> None:
    page = _raw(st_server, "/v1/customers?limit=1")
    assert set(page) == {"object", "data", "has_more", "url"} and page["object"] == "list"
    found = _raw(st_server, "/v1/customers/search?query=name:'Company 1'")
    assert set(found) == {"object", "data", "has_more", "next_page", "url"}
    counted = _raw(st_server, "/v1/customers/search?query=name:'Company 1'&expand[]=total_count")
    assert counted["total_count"] == 1
