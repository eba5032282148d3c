"""Deterministic synthetic customer base: `generate(seed, accounts, anchor) -> World`.

The world opens with the crafted archetype companies (`archetypes.py`) that put at least one member
and one non-member in every catalogue segment, then random companies fill it to `accounts`.
`ARCHETYPES` is the contract for rule writers: per catalogue id, the parameters the example rule
uses and the archetype that is (or is not) a member. `python -m smartseg.sandbox.generator`
writes a world's exports and prints timing and counts as one JSON line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import resource
import time
from dataclasses import dataclass
from pathlib import Path

from smartseg.sandbox.archetypes import ARCHETYPE_COMPANIES
from smartseg.sandbox.crafted import add_archetype, link_referrals
from smartseg.sandbox.draft import Draft
from smartseg.sandbox.exports import write_exports
from smartseg.sandbox.history import add_deals, add_history
from smartseg.sandbox.population import add_children, add_random_companies
from smartseg.sandbox.world import World

__all__ = ["ARCHETYPES", "ARCHETYPE_KEYS", "Archetype", "generate", "main"]


@dataclass(frozen=True, slots=True)
class Archetype:
    """A catalogue segment's parameters, a member and a non-member ("company" or "company/Role")."""

    segment: str
    rule: str
    member: str
    non_member: str


