"""Archetype specs turned into companies, contacts, activities, tickets and NPS answers.

The specs (`archetypes.py`) say what each crafted company is; this module writes it into a
`Draft` the same way the random population is written, so the fake APIs cannot tell them apart.
"""

from __future__ import annotations

import datetime as dt

from smartseg.sandbox.archetypes import Baseline, CompanySpec
from smartseg.sandbox.draft import PRICES, Draft
from smartseg.sandbox.population import TITLES
from smartseg.sandbox.world import Activity, Company, Nps, Ticket

__all__ = ["add_archetype", "link_referrals"]

_SUBSCRIPTION = {"Customer": "active", "Trial": "trialing", "Churned": "canceled"}


def add_archetype(draft: Draft, spec: CompanySpec) -> None:
    """Materialize one archetype company with its contacts, activities, tickets and NPS answers."""
    f = Baseline(**spec.fields)
    idx = len(draft.companies)
    prospect, customer = f.status == "Prospect", f.status == "Customer"
    renewal_in = f.renewal_in if customer else None
    in_stripe = f.in_stripe and not prospect
    contract = None if prospect else f.contract_type
    interval = "year" if contract == "Annual" else "month"
    lifecycle = f.lifecycle_stage or (
        "Renewal" if renewal_in is not None and renewal_in <= 90 else "Adoption"
    )
    known = not prospect  # a prospect has no edition, contract, CSM fields or start yet

    def day(offset: int | None) -> dt.date | None:
        return None if offset is None else draft.day(offset)

    company = Company(
        idx,
        draft.company_names[idx],
        draft.company_domains[idx],
        f"ws_{idx + 1:06d}",
        f.industry,
        f.region,
        f.country,
        f.employees,
        f.status,
        f.edition if known else None,
        f.product if known else None,
        contract,
        f.opt_out_clause,
        day(-f.start_ago) if known else None,
        day(renewal_in),
        day(f.trial_end_in),
        day(None if f.churn_ago is None else -f.churn_ago),
        f.churn_reason,
        f.seats,
        f.csm_sentiment if known else None,
        f.product_fit if known else None,
        lifecycle if known else None,
        f.onboarding_status if known else None,
        f.onboarding_step if known else None,
        f.use_case if known else None,
        f.purchase_benefit if known else None,
        day(None if f.benefit_after is None else f.benefit_after - f.start_ago),
        f.growth_potential if known else None,
        f.health_score if known else None,
        f.reference_account,
        f.strategic,
        draft.aes[idx % len(draft.aes)],
        draft.csms[idx % len(draft.csms)] if known else None,
        interval if in_stripe else None,
        PRICES[(f.edition, interval)] if in_stripe else None,
        None,
        _SUBSCRIPTION.get(f.status) if in_stripe else None,
        usage_pattern=f.usage_pattern if known else "none",
        in_salesforce=f.in_salesforce,
        in_hubspot=f.in_hubspot,
        in_stripe=in_stripe,
        created_at=draft.anchor_time - dt.timedelta(days=f.start_ago + 30 + idx, hours=3),
        features=f.features if known else (),
        email_open_rate=f.email_open_rate,
    )
    draft.companies.append(company)
    first, last = draft.pools.people(draft.rng, len(spec.people))
    by_role: dict[str, int] = {}
    for n, who in enumerate(spec.people):
        domain = "gmail.com" if who.personal_email else company.domain
        person = draft.person(
            company,
            first[n],
            last[n],
            who.role,
            TITLES[who.role][0],
            domain,
            who.level != "none",
            who.level,
            "lead" if prospect else "customer",
        )
        person.referrals_won = who.referrals
        by_role.setdefault(who.role, person.idx)
        if who.nps is not None:
            kind = "promoter" if who.nps >= 9 else "passive" if who.nps >= 7 else "detractor"
            at = draft.at(45 * 86_400 - n * 3600)
            draft.nps.append(Nps(person.idx, idx, who.nps, at, f"Archetype {kind} answer."))
    owner = company.csm_rep if company.csm_rep is not None else company.owner_rep
    for kind, state, ago, role in spec.activities:
        draft.activities.append(
            Activity(
                len(draft.activities),
                idx,
                by_role.get(role),
                kind,
                state,
                draft.at(ago * 86_400 - 10 * 3600),
                30,
                owner,
                f"{kind.upper()} with {role}",
            )
        )
    for kind, severity, feature, ago, role in spec.tickets:
        opened = draft.at(ago * 86_400 - 9 * 3600)
        draft.tickets.append(
            Ticket(
                len(draft.tickets),
                idx,
                by_role.get(role),
                kind,
                severity,
                "Closed",
                feature,
                f"{kind} about {feature.replace('_', ' ')}",
                opened,
                opened + dt.timedelta(days=1),
            )
        )


def link_referrals(draft: Draft, specs: tuple[CompanySpec, ...]) -> None:
    """Mark the New Business deals archetypes referred (V11), for archetypes this world holds."""
    index = {spec.key: i for i, spec in enumerate(specs)}
    for i, spec in enumerate(specs):
        referrers = [p.idx for p in draft.people if p.company == i and p.referrals_won]
        for key in spec.referred_deals if referrers else ():
            for deal in draft.opportunities:
                if deal.company == index.get(key) and deal.kind == "New Business":
                    deal.referred_by = referrers[0]
