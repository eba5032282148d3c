"""The random part of the customer base: companies drawn column by column with numpy.

Every attribute is drawn for all companies at once and only then turned into objects, which keeps
a 100,000-account world to a few seconds; the proportions are those of a B2B SaaS vendor's book.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from smartseg.sandbox.draft import PRICES, Draft
from smartseg.sandbox.names import PERSONAL_DOMAINS
from smartseg.sandbox.world import GOLD_FEATURES, Company

__all__ = ["INDUSTRIES", "REGIONS", "TITLES", "add_children", "add_random_companies"]

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
REGIONS: dict[str, tuple[str, ...]] = {
    "NA": ("United States", "Canada"),
    "EMEA": ("United Kingdom", "Germany", "France", "Netherlands", "Sweden"),
    "APAC": ("Australia", "Japan", "Singapore", "India"),
    "LATAM": ("Brazil", "Mexico", "Chile"),
}
TITLES: dict[str, tuple[str, ...]] = {
    "Decision Maker": ("VP of Operations", "Chief Financial Officer", "VP of Marketing"),
    "Executive Sponsor": ("Chief Executive Officer", "Chief Operating Officer", "CTO"),
    "Primary Contact": ("Operations Manager", "Marketing Operations Manager", "BI Manager"),
    "Champion": ("Analytics Lead", "Automation Specialist", "Revenue Operations Lead"),
    "User": ("Analyst", "Marketing Specialist", "Account Manager", "Data Engineer", "Coordinator"),
}
ROLE_ORDER = ("Primary Contact", "Decision Maker", "Executive Sponsor", "Champion")
_USE_CASES = ("Reporting", "Automation", "Customer Marketing", "Data Integration")
_BENEFITS = ("Reduce Reporting Time", "Increase Retention", "Automate Workflows", "Grow Pipeline")
_CHURN_REASONS = ("Competitor", "Out of Business", "Budget", "Product Fit")
_HEALTH = {"Green": 78, "Yellow": 58, "Red": 35}
_SUBSCRIPTION = {"Trial": "trialing", "Churned": "canceled"}
_LIFECYCLE = {
    "Customer": "customer",
    "Pilot": "customer",
    "Trial": "opportunity",
    "Churned": "other",
    "Prospect": "lead",
}


def _pick(
    rng: np.random.Generator, options: tuple[str, ...], weights: tuple[float, ...], n: int
) -> list[str]:
    return np.array(options)[
        rng.choice(len(options), n, p=np.array(weights) / sum(weights))
    ].tolist()


def add_random_companies(draft: Draft, n: int) -> None:
    """Append `n` random companies; their contacts and history follow in `add_children`."""
    rng, base = draft.rng, len(draft.companies)
    status = _pick(
        rng,
        ("Customer", "Trial", "Pilot", "Churned", "Prospect"),
        (0.72, 0.05, 0.03, 0.10, 0.10),
        n,
    )
    names = draft.company_names[base : base + n]
    domains = draft.company_domains[base : base + n]
    edition = _pick(rng, ("Gold", "Silver", "Bronze", "Free"), (0.2, 0.35, 0.3, 0.15), n)
    product = _pick(rng, ("Analytics", "Automation"), (0.6, 0.4), n)
    annual = (rng.random(n) < 0.65).tolist()
    employees = np.clip(np.exp(rng.normal(5.2, 1.7, n)), 5, 50_000).astype(int).tolist()
    industry = _pick(rng, INDUSTRIES, (4, 2, 2, 2, 2, 1, 1, 1), n)
    region = _pick(rng, tuple(REGIONS), (0.5, 0.3, 0.15, 0.05), n)
    country_draw = rng.integers(0, 5, n).tolist()
    start_ago = rng.integers(10, 2200, n).tolist()
    trial_ago, pilot_ago = rng.integers(1, 30, n).tolist(), rng.integers(5, 80, n).tolist()
    churn_frac = rng.random(n).tolist()
    seat_share = rng.uniform(0.01, 0.15, n).tolist()
    sentiment = _pick(rng, ("Green", "Yellow", "Red"), (0.55, 0.3, 0.15), n)
    fit = _pick(rng, ("Good", "Fair", "Poor"), (0.6, 0.28, 0.12), n)
    onboarding_new = _pick(
        rng, ("Not Started", "In Progress", "Behind", "Stuck"), (0.15, 0.5, 0.2, 0.15), n
    )
    onboarding_old = _pick(rng, ("Completed", "Behind", "Stuck"), (0.92, 0.05, 0.03), n)
    step = rng.integers(0, 5, n).tolist()
    use_case = _pick(rng, _USE_CASES, (0.4, 0.3, 0.2, 0.1), n)
    benefit = _pick(rng, _BENEFITS, (0.35, 0.25, 0.25, 0.15), n)
    benefit_after = np.where(rng.random(n) < 0.45, rng.integers(30, 400, n), -1).tolist()
    growth = _pick(rng, ("High", "Medium", "Low"), (0.25, 0.5, 0.25), n)
    health_noise = rng.normal(0, 11, n).tolist()
    coin = rng.random((n, 8)).tolist()
    discount = _pick(rng, ("10", "15", "20", "25"), (1, 1, 1, 1), n)
    billing_state = _pick(rng, ("active", "past_due", "unpaid"), (0.95, 0.03, 0.02), n)
    pattern = _pick(
        rng,
        ("steady", "rising", "falling", "dormant", "power", "none"),
        (0.56, 0.12, 0.1, 0.08, 0.06, 0.08),
        n,
    )
    churn_reason = _pick(rng, _CHURN_REASONS, (0.35, 0.15, 0.3, 0.2), n)
    feature_coin = rng.random((n, 10)).tolist()
    open_rate = rng.beta(2, 4, n).tolist()
    owners = rng.choice(draft.aes, n).tolist()
    csms = rng.choice(draft.csms, n).tolist()
    created_lag = rng.integers(7, 200, n).tolist()
    for i in range(n):
        st, c = status[i], coin[i]
        prospect = st == "Prospect"
        ago = trial_ago[i] if st == "Trial" else pilot_ago[i] if st == "Pilot" else start_ago[i]
        if st == "Churned":
            ago = max(ago, 120)  # a churned customer was one for a while
        churn_ago = 1 + int(churn_frac[i] * min(ago - 30, 720)) if st == "Churned" else None
        ed = None if prospect else edition[i]
        contract = (
            None
            if prospect or st in ("Trial", "Pilot")
            else ("Annual" if annual[i] and ed != "Free" else "Monthly")
        )
        renewal_in = None
        if st == "Customer":
            renewal_in = 365 - ago % 365 if contract == "Annual" else 30 - ago % 30
        trial_end_in = 30 - ago if st == "Trial" else 90 - ago if st == "Pilot" else None
        tenure_new = ago < 90
        in_stripe = st not in ("Prospect", "Pilot")
        in_salesforce = not (prospect and c[0] < 0.5) and not (st == "Customer" and c[1] < 0.015)
        in_hubspot = prospect or (in_salesforce and c[2] >= 0.055)
        interval = "year" if contract == "Annual" else "month"
        onboarding = onboarding_new[i] if tenure_new else onboarding_old[i]
        feats = _features(ed, product[i], feature_coin[i])
        health = min(100, max(0, int(_HEALTH[sentiment[i]] + health_noise[i])))
        usage = (
            "none"
            if prospect
            else (("dormant" if c[3] < 0.5 else "steady") if st == "Churned" else pattern[i])
        )
        start = None if prospect else draft.day(-ago)
        created = draft.anchor_time - dt.timedelta(days=ago + created_lag[i], hours=c[4] * 24)
        idx = base + i
        seats = 3 if ed == "Free" else max(2, min(2000, round(employees[i] * seat_share[i])))
        if st == "Pilot":
            seats = 2 + int(c[5] * 8)
        company = Company(
            idx,
            names[i],
            domains[i],
            f"ws_{idx + 1:06d}",
            industry[i],
            region[i],
            REGIONS[region[i]][country_draw[i] % len(REGIONS[region[i]])],
            employees[i],
            st,
            ed,
            None if prospect else product[i],
            contract,
            contract == "Annual" and c[6] < 0.15,
            start,
            None if renewal_in is None else draft.day(renewal_in),
            None if trial_end_in is None else draft.day(trial_end_in),
            None if churn_ago is None else draft.day(-churn_ago),
            churn_reason[i] if churn_ago is not None else None,
            seats,
            None if prospect else ("Red" if st == "Churned" else sentiment[i]),
            None if prospect else fit[i],
            None if prospect else _lifecycle(st, tenure_new, renewal_in, c[7]),
            None if prospect else onboarding,
            None if prospect else (5 if onboarding == "Completed" else step[i]),
            None if prospect else use_case[i],
            None if prospect else benefit[i],
            draft.day(-ago + benefit_after[i]) if 0 < benefit_after[i] < ago and start else None,
            None if prospect else growth[i],
            None if prospect else health,
            st == "Customer" and health > 70 and c[5] < 0.15,
            st == "Customer" and c[6] > 0.95,
            owners[i],
            None if prospect else csms[i],
            interval if in_stripe else None,
            PRICES[(ed, interval)] if in_stripe and ed else None,
            float(discount[i]) if in_stripe and c[4] < 0.2 else None,
            (billing_state[i] if st == "Customer" else _SUBSCRIPTION.get(st))
            if in_stripe
            else None,
            cancel_at_period_end=st == "Customer" and c[3] > 0.97,
            usage_pattern=usage,
            in_salesforce=in_salesforce,
            in_hubspot=in_hubspot,
            in_stripe=in_stripe,
            created_at=created,
            features=feats,
            email_open_rate=round(open_rate[i], 3),
        )
        draft.companies.append(company)


def _lifecycle(status: str, new: bool, renewal_in: int | None, coin: float) -> str:
    if status == "Churned":
        return "Churned"
    if new or status in ("Trial", "Pilot"):
        return "Onboarding"
    if renewal_in is not None and renewal_in <= 90:
        return "Renewal"
    return "Adoption" if coin < 0.5 else "Value"


def _features(edition: str | None, product: str, coin: list[float]) -> tuple[str, ...]:
    """What a company uses: its product's core, Gold features for most Gold accounts, extras."""
    if edition is None:
        return ()
    analytics = product == "Analytics"
    wanted = {
        "dashboards": coin[0] < (0.9 if analytics else 0.6),
        "executive_report": coin[1] < (0.8 if analytics else 0.45),
        "automation": coin[2] < (0.3 if analytics else 0.95),
        "email_sent": coin[3] < (0.3 if analytics else 0.8),
        "api": coin[4] < 0.3,
        "ai_insights": coin[5] < 0.25,
        "help_center": coin[6] < 0.5,
        "academy": coin[7] < 0.25,
    }
    # Most Gold accounts use what distinguishes Gold; some never do (catalogue C12).
    gold = edition == "Gold" and coin[8] < 0.8
    chosen = [name for name, keep in wanted.items() if keep]
    return tuple(chosen + list(GOLD_FEATURES)) if gold else tuple(chosen)


