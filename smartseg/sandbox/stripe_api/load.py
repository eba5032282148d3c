"""Seed a Stripe account from the synthetic world: catalogue, customers, subscriptions, history.

One product per product line; per (product, edition) a monthly and a yearly price (yearly is
ten times monthly, as the world's pricing has it), plus a "custom" price wherever a company's
negotiated amount differs; one forever coupon per discount rate. Every timestamp comes from the
world and is at most its anchor; ids depend only on the world, so the same world gives the same
ids. Records go in unsorted and are indexed once at the end, which keeps 100,000 customers fast.
"""

from __future__ import annotations

import calendar
import datetime as dt
import gc
import zlib
from collections import Counter
from collections.abc import Callable
from typing import Any

from smartseg.sandbox.stripe_api.billing import add_interval, make_invoice, period_containing
from smartseg.sandbox.stripe_api.store import Store
from smartseg.sandbox.world import Company, World

__all__ = ["load_world"]

Record = dict[str, Any]
_DAY = 86_400
_EVENT_WINDOW = 30 * _DAY
_INVOICES_KEPT = 3  # "the last few periods" of billing history per subscription
_DEFAULT_TRIAL_DAYS = 14
_PRODUCT_LINES = ("Analytics", "Automation")


def _ts(value: dt.date | dt.datetime) -> int:
    if isinstance(value, dt.datetime):
        return int(value.timestamp())
    return calendar.timegm(value.timetuple())