# Windows are whole days before the anchor: "last 30 days" is anchor-30 .. anchor-1. Usage
# metrics read the exports (rollups and raw events together). Active day: any "login" row.
# License utilization: distinct active users in the window / seats. ARR: Stripe seats x unit
# amount (x12 monthly), less discount. Account NPS: % promoters (9-10) - % detractors (0-6) over
# the last 180 days. Meetings: activities of kind meeting or qbr with status completed.
_A = Archetype
ARCHETYPES: tuple[Archetype, ...] = (
    _A("B01", "status = Customer", "gold-power", "churned-competitor"),
    _A("B02", "status in (Trial, Pilot)", "trial-hot", "gold-power"),
    _A("B03", "enterprise: employees >= 1000 (SMB < 200)", "gold-power", "bronze-dormant"),
    _A("B04", "edition = Gold (also Silver, Bronze, Free = freemium)", "gold-power", "freemium"),
    _A("B05", "opt_out_clause (contract_type Annual / Monthly)", "monthly-opt-out", "gold-power"),
    _A("B06", "industry = Healthcare; region = APAC", "monthly-opt-out", "gold-power"),
    _A("B07", "year one: start_date within the last 365 days", "poor-fit-api", "gold-power"),
    _A("B08", "contact role = Decision Maker", "gold-power/Decision Maker",
       "gold-power/Primary Contact"),
    _A("B09", "status = Churned", "churned-competitor", "gold-power"),
    _A("B10", "churn_date within the last 90 days", "churned-competitor",
       "churned-out-of-business"),
    _A("B11", "churn_reason = Competitor", "churned-competitor", "churned-out-of-business"),
    _A("B12", "Decision Makers at Churned companies", "churned-competitor/Decision Maker",
       "gold-power/Decision Maker"),
    _A("L01", "start_date within the last 90 days", "new-power", "gold-power"),
    _A("L02", "csm_sentiment = Red", "bronze-dormant", "gold-power"),
    _A("L03", "product_fit = Poor", "poor-fit-api", "gold-power"),
    _A("L04", "onboarding_status = In Progress", "onboarding-no-dashboards", "gold-power"),
    _A("L05", "onboarding_status in (Behind, Stuck)", "gold-onboarding-behind", "gold-power"),
    _A("L06", "no completed email and no completed call in the last 60 days", "bronze-dormant",
       "gold-power"),
    _A("L07", "Primary Contacts with < 5 active days of the last 30, company tenure > 60 days",
       "slow-starter/Primary Contact", "gold-power/Primary Contact"),
    _A("L08", "users with >= 20 active days of the last 30, company tenure <= 90 days",
       "new-power/Primary Contact", "gold-power/Primary Contact"),
    _A("L09", "renewal_date within the next 90 days", "gold-falling", "gold-power"),
    _A("L10", "growth_potential = High and license utilization (30 days) >= 90%",
       "silver-upsell-renewal", "gold-power"),
    _A("L11", "Customer with license utilization < 20% or <= 2 active days of the last 30",
       "bronze-dormant", "gold-power"),
    _A("P01", "> 15 active days of the last 30", "gold-power", "bronze-dormant"),
    _A("P02", "license utilization (30 days) > 80%", "silver-upsell-renewal", "gold-power"),
    _A("P03", "utilization last 30 days > 1.3 x the prior 30", "silver-rising", "gold-power"),
    _A("P04", "> 120 minutes (all features) in the last 7 days", "gold-power", "bronze-dormant"),
    _A("P05", "> 2 distinct active users in the last 14 days", "gold-power", "bronze-dormant"),
    _A("P06", "dashboards on >= 12 of the last 30 days and in each of the last 4 weeks",
       "gold-power", "onboarding-no-dashboards"),
    _A("P07", "dashboards events last 30 days > 1.4 x the prior 30", "silver-rising",
       "gold-power"),
    _A("P08", "email_opened / email_sent >= 40% over the last 30 days", "gold-power",
       "poor-open-rate"),
    _A("P09", "dashboards and automation both used within 30 days of start_date (start in "
       "window)", "new-power", "slow-starter"),
    _A("P10", "Executive Sponsors with executive_report on >= 4 of the last 30 days",
       "gold-power/Executive Sponsor", "daily-pc-absent-dm/Executive Sponsor"),
    _A("P11", "Primary Contacts with >= 15 active days of the last 30",
       "gold-power/Primary Contact", "slow-starter/Primary Contact"),
    _A("P12", "a completed QBR in the last 90 days and one in the 90 before", "gold-power",
       "high-value-no-qbr"),
    _A("P13", "account NPS > 0", "gold-power", "bronze-dormant"),
    _A("P14", "Decision Makers whose latest NPS score >= 9", "gold-power/Decision Maker",
       "bronze-dormant/Decision Maker"),
    _A("P15", "a Question ticket in the last 90 days and help_center or academy use in the "
       "last 30", "gold-power", "bronze-dormant"),
    _A("P16", "> 2 completed meetings in the last 30 days", "gold-power", "bronze-dormant"),
    _A("N01", "<= 2 active days of the last 30", "bronze-dormant", "gold-power"),
    _A("N02", "license utilization (30 days) < 20%", "bronze-dormant", "silver-upsell-renewal"),
    _A("N03", "utilization last 30 days < 0.6 x the prior 30", "gold-falling", "gold-power"),
    _A("N04", "< 30 minutes in the last 7 days", "bronze-dormant", "gold-power"),
    _A("N05", "< 2 distinct active users in the last 14 days", "bronze-dormant", "gold-power"),
    _A("N06", "no dashboards usage in the last 180 days", "onboarding-no-dashboards",
       "gold-power"),
    _A("N07", "dashboards events last 30 days < 0.8 x the prior 30", "gold-falling",
       "gold-power"),
    _A("N08", "email_opened / email_sent < 15% over the last 30 days (>= 20 sent)",
       "poor-open-rate", "gold-power"),
    _A("N09", "start 90..180 days ago and neither dashboards nor automation in its first 90 "
       "days", "slow-starter", "dashboards-bugs"),
    _A("N10", "Executive Sponsors with no login in the last 180 days",
       "daily-pc-absent-dm/Executive Sponsor", "gold-power/Executive Sponsor"),
    _A("N11", "Primary Contacts with <= 3 active days of the last 30",
       "bronze-dormant/Primary Contact", "gold-power/Primary Contact"),
    _A("N12", "no completed QBR in the last 180 days, or >= 2 cancelled meetings in them",
       "high-value-no-qbr", "gold-power"),
    _A("N13", "account NPS < 0", "bronze-dormant", "gold-power"),
    _A("N14", "Decision Makers whose latest NPS score <= 6", "bronze-dormant/Decision Maker",
       "gold-power/Decision Maker"),
    _A("N15", "no ticket in the last 180 days, or only Critical/High bugs", "bronze-dormant",
       "gold-power"),
    _A("N16", "< 2 completed meetings in the last 90 days", "bronze-dormant", "gold-power"),
    _A("V01", "use_case = Automation", "gold-power", "bronze-dormant"),
    _A("V02", "use_case Reporting without Gold, or Automation without product Automation",
       "silver-routine-no-dashboards", "gold-power"),
    _A("V03", "purchase_benefit set, no benefit_achieved_date, tenure > 180 days",
       "year-two-quiet-pc", "benefit-achieved"),
    _A("V04", "benefit_achieved_date within 180 days of start_date", "benefit-achieved",
       "year-two-quiet-pc"),
    _A("V05", "automation on fewer days of the last 30 than the industry benchmark (Software "
       "15, Financial Services 12, others 8)", "slow-starter", "gold-power"),
    _A("V06", "ARR band >= $20k (bands: < 5k, 5k-20k, >= 20k)", "gold-power", "freemium"),
    _A("V07", "growth_potential = High and health_score >= 70", "gold-power", "low-growth-red"),
    _A("V08", "growth_potential = Low (by health_score)", "low-growth-red", "gold-power"),
    _A("V09", "Decision Makers at growth_potential High companies", "gold-power/Decision Maker",
       "low-growth-red/Decision Maker"),
    _A("V10", "Primary Contacts at reference accounts", "gold-power/Primary Contact",
       "referral-pc/Primary Contact"),
    _A("V11", "Primary Contacts with referrals_won >= 1", "referral-pc/Primary Contact",
       "gold-power/Primary Contact"),
    _A("V12", "Primary Contacts / Decision Makers at non-reference accounts with health >= 80, "
       "sentiment Green and account NPS > 0", "referral-pc/Primary Contact",
       "gold-power/Primary Contact"),
    _A("V13", "strategic", "gold-power", "bronze-dormant"),
    _A("V14", "strategic, industry in (Software, Financial Services), employees >= 1000",
       "gold-onboarding-behind", "bronze-dormant"),
    _A("C01", "Trial with > 15 active days since start_date", "trial-hot", "trial-cold"),
    _A("C02", "Gold and onboarding_status in (Behind, Stuck)", "gold-onboarding-behind",
       "gold-power"),
    _A("C03", "ARR > $20k and no completed QBR in the last 120 days", "high-value-no-qbr",
       "gold-power"),
    _A("C04", "product_fit Good, employees >= 1000, events last 30 days < 0.6 x the prior 30",
       "gold-falling", "gold-power"),
    _A("C05", "dashboards on >= 12 of the last 30 days and >= 3 dashboards Bug tickets in the "
       "last 90", "dashboards-bugs", "gold-power"),
    _A("C06", "Primary Contacts, tenure 365..730 days, >= 12 active days of the last 30, no "
       "completed activity with them and no ticket from them in the last 90 days",
       "year-two-quiet-pc/Primary Contact", "gold-power/Primary Contact"),
    _A("C07", "Decision Makers at Annual, renewal in 90 days, sentiment Green, edition Silver or "
       "Bronze with utilization >= 90%", "silver-upsell-renewal/Decision Maker",
       "gold-power/Decision Maker"),
    _A("C08", "strategic, target industry, onboarding Behind/Stuck, no user with >= 20 active "
       "days of the last 30", "gold-onboarding-behind", "gold-power"),
    _A("C09", "events last 30 days > 1.3 x prior 30, no completed meeting in 60 days, no "
       "ai_insights in 180", "silver-rising", "gold-power"),
    _A("C10", "Silver, >= 2 completed meetings in 90 days, onboarding_step >= 3, no dashboards "
       "in 180 days", "silver-routine-no-dashboards", "gold-power"),
    _A("C11", "Primary Contacts at Pilots ending within 30 days with active users (30 days) > "
       "seats", "pilot-overscoped/Primary Contact", "trial-hot/Primary Contact"),
    _A("C12", "Gold, renewal within 180 days, no advanced_reports or sso in the last 90 days",
       "gold-falling", "gold-power"),
    _A("C13", "tenure < 365, product_fit Poor, >= 12 active days of 30, api > 50% of events, "
       "sentiment Green", "poor-fit-api", "gold-power"),
    _A("C14", "Primary Contacts with >= 15 active days of 30 at growth High companies whose "
       "Decision Makers have no login in 180 days", "daily-pc-absent-dm/Primary Contact",
       "gold-power/Primary Contact"),
    _A("C15", "tenure 365..730, employees 200..1000, > 15 active days of 30, Primary Contact "
       "and Decision Maker latest NPS <= 6", "year-two-detractors", "gold-power"),
    _A("A01", "onboarding In Progress and no dashboards since start: send training",
       "onboarding-no-dashboards", "gold-power"),
    _A("A02", "Gold, ARR > $20k, renewal within 90 days, no Gold feature in 90 days: CSM demo "
       "task", "gold-falling", "gold-power"),
    _A("A03", "ARR < $5k, renewal within 90 days, no dashboards in 90 days: coaching material",
       "bronze-dormant", "gold-power"),
)  # fmt: skip
ARCHETYPE_KEYS: tuple[str, ...] = tuple(spec.key for spec in ARCHETYPE_COMPANIES)


