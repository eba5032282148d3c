"""Segment evaluation at scale against one grouped scan of usage on the same database.

    python bench/segment_eval.py --db sqlite|postgresql [--accounts 100000]
        [--contacts-per-account 10] [--usage-rows 30000000] [--postgres-url URL]
        [--reuse] [--rules DIR] [--explain SECONDS]

What is measured, and why. Evaluation builds one metric table per level (one grouped scan per
source table, usage being by far the largest), then runs one INSERT ... SELECT per segment and
applies membership changes set-based. Its floor is therefore about one scan of `usage_daily`:
the issue's target is that evaluating every shipped rule costs at most twice

    SELECT account_id, SUM(events), COUNT(DISTINCT day) FROM usage_daily
    WHERE day >= :start GROUP BY account_id

on the same database, with every row fetched. `:start` is the earliest day any usage window of
the rules reaches; when a rule uses a `first Nd` window (anchored on start_date) the product
scans all of usage, and so does the baseline (reported as `baseline.window`).

The store is filled by a synthetic loader (numpy, then executemany on SQLite and COPY on
PostgreSQL): accounts with realistic field distributions, contacts (Primary Contact, Decision
Maker, Executive Sponsor, Champion, then Users), usage rows over the 90 days before the
evaluation day (and on it, which the second evaluation reads), a year of activities, tickets,
NPS answers, subscriptions, opportunities and invoices. The loaded database is cached under
`--cache-dir` (SQLite) or in a database per scale (PostgreSQL) and reused with `--reuse`.

Per database the bench reports: load seconds; the baseline (a warm-up, then the best of three
fetched runs); a first evaluation (empty membership ledger: everyone enters) and a second one
a day later (windows move one day: few changes), each with the SQL time split into phases
(metric tables, per-segment inserts, per-segment result fetches, membership writes) from
statement timings, plus the slowest statements; and the ratio evaluation / baseline. With
`--explain S`, a third evaluation prints the plan (PostgreSQL: EXPLAIN ANALYZE, rolled back)
of every statement slower than S seconds to stderr.

Progress goes to stderr; stdout gets one JSON line of figures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `python bench/segment_eval.py` from anywhere

from smartseg.segmenter.catalogue import Catalogue  # noqa: E402
from smartseg.segmenter.compile import Compiler, EvalTime  # noqa: E402
from smartseg.segmenter.evaluate import evaluate  # noqa: E402
from smartseg.segmenter.rules import RuleSet, load_rules  # noqa: E402
from smartseg.segmenter.typed import TUsage  # noqa: E402
from smartseg.store import make_engine, upgrade  # noqa: E402
from smartseg.store.models import table_of  # noqa: E402

Batch = dict[str, np.ndarray]

AS_OF = dt.datetime(2026, 6, 30, 6, 0, tzinfo=dt.UTC)
ADMIN_URL = "postgresql://postgres@127.0.0.1:54329/postgres"
USAGE_SOURCE = "usage"
# Alphabetical, so that (day, feature, user) codes sort like the usage primary key.
FEATURES = (
    "academy",
    "advanced_reports",
    "ai_insights",
    "api",
    "automation",
    "dashboards",
    "email_opened",
    "email_sent",
    "executive_report",
    "help_center",
    "login",
    "sso",
)
FEATURE_WEIGHTS = (2, 5, 3, 6, 10, 15, 6, 8, 3, 3, 30, 2)
ACCOUNT_LEVEL_FEATURES = ("email_opened", "email_sent")  # rows with user_key '' (no contact)
GOLD_FEATURES = ("advanced_reports", "sso")
ROLES = ("Primary Contact", "Decision Maker", "Executive Sponsor", "Champion")
INDUSTRIES = (
    "Software",
    "Healthcare",
    "Financial Services",
    "Retail",
    "Manufacturing",
    "Education",
    "Media",
    "Logistics",
)
REGIONS = {
    "NA": ("United States", "Canada"),
    "EMEA": ("United Kingdom", "Germany", "France", "Netherlands", "Sweden"),
    "APAC": ("Australia", "Japan", "Singapore", "India"),
    "LATAM": ("Brazil", "Mexico", "Chile"),
}
FIRST_NAMES = ("Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hugo", "Iris", "Jon")
LAST_NAMES = ("Adams", "Baker", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito")
PRICE_PER_SEAT = {"Gold": 60.0, "Silver": 35.0, "Bronze": 15.0, "Free": 0.0}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- scale and synthetic data --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scale:
    accounts: int
    contacts_per_account: int
    usage_rows: int
    usage_days: int = 90
    seed: int = 7
    as_of: dt.datetime = AS_OF

    @property
    def tag(self) -> str:
        return (
            f"a{self.accounts}_c{self.contacts_per_account}_u{self.usage_rows}"
            f"_d{self.usage_days}_s{self.seed}_{self.as_of:%Y%m%d}"
        )

    @property
    def day(self) -> np.datetime64:
        """The evaluation day of the first evaluation."""
        return np.datetime64(self.as_of.date(), "D")

    def as_json(self) -> dict[str, Any]:
        return {
            "accounts": self.accounts,
            "contacts_per_account": self.contacts_per_account,
            "usage_rows_target": self.usage_rows,
            "usage_days": self.usage_days,
            "seed": self.seed,
            "as_of": self.as_of.isoformat(),
        }


def _pick(rng: np.random.Generator, options: tuple[Any, ...], weights: Any, n: int) -> np.ndarray:
    p = np.asarray(weights, dtype=float)
    return np.array(options, dtype=object)[rng.choice(len(options), n, p=p / p.sum())]


def _labels(fmt: str, values: np.ndarray) -> np.ndarray:
    return np.array([fmt.format(v) for v in values.tolist()], dtype=object)


def _null(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`values` as an object array with None where `mask` is set."""
    out = values.astype(object)
    out[mask] = None
    return out