class _Loader:
    def __init__(self, world: World, salesforce_id: Callable[[str, int], str] | None) -> None:
        self.world = world
        self.salesforce_id = salesforce_id
        self.store = Store(seed=world.seed)
        self.anchor = _ts(world.anchor_time)
        self.window_start = self.anchor - _EVENT_WINDOW
        self.products: dict[str, Record] = {}
        self.prices: dict[tuple[str, str, str, int], Record] = {}
        self.coupons: dict[float, Record] = {}

    def add(self, kind: str, record: Record) -> Record:
        return self.store[kind].add(record, bulk=True)

    def emit(self, event_type: str, kind: str, record: Record, at: int, **kw: Any) -> None:
        if self.window_start <= at <= self.anchor:
            self.store.emit(event_type, kind, record, at, bulk=True, **kw)

    def run(self) -> Store:
        billed = [c for c in self.world.companies if c.in_stripe]
        catalog_created = min((self._created(c) for c in billed), default=self.anchor) - _DAY
        self._catalog(billed, catalog_created)
        for company in billed:
            self._company(company)
        self.store.reindex()
        return self.store

    def _created(self, company: Company) -> int:
        created = _ts(company.created_at)
        if company.start_date is not None:
            created = min(created, _ts(company.start_date))
        return min(created, self.anchor)

    def _catalog(self, companies: list[Company], created: int) -> None:
        for line in _PRODUCT_LINES:
            product_id = self.store.new_id("product")
            self.products[line] = self.add(
                "product",
                {"id": product_id, "created": created, "updated": created, "name": line,
                 "active": True, "metadata": {"product_line": line},
                 "description": f"{line} subscription, billed per seat"},
            )  # fmt: skip
        monthly: dict[tuple[str, str], Counter[int]] = {}
        for c in companies:
            if c.product and c.edition and c.billing_interval and c.unit_amount_cents is not None:
                per_month = c.unit_amount_cents // (10 if c.billing_interval == "year" else 1)
                monthly.setdefault((c.product, c.edition), Counter())[per_month] += 1
            if c.discount_percent:
                self._coupon(c.discount_percent, created)
        for (line, edition), amounts in sorted(monthly.items()):
            amount = amounts.most_common(1)[0][0]
            for interval, factor in (("month", 1), ("year", 10)):
                self._price(line, edition, interval, amount * factor, created, standard=True)

    def _price(
        self, line: str, edition: str, interval: str, amount: int, created: int, *, standard: bool
    ) -> Record:
        key = (line, edition, interval, amount)
        if key in self.prices:
            return self.prices[key]
        product = self.products.get(line) or self.products[_PRODUCT_LINES[0]]
        lookup_key = f"{line}_{edition}_{interval}ly".lower() if standard else None
        record = self.add(
            "price",
            {"id": self.store.new_id("price"), "created": created, "product": product["id"],
             "currency": "usd", "unit_amount": amount, "interval": interval, "interval_count": 1,
             "lookup_key": lookup_key, "active": True, "metadata": {"edition": edition},
             "nickname": f"{line} {edition} {interval}ly" + ("" if standard else " (custom)")},
        )  # fmt: skip
        if lookup_key is not None:
            self.store.lookup_keys[lookup_key] = record["id"]
        self.prices[key] = record
        return record

    def _coupon(self, percent: float, created: int) -> Record:
        if percent not in self.coupons:
            self.coupons[percent] = self.add(
                "coupon",
                {"id": self.store.new_id("coupon"), "created": created,
                 "percent_off": float(percent), "duration": "forever",
                 "name": f"{percent:g}% off", "metadata": {}, "times_redeemed": 0},
            )  # fmt: skip
        return self.coupons[percent]

    def _company(self, company: Company) -> None:
        created = self._created(company)
        metadata = {"workspace_id": company.workspace_id}
        if company.in_salesforce and self.salesforce_id is not None:
            metadata["sf_account_id"] = self.salesforce_id("company", company.idx)
        customer_id = self.store.new_id("customer")
        customer = self.add(
            "customer",
            {"id": customer_id, "created": created, "email": f"billing@{company.domain}",
             "name": company.name, "metadata": metadata,
             "invoice_prefix": f"{zlib.crc32(customer_id.encode()):08X}"},
        )  # fmt: skip
        self.emit("customer.created", "customer", customer, created)
        billable = company.product and company.edition and company.billing_interval
        if billable and company.unit_amount_cents is not None and company.subscription_status:
            self._subscription(company, customer, created)

    def _subscription(self, company: Company, customer: Record, created: int) -> None:
        assert company.product and company.edition and company.billing_interval
        interval = company.billing_interval
        amount = company.unit_amount_cents or 0
        price = self._price(company.product, company.edition, interval, amount, created,
                            standard=False)  # fmt: skip
        status = company.subscription_status or "active"
        start = created
        sub_id = self.store.new_id("subscription")
        sub: Record = {
            "id": sub_id, "created": start, "start_date": start, "customer": customer["id"],
            "currency": "usd", "status": status, "metadata": {}, "discounts": [],
            "cancel_at_period_end": False, "cancel_at": None,
        }  # fmt: skip
        if company.discount_percent:
            coupon = self._coupon(company.discount_percent, created)
            coupon["times_redeemed"] += 1
            discount = self.add(
                "discount",
                {"id": self.store.new_id("discount"), "created": start, "start": start,
                 "coupon": coupon["id"], "customer": customer["id"], "subscription": sub_id},
            )  # fmt: skip
            sub["discounts"] = [discount["id"]]
        if status == "trialing":
            trial_end = _ts(company.trial_end_date) if company.trial_end_date else 0
            trial_end = max(trial_end, start + _DAY) if trial_end else start + 14 * _DAY
            periods = [(start, trial_end)]
            sub.update(trial_start=start, trial_end=trial_end, billing_cycle_anchor=trial_end)
        else:
            at = self.anchor
            if status == "canceled":
                ended = _ts(company.churn_date) if company.churn_date else self.anchor
                at = min(max(ended, start), self.anchor)
                details = {"comment": company.churn_reason, "feedback": None,
                           "reason": "cancellation_requested"}  # fmt: skip
                sub.update(canceled_at=at, ended_at=at, cancellation_details=details)
            # A period ending exactly at the anchor has renewed; one ending at churn has not.
            at = max(at - 1, start) if status == "canceled" else at
            _, _, index = period_containing(start, at, interval, 1)
            first = max(0, index - _INVOICES_KEPT + 1)
            periods = [
                (add_interval(start, interval, 1, k), add_interval(start, interval, 1, k + 1))
                for k in range(first, index + 1)
            ]
            sub["billing_cycle_anchor"] = start
        current = periods[-1]
        if company.cancel_at_period_end and status != "canceled":
            sub.update(cancel_at_period_end=True, cancel_at=current[1])
        sub["items"] = [
            {"id": self.store.new_id("subscription_item"), "created": start, "price": price["id"],
             "quantity": company.seats, "metadata": {},
             "current_period_start": current[0], "current_period_end": current[1]},
        ]  # fmt: skip
        initial = {**sub, "status": "trialing" if status == "trialing" else "active",
                   "canceled_at": None, "ended_at": None, "cancellation_details": None}  # fmt: skip
        self.add("subscription", sub)
        self.emit("customer.subscription.created", "subscription", initial, start)
        customer["currency"] = "usd"
        self._invoices(sub, customer, periods, status)
        if status == "canceled":
            self.emit("customer.subscription.deleted", "subscription", sub, sub["ended_at"])

    def _invoices(
        self, sub: Record, customer: Record, periods: list[tuple[int, int]], status: str
    ) -> None:
        """Invoice history: paid, except the latest (two for unpaid) left open when unpaid."""
        failing = {"past_due": 1, "unpaid": 2}.get(status, 0)
        for n, period in enumerate(periods):
            open_ = n >= len(periods) - failing
            created = min(period[0], self.anchor)
            reason = (
                "subscription_create" if period[0] == sub["start_date"] else "subscription_cycle"
            )
            invoice = make_invoice(
                self.store,
                sub,
                customer,
                period=period,
                created=created,
                billing_reason=reason,
                status="open" if open_ else "paid",
                zero=status == "trialing",
                bulk=True,
            )
            sub["latest_invoice"] = invoice["id"]
            for event_type in ("invoice.created", "invoice.finalized"):
                self.emit(event_type, "invoice", invoice, created)
            if open_:
                customer["delinquent"] = True
                self.emit("invoice.payment_failed", "invoice", invoice, created)
                if n == len(periods) - 1:
                    previous = {"status": "active"}
                    self.emit("customer.subscription.updated", "subscription", sub, created,
                              previous=previous)  # fmt: skip
            else:
                self.emit("invoice.paid", "invoice", invoice, created)


def load_world(world: World, *, salesforce_id: Callable[[str, int], str] | None = None) -> Store:
    """A fresh store holding `world` as Stripe would; `salesforce_id("company", idx)` fills
    `metadata["sf_account_id"]` for companies that are also in Salesforce."""
    # The load allocates millions of acyclic dicts; generational GC passes over them would
    # cost more than the load itself.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _Loader(world, salesforce_id).run()
    finally:
        if enabled:
            gc.enable()
