"""Synthetic store data at any scale: the evaluation bench's accounts, contacts and usage.

numpy draws every column at once, so 100,000 accounts with 30,000,000 usage rows build in
minutes: accounts with realistic field distributions (status, edition, renewal and churn dates,
seats, sentiment, onboarding...), contacts in fixed roles (Primary Contact, Decision Maker,
Executive Sponsor, Champion, then Users) and usage rows over the days before the evaluation day
with per-account patterns (steady, rising, falling, dormant, power users). The facts around them
(activities, tickets, NPS, billing) are in `synthetic_facts.py`; `loading.py` writes it all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from smartseg.sandbox.population import INDUSTRIES, REGIONS  # the sandbox's own mix

Batch = dict[str, np.ndarray]

AS_OF = dt.datetime(2026, 6, 30, 6, 0, tzinfo=dt.UTC)
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
FIRST_NAMES = ("Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hugo", "Iris", "Jon")
LAST_NAMES = ("Adams", "Baker", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito")
PRICE_PER_SEAT = {"Gold": 60.0, "Silver": 35.0, "Bronze": 15.0, "Free": 0.0}


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


def pick(rng: np.random.Generator, options: tuple[Any, ...], weights: Any, n: int) -> np.ndarray:
    p = np.asarray(weights, dtype=float)
    return np.array(options, dtype=object)[rng.choice(len(options), n, p=p / p.sum())]


def labels(fmt: str, values: np.ndarray) -> np.ndarray:
    return np.array([fmt.format(v) for v in values.tolist()], dtype=object)


def null_where(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`values` as an object array with None where `mask` is set."""
    out = values.astype(object)
    out[mask] = None
    return out


