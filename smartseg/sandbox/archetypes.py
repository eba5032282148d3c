"""The crafted companies at the head of every world, each built to fall in or out of segments.

`generator.ARCHETYPES` names, per catalogue id, the rule parameters and which of these companies
(or which contact there) is a member and which is not. The specs hold no randomness beyond names,
so the contract holds for any seed; dates are days relative to the anchor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ARCHETYPE_COMPANIES", "Baseline", "CompanySpec", "Who"]


@dataclass(frozen=True, slots=True)
class Baseline:
    """An archetype company unless its spec says otherwise: a healthy, tenured Silver customer.

    Dates are offsets in days: `start_ago`, `churn_ago` before the anchor, `renewal_in`,
    `trial_end_in` after it, `benefit_after` after the start.
    """

    status: str = "Customer"
    edition: str = "Silver"
    product: str = "Analytics"
    contract_type: str | None = "Annual"
    opt_out_clause: bool = False
    start_ago: int = 800
    renewal_in: int | None = 150
    trial_end_in: int | None = None
    churn_ago: int | None = None
    churn_reason: str | None = None
    industry: str = "Retail"
    region: str = "NA"
    country: str = "United States"
    employees: int = 300
    seats: int = 10
    csm_sentiment: str = "Green"
    product_fit: str = "Good"
    lifecycle_stage: str | None = None  # None: Renewal within 90 days of renewal, else Adoption
    onboarding_status: str = "Completed"
    onboarding_step: int = 5
    use_case: str = "Reporting"
    purchase_benefit: str = "Reduce Reporting Time"
    benefit_after: int | None = None
    growth_potential: str = "Medium"
    health_score: int = 75
    reference_account: bool = False
    strategic: bool = False
    usage_pattern: str = "steady"
    features: tuple[str, ...] = (
        "dashboards", "automation", "executive_report", "email_sent", "help_center",
    )  # fmt: skip
    email_open_rate: float = 0.3
    in_salesforce: bool = True
    in_hubspot: bool = True
    in_stripe: bool = True


@dataclass(frozen=True, slots=True)
class Who:
    """A contact of an archetype company: role, product usage level, NPS answer, referrals."""

    role: str
    level: str = "regular"  # "none" means never logs in
    nps: int | None = None
    referrals: int = 0
    personal_email: bool = False


@dataclass(frozen=True, slots=True)
class CompanySpec:
    """One archetype company: `Baseline` overrides, contacts, activities, tickets.

    Activities are (kind, status, days ago, role of the contact); tickets are (type, severity,
    feature, days ago, role of the contact who opened it).
    """

    key: str
    fields: dict[str, Any]
    people: tuple[Who, ...] = (
        Who("Primary Contact", "regular", nps=8),
        Who("Decision Maker", "regular", nps=8),
        Who("Executive Sponsor", "regular"),
        Who("Champion", "daily"),
        Who("User", "regular"),
    )
    activities: tuple[tuple[str, str, int, str], ...] = (
        ("qbr", "completed", 40, "Decision Maker"),
        ("qbr", "completed", 130, "Decision Maker"),
        ("meeting", "completed", 20, "Primary Contact"),
        ("email", "completed", 10, "Primary Contact"),
        ("call", "completed", 25, "Primary Contact"),
    )
    tickets: tuple[tuple[str, str, str, int, str], ...] = (
        ("Question", "Low", "help_center", 30, "User"),
    )
    referred_deals: tuple[str, ...] = field(default=())  # keys of companies this one referred


_ALL_FEATURES = (
    "dashboards", "automation", "executive_report", "advanced_reports", "sso", "email_sent",
    "ai_insights", "help_center", "academy",
)  # fmt: skip
_BUSY = (
    ("qbr", "completed", 35, "Decision Maker"),
    ("qbr", "completed", 110, "Decision Maker"),
    ("meeting", "completed", 5, "Primary Contact"),
    ("meeting", "completed", 12, "Champion"),
    ("meeting", "completed", 20, "Primary Contact"),
    ("email", "completed", 3, "Primary Contact"),
    ("call", "completed", 8, "Primary Contact"),
)

ARCHETYPE_COMPANIES: tuple[CompanySpec, ...] = (
    CompanySpec(
        "gold-power",
        dict(edition="Gold", product="Automation", employees=20000, seats=30, industry="Software",
             strategic=True, reference_account=True, usage_pattern="power", features=_ALL_FEATURES,
             email_open_rate=0.5, health_score=92, growth_potential="High", start_ago=900,
             renewal_in=200, use_case="Automation"),
        people=(
            Who("Primary Contact", "power", nps=9),
            Who("Decision Maker", "power", nps=10),
            Who("Executive Sponsor", "regular", nps=9),
            Who("Champion", "power", nps=10),
            *(Who("User", "power", nps=9 if i % 2 else None) for i in range(8)),
        ),
        activities=_BUSY,
        tickets=(
            ("Question", "Low", "help_center", 20, "User"),
            ("Feature Request", "Low", "ai_insights", 60, "Champion"),
        ),
    ),
    CompanySpec(
        "churned-competitor",
        dict(status="Churned", churn_ago=40, churn_reason="Competitor", start_ago=700,
             csm_sentiment="Red", health_score=20, lifecycle_stage="Churned"),
        people=(Who("Primary Contact", "regular"), Who("Decision Maker", "regular", nps=4),
                Who("User", "regular")),
    ),
    CompanySpec(
        "churned-out-of-business",
        dict(status="Churned", churn_ago=300, churn_reason="Out of Business", start_ago=1000,
             usage_pattern="none", lifecycle_stage="Churned", csm_sentiment="Red"),
        people=(Who("Primary Contact", "none"), Who("Decision Maker", "none")),
        activities=(), tickets=(),
    ),
    CompanySpec(
        "trial-hot",
        dict(status="Trial", start_ago=25, trial_end_in=5, contract_type="Monthly",
             onboarding_status="In Progress", onboarding_step=3, lifecycle_stage="Onboarding"),
        people=(Who("Primary Contact", "daily"), Who("Champion", "daily"), Who("User", "regular")),
        activities=(("email", "completed", 20, "Primary Contact"),
                    ("call", "completed", 15, "Primary Contact")),
        tickets=(),
    ),
    CompanySpec(
        "trial-cold",
        dict(status="Trial", start_ago=20, trial_end_in=10, contract_type="Monthly",
             onboarding_status="Not Started", onboarding_step=0, lifecycle_stage="Onboarding"),
        people=(Who("Primary Contact", "light"), Who("User", "light")),
        activities=(("email", "completed", 18, "Primary Contact"),), tickets=(),
    ),
    CompanySpec(
        "pilot-overscoped",
        dict(status="Pilot", start_ago=60, trial_end_in=20, seats=3, in_stripe=False,
             onboarding_status="In Progress", onboarding_step=2, lifecycle_stage="Onboarding"),
        people=(Who("Primary Contact", "daily"), Who("Champion", "daily"), Who("User", "regular"),
                Who("User", "daily"), Who("User", "daily"), Who("Decision Maker", "none")),
    ),
    CompanySpec(
        "gold-falling",
        dict(edition="Gold", product="Analytics", employees=5000, seats=20, product_fit="Good",
             usage_pattern="falling", renewal_in=60, csm_sentiment="Yellow", health_score=55,
             features=("dashboards", "executive_report", "email_sent", "help_center")),
        people=(Who("Primary Contact", "daily"), Who("Decision Maker", "regular"),
                Who("Executive Sponsor", "regular"), Who("Champion", "daily"),
                *(Who("User", "daily") for _ in range(4))),
        activities=(("email", "completed", 30, "Primary Contact"),
                    ("call", "completed", 100, "Primary Contact"),
                    ("meeting", "cancelled", 15, "Primary Contact"),
                    ("qbr", "cancelled", 45, "Decision Maker")),
    ),
    CompanySpec(
        "silver-rising",
        dict(product="Automation", usage_pattern="rising", seats=12, start_ago=400,
             features=("dashboards", "automation", "email_sent")),
        people=(Who("Primary Contact", "daily"), Who("Champion", "daily"),
                *(Who("User", "regular") for _ in range(4)), Who("Decision Maker", "light")),
        activities=(("email", "completed", 5, "Primary Contact"),
                    ("email", "completed", 20, "Primary Contact"),
                    ("email", "completed", 40, "Primary Contact"),
                    ("meeting", "completed", 100, "Primary Contact")),
    ),
    CompanySpec(
        "bronze-dormant",
        dict(edition="Bronze", contract_type="Monthly", seats=5, renewal_in=20, employees=40,
             usage_pattern="dormant", features=("email_sent", "help_center"),
             csm_sentiment="Red", health_score=25, growth_potential="Low"),
        people=(Who("Primary Contact", "regular", nps=2), Who("Decision Maker", "light", nps=3),
                Who("User", "regular", nps=9), Who("User", "light")),
        activities=(("email", "completed", 120, "Primary Contact"),
                    ("call", "completed", 150, "Primary Contact")),
        tickets=(),
    ),
    CompanySpec(
        "gold-onboarding-behind",
        dict(edition="Gold", start_ago=50, renewal_in=315, onboarding_status="Behind",
             onboarding_step=1, lifecycle_stage="Onboarding", strategic=True,
             industry="Financial Services", region="EMEA", employees=2500, seats=20,
             features=("dashboards", "automation", "advanced_reports", "sso")),
        people=(Who("Primary Contact", "light"), Who("Decision Maker", "light"),
                Who("Champion", "light"), Who("User", "light")),
        activities=(("meeting", "completed", 10, "Primary Contact"),
                    ("email", "completed", 5, "Primary Contact"),
                    ("call", "completed", 30, "Primary Contact")),
    ),
    CompanySpec(
        "onboarding-no-dashboards",
        dict(start_ago=30, renewal_in=335, onboarding_status="In Progress", onboarding_step=2,
             lifecycle_stage="Onboarding", features=("email_sent", "help_center", "academy")),
        activities=(("meeting", "completed", 7, "Primary Contact"),
                    ("email", "completed", 3, "Primary Contact")),
        tickets=(("Question", "Low", "email_sent", 10, "Primary Contact"),),
    ),
    CompanySpec(
        "bronze-stuck",
        dict(edition="Bronze", start_ago=80, renewal_in=285, onboarding_status="Stuck",
             onboarding_step=1, lifecycle_stage="Onboarding"),
        people=(Who("Primary Contact", "light", personal_email=True), Who("User", "light")),
    ),
    CompanySpec(
        "new-power",
        dict(start_ago=60, renewal_in=305, usage_pattern="power", email_open_rate=0.45,
             features=("dashboards", "automation", "email_sent")),
        people=(Who("Primary Contact", "power"), Who("Champion", "power"), Who("User", "power"),
                Who("User", "power"), Who("Decision Maker", "light")),
    ),
    CompanySpec(
        "slow-starter",
        dict(edition="Bronze", start_ago=150, renewal_in=215, industry="Software",
             features=("api", "help_center")),
        people=(Who("Primary Contact", "none"), Who("Decision Maker", "none"),
                Who("User", "regular"), Who("User", "regular")),
    ),
    CompanySpec(
        "year-two-quiet-pc",
        dict(start_ago=500, purchase_benefit="Increase Retention"),
        people=(Who("Primary Contact", "daily"), Who("Decision Maker", "regular"),
                Who("User", "regular")),
        activities=(("meeting", "completed", 20, "Decision Maker"),
                    ("qbr", "completed", 60, "Decision Maker")),
        tickets=(("Question", "Low", "dashboards", 30, "User"),),
    ),
    CompanySpec(
        "year-two-detractors",
        dict(start_ago=450, employees=500),
        people=(Who("Primary Contact", "daily", nps=3), Who("Decision Maker", "regular", nps=2),
                Who("Champion", "daily", nps=5), Who("User", "regular")),
    ),
    CompanySpec(
        "silver-upsell-renewal",
        dict(renewal_in=45, seats=5, growth_potential="High"),
        people=(Who("Primary Contact", "daily"), Who("Decision Maker", "regular"),
                Who("Champion", "daily"), *(Who("User", "daily") for _ in range(3))),
    ),
    CompanySpec(
        "silver-routine-no-dashboards",
        dict(onboarding_step=4, features=("automation", "email_sent")),
        activities=(("meeting", "completed", 10, "Primary Contact"),
                    ("meeting", "completed", 40, "Primary Contact"),
                    ("meeting", "completed", 70, "Primary Contact"),
                    ("qbr", "completed", 80, "Decision Maker")),
    ),
    CompanySpec(
        "poor-fit-api",
        dict(start_ago=200, renewal_in=165, product_fit="Poor", usage_pattern="power",
             features=("api",)),
        people=(Who("Primary Contact", "daily"), Who("User", "daily"), Who("Champion", "regular")),
    ),
    CompanySpec(
        "daily-pc-absent-dm",
        dict(growth_potential="High"),
        people=(Who("Primary Contact", "daily"), Who("Decision Maker", "none"),
                Who("Executive Sponsor", "none"), Who("User", "regular")),
    ),
    CompanySpec(
        "dashboards-bugs",
        dict(start_ago=120, renewal_in=245, usage_pattern="power",
             features=("dashboards", "automation")),
        people=(Who("Primary Contact", "daily"), Who("Champion", "daily"), Who("User", "regular")),
        tickets=(("Bug", "High", "dashboards", 10, "Champion"),
                 ("Bug", "Medium", "dashboards", 25, "Primary Contact"),
                 ("Bug", "Critical", "dashboards", 40, "Champion"),
                 ("Bug", "Low", "dashboards", 70, "User")),
    ),
    CompanySpec(
        "high-value-no-qbr",
        dict(seats=40, employees=1500),
        activities=(("qbr", "cancelled", 20, "Decision Maker"),
                    ("qbr", "cancelled", 100, "Decision Maker"),
                    ("meeting", "cancelled", 50, "Primary Contact"),
                    ("email", "completed", 10, "Primary Contact")),
    ),
    CompanySpec(
        "low-growth-red",
        dict(growth_potential="Low", health_score=30, csm_sentiment="Red", product_fit="Fair"),
    ),
    CompanySpec(
        "monthly-opt-out",
        dict(edition="Bronze", product="Automation", contract_type="Monthly", opt_out_clause=True,
             renewal_in=12, region="APAC", country="Australia", industry="Healthcare"),
    ),
    CompanySpec(
        "freemium",
        dict(edition="Free", contract_type="Monthly", seats=3, renewal_in=9, employees=12),
        people=(Who("Primary Contact", "regular"), Who("User", "light", personal_email=True)),
        activities=(), tickets=(),
    ),
    CompanySpec(
        "referral-pc",
        dict(health_score=90),
        people=(Who("Primary Contact", "regular", nps=10, referrals=1),
                Who("Decision Maker", "regular", nps=9), Who("User", "regular")),
        referred_deals=("new-power",),
    ),
    CompanySpec(
        "poor-open-rate",
        dict(email_open_rate=0.04, features=("dashboards", "email_sent")),
        people=(Who("Primary Contact", "daily"), Who("Decision Maker", "regular"),
                Who("User", "regular")),
    ),
    CompanySpec("benefit-achieved", dict(start_ago=300, renewal_in=65, benefit_after=60)),
    CompanySpec(
        "hubspot-prospect",
        dict(status="Prospect", in_salesforce=False, in_stripe=False),
        people=(Who("Primary Contact", "none"), Who("Decision Maker", "none")),
        activities=(("email", "completed", 12, "Primary Contact"),), tickets=(),
    ),
    CompanySpec("salesforce-only", dict(in_hubspot=False)),
    CompanySpec(
        "stripe-only",
        dict(in_salesforce=False, in_hubspot=False, contract_type="Monthly", renewal_in=17),
        people=(Who("Primary Contact", "regular"), Who("User", "regular")),
        activities=(), tickets=(),
    ),
)  # fmt: skip
