"""The synthetic customer base: determinism, proportions, exports, and the archetype contract.

Every claim in `ARCHETYPES` is checked here with plain Python over the World and the exported
files, for several seeds at 50 accounts: the member has the property, the non-member does not.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smartseg.sandbox.exports import Exports, write_exports
from smartseg.sandbox.generator import ARCHETYPE_KEYS, ARCHETYPES, Archetype, generate
from smartseg.sandbox.names import PERSONAL_DOMAINS
from smartseg.sandbox.usage import daily_rollups
from smartseg.sandbox.world import Company, Person, World

ANCHOR = dt.date(2026, 11, 20)
SEEDS = (11, 2026, 90210)
Key = tuple[str, str, dt.date, str]  # workspace, email, day, feature


def _read_usage(exports: Exports) -> dict[Key, tuple[int, float]]:
    """Rollups and raw events together, as (events, minutes) per key; raw events are rolled up."""
    usage: dict[Key, tuple[int, float]] = {}
    for path in exports.daily:
        for row in pq.read_table(path).to_pylist():
            key = (row["workspace_id"], row["user_email"], row["day"], row["feature"])
            usage[key] = (row["events"], row["minutes"])
    seconds: dict[Key, list[int]] = defaultdict(lambda: [0, 0])
    for path in exports.events:
        with path.open() as fh:
            for row in csv.DictReader(fh):
                day = dt.datetime.fromisoformat(row["timestamp"]).date()
                acc = seconds[(row["workspace_id"], row["user_email"], day, row["feature"])]
                acc[0] += 1
                acc[1] += int(row["duration_seconds"])
    for key, (count, total) in seconds.items():
        usage[key] = (count, total / 60)
    return usage


@dataclass
class Facts:
    """A world plus its usage files, with the windowed metrics the catalogue's rules use."""

    world: World
    usage: dict[Key, tuple[int, float]]
    by_ws: dict[str, list[tuple[str, dt.date, str, int, float]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for (ws, email, day, feature), (events, minutes) in self.usage.items():
            self.by_ws.setdefault(ws, []).append((email, day, feature, events, minutes))

    def rows(self, c: Company, last: int, skip: int = 0, email: str | None = None) -> list:
        """Usage rows of days anchor-last .. anchor-skip-1 (the last `last` days, minus `skip`)."""
        lo, hi = ANCHOR - dt.timedelta(days=last), ANCHOR - dt.timedelta(days=skip)
        return [
            r
            for r in self.by_ws.get(c.workspace_id, [])
            if lo <= r[1] < hi and (email is None or r[0] == email)
        ]

    def active_days(self, c: Company, last: int, email: str | None = None) -> int:
        return len({r[1] for r in self.rows(c, last, email=email) if r[2] == "login"})

    def users(self, c: Company, last: int, skip: int = 0) -> int:
        return len({r[0] for r in self.rows(c, last, skip) if r[2] == "login"})

    def events(self, c: Company, last: int, skip: int = 0, feature: str | None = None) -> int:
        return sum(r[3] for r in self.rows(c, last, skip) if feature in (None, r[2]))

    def feature_days(self, c: Company, feature: str, last: int, email: str | None = None) -> int:
        return len({r[1] for r in self.rows(c, last, email=email) if r[2] == feature})

    def util(self, c: Company, last: int = 30, skip: int = 0) -> float:
        return self.users(c, last, skip) / c.seats

    def company(self, p: Person) -> Company:
        return self.world.companies[p.company]

    def tenure(self, c: Company) -> int:
        return (ANCHOR - c.start_date).days if c.start_date else -1

    def arr(self, c: Company) -> float:
        if c.unit_amount_cents is None:
            return 0.0
        per_year = 12 if c.billing_interval == "month" else 1
        return (
            c.seats * c.unit_amount_cents * per_year * (1 - (c.discount_percent or 0) / 100) / 100
        )

    def meetings(
        self,
        c: Company,
        last: int,
        status: str = "completed",
        kinds: tuple[str, ...] = ("meeting", "qbr"),
        skip: int = 0,
    ) -> int:
        lo = self.world.anchor_time - dt.timedelta(days=last)
        hi = self.world.anchor_time - dt.timedelta(days=skip)
        return sum(
            1
            for a in self.world.activities
            if a.company == c.idx and a.kind in kinds and a.status == status and lo <= a.at < hi
        )

    def latest_nps(self, p: Person) -> int | None:
        answers = sorted((n.responded_at, n.score) for n in self.world.nps if n.person == p.idx)
        return answers[-1][1] if answers else None

    def account_nps(self, c: Company) -> float | None:
        scores = [n.score for n in self.world.nps if n.company == c.idx]
        if not scores:
            return None
        return (sum(s >= 9 for s in scores) - sum(s <= 6 for s in scores)) / len(scores)

    def tickets(self, c: Company, last: int) -> list:
        since = self.world.anchor_time - dt.timedelta(days=last)
        return [t for t in self.world.tickets if t.company == c.idx and t.opened_at >= since]

    def people(self, c: Company, role: str) -> list[Person]:
        return [p for p in self.world.people if p.company == c.idx and p.role == role]

    def first_days(self, c: Company, days: int) -> set[str]:
        """Features used in the company's first `days` days."""
        assert c.start_date is not None
        end = c.start_date + dt.timedelta(days=days)
        return {r[2] for r in self.by_ws.get(c.workspace_id, []) if r[1] < end}


def _ends_within(c: Company, days: int) -> bool:
    return c.trial_end_date is not None and 0 <= (c.trial_end_date - ANCHOR).days <= days


def _renews(c: Company, days: int) -> bool:
    return c.renewal_date is not None and 0 <= (c.renewal_date - ANCHOR).days <= days


_TARGET = ("Software", "Financial Services")
_BENCHMARK = {"Software": 15, "Financial Services": 12}
F = Facts
C = Company
P = Person
# One predicate per catalogue id, written from the rule text in ARCHETYPES.
RULES: dict[str, Callable[[Facts, Any], bool]] = {
    "B01": lambda f, c: c.status == "Customer",
    "B02": lambda f, c: c.status in ("Trial", "Pilot"),
    "B03": lambda f, c: c.employees >= 1000,
    "B04": lambda f, c: c.edition == "Gold",
    "B05": lambda f, c: c.opt_out_clause,
    "B06": lambda f, c: c.industry == "Healthcare" and c.region == "APAC",
    "B07": lambda f, c: 0 <= f.tenure(c) <= 365,
    "B08": lambda f, p: p.role == "Decision Maker",
    "B09": lambda f, c: c.status == "Churned",
    "B10": lambda f, c: c.churn_date is not None and (ANCHOR - c.churn_date).days <= 90,
    "B11": lambda f, c: c.churn_reason == "Competitor",
    "B12": lambda f, p: p.role == "Decision Maker" and f.company(p).status == "Churned",
    "L01": lambda f, c: 0 <= f.tenure(c) <= 90,
    "L02": lambda f, c: c.csm_sentiment == "Red",
    "L03": lambda f, c: c.product_fit == "Poor",
    "L04": lambda f, c: c.onboarding_status == "In Progress",
    "L05": lambda f, c: c.onboarding_status in ("Behind", "Stuck"),
    "L06": lambda f, c: f.meetings(c, 60, kinds=("email", "call")) == 0,
    "L07": lambda f, p: (
        p.role == "Primary Contact"
        and f.tenure(f.company(p)) > 60
        and f.active_days(f.company(p), 30, p.email) < 5
    ),
    "L08": lambda f, p: (
        f.tenure(f.company(p)) <= 90 and f.active_days(f.company(p), 30, p.email) >= 20
    ),
    "L09": lambda f, c: _renews(c, 90),
    "L10": lambda f, c: c.growth_potential == "High" and f.util(c) >= 0.9,
    "L11": lambda f, c: c.status == "Customer" and (f.util(c) < 0.2 or f.active_days(c, 30) <= 2),
    "P01": lambda f, c: f.active_days(c, 30) > 15,
    "P02": lambda f, c: f.util(c) > 0.8,
    "P03": lambda f, c: f.util(c) > 1.3 * f.util(c, 60, 30),
    "P04": lambda f, c: sum(r[4] for r in f.rows(c, 7)) > 120,
    "P05": lambda f, c: f.users(c, 14) > 2,
    "P06": lambda f, c: (
        f.feature_days(c, "dashboards", 30) >= 12
        and all(any(r[2] == "dashboards" for r in f.rows(c, 7 * w + 7, 7 * w)) for w in range(4))
    ),
    "P07": lambda f, c: f.events(c, 30, 0, "dashboards") > 1.4 * f.events(c, 60, 30, "dashboards"),
    "P08": lambda f, c: (
        f.events(c, 30, 0, "email_opened") >= 0.4 * f.events(c, 30, 0, "email_sent") > 0
    ),
    "P09": lambda f, c: (
        0 <= f.tenure(c) <= 180 and {"dashboards", "automation"} <= f.first_days(c, 30)
    ),
    "P10": lambda f, p: (
        p.role == "Executive Sponsor"
        and f.feature_days(f.company(p), "executive_report", 30, p.email) >= 4
    ),
    "P11": lambda f, p: (
        p.role == "Primary Contact" and f.active_days(f.company(p), 30, p.email) >= 15
    ),
    "P12": lambda f, c: (
        f.meetings(c, 90, kinds=("qbr",)) > 0 and f.meetings(c, 180, kinds=("qbr",), skip=90) > 0
    ),
    "P13": lambda f, c: (f.account_nps(c) or 0) > 0,
    "P14": lambda f, p: p.role == "Decision Maker" and (f.latest_nps(p) or 0) >= 9,
    "P15": lambda f, c: (
        any(t.type == "Question" for t in f.tickets(c, 90))
        and (f.feature_days(c, "help_center", 30) + f.feature_days(c, "academy", 30)) > 0
    ),
    "P16": lambda f, c: f.meetings(c, 30) > 2,
    "N01": lambda f, c: f.active_days(c, 30) <= 2,
    "N02": lambda f, c: f.util(c) < 0.2,
    "N03": lambda f, c: f.util(c) < 0.6 * f.util(c, 60, 30),
    "N04": lambda f, c: sum(r[4] for r in f.rows(c, 7)) < 30,
    "N05": lambda f, c: f.users(c, 14) < 2,
    "N06": lambda f, c: f.feature_days(c, "dashboards", 180) == 0,
    "N07": lambda f, c: f.events(c, 30, 0, "dashboards") < 0.8 * f.events(c, 60, 30, "dashboards"),
    "N08": lambda f, c: (
        f.events(c, 30, 0, "email_sent") >= 20
        and f.events(c, 30, 0, "email_opened") < 0.15 * f.events(c, 30, 0, "email_sent")
    ),
    "N09": lambda f, c: (
        90 <= f.tenure(c) <= 180 and not {"dashboards", "automation"} & f.first_days(c, 90)
    ),
    "N10": lambda f, p: (
        p.role == "Executive Sponsor" and f.active_days(f.company(p), 180, p.email) == 0
    ),
    "N11": lambda f, p: (
        p.role == "Primary Contact" and f.active_days(f.company(p), 30, p.email) <= 3
    ),
    "N12": lambda f, c: (
        f.meetings(c, 180, kinds=("qbr",)) == 0 or f.meetings(c, 180, status="cancelled") >= 2
    ),
    "N13": lambda f, c: (f.account_nps(c) or 0) < 0,
    "N14": lambda f, p: p.role == "Decision Maker" and (f.latest_nps(p) or 10) <= 6,
    "N15": lambda f, c: all(
        t.type == "Bug" and t.severity in ("Critical", "High") for t in f.tickets(c, 180)
    ),
    "N16": lambda f, c: f.meetings(c, 90) < 2,
    "V01": lambda f, c: c.use_case == "Automation",
    "V02": lambda f, c: (
        (c.use_case == "Reporting" and c.edition != "Gold")
        or (c.use_case == "Automation" and c.product != "Automation")
    ),
    "V03": lambda f, c: (
        c.purchase_benefit is not None and c.benefit_achieved_date is None and f.tenure(c) > 180
    ),
    "V04": lambda f, c: (
        c.benefit_achieved_date is not None
        and c.start_date is not None
        and (c.benefit_achieved_date - c.start_date).days <= 180
    ),
    "V05": lambda f, c: f.feature_days(c, "automation", 30) < _BENCHMARK.get(c.industry, 8),
    "V06": lambda f, c: f.arr(c) >= 20_000,
    "V07": lambda f, c: c.growth_potential == "High" and (c.health_score or 0) >= 70,
    "V08": lambda f, c: c.growth_potential == "Low",
    "V09": lambda f, p: p.role == "Decision Maker" and f.company(p).growth_potential == "High",
    "V10": lambda f, p: p.role == "Primary Contact" and f.company(p).reference_account,
    "V11": lambda f, p: (
        p.role == "Primary Contact"
        and p.referrals_won >= 1
        and any(o.referred_by == p.idx for o in f.world.opportunities)
    ),
    "V12": lambda f, p: (
        p.role in ("Primary Contact", "Decision Maker")
        and not f.company(p).reference_account
        and (f.company(p).health_score or 0) >= 80
        and f.company(p).csm_sentiment == "Green"
        and (f.account_nps(f.company(p)) or 0) > 0
    ),
    "V13": lambda f, c: c.strategic,
    "V14": lambda f, c: c.strategic and c.industry in _TARGET and c.employees >= 1000,
    "C01": lambda f, c: c.status == "Trial" and f.active_days(c, f.tenure(c)) > 15,
    "C02": lambda f, c: c.edition == "Gold" and c.onboarding_status in ("Behind", "Stuck"),
    "C03": lambda f, c: f.arr(c) > 20_000 and f.meetings(c, 120, kinds=("qbr",)) == 0,
    "C04": lambda f, c: (
        c.product_fit == "Good"
        and c.employees >= 1000
        and f.events(c, 30) < 0.6 * f.events(c, 60, 30)
    ),
    "C05": lambda f, c: (
        f.feature_days(c, "dashboards", 30) >= 12
        and sum(t.type == "Bug" and t.feature == "dashboards" for t in f.tickets(c, 90)) >= 3
    ),
    "C06": lambda f, p: (
        p.role == "Primary Contact"
        and 365 <= f.tenure(f.company(p)) <= 730
        and f.active_days(f.company(p), 30, p.email) >= 12
        and not any(
            a.person == p.idx
            and a.status == "completed"
            and a.at >= f.world.anchor_time - dt.timedelta(days=90)
            for a in f.world.activities
        )
        and not any(t.person == p.idx for t in f.tickets(f.company(p), 90))
    ),
    "C07": lambda f, p: (
        p.role == "Decision Maker"
        and f.company(p).contract_type == "Annual"
        and _renews(f.company(p), 90)
        and f.company(p).csm_sentiment == "Green"
        and f.company(p).edition in ("Silver", "Bronze")
        and f.util(f.company(p)) >= 0.9
    ),
    "C08": lambda f, c: (
        c.strategic
        and c.industry in _TARGET
        and c.onboarding_status in ("Behind", "Stuck")
        and all(f.active_days(c, 30, p.email) < 20 for p in f.world.people if p.company == c.idx)
    ),
    "C09": lambda f, c: (
        f.events(c, 30) > 1.3 * f.events(c, 60, 30)
        and f.meetings(c, 60) == 0
        and f.feature_days(c, "ai_insights", 180) == 0
    ),
    "C10": lambda f, c: (
        c.edition == "Silver"
        and f.meetings(c, 90) >= 2
        and (c.onboarding_step or 0) >= 3
        and f.feature_days(c, "dashboards", 180) == 0
    ),
    "C11": lambda f, p: (
        p.role == "Primary Contact"
        and f.company(p).status == "Pilot"
        and _ends_within(f.company(p), 30)
        and f.users(f.company(p), 30) > f.company(p).seats
    ),
    "C12": lambda f, c: (
        c.edition == "Gold"
        and _renews(c, 180)
        and f.feature_days(c, "advanced_reports", 90) + f.feature_days(c, "sso", 90) == 0
    ),
    "C13": lambda f, c: (
        0 <= f.tenure(c) < 365
        and c.product_fit == "Poor"
        and f.active_days(c, 30) >= 12
        and f.events(c, 30, 0, "api") > 0.5 * f.events(c, 30)
        and c.csm_sentiment == "Green"
    ),
    "C14": lambda f, p: (
        p.role == "Primary Contact"
        and f.active_days(f.company(p), 30, p.email) >= 15
        and f.company(p).growth_potential == "High"
        and all(
            f.active_days(f.company(p), 180, d.email) == 0
            for d in f.people(f.company(p), "Decision Maker")
        )
    ),
    "C15": lambda f, c: (
        365 <= f.tenure(c) <= 730
        and 200 <= c.employees <= 1000
        and f.active_days(c, 30) > 15
        and all(
            (f.latest_nps(p) or 10) <= 6
            for role in ("Primary Contact", "Decision Maker")
            for p in f.people(c, role)
        )
    ),
    "A01": lambda f, c: (
        c.onboarding_status == "In Progress" and f.feature_days(c, "dashboards", 180) == 0
    ),
    "A02": lambda f, c: (
        c.edition == "Gold"
        and f.arr(c) > 20_000
        and _renews(c, 90)
        and f.feature_days(c, "advanced_reports", 90) + f.feature_days(c, "sso", 90) == 0
    ),
    "A03": lambda f, c: (
        f.arr(c) < 5_000 and _renews(c, 90) and f.feature_days(c, "dashboards", 90) == 0
    ),
}


@pytest.fixture(scope="module", params=SEEDS)
def facts(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Facts:
    world = generate(seed=request.param, accounts=50, anchor=ANCHOR)
    exports = write_exports(world, tmp_path_factory.mktemp(f"seed{request.param}"))
    return Facts(world, _read_usage(exports))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[World, Exports]:
    world = generate(seed=5, accounts=120, anchor=ANCHOR)
    return world, write_exports(world, tmp_path_factory.mktemp("exports"))


def _subject(f: Facts, ref: str) -> Company | Person:
    key, _, role = ref.partition("/")
    company = f.world.companies[ARCHETYPE_KEYS.index(key)]
    return f.people(company, role)[0] if role else company


@pytest.mark.parametrize("archetype", ARCHETYPES, ids=[a.segment for a in ARCHETYPES])
def test_archetype_member_and_non_member_match_the_rule(facts: Facts, archetype: Archetype) -> None:
    rule = RULES[archetype.segment]
    assert rule(facts, _subject(facts, archetype.member)), f"{archetype.member} not a member"
    assert not rule(facts, _subject(facts, archetype.non_member)), archetype.non_member


def test_archetypes_cover_every_catalogue_segment() -> None:
    catalogue = Path("/work/shared/SEGMENT-CATALOGUE.md")
    ids = {a.segment for a in ARCHETYPES}
    if catalogue.exists():
        import re

        assert ids == set(re.findall(r"^- ([BLPNVCA]\d\d) ", catalogue.read_text(), re.M))
    assert ids == set(RULES)
    for a in ARCHETYPES:
        assert a.member.partition("/")[0] in ARCHETYPE_KEYS
        assert a.non_member.partition("/")[0] in ARCHETYPE_KEYS


def test_falling_archetype_last_30_days_below_60_percent_of_prior_30(facts: Facts) -> None:
    falling = facts.world.companies[ARCHETYPE_KEYS.index("gold-falling")]
    assert facts.events(falling, 30) < 0.6 * facts.events(falling, 60, 30)


def test_same_inputs_give_equal_worlds_and_identical_export_bytes(tmp_path: Path) -> None:
    one, two = (generate(seed=3, accounts=60, anchor=ANCHOR) for _ in range(2))
    assert one == two
    a, b = write_exports(one, tmp_path / "a"), write_exports(two, tmp_path / "b")
    files_a = sorted(p.relative_to(a.data_dir) for p in a.data_dir.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b.data_dir) for p in b.data_dir.rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        assert (a.data_dir / rel).read_bytes() == (b.data_dir / rel).read_bytes(), rel


def test_different_seed_gives_a_different_world() -> None:
    one = generate(seed=3, accounts=60, anchor=ANCHOR)
    two = generate(seed=4, accounts=60, anchor=ANCHOR)
    assert one != two
    assert [c.name for c in one.companies] != [c.name for c in two.companies]


def test_proportions_look_like_a_b2b_saas_customer_base() -> None:
    world = generate(seed=8, accounts=3000, anchor=ANCHOR)
    n = len(world.companies)
    status = Counter(c.status for c in world.companies)
    assert 0.6 < status["Customer"] / n < 0.85 and status["Churned"] / n > 0.05
    hubspot_only = sum(
        c.in_hubspot and not c.in_salesforce and not c.in_stripe for c in world.companies
    )
    salesforce_only = sum(c.in_salesforce and not c.in_hubspot for c in world.companies)
    stripe_only = sum(
        c.in_stripe and not c.in_salesforce and not c.in_hubspot for c in world.companies
    )
    assert 0.03 < hubspot_only / n < 0.08 and 0.03 < salesforce_only / n < 0.08
    assert 0 < stripe_only / n < 0.03
    per_company = Counter(p.company for p in world.people)
    assert min(per_company.values()) >= 2 and max(per_company.values()) <= 12
    assert sum(p.email.split("@")[1] in PERSONAL_DOMAINS for p in world.people) > 0
    assert {c.edition for c in world.companies} >= {"Gold", "Silver", "Bronze", "Free"}
    assert {c.usage_pattern for c in world.companies} == {
        "steady",
        "rising",
        "falling",
        "dormant",
        "power",
        "none",
    }
    renewal_months = {c.renewal_date.month for c in world.companies if c.renewal_date}
    assert len(renewal_months) == 12
    assert all(
        1 <= (c.renewal_date - ANCHOR).days <= 365 for c in world.companies if c.renewal_date
    )
    employees = [c.employees for c in world.companies]
    assert min(employees) >= 5 and max(employees) <= 50_000
    kinds = Counter((a.kind, a.status) for a in world.activities)
    assert kinds[("qbr", "cancelled")] > 0 and kinds[("meeting", "completed")] > 0
    scores = [r.score for r in world.nps]
    assert any(s >= 9 for s in scores) and any(7 <= s <= 8 for s in scores)
    assert any(s <= 6 for s in scores)
    assert any(o.referred_by is not None for o in world.opportunities)
    assert {o.kind for o in world.opportunities} == {"New Business", "Renewal", "Upsell"}


def test_people_emails_and_company_domains_are_unique() -> None:
    world = generate(seed=9, accounts=3000, anchor=ANCHOR)
    emails = [p.email for p in world.people]
    assert len(set(emails)) == len(emails)
    domains = [c.domain for c in world.companies]
    assert len(set(domains)) == len(domains)


def test_dates_are_never_after_the_anchor_except_renewals_and_trial_ends() -> None:
    world = generate(seed=10, accounts=1500, anchor=ANCHOR)
    at = world.anchor_time
    for c in world.companies:
        for day in (c.start_date, c.churn_date, c.benefit_achieved_date):
            assert day is None or day <= ANCHOR, c
        assert c.created_at <= at
    assert all(p.created_at <= at for p in world.people)
    assert all(a.at <= at for a in world.activities)
    assert all(t.opened_at <= at and (t.closed_at or at) <= at for t in world.tickets)
    assert all(n.responded_at <= at for n in world.nps)
    for o in world.opportunities:
        future_ok = o.stage not in ("Closed Won", "Closed Lost") and o.close_date in (
            world.companies[o.company].renewal_date,
            world.companies[o.company].trial_end_date,
        )
        assert o.close_date <= ANCHOR or future_ok, o


def test_rollup_parquet_has_the_documented_columns(exported: tuple[World, Exports]) -> None:
    _, exports = exported
    schema = pq.read_schema(exports.daily[0])
    assert [(f.name, f.type) for f in schema] == [
        ("workspace_id", pa.string()),
        ("user_email", pa.string()),
        ("day", pa.date32()),
        ("feature", pa.string()),
        ("events", pa.int64()),
        ("minutes", pa.float64()),
    ]
    assert exports.daily[0].name.startswith("usage-") and exports.readme.read_text()
    assert len(exports.readme.read_text().splitlines()) == 10


def test_rollups_and_raw_events_never_cover_the_same_day(exported: tuple[World, Exports]) -> None:
    _, exports = exported
    rollup_days = set()
    for path in exports.daily:
        rollup_days |= set(pq.read_table(path, columns=["day"]).column("day").to_pylist())
    raw_days = {dt.date.fromisoformat(p.stem.removeprefix("events-")) for p in exports.events}
    assert raw_days == {ANCHOR - dt.timedelta(days=d) for d in range(1, 8)}
    assert not rollup_days & raw_days
    assert max(rollup_days) == ANCHOR - dt.timedelta(days=8)


def test_raw_events_aggregate_exactly_to_the_daily_rollup(exported: tuple[World, Exports]) -> None:
    world, exports = exported
    raw = {k: v for k, v in _read_usage(exports).items() if k[2] >= ANCHOR - dt.timedelta(days=7)}
    rollup = daily_rollups(world, ANCHOR - dt.timedelta(days=7), ANCHOR - dt.timedelta(days=1))
    expected = {
        (r["workspace_id"], r["user_email"], r["day"], r["feature"]): (r["events"], r["minutes"])
        for r in rollup.to_pylist()
    }
    assert raw and raw == expected


def test_raw_events_have_unique_ids_and_iso_utc_timestamps(exported: tuple[World, Exports]) -> None:
    _, exports = exported
    ids = []
    for path in exports.events:
        with path.open() as fh:
            for row in csv.DictReader(fh):
                ids.append(row["event_id"])
                assert row["timestamp"].endswith("Z") and "T" in row["timestamp"]
    assert len(ids) == len(set(ids)) > 0


def test_usage_respects_company_life_and_patterns(exported: tuple[World, Exports]) -> None:
    world, exports = exported
    usage = _read_usage(exports)
    by_ws = {c.workspace_id: c for c in world.companies}
    seen: set[str] = set()
    for ws, _, day, _ in usage:
        c = by_ws[ws]
        seen.add(ws)
        assert c.start_date is not None and c.start_date <= day
        assert c.churn_date is None or day < c.churn_date
        if c.usage_pattern == "dormant":
            assert day < ANCHOR - dt.timedelta(days=30)
    assert not any(c.workspace_id in seen for c in world.companies if c.usage_pattern == "none")


def test_email_opened_never_exceeds_email_sent(exported: tuple[World, Exports]) -> None:
    _, exports = exported
    usage = _read_usage(exports)
    for (ws, email, day, feature), (events, _) in usage.items():
        if feature == "email_opened":
            assert events <= usage[(ws, email, day, "email_sent")][0]


def test_new_companies_use_the_product_only_from_their_start_date(facts: Facts) -> None:
    new = facts.world.companies[ARCHETYPE_KEYS.index("new-power")]
    assert new.start_date is not None
    days = {r[1] for r in facts.by_ws[new.workspace_id]}
    assert min(days) >= new.start_date and len(days) > 40


def test_fewer_accounts_than_archetypes_keeps_the_first_ones() -> None:
    world = generate(seed=1, accounts=5, anchor=ANCHOR)
    assert len(world.companies) == 5
    assert world.companies[0].strategic and world.companies[1].status == "Churned"