def nat_where(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = values.copy()
    out[mask] = np.datetime64("NaT")
    return out


def stamp(day: np.datetime64 | np.ndarray, seconds: np.ndarray) -> np.ndarray:
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
    status = pick(
        rng,
        ("Customer", "Trial", "Pilot", "Churned", "Prospect"),
        (0.72, 0.05, 0.03, 0.10, 0.10),
        n,
    )
    prospect = status == "Prospect"
    edition = pick(rng, ("Gold", "Silver", "Bronze", "Free"), (0.2, 0.35, 0.3, 0.15), n)
    edition[prospect] = None
    ago = rng.integers(10, 2200, n)
    ago = np.where(status == "Trial", rng.integers(1, 30, n), ago)
    ago = np.where(status == "Pilot", rng.integers(5, 80, n), ago)
    ago = np.where(status == "Churned", np.maximum(ago, 120), ago)
    start = nat_where(day - ago.astype("timedelta64[D]"), prospect)
    paying = (status == "Customer") | (status == "Churned")
    annual = paying & (rng.random(n) < 0.65) & (edition != "Free")
    contract = np.where(annual, "Annual", "Monthly").astype(object)
    contract[~paying] = None
    renewal_in = np.where(annual, 365 - ago % 365, 30 - ago % 30)
    renewal = nat_where(day + renewal_in.astype("timedelta64[D]"), status != "Customer")
    trial_len = np.where(status == "Trial", 30, 90).astype("timedelta64[D]")
    trial_end = nat_where(start + trial_len, (status != "Trial") & (status != "Pilot"))
    churn_ago = 1 + (rng.random(n) * np.minimum(ago - 30, 720)).astype(int)
    churned = status == "Churned"
    churn_date = nat_where(day - churn_ago.astype("timedelta64[D]"), ~churned)
    churn_reason = pick(
        rng, ("Competitor", "Out of Business", "Budget", "Product Fit"), (0.35, 0.15, 0.3, 0.2), n
    )
    churn_reason[~churned] = None
    employees = np.clip(np.exp(rng.normal(5.2, 1.7, n)), 5, 50_000).astype(int)
    seats = np.clip(np.round(np.exp(rng.normal(np.log(12), 0.8, n))), 2, 2000).astype(int)
    seats = np.where(edition == "Free", 3, seats)
    seats = np.where(status == "Pilot", rng.integers(2, 10, n), seats)
    region_names = tuple(REGIONS)
    region = pick(rng, region_names, (0.5, 0.3, 0.15, 0.05), n)
    country_draw = rng.integers(0, 5, n)
    country = np.array(
        [REGIONS[r][c % len(REGIONS[r])] for r, c in zip(region, country_draw, strict=True)],
        dtype=object,
    )
    sentiment = pick(rng, ("Green", "Yellow", "Red"), (0.55, 0.3, 0.15), n)
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
        pick(rng, ("Not Started", "In Progress", "Behind", "Stuck"), (0.15, 0.5, 0.2, 0.15), n),
        pick(rng, ("Completed", "Behind", "Stuck"), (0.92, 0.05, 0.03), n),
    )
    step = np.where(onboarding == "Completed", 5, rng.integers(0, 5, n))
    benefit_after = rng.integers(30, 400, n)
    benefit_day = nat_where(
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
    created = stamp(day - created_days.astype("timedelta64[D]"), rng.integers(0, 86400, n))
    updated = stamp(
        day - rng.integers(1, 30, n).astype("timedelta64[D]"), rng.integers(0, 86400, n)
    )
    deleted = rng.random(n) < 0.005
    pattern = pick(
        rng,
        ("steady", "rising", "falling", "dormant", "power", "none"),
        (0.56, 0.12, 0.10, 0.08, 0.06, 0.08),
        n,
    )
    pattern[prospect] = "none"
    pattern[churned] = np.where(rng.random(int(churned.sum())) < 0.6, "none", "dormant")

    def unless_prospect(values: np.ndarray) -> np.ndarray:
        return null_where(values, prospect)

    batch: Batch = {
        "id": ids,
        "external_key": labels("bench:{:07d}", ids),
        "name": labels("Company {:07d}", ids),
        "domain": labels("c{:07d}.example.com", ids),
        "workspace_id": labels("ws_{:07d}", ids),
        "status": status,
        "edition": edition,
        "product": unless_prospect(pick(rng, ("Analytics", "Automation"), (0.6, 0.4), n)),
        "contract_type": contract,
        "opt_out_clause": null_where(annual & (rng.random(n) < 0.15), ~paying),
        "industry": pick(rng, INDUSTRIES, (4, 2, 2, 2, 2, 1, 1, 1), n),
        "region": region,
        "country": country,
        "employees": employees,
        "start_date": start,
        "renewal_date": renewal,
        "trial_end_date": trial_end,
        "churn_date": churn_date,
        "churn_reason": churn_reason,
        "seats": unless_prospect(seats),
        "owner_id": labels("ae{:03d}", aes),
        "owner_name": labels("Account Executive {:03d}", aes),
        "owner_email": labels("ae{:03d}@vendor.example", aes),
        "csm_id": unless_prospect(labels("csm{:03d}", csms)),
        "csm_name": unless_prospect(labels("Success Manager {:03d}", csms)),
        "csm_email": unless_prospect(labels("csm{:03d}@vendor.example", csms)),
        "csm_sentiment": unless_prospect(sentiment),
        "product_fit": unless_prospect(pick(rng, ("Good", "Fair", "Poor"), (0.6, 0.28, 0.12), n)),
        "lifecycle_stage": lifecycle,
        "onboarding_status": unless_prospect(onboarding),
        "onboarding_step": unless_prospect(step),
        "use_case": unless_prospect(
            pick(
                rng,
                ("Reporting", "Automation", "Customer Marketing", "Data Integration"),
                (0.4, 0.3, 0.2, 0.1),
                n,
            )
        ),
        "purchase_benefit": unless_prospect(
            pick(
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
            pick(rng, ("High", "Medium", "Low"), (0.25, 0.5, 0.25), n)
        ),
        "health_score": unless_prospect(health),
        "reference_account": customer & (health > 70) & (rng.random(n) < 0.15),
        "strategic": customer & (rng.random(n) > 0.95),
        "mrr": null_where(mrr, ~customer),
        "arr": null_where(mrr * 12, ~customer),
        "currency": null_where(np.full(n, "USD", dtype=object), prospect),
        "custom": np.full(n, "{}", dtype=object),
        "created_at": created,
        "updated_at": updated,
        "deleted_at": nat_where(updated, ~deleted),
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
    created = stamp(
        scale.day - rng.integers(30, 1500, n).astype("timedelta64[D]"), rng.integers(0, 86400, n)
    )
    updated = stamp(
        scale.day - rng.integers(1, 60, n).astype("timedelta64[D]"), rng.integers(0, 86400, n)
    )
    deleted = rng.random(n) < 0.01
    batch: Batch = {
        "id": ids,
        "external_key": labels("bench-contact:{:08d}", ids),
        "account_ref": labels("bench:{:07d}", account),
        "account_id": account,
        "email": emails,
        "first_name": np.array(FIRST_NAMES, dtype=object)[rng.integers(0, len(FIRST_NAMES), n)],
        "last_name": np.array(LAST_NAMES, dtype=object)[rng.integers(0, len(LAST_NAMES), n)],
        "title": titles,
        "role": roles,
        "lifecycle_stage": pick(rng, ("customer", "lead", "other"), (0.8, 0.15, 0.05), n),
        "email_opt_out": rng.random(n) < 0.05,
        "referrals_won": np.where(rng.random(n) < 0.03, rng.integers(1, 4, n), 0),
        "owner_id": labels("ae{:03d}", rng.integers(1, 51, n)),
        "custom": np.full(n, "{}", dtype=object),
        "created_at": created,
        "updated_at": updated,
        "deleted_at": nat_where(updated, ~deleted),
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
    ws = labels("ws_{:07d}", np.arange(1, n + 1))
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
            "contact_id": null_where(contact, contact == 0),
            "events": events,
            "minutes": minutes,
        }
