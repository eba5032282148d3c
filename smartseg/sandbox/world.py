"""The sandbox's synthetic customer base, in neutral terms.

The generator (`generator.py`) builds one `World`; each fake API (`salesforce.py`, `hubspot.py`,
`stripe_api.py`) maps it into its own vocabulary, and the usage, NPS and activity exports are
written from it as files. Keeping one neutral model means the three systems always describe the
same companies, which is what lets smartseg link them.

Every date here is relative to `World.anchor` (the day the data set is "as of"); timestamps are
UTC. Plain frozen-free dataclasses with slots: a 100,000-account world must build in seconds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

__all__ = [
    "FEATURES",
    "GOLD_FEATURES",
    "Activity",
    "Company",
    "Nps",
    "Opportunity",
    "Person",
    "Rep",
    "Ticket",
    "World",
]

# Product features as usage files name them, and what the catalogue's rules use them for.
FEATURES: dict[str, str] = {
    "login": "any session; the basis of active days and active users",
    "dashboards": "the sticky feature (catalogue 'feature A')",
    "automation": "workflows ('feature B'; the benchmark feature by industry)",
    "executive_report": "the report executive sponsors should read ('report A')",
    "advanced_reports": "Gold-only feature",
    "sso": "Gold-only feature",
    "email_sent": "campaign emails sent from the product",
    "email_opened": "opens of those emails (open rate = opened / sent)",
    "api": "API calls from integrations",
    "ai_insights": "the new feature",
    "help_center": "self-service learning: help articles read",
    "academy": "self-service learning: courses taken",
}
# The two features that distinguish Gold from Silver (catalogue C12, A02).
GOLD_FEATURES: tuple[str, str] = ("advanced_reports", "sso")


@dataclass(slots=True)
class Rep:
    """A CRM user: an account executive or a CSM (Salesforce User, HubSpot owner)."""

    idx: int
    first_name: str
    last_name: str
    email: str
    role: str  # "CSM" | "AE"
    active: bool = True


@dataclass(slots=True)
class Company:
    """One customer or prospect company and everything the CRM knows of it."""

    idx: int
    name: str
    domain: str  # "acme-widgets.com"; the website is https://www.<domain>
    workspace_id: str  # the product's own account id, carried by usage files
    industry: str  # Software, Healthcare, Financial Services, Retail, Manufacturing, Education, ...
    region: str  # "NA" | "EMEA" | "APAC" | "LATAM"
    country: str  # ISO country name as CRMs hold it, e.g. "United States"
    employees: int
    status: str  # "Customer" | "Trial" | "Pilot" | "Churned" | "Prospect"
    edition: str | None  # "Gold" | "Silver" | "Bronze" | "Free" (None for prospects)
    product: str | None  # "Analytics" | "Automation"
    contract_type: str | None  # "Annual" | "Monthly"
    opt_out_clause: bool
    start_date: dt.date | None  # customer since (trial/pilot start for trials and pilots)
    renewal_date: dt.date | None
    trial_end_date: dt.date | None  # trials and pilots
    churn_date: dt.date | None
    churn_reason: str | None  # "Competitor" | "Out of Business" | "Budget" | "Product Fit"
    seats: int  # licensed seats (pilots: seats scoped for the pilot)
    csm_sentiment: str | None  # "Green" | "Yellow" | "Red"
    product_fit: str | None  # "Good" | "Fair" | "Poor"
    lifecycle_stage: str | None  # "Onboarding" | "Adoption" | "Value" | "Renewal" | "Churned"
    onboarding_status: (
        str | None
    )  # "Not Started" | "In Progress" | "Behind" | "Stuck" | "Completed"
    onboarding_step: int | None  # 0..5, the last onboarding step reached
    use_case: str | None  # "Reporting" | "Automation" | "Customer Marketing" | "Data Integration"
    purchase_benefit: str | None  # "Reduce Reporting Time" | "Increase Retention" | ...
    benefit_achieved_date: dt.date | None
    growth_potential: str | None  # "High" | "Medium" | "Low"
    health_score: int | None  # 0..100
    reference_account: bool
    strategic: bool
    owner_rep: int  # Rep.idx of the account owner (an AE)
    csm_rep: int | None  # Rep.idx of the CSM
    # Billing as Stripe holds it; None for companies Stripe does not know.
    billing_interval: str | None  # "month" | "year"
    unit_amount_cents: int | None  # list price per seat per interval
    discount_percent: float | None  # a forever coupon, if any
    subscription_status: str | None  # "active" | "past_due" | "trialing" | "canceled" | "unpaid"
    cancel_at_period_end: bool = False
    usage_pattern: str = "steady"  # "steady" | "rising" | "falling" | "dormant" | "power" | "none"
    in_salesforce: bool = True
    in_hubspot: bool = True
    in_stripe: bool = True
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    # What the product knows and the CRMs do not; it drives the usage exports.
    features: tuple[str, ...] = ()  # FEATURES this company's users use besides "login"
    email_open_rate: float = 0.0  # share of email_sent that ends up email_opened


@dataclass(slots=True)
class Person:
    """A contact at a company, and (if `is_user`) a user of the product."""

    idx: int
    company: int  # Company.idx
    first_name: str
    last_name: str
    email: str  # at the company's domain, except a few personal addresses
    title: str
    role: str  # "Decision Maker" | "Executive Sponsor" | "Primary Contact" | "Champion" | "User"
    is_user: bool  # appears in usage files under this email
    usage_level: str = "none"  # "none" | "light" | "regular" | "daily" | "power"
    lifecycle_stage: str = "customer"  # HubSpot lifecyclestage
    email_opt_out: bool = False
    referrals_won: int = 0  # references this person gave that led to closed-won business
    in_salesforce: bool = True
    in_hubspot: bool = True
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime(2020, 1, 1, tzinfo=dt.UTC))


@dataclass(slots=True)
class Opportunity:
    """A deal: new business, renewal or upsell (Salesforce Opportunity, HubSpot deal)."""

    idx: int
    company: int
    name: str
    kind: str  # "New Business" | "Renewal" | "Upsell"
    stage: str  # "Prospecting" | "Negotiation" | "Closed Won" | "Closed Lost"
    amount: float
    close_date: dt.date
    owner_rep: int
    referred_by: int | None = None  # Person.idx whose reference led to this deal


@dataclass(slots=True)
class Activity:
    """A CSM touch: email, call, meeting or QBR (Salesforce Task/Event, HubSpot engagement)."""

    idx: int
    company: int
    person: int | None
    kind: str  # "email" | "call" | "meeting" | "qbr"
    status: str  # "completed" | "cancelled" | "scheduled"
    at: dt.datetime
    duration_minutes: int
    owner_rep: int
    subject: str


@dataclass(slots=True)
class Ticket:
    """A support ticket (Salesforce Case, HubSpot ticket)."""

    idx: int
    company: int
    person: int | None
    type: str  # "Bug" | "Question" | "Feature Request"
    severity: str  # "Critical" | "High" | "Medium" | "Low"
    status: str  # "New" | "Working" | "Closed"
    feature: str | None  # which product feature the ticket is about
    subject: str
    opened_at: dt.datetime
    closed_at: dt.datetime | None


@dataclass(slots=True)
class Nps:
    """One NPS survey answer (exported as a file by the survey tool)."""

    person: int
    company: int
    score: int  # 0..10
    responded_at: dt.datetime
    comment: str = ""


@dataclass(slots=True)
class World:
    """Everything the sandbox serves, generated from (seed, accounts, anchor)."""

    seed: int
    anchor: dt.date
    reps: list[Rep]
    companies: list[Company]
    people: list[Person]
    opportunities: list[Opportunity]
    activities: list[Activity]
    tickets: list[Ticket]
    nps: list[Nps]

    @property
    def anchor_time(self) -> dt.datetime:
        """Midnight UTC at the start of the anchor day."""
        return dt.datetime.combine(self.anchor, dt.time(), tzinfo=dt.UTC)
