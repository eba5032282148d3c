"""Synthetic facts around the accounts: activities, tickets, NPS, subscriptions, deals, invoices.

A year of each before the evaluation day, in proportion to each account's engagement; a few
activities and tickets are copied into a second CRM, as a company running both holds them, so
the evaluation's "count a mirrored record once" is exercised at scale.
"""

from __future__ import annotations

import numpy as np

from bench.synthetic import (
    FEATURES,
    PRICE_PER_SEAT,
    Accounts,
    Batch,
    Scale,
    labels,
    nat_where,
    null_where,
    pick,
    stamp,
)


def _facts(
    rng: np.random.Generator, scale: Scale, accounts: Accounts, per_account: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(account ids, contact ids or 0, seconds before the as-of day) for `per_account` rows
    per account on average, over the last year, sorted by account and time."""
    counts = rng.poisson(per_account * accounts.engagement)
    account = np.repeat(np.arange(1, scale.accounts + 1), counts)
    ago = rng.integers(60, 365 * 86400, len(account))
    order = np.lexsort((-ago, account))
    account, ago = account[order], ago[order]
    per = scale.contacts_per_account
    contact = (account - 1) * per + 1 + rng.integers(0, per, len(account))
    contact = np.where(rng.random(len(account)) < 0.8, contact, 0)
    return account, contact, ago


def _mirror(
    rng: np.random.Generator, batch: Batch, share: float, source: str, prefix: str
) -> Batch:
    """Copies of `share` of the rows as held in a second CRM (same account, kind and time)."""
    chosen = rng.random(len(batch["id"])) < share
    copy = {k: v[chosen] for k, v in batch.items()}
    copy["source"] = np.full(int(chosen.sum()), source, dtype=object)
    copy["source_id"] = labels(prefix + "{:09d}", copy["id"])
    return copy


def generate_activities(rng: np.random.Generator, scale: Scale, accounts: Accounts) -> Batch:
    account, contact, ago = _facts(rng, scale, accounts, 20.0)
    n = len(account)
    kind = pick(rng, ("email", "call", "meeting", "qbr"), (0.5, 0.2, 0.22, 0.08), n)
    occurred = stamp(scale.day, -ago)
    duration = np.where(
        kind == "email",
        np.nan,
        np.where(kind == "call", rng.integers(5, 45, n), 30 + 15 * rng.integers(0, 5, n)),
    )
    batch: Batch = {
        "id": np.arange(1, n + 1),
        "source": np.full(n, "salesforce", dtype=object),
        "source_id": labels("00T{:012d}", np.arange(1, n + 1)),
        "account_ref": labels("bench:{:07d}", account),
        "contact_ref": null_where(labels("bench-contact:{:08d}", contact), contact == 0),
        "account_id": account,
        "contact_id": null_where(contact, contact == 0),
        "kind": kind,
        "status": pick(rng, ("completed", "cancelled"), (0.85, 0.15), n),
        "occurred_at": occurred,
        "duration_minutes": null_where(duration, np.isnan(duration)),
        "owner_id": labels("csm{:03d}", rng.integers(1, 41, n)),
        "subject": pick(
            rng, ("Check-in", "Renewal", "Onboarding", "QBR", "Follow-up"), (3, 1, 1, 1, 2), n
        ),
        "custom": np.full(n, "{}", dtype=object),
        "updated_at": occurred + np.timedelta64(3600, "s"),
        "deleted_at": nat_where(occurred, rng.random(n) >= 0.005),
    }
    mirrored = _mirror(rng, batch, 0.03, "hubspot", "hs-act-")
    mirrored["id"] = mirrored["id"] + n
    return {k: np.concatenate((batch[k], mirrored[k])) for k in batch}


def generate_tickets(rng: np.random.Generator, scale: Scale, accounts: Accounts) -> Batch:
    account, contact, ago = _facts(rng, scale, accounts, 3.0)
    n = len(account)
    opened = stamp(scale.day, -ago)
    status = pick(rng, ("Closed", "Open", "New"), (0.8, 0.15, 0.05), n)
    closed = status == "Closed"
    closed_at = opened + (rng.integers(600, 20 * 86400, n) * 1_000_000).astype("timedelta64[us]")
    batch: Batch = {
        "id": np.arange(1, n + 1),
        "source": np.full(n, "salesforce", dtype=object),
        "source_id": labels("500{:012d}", np.arange(1, n + 1)),
        "account_ref": labels("bench:{:07d}", account),
        "contact_ref": null_where(labels("bench-contact:{:08d}", contact), contact == 0),
        "account_id": account,
        "contact_id": null_where(contact, contact == 0),
        "type": pick(rng, ("Bug", "Question", "Feature Request"), (0.45, 0.4, 0.15), n),
        "severity": pick(rng, ("Critical", "High", "Medium", "Low"), (0.05, 0.2, 0.5, 0.25), n),
        "status": status,
        "is_closed": closed,
        "feature": np.array(FEATURES, dtype=object)[rng.integers(0, len(FEATURES), n)],
        "subject": pick(
            rng, ("Cannot export", "How do I", "Slow dashboard", "Please add"), (1, 1, 1, 1), n
        ),
        "opened_at": opened,
        "closed_at": nat_where(closed_at, ~closed),
        "updated_at": opened + np.timedelta64(7200, "s"),
        "deleted_at": nat_where(opened, rng.random(n) >= 0.003),
    }
    mirrored = _mirror(rng, batch, 0.03, "hubspot", "hs-tkt-")
    mirrored["id"] = mirrored["id"] + n
    return {k: np.concatenate((batch[k], mirrored[k])) for k in batch}


def generate_nps(rng: np.random.Generator, scale: Scale, emails: np.ndarray) -> Batch:
    contacts = scale.accounts * scale.contacts_per_account
    n = contacts // 4
    contact = np.sort(rng.integers(1, contacts + 1, n))
    account = (contact - 1) // scale.contacts_per_account + 1
    weights = (4, 2, 2, 3, 3, 4, 6, 14, 18, 20, 24)
    responded = stamp(scale.day, -rng.integers(60, 365 * 86400, n))
    return {
        "id": np.arange(1, n + 1),
        "source": np.full(n, "nps", dtype=object),
        "source_id": labels("nps-{:09d}", np.arange(1, n + 1)),
        "account_ref": labels("bench:{:07d}", account),
        "contact_ref": labels("bench-contact:{:08d}", contact),
        "account_id": account,
        "contact_id": contact,
        "email": emails[contact - 1],
        "score": rng.choice(11, n, p=np.array(weights) / sum(weights)),
        "responded_at": responded,
        "comment": null_where(np.full(n, "ok", dtype=object), rng.random(n) < 0.7),
    }


def generate_subscriptions(rng: np.random.Generator, scale: Scale, accounts: Accounts) -> Batch:
    keep = np.isin(accounts.status, ["Customer", "Trial", "Churned"])
    account = np.arange(1, scale.accounts + 1)[keep]
    n = len(account)
    status = accounts.status[keep]
    sub_status = np.where(
        status == "Trial",
        "trialing",
        np.where(
            status == "Churned",
            "canceled",
            pick(rng, ("active", "past_due", "unpaid"), (0.95, 0.03, 0.02), n),
        ),
    ).astype(object)
    edition = accounts.edition[keep]
    annual = accounts.batch["contract_type"][keep] == "Annual"
    seats = accounts.seats[keep]
    unit = np.array([PRICE_PER_SEAT.get(e, 0.0) for e in edition])
    mrr = np.round(unit * seats, 2)
    started = stamp(accounts.start[keep], np.zeros(n, dtype=np.int64))
    ended = stamp(accounts.batch["churn_date"][keep], np.zeros(n, dtype=np.int64))
    period_start = stamp(
        scale.day - rng.integers(0, 30, n).astype("timedelta64[D]"), np.zeros(n, dtype=np.int64)
    )
    return {
        "id": np.arange(1, n + 1),
        "source": np.full(n, "stripe", dtype=object),
        "source_id": labels("sub_{:010d}", account),
        "account_ref": labels("bench:{:07d}", account),
        "account_id": account,
        "customer_ref": labels("cus_{:010d}", account),
        "status": sub_status,
        "product": edition,
        "plan": np.array(
            [f"{e} {'annual' if a else 'monthly'}" for e, a in zip(edition, annual, strict=True)],
            dtype=object,
        ),
        "interval": np.where(annual, "year", "month").astype(object),
        "interval_count": np.ones(n, dtype=np.int64),
        "quantity": seats,
        "unit_amount": unit,
        "discount_percent": null_where(np.zeros(n), np.ones(n, dtype=bool)),
        "mrr": mrr,
        "currency": np.full(n, "usd", dtype=object),
        "started_at": started,
        "current_period_start": period_start,
        "current_period_end": period_start + np.timedelta64(30, "D"),
        "trial_end": nat_where(period_start + np.timedelta64(14, "D"), status != "Trial"),
        "cancel_at_period_end": rng.random(n) > 0.97,
        "canceled_at": ended,
        "ended_at": ended,
        "updated_at": period_start,
    }


def generate_opportunities(rng: np.random.Generator, scale: Scale, accounts: Accounts) -> Batch:
    account, _, ago = _facts(rng, scale, accounts, 1.5)
    n = len(account)
    stage = pick(
        rng,
        ("Closed Won", "Closed Lost", "Prospecting", "Negotiation"),
        (0.45, 0.25, 0.15, 0.15),
        n,
    )
    contacts = scale.accounts * scale.contacts_per_account
    referred = np.where(rng.random(n) < 0.05, rng.integers(1, contacts + 1, n), 0)
    close = (scale.day - (ago // 86400).astype("timedelta64[D]")) + np.timedelta64(30, "D")
    return {
        "id": np.arange(1, n + 1),
        "source": np.full(n, "salesforce", dtype=object),
        "source_id": labels("006{:012d}", np.arange(1, n + 1)),
        "account_ref": labels("bench:{:07d}", account),
        "account_id": account,
        "name": labels("Deal {:09d}", np.arange(1, n + 1)),
        "type": pick(rng, ("New Business", "Renewal", "Upsell"), (0.3, 0.5, 0.2), n),
        "stage": stage,
        "amount": np.round(np.exp(rng.normal(9, 1, n)), 2),
        "currency": np.full(n, "USD", dtype=object),
        "close_date": close,
        "is_closed": np.isin(stage, ["Closed Won", "Closed Lost"]),
        "is_won": stage == "Closed Won",
        "owner_id": labels("ae{:03d}", rng.integers(1, 51, n)),
        "referred_by_ref": null_where(labels("bench-contact:{:08d}", referred), referred == 0),
        "referred_by_contact_id": null_where(referred, referred == 0),
        "custom": np.full(n, "{}", dtype=object),
        "updated_at": stamp(scale.day - np.timedelta64(1, "D"), np.zeros(n, dtype=np.int64)),
        "deleted_at": np.full(n, np.datetime64("NaT"), dtype="datetime64[us]"),
    }


def generate_invoices(rng: np.random.Generator, scale: Scale, subs: Batch) -> Batch:
    """Six monthly invoices per paying subscription."""
    paying = np.isin(subs["status"], ["active", "past_due", "unpaid", "canceled"])
    account = np.repeat(subs["account_id"][paying], 6)
    mrr = np.repeat(subs["mrr"][paying], 6)
    month = np.tile(np.arange(6), int(paying.sum()))
    n = len(account)
    status = pick(rng, ("paid", "open", "uncollectible"), (0.95, 0.03, 0.02), n)
    due = np.round(mrr, 2)
    paid = np.where(status == "paid", due, 0.0)
    created = stamp(scale.day - (30 * month + 5).astype("timedelta64[D]"), np.zeros(n, np.int64))
    return {
        "id": np.arange(1, n + 1),
        "source": np.full(n, "stripe", dtype=object),
        "source_id": labels("in_{:012d}", np.arange(1, n + 1)),
        "account_ref": labels("bench:{:07d}", account),
        "account_id": account,
        "customer_ref": labels("cus_{:010d}", account),
        "subscription_ref": labels("sub_{:010d}", account),
        "status": status,
        "currency": np.full(n, "usd", dtype=object),
        "amount_due": due,
        "amount_paid": paid,
        "amount_remaining": due - paid,
        "created_at": created,
        "due_at": created + np.timedelta64(14, "D"),
        "paid_at": nat_where(created + np.timedelta64(2, "D"), status != "paid"),
        "period_start": created - np.timedelta64(30, "D"),
        "period_end": created,
        "attempt_count": np.where(status == "paid", 1, 3),
        "updated_at": created,
    }


def generate_crm_users() -> Batch:
    people = [
        (f"ae{i:03d}", f"Account Executive {i:03d}", "Account Executive") for i in range(1, 51)
    ]
    people += [(f"csm{i:03d}", f"Success Manager {i:03d}", "CSM") for i in range(1, 41)]
    n = len(people)
    return {
        "source": np.full(n, "salesforce", dtype=object),
        "source_id": np.array([p[0] for p in people], dtype=object),
        "name": np.array([p[1] for p in people], dtype=object),
        "email": np.array([f"{p[0]}@vendor.example" for p in people], dtype=object),
        "title": np.array([p[2] for p in people], dtype=object),
        "active": np.ones(n, dtype=bool),
    }