def generate(*, seed: int = 7, accounts: int = 200, anchor: dt.date | None = None) -> World:
    """Build the world for (seed, accounts, anchor); the same inputs always give an equal World.

    The first companies are the archetypes (all of them when accounts >= len(ARCHETYPE_KEYS),
    else the first `accounts`); the rest are random. `anchor` defaults to today in UTC.
    """
    if accounts < 1:
        raise ValueError(f"accounts must be at least 1, got {accounts}")
    anchor = anchor or dt.datetime.now(dt.UTC).date()
    # Millions of new objects, none of them garbage: the cyclic collector's repeated full passes
    # over them would take longer than building them.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _generate(seed, accounts, anchor)
    finally:
        if enabled:
            gc.enable()


def _generate(seed: int, accounts: int, anchor: dt.date) -> World:
    draft = Draft(seed, anchor, accounts)
    specs = ARCHETYPE_COMPANIES[:accounts]
    for spec in specs:
        add_archetype(draft, spec)
    add_deals(draft, draft.companies)
    link_referrals(draft, specs)
    first_random = len(draft.companies)
    add_random_companies(draft, accounts - first_random)
    randoms = draft.companies[first_random:]
    add_children(draft, randoms)
    add_history(draft, randoms)
    _random_referrals(draft, first_random)
    return draft.world()