def _nat(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = values.copy()
    out[mask] = np.datetime64("NaT")
    return out


def _stamp(day: np.datetime64 | np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Timestamps (microseconds) `seconds` after midnight UTC of `day`."""
    base = np.asarray(day).astype("datetime64[us]")
    return base + (seconds * 1_000_000).astype("timedelta64[us]")


@dataclass(slots=True)
class Accounts:
    """The account batch plus the per-account traits the fact generators need."""

    batch: Batch
    live: np.ndarray  # bool: not deleted
    prospect: np.ndarray
    status: np.ndarray
    edition: np.ndarray
    start: np.ndarray  # datetime64[D], NaT for prospects
    seats: np.ndarray
    pattern: np.ndarray  # usage pattern: steady, rising, falling, dormant, power, none
    engagement: np.ndarray  # multiplier on activities and tickets


def generate_accounts(rng: np.random.Generator, scale: Scale) -> Accounts:
    n = scale.accounts
    ids = np.arange(1, n + 1)
    day = scale.day
    status = _pick(
        rng,
        ("Customer", "Trial", "Pilot", "Churned", "Prospect"),
        (0.72, 0.05, 0.03, 0.10, 0.10),
        n,
    )
    prospect = status == "Prospect"
    edition = _pick(rng, ("Gold", "Silver", "Bronze", "Free"), (0.2, 0.35, 0.3, 0.15), n)
    edition[prospect] = None
    ago = rng.integers(10, 2200, n)
    ago = np.where(status == "Trial", rng.integers(1, 30, n), ago)
    ago = np.where(status == "Pilot", rng.integers(5, 80, n), ago)
    ago = np.where(status == "Churned", np.maximum(ago, 120), ago)
    start = _nat(day - ago.astype("timedelta64[D]"), prospect)
    paying = (status == "Customer") | (status == "Churned")
    annual = paying & (rng.random(n) < 0.65) & (edition != "Free")
    contract = np.where(annual, "Annual", "Monthly").astype(object)
    contract[~paying] = None
    renewal_in = np.where(annual, 365 - ago % 365, 30 - ago % 30)
    renewal = _nat(day + renewal_in.astype("timedelta64[D]"), status != "Customer")
    trial_len = np.where(status == "Trial", 30, 90).astype("timedelta64[D]")
    trial_end = _nat(start + trial_len, (status != "Trial") & (status != "Pilot"))
    churn_ago = 1 + (rng.random(n) * np.minimum(ago - 30, 720)).astype(int)
    churned = status == "Churned"
    churn_date = _nat(day - churn_ago.astype("timedelta64[D]"), ~churned)
    churn_reason = _pick(
        rng, ("Competitor", "Out of Business", "Budget", "Product Fit"), (0.35, 0.15, 0.3, 0.2), n
    )
    churn_reason[~churned] = None
    employees = np.clip(np.exp(rng.normal(5.2, 1.7, n)), 5, 50_000).astype(int)
    seats = np.clip(np.round(np.exp(rng.normal(np.log(12), 0.8, n))), 2, 2000).astype(int)
    seats = np.where(edition == "Free", 3, seats)
    seats = np.where(status == "Pilot", rng.integers(2, 10, n), seats)
    region_names = tuple(REGIONS)
    region = _pick(rng, region_names, (0.5, 0.3, 0.15, 0.05), n)
    country_draw = rng.integers(0, 5, n)
    country = np.array(
        [REGIONS[r][c % len(REGIONS[r])] for r, c in zip(region, country_draw, strict=True)],
        dtype=object,
    )
    sentiment = _pick(rng, ("Green", "Yellow", "Red"), (0.55, 0.3, 0.15), n)
    sentiment[churned] = "Red"
    health = np.clip(
        np.select([sentiment == "Green", sentiment == "Yellow"], [78.0, 58.0], 35.0)
        + rng.normal(0, 11, n),
        0,
        100,
    ).round()
    new = ago < 90
    onboarding = np.where(
        new,
        _pick(rng, ("Not Started", "In Progress", "Behind", "Stuck"), (0.15, 0.5, 0.2, 0.15), n),
        _pick(rng, ("Completed", "Behind", "Stuck"), (0.92, 0.05, 0.03), n),
    )
    step = np.where(onboarding == "Completed", 5, rng.integers(0, 5, n))
    benefit_after = rng.integers(30, 400, n)
    benefit_day = _nat(
        start + benefit_after.astype("timedelta64[D]"),
        prospect | (rng.random(n) >= 0.45) | (benefit_after >= ago),
    )
    discount = np.where(rng.random(n) < 0.2, rng.choice([0.1, 0.15, 0.2, 0.25], n), 0.0)
    price = np.array([PRICE_PER_SEAT.get(e, 0.0) if e else 0.0 for e in edition])
    mrr = np.round(price * seats * (1 - discount), 2)
    customer = status == "Customer"
    lifecycle = np.select(
        [churned, prospect, new | (status == "Trial") | (status == "Pilot")],
        ["other", "lead", "onboarding"],
        "customer",
    ).astype(object)
    aes, csms = rng.integers(1, 51, n), rng.integers(1, 41, n)
    created_days = np.where(prospect, rng.integers(7, 400, n), ago + rng.integers(7, 200, n))
    created = _stamp(day - created_days.astype("timedelta64[D]"), rng.integers(0, 86400, n))
    updated = _stamp(
        day - rng.integers(1, 30, n).astype("timedelta64[D]"), rng.integers(0, 86400, n)
    )
    deleted = rng.random(n) < 0.005
    pattern = _pick(
        rng,
        ("steady", "rising", "falling", "dormant", "power", "none"),
        (0.56, 0.12, 0.10, 0.08, 0.06, 0.08),
        n,
    )
    pattern[prospect] = "none"
    pattern[churned] = np.where(rng.random(int(churned.sum())) < 0.6, "none", "dormant")

    def unless_prospect(values: np.ndarray) -> np.ndarray:
        return _null(values, prospect)

    batch: Batch = {
        "id": ids,
        "external_key": _labels("bench:{:07d}", ids),
        "name": _labels("Company {:07d}", ids),
        "domain": _labels("c{:07d}.example.com", ids),
        "workspace_id": _labels("ws_{:07d}", ids),
        "status": status,
        "edition": edition,
        "product": unless_prospect(_pick(rng, ("Analytics", "Automation"), (0.6, 0.4), n)),
        "contract_type": contract,
        "opt_out_clause": _null(annual & (rng.random(n) < 0.15), ~paying),
        "industry": _pick(rng, INDUSTRIES, (4, 2, 2, 2, 2, 1, 1, 1), n),
        "region": region,
        "country": country,
        "employees": employees,
        "start_date": start,
        "renewal_date": renewal,
        "trial_end_date": trial_end,
        "churn_date": churn_date,
        "churn_reason": churn_reason,
        "seats": unless_prospect(seats),
        "owner_id": _labels("ae{:03d}", aes),
        "owner_name": _labels("Account Executive {:03d}", aes),
        "owner_email": _labels("ae{:03d}@vendor.example", aes),
        "csm_id": unless_prospect(_labels("csm{:03d}", csms)),
        "csm_name": unless_prospect(_labels("Success Manager {:03d}", csms)),
        "csm_email": unless_prospect(_labels("csm{:03d}@vendor.example", csms)),
        "csm_sentiment": unless_prospect(sentiment),
        "product_fit": unless_prospect(_pick(rng, ("Good", "Fair", "Poor"), (0.6, 0.28, 0.12), n)),
        "lifecycle_stage": lifecycle,
        "onboarding_status": unless_prospect(onboarding),
        "onboarding_step": unless_prospect(step),
        "use_case": unless_prospect(
            _pick(
                rng,
                ("Reporting", "Automation", "Customer Marketing", "Data Integration"),
                (0.4, 0.3, 0.2, 0.1),
                n,
            )
        ),
        "purchase_benefit": unless_prospect(
            _pick(
                rng,
                (
                    "Reduce Reporting Time",
                    "Increase Retention",
                    "Automate Workflows",
                    "Grow Pipeline",
                ),
                (0.35, 0.25, 0.25, 0.15),
                n,
            )
        ),
        "benefit_achieved_date": benefit_day,
        "growth_potential": unless_prospect(
            _pick(rng, ("High", "Medium", "Low"), (0.25, 0.5, 0.25), n)
        ),
        "health_score": unless_prospect(health),
        "reference_account": customer & (health > 70) & (rng.random(n) < 0.15),
        "strategic": customer & (rng.random(n) > 0.95),
        "mrr": _null(mrr, ~customer),
        "arr": _null(mrr * 12, ~customer),
        "currency": _null(np.full(n, "USD", dtype=object), prospect),
        "custom": np.full(n, "{}", dtype=object),
        "created_at": created,
        "updated_at": updated,
        "deleted_at": _nat(updated, ~deleted),
    }
    engagement = np.where(prospect, 0.15, rng.gamma(2.0, 0.5, n))
    return Accounts(batch, ~deleted, prospect, status, edition, start, seats, pattern, engagement)


def generate_contacts(rng: np.random.Generator, scale: Scale) -> tuple[Batch, np.ndarray]:
    """Contacts in id order, `contacts_per_account` per account; returns (batch, emails)."""
    per = scale.contacts_per_account
    n = scale.accounts * per
    ids = np.arange(1, n + 1)
    account = (ids - 1) // per + 1
    slot = (ids - 1) % per
    roles = np.array([*ROLES, "User"], dtype=object)[np.minimum(slot, len(ROLES))]
    emails = np.array(
        [
            f"u{c:08d}@c{a:07d}.example.com"
            for c, a in zip(ids.tolist(), account.tolist(), strict=True)
        ],
        dtype=object,
    )
    titles = np.array(
        [
            "Operations Manager",
            "VP of Operations",
            "Chief Executive Officer",
            "Analytics Lead",
            "Analyst",
        ],
        dtype=object,
    )[np.minimum(slot, len(ROLES))]
    created = _stamp(
        scale.day - rng.integers(30, 1500, n).astype("timedelta64[D]"), rng.integers(0, 86400, n)
    )
    updated = _stamp(
        scale.day - rng.integers(1, 60, n).astype("timedelta64[D]"), rng.integers(0, 86400, n)
    )
    deleted = rng.random(n) < 0.01
    batch: Batch = {
        "id": ids,
        "external_key": _labels("bench-contact:{:08d}", ids),
        "account_ref": _labels("bench:{:07d}", account),
        "account_id": account,
        "email": emails,
        "first_name": np.array(FIRST_NAMES, dtype=object)[rng.integers(0, len(FIRST_NAMES), n)],
        "last_name": np.array(LAST_NAMES, dtype=object)[rng.integers(0, len(LAST_NAMES), n)],
        "title": titles,
        "role": roles,
        "lifecycle_stage": _pick(rng, ("customer", "lead", "other"), (0.8, 0.15, 0.05), n),
        "email_opt_out": rng.random(n) < 0.05,
        "referrals_won": np.where(rng.random(n) < 0.03, rng.integers(1, 4, n), 0),
        "owner_id": _labels("ae{:03d}", rng.integers(1, 51, n)),
        "custom": np.full(n, "{}", dtype=object),
        "created_at": created,
        "updated_at": updated,
        "deleted_at": _nat(updated, ~deleted),
    }
    return batch, emails


def _allocate(total: int, weight: np.ndarray, cap: np.ndarray, rng: np.random.Generator) -> Any:
    """Integer rows per account, proportional to `weight`, at most `cap`, summing to `total`
    (or to the sum of caps when that is smaller)."""
    rows = np.zeros(len(weight), dtype=np.int64)
    total = min(total, int(cap.sum()))
    for _ in range(20):
        left = total - int(rows.sum())
        open_ = (rows < cap) & (weight > 0)
        if left <= 0 or not open_.any():
            break
        share = np.where(open_, weight, 0.0)
        want = left * share / share.sum()
        add = np.floor(want).astype(np.int64)
        if add.sum() == 0:  # hand out the remainder one by one, by weight
            picks = rng.choice(len(weight), left, p=share / share.sum())
            add = np.bincount(picks, minlength=len(weight))
        rows = np.minimum(rows + add, cap)
    return rows


def generate_usage(
    rng: np.random.Generator, scale: Scale, accounts: Accounts, emails: np.ndarray
) -> Iterator[Batch]:
    """Usage rows in primary-key order, in chunks of accounts.

    Each account has a share of active days, a number of active users and a trend; its rows
    are distinct (day, feature, user) combinations drawn on its active days.
    """
    n, per = scale.accounts, scale.contacts_per_account
    days = scale.usage_days + 1  # the as-of day too: the second evaluation reads it
    n_feat, n_user = len(FEATURES), per + 1  # user 0: account-level rows (user_key '')
    combos = days * n_feat * n_user
    pattern = accounts.pattern
    active = np.select(
        [pattern == "power", pattern == "dormant", pattern == "none"],
        [rng.uniform(0.85, 1.0, n), rng.uniform(0.0, 0.08, n), np.zeros(n)],
        rng.beta(5, 3, n),
    )
    active_days = np.where(pattern == "none", 0, np.maximum(1, np.round(active * days))).astype(
        np.int64
    )
    users = np.select(
        [pattern == "power", pattern == "dormant"],
        [np.full(n, per), rng.integers(1, 3, n)],
        1 + rng.binomial(per - 1, 0.5, n),
    ).astype(np.int64)
    trend = np.select(
        [pattern == "rising", pattern == "falling"],
        [rng.uniform(0.4, 0.9, n), -rng.uniform(0.4, 0.8, n)],
        rng.normal(0, 0.1, n),
    )
    intensity = np.exp(rng.normal(0, 0.6, n)) * np.where(pattern == "power", 2.0, 1.0)
    cap = active_days * n_feat * (users + 1) // 3
    rows = _allocate(scale.usage_rows, active_days * intensity, cap, rng)
    feature_p = np.array(FEATURE_WEIGHTS, dtype=float) / sum(FEATURE_WEIGHTS)
    account_level = np.isin(np.arange(n_feat), [FEATURES.index(f) for f in ACCOUNT_LEVEL_FEATURES])
    gold_codes = [FEATURES.index(f) for f in GOLD_FEATURES]
    login = FEATURES.index("login")
    day_labels = np.datetime_as_string(scale.day - np.arange(days - 1, -1, -1)).astype(object)
    feature_labels = np.array(FEATURES, dtype=object)
    ws = _labels("ws_{:07d}", np.arange(1, n + 1))
    chunk = max(1, 2_000_000 // max(1, int(rows.mean()) if rows.size else 1))
    for first in range(0, n, chunk):
        idx = np.arange(first, min(n, first + chunk))
        want = rows[idx]
        draws = 2 * want + np.where(want > 0, 8, 0)
        local = np.repeat(np.arange(len(idx)), draws)
        acct = idx[local]
        # The account's active days: a random permutation of days, first `active_days` of it.
        perm = np.argsort(rng.random((len(idx), days)), axis=1)
        day = perm[local, (rng.random(len(local)) * active_days[acct]).astype(np.int64)]
        feature = rng.choice(n_feat, len(local), p=feature_p)
        not_gold = accounts.edition[acct] != "Gold"
        feature = np.where(np.isin(feature, gold_codes) & not_gold, login, feature)
        user = 1 + (rng.random(len(local)) * users[acct]).astype(np.int64)
        user = np.where(account_level[feature], 0, user)
        key = np.unique(local * combos + (day * n_feat + feature) * n_user + user)
        # Keep `want` random combinations per account, then back to key order.
        group = key // combos
        prio = rng.random(len(key))
        order = np.lexsort((prio, group))
        counts = np.bincount(group, minlength=len(idx))
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        rank = np.arange(len(key)) - np.repeat(starts, counts)
        key = np.sort(key[order[rank < want[group[order]]]])
        acct = idx[key // combos]
        rest = key % combos
        day, rest = rest // (n_feat * n_user), rest % (n_feat * n_user)
        feature, user = rest // n_user, rest % n_user
        contact = np.where(user > 0, acct * per + user, 0)  # contact ids are 1-based
        factor = np.maximum(0.05, 1 + trend[acct] * (day - days / 2) / (days / 2))
        base = np.where(
            feature == login, 1 + rng.poisson(2, len(key)), 1 + rng.poisson(6, len(key))
        )
        base = np.where(account_level[feature], 10 + rng.poisson(25, len(key)), base)
        events = np.maximum(1, np.round(base * factor * intensity[acct])).astype(np.int64)
        minutes = np.round(events * rng.uniform(0.2, 3.0, len(key)), 1)
        user_keys = np.concatenate((np.array([""], dtype=object), emails))[contact]
        yield {
            "source": np.full(len(key), USAGE_SOURCE, dtype=object),
            "account_key": ws[acct],
            "day": day_labels[day],
            "feature": feature_labels[feature],
            "user_key": user_keys,
            "account_id": acct + 1,
            "contact_id": _null(contact, contact == 0),
            "events": events,
            "minutes": minutes,
        }


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
    pick = rng.random(len(batch["id"])) < share
    copy = {k: v[pick] for k, v in batch.items()}
    copy["source"] = np.full(int(pick.sum()), source, dtype=object)
    copy["source_id"] = _labels(prefix + "{:09d}", copy["id"])
    return copy


def generate_activities(rng: np.random.Generator, scale: Scale, accounts: Accounts) -> Batch:
    account, contact, ago = _facts(rng, scale, accounts, 20.0)
    n = len(account)
    kind = _pick(rng, ("email", "call", "meeting", "qbr"), (0.5, 0.2, 0.22, 0.08), n)
    occurred = _stamp(scale.day, -ago)
    duration = np.where(
        kind == "email",
        np.nan,
        np.where(kind == "call", rng.integers(5, 45, n), 30 + 15 * rng.integers(0, 5, n)),
    )
    batch: Batch = {
        "id": np.arange(1, n + 1),
        "source": np.full(n, "salesforce", dtype=object),
        "source_id": _labels("00T{:012d}", np.arange(1, n + 1)),
        "account_ref": _labels("bench:{:07d}", account),
        "contact_ref": _null(_labels("bench-contact:{:08d}", contact), contact == 0),
        "account_id": account,
        "contact_id": _null(contact, contact == 0),
        "kind": kind,
        "status": _pick(rng, ("completed", "cancelled"), (0.85, 0.15), n),
        "occurred_at": occurred,
        "duration_minutes": _null(duration, np.isnan(duration)),
        "owner_id": _labels("csm{:03d}", rng.integers(1, 41, n)),
        "subject": _pick(
            rng, ("Check-in", "Renewal", "Onboarding", "QBR", "Follow-up"), (3, 1, 1, 1, 2), n
        ),
        "custom": np.full(n, "{}", dtype=object),
        "updated_at": occurred + np.timedelta64(3600, "s"),
        "deleted_at": _nat(occurred, rng.random(n) >= 0.005),
    }
    mirrored = _mirror(rng, batch, 0.03, "hubspot", "hs-act-")
    mirrored["id"] = mirrored["id"] + n
    return {k: np.concatenate((batch[k], mirrored[k])) for k in batch}


def generate_tickets(rng: np.random.Generator, scale: Scale, accounts: Accounts) -> Batch:
    account, contact, ago = _facts(rng, scale, accounts, 3.0)
    n = len(account)
    opened = _stamp(scale.day, -ago)
    status = _pick(rng, ("Closed", "Open", "New"), (0.8, 0.15, 0.05), n)
    closed = status == "Closed"
    closed_at = opened + (rng.integers(600, 20 * 86400, n) * 1_000_000).astype("timedelta64[us]")
    batch: Batch = {
        "id": np.arange(1, n + 1),
        "source": np.full(n, "salesforce", dtype=object),
        "source_id": _labels("500{:012d}", np.arange(1, n + 1)),
        "account_ref": _labels("bench:{:07d}", account),
        "contact_ref": _null(_labels("bench-contact:{:08d}", contact), contact == 0),
        "account_id": account,
        "contact_id": _null(contact, contact == 0),
        "type": _pick(rng, ("Bug", "Question", "Feature Request"), (0.45, 0.4, 0.15), n),
        "severity": _pick(rng, ("Critical", "High", "Medium", "Low"), (0.05, 0.2, 0.5, 0.25), n),
        "status": status,
        "is_closed": closed,
        "feature": np.array(FEATURES, dtype=object)[rng.integers(0, len(FEATURES), n)],
        "subject": _pick(
            rng, ("Cannot export", "How do I", "Slow dashboard", "Please add"), (1, 1, 1, 1), n
        ),
        "opened_at": opened,
        "closed_at": _nat(closed_at, ~closed),
        "updated_at": opened + np.timedelta64(7200, "s"),
        "deleted_at": _nat(opened, rng.random(n) >= 0.003),
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
    responded = _stamp(scale.day, -rng.integers(60, 365 * 86400, n))
    return {
        "id": np.arange(1, n + 1),
        "source": np.full(n, "nps", dtype=object),
        "source_id": _labels("nps-{:09d}", np.arange(1, n + 1)),
        "account_ref": _labels("bench:{:07d}", account),
        "contact_ref": _labels("bench-contact:{:08d}", contact),
        "account_id": account,
        "contact_id": contact,
        "email": emails[contact - 1],
        "score": rng.choice(11, n, p=np.array(weights) / sum(weights)),
        "responded_at": responded,
        "comment": _null(np.full(n, "ok", dtype=object), rng.random(n) < 0.7),
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
            _pick(rng, ("active", "past_due", "unpaid"), (0.95, 0.03, 0.02), n),
        ),
    ).astype(object)
    edition = accounts.edition[keep]
    annual = accounts.batch["contract_type"][keep] == "Annual"
    seats = accounts.seats[keep]
    unit = np.array([PRICE_PER_SEAT.get(e, 0.0) for e in edition])
    mrr = np.round(unit * seats, 2)
    started = _stamp(accounts.start[keep], np.zeros(n, dtype=np.int64))
    ended = _stamp(accounts.batch["churn_date"][keep], np.zeros(n, dtype=np.int64))
    period_start = _stamp(
        scale.day - rng.integers(0, 30, n).astype("timedelta64[D]"), np.zeros(n, dtype=np.int64)
    )
    return {
        "id": np.arange(1, n + 1),
        "source": np.full(n, "stripe", dtype=object),
        "source_id": _labels("sub_{:010d}", account),
        "account_ref": _labels("bench:{:07d}", account),
        "account_id": account,
        "customer_ref": _labels("cus_{:010d}", account),
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
        "discount_percent": _null(np.zeros(n), np.ones(n, dtype=bool)),
        "mrr": mrr,
        "currency": np.full(n, "usd", dtype=object),
        "started_at": started,
        "current_period_start": period_start,
        "current_period_end": period_start + np.timedelta64(30, "D"),
        "trial_end": _nat(period_start + np.timedelta64(14, "D"), status != "Trial"),
        "cancel_at_period_end": rng.random(n) > 0.97,
        "canceled_at": ended,
        "ended_at": ended,
        "updated_at": period_start,
    }


def generate_opportunities(rng: np.random.Generator, scale: Scale, accounts: Accounts) -> Batch:
    account, _, ago = _facts(rng, scale, accounts, 1.5)
    n = len(account)
    stage = _pick(
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
        "source_id": _labels("006{:012d}", np.arange(1, n + 1)),
        "account_ref": _labels("bench:{:07d}", account),
        "account_id": account,
        "name": _labels("Deal {:09d}", np.arange(1, n + 1)),
        "type": _pick(rng, ("New Business", "Renewal", "Upsell"), (0.3, 0.5, 0.2), n),
        "stage": stage,
        "amount": np.round(np.exp(rng.normal(9, 1, n)), 2),
        "currency": np.full(n, "USD", dtype=object),
        "close_date": close,
        "is_closed": np.isin(stage, ["Closed Won", "Closed Lost"]),
        "is_won": stage == "Closed Won",
        "owner_id": _labels("ae{:03d}", rng.integers(1, 51, n)),
        "referred_by_ref": _null(_labels("bench-contact:{:08d}", referred), referred == 0),
        "referred_by_contact_id": _null(referred, referred == 0),
        "custom": np.full(n, "{}", dtype=object),
        "updated_at": _stamp(scale.day - np.timedelta64(1, "D"), np.zeros(n, dtype=np.int64)),
        "deleted_at": np.full(n, np.datetime64("NaT"), dtype="datetime64[us]"),
    }


def generate_invoices(rng: np.random.Generator, scale: Scale, subs: Batch) -> Batch:
    """Six monthly invoices per paying subscription."""
    paying = np.isin(subs["status"], ["active", "past_due", "unpaid", "canceled"])
    account = np.repeat(subs["account_id"][paying], 6)
    mrr = np.repeat(subs["mrr"][paying], 6)
    month = np.tile(np.arange(6), int(paying.sum()))
    n = len(account)
    status = _pick(rng, ("paid", "open", "uncollectible"), (0.95, 0.03, 0.02), n)
    due = np.round(mrr, 2)
    paid = np.where(status == "paid", due, 0.0)
    created = _stamp(scale.day - (30 * month + 5).astype("timedelta64[D]"), np.zeros(n, np.int64))
    return {
        "id": np.arange(1, n + 1),
        "source": np.full(n, "stripe", dtype=object),
        "source_id": _labels("in_{:012d}", np.arange(1, n + 1)),
        "account_ref": _labels("bench:{:07d}", account),
        "account_id": account,
        "customer_ref": _labels("cus_{:010d}", account),
        "subscription_ref": _labels("sub_{:010d}", account),
        "status": status,
        "currency": np.full(n, "usd", dtype=object),
        "amount_due": due,
        "amount_paid": paid,
        "amount_remaining": due - paid,
        "created_at": created,
        "due_at": created + np.timedelta64(14, "D"),
        "paid_at": _nat(created + np.timedelta64(2, "D"), status != "paid"),
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


# --- loading ---------------------------------------------------------------------------------


def check_batch(table: sa.Table, batch: Batch) -> None:
    """Refuse a batch that misses a NOT NULL column, holds a NULL in one, or names no column."""
    unknown = set(batch) - set(table.c.keys())
    if unknown:
        raise ValueError(f"{table.name}: no such columns {sorted(unknown)}")
    for column in table.c:
        if column.nullable or column.autoincrement is True or column.server_default is not None:
            continue
        if column.name not in batch:
            if column.primary_key and isinstance(column.type, sa.Integer):
                continue  # an integer key the database fills
            raise ValueError(f"{table.name}.{column.name} is NOT NULL and not generated")
        values = batch[column.name]
        missing = np.isnat(values) if values.dtype.kind == "M" else values == None  # noqa: E711
        if np.any(missing):
            raise ValueError(f"{table.name}.{column.name} is NOT NULL but has NULLs")


def _sqlite_values(values: np.ndarray) -> list[Any]:
    """A column as the values SQLAlchemy would bind on SQLite (dates and UTC times as text)."""
    if values.dtype.kind == "M":
        unit = np.datetime_data(values.dtype)[0]
        text = np.datetime_as_string(values, unit="D" if unit == "D" else "us")
        if unit != "D":
            text = np.strings.replace(text, "T", " ")
        out = text.astype(object)
        out[np.isnat(values)] = None
        return list(out.tolist())
    if values.dtype.kind == "b":
        return list(values.astype(np.int64).tolist())
    if values.dtype.kind == "f":
        return list(_null(values, np.isnan(values)).tolist())
    return list(values.tolist())


def _arrow_csv(batch: Batch) -> bytes:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    columns = {}
    for name, values in batch.items():
        if values.dtype.kind == "M" and np.datetime_data(values.dtype)[0] != "D":
            columns[name] = pa.array(values, type=pa.timestamp("us", tz="UTC"), from_pandas=True)
        else:
            columns[name] = pa.array(values, from_pandas=True)
    sink = io.BytesIO()
    pacsv.write_csv(pa.table(columns), sink, pacsv.WriteOptions(include_header=False))
    return sink.getvalue()


class Loader(Protocol):
    """Writes one table at a time: `bulk(table)` around its batches, `write` per batch."""

    def bulk(self, table: sa.Table) -> contextlib.AbstractContextManager[None]: ...

    def write(self, table: sa.Table, batch: Batch) -> int: ...

    def close(self) -> None: ...


class SqliteLoader(Loader):
    """executemany in one transaction per batch, journal and syncs off for the load only."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "foreign_keys=OFF"):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.execute("PRAGMA cache_size=-2000000")

    @contextlib.contextmanager
    def bulk(self, table: sa.Table) -> Iterator[None]:
        """Secondary indexes dropped while the table loads, then built again (the same SQL)."""
        indexes = self.db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND sql IS NOT NULL",
            (table.name,),
        ).fetchall()
        for name, _ in indexes:
            self.db.execute(f'DROP INDEX "{name}"')
        yield
        started = time.perf_counter()
        for _, sql in indexes:
            self.db.execute(sql)
        if indexes:
            log(f"  {table.name}: {len(indexes)} indexes in {time.perf_counter() - started:.1f}s")

    def write(self, table: sa.Table, batch: Batch) -> int:
        check_batch(table, batch)
        names = list(batch)
        sql = (
            f"INSERT INTO {table.name} ({', '.join(names)}) "
            f"VALUES ({', '.join('?' for _ in names)})"
        )
        columns = [_sqlite_values(batch[c]) for c in names]
        self.db.execute("BEGIN")
        self.db.executemany(sql, zip(*columns, strict=True))
        self.db.execute("COMMIT")
        return len(columns[0])

    def close(self) -> None:
        self.db.execute("PRAGMA journal_mode=WAL")  # what the product's engine uses
        self.db.close()


SERIAL_TABLES = "account contact activity ticket nps_response subscription opportunity invoice"
# Indexes of a table that no foreign key depends on, with what builds them again.
_PG_INDEXES = """
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), c.conname,
       pg_get_constraintdef(c.oid)
FROM pg_index i
LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.contype IN ('p', 'u')
WHERE i.indrelid = %s::regclass
  AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f'
                  AND f.conindid = i.indexrelid)
"""


class PostgresLoader(Loader):
    """COPY (CSV written by pyarrow) with foreign-key triggers off for the load only."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.db = psycopg.connect(
            sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        with self.db.cursor() as cursor:
            # Rows link by construction; skip the per-row foreign-key triggers for the load only.
            cursor.execute("SET session_replication_role = replica")
            cursor.execute("SET synchronous_commit = off")
            cursor.execute("SET maintenance_work_mem = '2GB'")
        self.db.commit()

    @contextlib.contextmanager
    def bulk(self, table: sa.Table) -> Iterator[None]:
        """Indexes and key constraints no foreign key needs are dropped while the table loads
        and built again afterwards, with their original names and definitions."""
        with self.db.cursor() as cursor:
            indexes = cursor.execute(_PG_INDEXES, (table.name,)).fetchall()
            for name, _, constraint, _ in indexes:
                if constraint:
                    cursor.execute(f'ALTER TABLE {table.name} DROP CONSTRAINT "{constraint}"')
                else:
                    cursor.execute(f"DROP INDEX {name}")
        self.db.commit()
        yield
        started = time.perf_counter()
        with self.db.cursor() as cursor:
            for _, definition, constraint, constraint_def in indexes:
                if constraint:
                    cursor.execute(
                        f'ALTER TABLE {table.name} ADD CONSTRAINT "{constraint}" {constraint_def}'
                    )
                else:
                    cursor.execute(definition)
        self.db.commit()
        if indexes:
            log(f"  {table.name}: {len(indexes)} indexes in {time.perf_counter() - started:.1f}s")

    def write(self, table: sa.Table, batch: Batch) -> int:
        check_batch(table, batch)
        names = ", ".join(f'"{c}"' for c in batch)
        data = _arrow_csv(batch)
        with (
            self.db.cursor() as cursor,
            cursor.copy(f"COPY {table.name} ({names}) FROM STDIN WITH (FORMAT csv)") as copy,
        ):
            for offset in range(0, len(data), 1 << 24):
                copy.write(data[offset : offset + (1 << 24)])
        self.db.commit()
        return len(next(iter(batch.values())))

    def close(self) -> None:
        with self.db.cursor() as cursor:
            for table in SERIAL_TABLES.split():  # ids were given explicitly: move the sequences on
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 1) FROM {table}))"
                )
        self.db.commit()
        self.db.close()


def load(loader: Loader, scale: Scale) -> dict[str, int]:
    """Generate and write every table; returns rows per table."""
    from smartseg.store import models

    rng = np.random.default_rng(scale.seed)
    counts: dict[str, int] = {}

    def put(model: Any, batches: Iterable[Batch]) -> None:
        table = table_of(model)
        with loader.bulk(table):
            for batch in batches:
                started = time.perf_counter()
                counts[table.name] = counts.get(table.name, 0) + loader.write(table, batch)
                seconds = time.perf_counter() - started
                log(f"  {table.name}: {counts[table.name]:,} rows (write {seconds:.1f}s)")

    put(models.CrmUser, [generate_crm_users()])
    accounts = generate_accounts(rng, scale)
    put(models.Account, [accounts.batch])
    contacts, emails = generate_contacts(rng, scale)
    put(models.Contact, [contacts])
    del contacts
    put(models.Activity, [generate_activities(rng, scale, accounts)])
    put(models.Ticket, [generate_tickets(rng, scale, accounts)])
    put(models.NpsResponse, [generate_nps(rng, scale, emails)])
    subs = generate_subscriptions(rng, scale, accounts)
    put(models.Subscription, [subs])
    put(models.Opportunity, [generate_opportunities(rng, scale, accounts)])
    put(models.Invoice, [generate_invoices(rng, scale, subs)])
    put(models.UsageDaily, generate_usage(rng, scale, accounts, emails))
    return counts


# --- databases -------------------------------------------------------------------------------


@dataclass(slots=True)
class Database:
    kind: str
    url: str
    engine: Engine
    load: dict[str, Any]


def _pg_urls(admin_url: str, scale: Scale) -> tuple[str, str]:
    name = f"smartseg_bench_{scale.tag}"[:63]
    url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    return name, url


def prepare_database(args: argparse.Namespace, scale: Scale) -> Database:
    """The loaded database for `scale`: reused when --reuse finds a complete one, else built."""
    if args.db == "sqlite":
        return _sqlite_database(args.cache_dir, scale, reuse=args.reuse)
    return _postgres_database(args.postgres_url, scale, reuse=args.reuse)


def _sqlite_database(cache_dir: Path, scale: Scale, *, reuse: bool) -> Database:
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"smartseg_bench_{scale.tag}.db"
    marker = path.with_suffix(".json")  # written once the load is complete
    url = f"sqlite:///{path}"
    if reuse and path.exists() and marker.exists():
        log(f"reusing {path}")
        engine = make_engine(url)
        upgrade(engine)  # migrations added since the load
        return Database("sqlite", url, engine, _reused(marker.read_text()))
    for stale in (path, marker, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    log(f"loading {path}")
    started = time.perf_counter()
    loader = SqliteLoader(path)
    counts = load(loader, scale)
    loaded = time.perf_counter() - started
    log("ANALYZE")
    analyze_started = time.perf_counter()
    loader.db.execute("ANALYZE")
    loader.close()
    info = _load_info(scale, counts, loaded, time.perf_counter() - analyze_started)
    info["file_mb"] = round(path.stat().st_size / 2**20)
    engine = make_engine(url)
    _check_schema(engine)
    marker.write_text(json.dumps(info))
    return Database("sqlite", url, engine, {**info, "reused": False})


def _postgres_database(admin_url: str, scale: Scale, *, reuse: bool) -> Database:
    name, url = _pg_urls(admin_url, scale)
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            # The database's comment is the marker: set once the load is complete.
            comment = connection.execute(
                sa.text(
                    "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                    "WHERE datname = :name"
                ),
                {"name": name},
            ).scalar()
            if reuse and comment:
                log(f"reusing database {name}")
                engine = make_engine(url)
                upgrade(engine)  # migrations added since the load
                return Database("postgresql", url, engine, _reused(comment))
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine = make_engine(url)
        upgrade(engine)
        log(f"loading database {name}")
        started = time.perf_counter()
        loader = PostgresLoader(url)
        counts = load(loader, scale)
        loader.close()
        loaded = time.perf_counter() - started
        log("VACUUM ANALYZE")
        analyze_started = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("VACUUM (ANALYZE)"))
            size = connection.execute(sa.text("SELECT pg_database_size(current_database())"))
            info = _load_info(scale, counts, loaded, time.perf_counter() - analyze_started)
            info["database_mb"] = round(int(size.scalar() or 0) / 2**20)
        _check_schema(engine)
        with admin.connect() as connection:
            text = json.dumps(info).replace("'", "''")
            connection.execute(sa.text(f"COMMENT ON DATABASE \"{name}\" IS '{text}'"))
        return Database("postgresql", url, engine, {**info, "reused": False})
    finally:
        admin.dispose()


def _reused(marker: str) -> dict[str, Any]:
    return {**json.loads(marker), "reused": True}


def _check_schema(engine: Engine) -> None:
    """The load dropped and rebuilt indexes: the schema must still be the migrated one."""
    from smartseg.store import schema_drift

    drift = schema_drift(engine)
    if drift:
        raise RuntimeError(f"the loaded schema differs from the models: {drift}")


def _load_info(
    scale: Scale, counts: dict[str, int], seconds: float, analyze: float
) -> dict[str, Any]:
    return {
        "scale": scale.as_json(),
        "rows": counts,
        "load_seconds": round(seconds, 1),
        "analyze_seconds": round(analyze, 1),
    }


def reset_ledgers(engine: Engine) -> None:
    """Forget earlier evaluations, so the first one sees everyone enter."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text("TRUNCATE task_ledger, membership, segment, run"))
        else:
            for table in ("task_ledger", "membership", "segment", "run"):
                connection.execute(sa.text(f"DELETE FROM {table}"))
    with engine.connect() as connection:
        connection.execute(sa.text("ANALYZE membership"))
        connection.commit()


# --- rules -----------------------------------------------------------------------------------


def catalogue_from_config(path: Path) -> Catalogue:
    """The catalogue with the custom fields the config's source field maps keep (read as plain
    YAML: loading the config proper needs its secrets)."""
    import yaml

    levels = {"account": "account", "company": "account", "companies": "account"}
    levels |= {"contact": "contact", "contacts": "contact"}
    custom: dict[str, set[str]] = {"account": set(), "contact": set()}
    base = Catalogue()
    try:
        sources = (yaml.safe_load(path.read_text()) or {}).get("sources", {})
    except (OSError, yaml.YAMLError):
        return base
    for name in ("salesforce", "hubspot"):
        section = sources.get(name) or {}
        if not section.get("enabled", True):
            continue
        for obj, mapping in (section.get("field_map") or {}).items():
            level = levels.get(str(obj).lower())
            if level:
                custom[level].update(n for n in mapping or {} if n not in base.levels[level])
        for obj, names in (section.get("custom_fields") or {}).items():
            level = levels.get(str(obj).lower())
            if level:
                custom[level].update(names or ())
    return Catalogue.with_custom(custom)


def load_rule_set(directory: Path) -> RuleSet:
    """The rules in `directory`, checked as the worker checks them."""
    if not any(directory.glob("*.y*ml")):
        raise SystemExit(f"no segment rules in {directory}; pass --rules DIR")
    return load_rules(directory, catalogue_from_config(REPO / "config" / "smartseg.yaml"))


def usage_window(rules: RuleSet, day: dt.date) -> tuple[dt.date | None, str]:
    """The earliest day the rules' usage windows reach, or None when a `first` window makes
    evaluation scan all of usage."""
    compiler = Compiler(EvalTime(day), "sqlite")
    for rule in rules.segments:
        if rule.checked is not None:
            compiler.predicate(rule.checked.tree, rule.level)
    windows = [
        spec.window
        for table in (compiler.account_metrics, compiler.contact_metrics)
        for spec in table.specs
        if isinstance(spec, TUsage)
    ]
    if any(w.first for w in windows):
        return None, "full table (a rule uses a `first Nd` window)"
    if not windows:
        return None, "full table (no usage windows in the rules)"
    start = min(compiler.when.bounds(w)[0] for w in windows)
    return start, f"day >= {start} ({(day - start).days} days before as-of)"


# --- measurements ----------------------------------------------------------------------------


def baseline(engine: Engine, start: dt.date | None, repeat: int = 3) -> dict[str, Any]:
    sql = "SELECT account_id, SUM(events), COUNT(DISTINCT day) FROM usage_daily"
    params: dict[str, Any] = {}
    if start is not None:
        sql += " WHERE day >= :start"
        params["start"] = start
    sql += " GROUP BY account_id"
    statement = sa.text(sql).bindparams(*(sa.bindparam("start", type_=sa.Date()) for _ in params))
    times: list[float] = []
    rows = 0
    for attempt in range(repeat + 1):  # the first run warms the cache and is not counted
        started = time.perf_counter()
        with engine.connect() as connection:
            rows = len(connection.execute(statement, params).fetchall())
        seconds = time.perf_counter() - started
        log(f"baseline {'warm-up' if attempt == 0 else attempt}: {seconds:.2f}s ({rows:,} groups)")
        if attempt:
            times.append(seconds)
    return {
        "sql": sql,
        "groups": rows,
        "seconds": round(min(times), 3),
        "runs": [round(t, 3) for t in times],
        "median": round(statistics.median(times), 3),
    }


def phase_of(statement: str) -> str:
    s = " ".join(statement.split()).lower()
    if "smartseg_m_" in s and (
        s.startswith(("create temporary table", "create unique index", "analyze", "drop table"))
    ):
        return "metric_tables"
    if s.startswith("insert into smartseg_members"):
        return "segment_inserts"
    if "from smartseg_members" in s and s.startswith("select"):
        return "segment_result_fetches"
    if s.startswith(("update membership", "insert into membership")) or (
        s.startswith("select") and "from membership" in s
    ):
        return "membership_writes"
    if "smartseg_members" in s:
        return "setup"
    return "other"


@dataclass(slots=True)
class StatementClock:
    """Times every statement an engine runs, optionally printing plans of slow ones."""

    engine: Engine
    explain_over: float | None = None
    records: list[tuple[str, float, str]] = field(default_factory=list)
    _started: list[float] = field(default_factory=list)

    def __enter__(self) -> StatementClock:
        sa.event.listen(self.engine, "before_cursor_execute", self._before)
        sa.event.listen(self.engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *exc: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._before)
        sa.event.remove(self.engine, "after_cursor_execute", self._after)

    def _before(self, *args: Any) -> None:
        self._started.append(time.perf_counter())

    def _after(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        seconds = time.perf_counter() - self._started.pop()
        self.records.append((phase_of(statement), seconds, statement))
        if self.explain_over is not None and seconds >= self.explain_over and not many:
            self._explain(cursor.connection, statement, parameters, seconds)

    def _explain(self, dbapi: Any, statement: str, parameters: Any, seconds: float) -> None:
        query = statement
        if query.lstrip().upper().startswith("CREATE TEMPORARY TABLE"):
            query = query.split(" AS ", 1)[1]
        postgres = self.engine.dialect.name == "postgresql"
        prefix = "EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN "
        cursor = dbapi.cursor()
        try:
            if postgres:
                cursor.execute("SAVEPOINT bench_explain")
            cursor.execute(prefix + query, parameters)
            plan = "\n".join(" | ".join(str(v) for v in row) for row in cursor.fetchall())
            if postgres:
                cursor.execute("ROLLBACK TO SAVEPOINT bench_explain")
        finally:
            cursor.close()
        print(
            f"\n=== {seconds:.2f}s {' '.join(statement.split())[:400]}\n{plan}\n",
            file=sys.stderr,
            flush=True,
        )

    def summary(self, wall: float) -> dict[str, Any]:
        phases: dict[str, float] = {}
        counts: dict[str, int] = {}
        for phase, seconds, _ in self.records:
            phases[phase] = phases.get(phase, 0.0) + seconds
            counts[phase] = counts.get(phase, 0) + 1
        sql = sum(phases.values())
        slowest = sorted(self.records, key=lambda r: -r[1])[:8]
        return {
            "phases": {k: round(v, 3) for k, v in sorted(phases.items(), key=lambda kv: -kv[1])},
            "statements": counts,
            "sql_seconds": round(sql, 3),
            "outside_sql_seconds": round(wall - sql, 3),
            "slowest": [
                {"phase": p, "seconds": round(s, 3), "sql": " ".join(t.split())[:240]}
                for p, s, t in slowest
            ],
        }


def run_evaluation(
    engine: Engine, rules: RuleSet, as_of: dt.datetime, explain_over: float | None = None
) -> dict[str, Any]:
    with StatementClock(engine, explain_over) as clock:
        started = time.perf_counter()
        result = evaluate(engine, rules, as_of=as_of)
        wall = time.perf_counter() - started
    segments = result.segments.values()
    out = {
        "as_of": as_of.isoformat(),
        "seconds": round(wall, 3),
        "reported_seconds": round(result.seconds, 3),
        "members": sum(s.members for s in segments),
        "entered": sum(s.entered for s in segments),
        "exited": sum(s.exited for s in segments),
        "empty_segments": sum(1 for s in segments if s.members == 0),
        **clock.summary(wall),
        "segment_members": {k: s.members for k, s in result.segments.items()},
    }
    log(
        f"evaluation as of {as_of:%Y-%m-%d}: {wall:.2f}s, {out['members']:,} members, "
        f"{out['entered']:,} entered, {out['exited']:,} exited; phases {out['phases']}"
    )
    return out


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--contacts-per-account", type=int, default=10)
    parser.add_argument("--usage-rows", type=int, default=30_000_000)
    parser.add_argument("--usage-days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--postgres-url",
        default=ADMIN_URL,
        help="an admin URL; the bench creates its own database per scale",
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "smartseg-bench"
    )
    parser.add_argument("--reuse", action="store_true", help="reuse a complete cached database")
    parser.add_argument("--rules", type=Path, default=REPO / "config" / "segments")
    parser.add_argument(
        "--explain",
        type=float,
        metavar="SECONDS",
        help="a third evaluation printing plans of statements slower than this",
    )
    args = parser.parse_args()
    if args.contacts_per_account < 1 or args.accounts < 1:
        parser.error("--accounts and --contacts-per-account must be positive")
    scale = Scale(
        args.accounts, args.contacts_per_account, args.usage_rows, args.usage_days, args.seed
    )
    rules = load_rule_set(args.rules)
    database = prepare_database(args, scale)
    engine = database.engine
    start, window = usage_window(rules, AS_OF.date())
    log(f"{len(rules.segments)} segments from {args.rules}; baseline window: {window}")
    base = baseline(engine, start)
    reset_ledgers(engine)
    first = run_evaluation(engine, rules, AS_OF)
    second = run_evaluation(engine, rules, AS_OF + dt.timedelta(days=1))
    if args.explain is not None:
        log(f"explain run: plans of statements over {args.explain}s follow")
        run_evaluation(engine, rules, AS_OF + dt.timedelta(days=1), args.explain)
    engine.dispose()
    report = {
        "benchmark": "segment_eval",
        "database": args.db,
        "server_version": _version(database),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "scale": scale.as_json(),
        "load": database.load,
        "rules": {"directory": str(args.rules), "segments": len(rules.segments)},
        "baseline": {**base, "window": window},
        "first_evaluation": first,
        "second_evaluation": second,
        "ratio_first": round(first["seconds"] / base["seconds"], 2),
        "ratio_second": round(second["seconds"] / base["seconds"], 2),
        "target_ratio": 2.0,
    }
    print(json.dumps(report))


def _version(database: Database) -> str:
    if database.kind == "sqlite":
        return sqlite3.sqlite_version
    engine = make_engine(database.url)
    try:
        with engine.connect() as connection:
            return str(connection.execute(sa.text("SHOW server_version")).scalar())
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
