"""Stripe: customers (as `source_link` rows), subscriptions (with MRR) and invoices, by events.

A full pull lists every object, 100 per call, newest first, resuming after the last committed
page with `starting_after`; its cursor is the time the listing began, set only when it ends,
because a newest-first list gives no safe cursor half-way. Later pulls read `events.list` from
the cursor, one call per stream: a subscription or invoice named by an event is fetched again
(events render objects in the API version they were created with, which moves an invoice's
subscription id and leaves discounts unexpanded; an invoice's events often share one second, so
the first listed need not be the latest), while a customer is taken from its newest event (the
name, email and metadata read here do not vary by version, and it saves one call per customer).
Stripe keeps events 30 days: an older cursor means a full pull. Stripe objects carry no
modification time, so `updated_at` stays empty rather than take the clock, which would rewrite
every row on every pull.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import stripe as stripe_sdk
from sqlalchemy.engine import Connection

from smartseg.config import StripeSource
from smartseg.connectors.errors import ConnectorError, Failure
from smartseg.connectors.http import CallCounter, PinnedSession
from smartseg.connectors.mapping import Coercer, email_domain
from smartseg.connectors.retry import DEFAULT_POLICY, RetryPolicy, call
from smartseg.connectors.stream import Page, ReadContext, RecordIssue, WriteResult
from smartseg.connectors.stripe_invoices import INVOICE_EVENTS, write_invoices
from smartseg.connectors.stripe_mrr import mrr_breakdown, subscription_row
from smartseg.store import upsert
from smartseg.store.models import SourceLink, Subscription, table_of

__all__ = ["EVENTS_KEPT", "StripeClient", "StripeStream", "customer_hint", "stripe_streams"]

SOURCE = "stripe"
PAGE_SIZE = 100  # Stripe's maximum `limit`
# Stripe lists events for 30 days; a day's margin covers clock skew and a slow run.
EVENTS_KEPT = dt.timedelta(days=29)
# Discounts, and the coupons inside them, are ids unless expanded; MRR needs the coupons.
_SUBSCRIPTION_EXPAND = (
    "items.data.price.product",
    "items.data.discounts",
    "items.data.discounts.source.coupon",
    "discounts",
    "discounts.source.coupon",
)
_CUSTOMER_EVENTS = ("customer.created", "customer.updated", "customer.deleted")
_SUBSCRIPTION_EVENTS = tuple(
    f"customer.subscription.{kind}"
    for kind in ("created", "updated", "deleted", "paused", "resumed", "pending_update_applied",
                 "pending_update_expired")
)  # fmt: skip

log = logging.getLogger("smartseg.connectors")
Record = Mapping[str, Any]


class StripeClient:
    """A StripeClient whose every request is counted under "stripe" and retried by `retry.call`
    alone (the SDK's own retries are off, so one call is one page and attempts are visible)."""

    def __init__(
        self,
        config: StripeSource,
        calls: CallCounter,
        *,
        policy: RetryPolicy = DEFAULT_POLICY,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        timeout = config.timeout.total_seconds()
        session = PinnedSession(source=SOURCE, counter=calls, timeout=timeout)
        self.sdk = stripe_sdk.StripeClient(
            config.api_key.get_secret_value(),
            base_addresses={"api": str(config.api_base).rstrip("/")},
            max_network_retries=0,
            http_client=stripe_sdk.RequestsClient(timeout=timeout, session=session),
        )
        self.policy = policy
        self.sleep = sleep

    def list_page(
        self, resource: str, params: Mapping[str, Any], stream: str
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page of `resource` ("customers", "subscriptions", "invoices", "events") and whether
        more follow."""
        service = getattr(self.sdk.v1, resource)

        def listed() -> tuple[list[dict[str, Any]], bool]:
            # Read the envelope inside the retried call: a page without `data` (cut short, or
            # not Stripe's) fails there, in the SDK, and is classified and retried like one.
            page = service.list(dict(params))
            return [item.to_dict() for item in page.data], bool(page.has_more)

        return self._call(listed, stream)

    def subscription(self, sub_id: str, stream: str) -> dict[str, Any]:
        """The subscription as it is now, expanded as MRR needs it."""
        params: Any = {"expand": list(_SUBSCRIPTION_EXPAND)}  # the SDK's TypedDict, by shape
        found = self._call(lambda: self.sdk.v1.subscriptions.retrieve(sub_id, params), stream)
        result: dict[str, Any] = found.to_dict()
        return result

    def invoice(self, invoice_id: str, stream: str) -> dict[str, Any]:
        """The invoice as it is now."""
        found = self._call(lambda: self.sdk.v1.invoices.retrieve(invoice_id), stream)
        result: dict[str, Any] = found.to_dict()
        return result

    def _call(self, fn: Callable[[], Any], stream: str) -> Any:
        sleep: dict[str, Any] = {"sleep": self.sleep} if self.sleep is not None else {}
        return call(fn, source=SOURCE, stream=stream, policy=self.policy, **sleep)


Current = Callable[[StripeClient, Record], Record | None]
Writer = Callable[[Connection, Sequence[Record]], WriteResult]


@dataclass(frozen=True, slots=True)
class StripeStream:
    """One Stripe object type: listed in full, then followed through its events."""

    client: StripeClient
    name: str
    list_params: Mapping[str, Any]
    event_types: tuple[str, ...]
    current: Current  # the object's current state from its newest event
    writer: Writer
    source: str = SOURCE

    @property
    def key(self) -> str:
        return f"{self.source}.{self.name}"

    def read(self, context: ReadContext) -> Iterator[Page]:
        if "listing" in context.state:
            yield from self._list(context)  # finish the full pull a failed run left half-way
        elif context.full or context.since is None:
            yield from self._list(context)
        elif context.run_started - context.since > EVENTS_KEPT:
            log.info(
                "%s: the saved cursor (%s) is older than the %d days Stripe keeps events; "
                "pulling everything again",
                self.key, context.since.isoformat(), EVENTS_KEPT.days + 1,
            )  # fmt: skip
            yield from self._list(context)
        else:
            yield from self._events(context.since)

    def write(self, connection: Connection, page: Page) -> WriteResult:
        return self.writer(connection, page.records)

    def _list(self, context: ReadContext) -> Iterator[Page]:
        saved = context.state.get("listing") or {}
        after: str | None = saved.get("after")
        started = str(saved.get("started") or context.run_started.isoformat())
        resuming = after is not None
        while True:
            params = {**self.list_params, "limit": PAGE_SIZE}
            if after:
                params["starting_after"] = after
            try:
                records, more = self.client.list_page(self.name, params, self.name)
            except ConnectorError as exc:
                if not (resuming and exc.decision.failure is Failure.DATA):
                    raise
                # The object the saved position names was deleted since: list from the top.
                log.warning("%s: cannot resume the listing (%s); starting it again", self.key,
                            exc.decision.message)  # fmt: skip
                after, resuming = None, False
                started = context.run_started.isoformat()
                continue
            resuming = False
            if more and records:
                after = str(records[-1]["id"])
                yield Page(records=records, state={"listing": {"after": after, "started": started}})
                continue
            yield Page(records=records, cursor=dt.datetime.fromisoformat(started), state={})
            return

    def _events(self, since: dt.datetime) -> Iterator[Page]:
        seen: set[str] = set()
        newest: dt.datetime | None = None
        after: str | None = None
        while True:
            params: dict[str, Any] = {
                "types": list(self.event_types),
                "created": {"gt": int(since.timestamp())},
                "limit": PAGE_SIZE,
            }
            if after:
                params["starting_after"] = after
            events, more = self.client.list_page("events", params, self.name)
            records = []
            for event in events:  # newest first: an object's first event is its latest
                created = dt.datetime.fromtimestamp(int(event["created"]), dt.UTC)
                newest = created if newest is None else max(newest, created)
                obj = event.get("data", {}).get("object") or {}
                if not obj.get("id") or obj["id"] in seen:
                    continue
                seen.add(obj["id"])
                record = self.current(self.client, event)
                if record is not None:
                    records.append(record)
            if more and events:
                after = str(events[-1]["id"])
                # Only the last page may move the cursor: events arrive newest first, so a
                # cursor from an early page would skip the older events of a failed run.
                yield Page(records=records)
                continue
            yield Page(records=records, cursor=newest, state={})
            return


def _customer_from_event(_: StripeClient, event: Record) -> Record:
    customer = dict(event["data"]["object"])
    if event.get("type") == "customer.deleted":
        customer["deleted"] = True
    return customer


def _subscription_from_event(client: StripeClient, event: Record) -> Record | None:
    obj = event["data"]["object"]
    try:
        return client.subscription(str(obj["id"]), "subscriptions")
    except ConnectorError as exc:
        if exc.decision.status != 404:
            raise
        # Gone for good (Stripe deletes some incomplete subscriptions): its last event is all
        # there is, and its status there (canceled, incomplete_expired) is what counts.
        return dict(obj)


def _invoice_from_event(client: StripeClient, event: Record) -> Record:
    obj = event["data"]["object"]
    # A deleted (draft) invoice is gone from the API; the table has no deleted_at, so its
    # status says so rather than leave it a draft forever.
    if event.get("type") == "invoice.deleted":
        return {**obj, "status": "deleted"}
    try:
        return client.invoice(str(obj["id"]), "invoices")
    except ConnectorError as exc:
        if exc.decision.status != 404:
            raise
        return {**obj, "status": "deleted"}


def _customer_links(link_key: str) -> Writer:
    def write(connection: Connection, records: Sequence[Record]) -> WriteResult:
        result = WriteResult()
        rows = []
        for customer in records:
            if not customer.get("id"):
                result.issues.append(RecordIssue("?", "a customer without an id was skipped"))
                continue
            if not isinstance(customer.get("metadata") or {}, dict):
                result.issues.append(RecordIssue(
                    str(customer["id"]), "metadata is not an object; matched without it"
                ))  # fmt: skip
            hint = customer_hint(customer, link_key)
            rows.append({"source": SOURCE, "object": "customer", "source_id": str(customer["id"]),
                         "hint": hint, "updated_at": None})  # fmt: skip
        result.upserted = upsert(
            connection, table_of(SourceLink), rows, key=["source", "object", "source_id"],
            update=["hint", "updated_at"],
        )  # fmt: skip
        return result

    return write


def customer_hint(customer: Record, link_key: str) -> dict[str, Any]:
    """What the link step matches a Stripe customer by: its Salesforce account named in
    metadata, its workspace id, its email's company domain; plus its name for people."""
    metadata = customer.get("metadata") or {}
    if not isinstance(metadata, dict):
        metadata = {}
    hint: dict[str, Any] = {}
    if metadata.get(link_key):
        hint["account_ref"] = f"salesforce:{metadata[link_key]}"
    if metadata.get("workspace_id"):
        hint["workspace_id"] = str(metadata["workspace_id"])
    if domain := email_domain(customer.get("email")):
        hint["email_domain"] = domain
    if customer.get("name"):
        hint["name"] = str(customer["name"])
    if customer.get("deleted"):
        hint["deleted"] = True
    return hint


def _subscriptions(clock: Callable[[], dt.datetime]) -> Writer:
    table = table_of(Subscription)

    def write(connection: Connection, records: Sequence[Record]) -> WriteResult:
        result = WriteResult()
        coercer = Coercer(table)
        as_of = clock()
        rows = []
        for sub in records:
            if not sub.get("id"):
                result.issues.append(RecordIssue("?", "a subscription without an id was skipped"))
                continue
            raw = subscription_row(sub, as_of=as_of)
            customer = raw.get("customer_ref")
            raw.update(account_ref=f"stripe:{customer}" if customer else None, updated_at=None)
            row, problems = coercer.coerce(raw)
            result.issues.extend(RecordIssue(str(sub["id"]), p) for p in problems.values())
            result.issues.extend(
                RecordIssue(f"{i.subscription_id}/{i.item_id}" if i.item_id else i.subscription_id,
                            f"MRR: {i.reason}")
                for i in mrr_breakdown(sub, as_of=as_of).issues
            )  # fmt: skip
            rows.append(row)
        result.upserted = upsert(connection, table, rows, key=["source", "source_id"])
        return result

    return write


def stripe_streams(
    config: StripeSource, client: StripeClient, clock: Callable[[], dt.datetime]
) -> list[StripeStream]:
    """Customers, then subscriptions (MRR as of the run's clock), then invoices."""
    return [
        StripeStream(
            client=client,
            name="customers",
            list_params={},
            event_types=_CUSTOMER_EVENTS,
            current=_customer_from_event,
            writer=_customer_links(config.link_metadata_key),
        ),
        StripeStream(
            client=client,
            name="subscriptions",
            list_params={"status": "all", "expand": [f"data.{p}" for p in _SUBSCRIPTION_EXPAND]},
            event_types=_SUBSCRIPTION_EVENTS,
            current=_subscription_from_event,
            writer=_subscriptions(clock),
        ),
        StripeStream(
            client=client,
            name="invoices",
            list_params={},
            event_types=INVOICE_EVENTS,
            current=_invoice_from_event,
            writer=write_invoices,
        ),
    ]