def add_children(draft: Draft, companies: list[Company]) -> None:
    """Contacts (2 to 12 per company) for random companies; history is drawn in `history.py`."""
    rng = draft.rng
    counts = (2 + rng.binomial(10, 0.3, len(companies))).tolist()
    total = sum(counts)
    first, last = draft.pools.people(rng, total)
    user_coin = rng.random(total).tolist()
    level = _pick(rng, ("light", "regular", "daily", "power"), (0.42, 0.36, 0.16, 0.06), total)
    title_draw = rng.integers(0, 5, total).tolist()
    personal = (rng.random(total) < 0.02).tolist()
    personal_domain = rng.integers(0, len(PERSONAL_DOMAINS), total).tolist()
    opt_out = (rng.random(total) < 0.04).tolist()
    k = 0
    user_p = {
        "Primary Contact": 0.85,
        "Decision Maker": 0.35,
        "Executive Sponsor": 0.45,
        "Champion": 1.0,
        "User": 0.95,
    }
    for company, count in zip(companies, counts, strict=True):
        roles = _roles(count)
        for role in roles:
            domain = PERSONAL_DOMAINS[personal_domain[k]] if personal[k] else company.domain
            uses = company.usage_pattern != "none" and user_coin[k] < user_p[role]
            titles = TITLES[role]
            draft.person(
                company,
                first[k],
                last[k],
                role,
                titles[title_draw[k] % len(titles)],
                domain,
                uses,
                level[k],
                _LIFECYCLE[company.status],
                opt_out[k],
            )
            k += 1


def _roles(count: int) -> list[str]:
    """Key roles first (a small company has only some of them), then plain users."""
    key = list(ROLE_ORDER[: 2 if count < 4 else 3 if count < 5 else 4])
    return key + ["User"] * (count - len(key))