def _random_referrals(draft: Draft, first_random: int) -> None:
    """About 5% of random won new business came from a random reference account's contact."""
    referrers = [
        p
        for p in draft.people
        if p.company >= first_random
        and p.role == "Primary Contact"
        and draft.companies[p.company].reference_account
    ]
    if not referrers:
        return
    rng = draft.rng
    for deal in draft.opportunities:
        won = deal.kind == "New Business" and deal.stage == "Closed Won"
        if deal.company >= first_random and won and rng.random() < 0.05:
            person = referrers[int(rng.integers(0, len(referrers)))]
            if person.company != deal.company:
                deal.referred_by = person.idx
                person.referrals_won += 1


def main(argv: list[str] | None = None) -> None:
    """CLI: generate a world, write its exports, print timing and counts as one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m smartseg.sandbox.generator")
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--anchor", type=dt.date.fromisoformat, default=None)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    world = generate(seed=args.seed, accounts=args.accounts, anchor=args.anchor)
    t1 = time.perf_counter()
    exports = write_exports(world, args.data_dir)
    t2 = time.perf_counter()
    print(
        json.dumps(
            {
                "seed": world.seed,
                "anchor": world.anchor.isoformat(),
                "companies": len(world.companies),
                "people": len(world.people),
                "opportunities": len(world.opportunities),
                "activities": len(world.activities),
                "tickets": len(world.tickets),
                "nps": len(world.nps),
                "rollup_rows": exports.rollup_rows,
                "event_rows": exports.event_rows,
                "generate_seconds": round(t1 - t0, 3),
                "export_seconds": round(t2 - t1, 3),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )


if __name__ == "__main__":
    main()
